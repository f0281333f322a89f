"""The README's first set-up command runs scripts/demo.py: it must work from start to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_runs_end_to_end() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "demo finished" in out
    assert out.count('"status": "SUCCEEDED"') >= 2  # a production run on each backend, followed to the end
    assert '"run_id": "argo-exampleproject.prod.projectflow-' in out  # Argo, through the local controller
    assert "paused 1 schedule(s)" in done.stderr + out and "resumed 1 schedule(s)" in done.stderr + out
    assert "Traceback" not in out + done.stderr
    assert "was deployed by alice, and you offered no production token" in out
    assert "127.0.0.1 - -" not in out + done.stderr  # no request log noise
