"""Concurrent deploys of one flow and branch by two users: exactly one wins, the result is coherent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_two_deployers_at_once_exactly_one_wins(tmp_path: Path) -> None:
    out = tmp_path / "races.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "races.py"), "--rounds", "2", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(out.read_text())["results"]
    for backend in ("step-functions", "argo-workflows"):
        outcome = results[backend]
        assert outcome["exactly_one_winner"] == outcome["rounds"] == 2, outcome
        assert outcome["incoherent"] == 0
        assert set(outcome["outcomes"]) <= {"0,3", "0,6"}
