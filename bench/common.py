"""What the benchmarks share: moto's server in its own process, and an environment pointing at it."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    """moto's server on 127.0.0.1 and a free port, in its own process (so its memory is not ours)."""
    port = free_port()
    # moto made as strict as AWS about existing state machine names (see tests/emulators.py).
    start = (
        "import sys; sys.path.insert(0, sys.argv[1]); from tests.emulators import make_moto_strict; "
        "make_moto_strict(); from moto.server import main; main(['-H', '127.0.0.1', '-p', sys.argv[2]])"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", start, str(Path(__file__).resolve().parent.parent), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).read()
            return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("moto's server did not start")


def bench_env(url: str, prefix: str) -> tuple[Path, dict[str, str]]:
    """A work directory and an environment for user `bench` against the emulator at `url`.

    The process's own environment is updated too, for the clients the benchmark makes itself.
    """
    work = Path(tempfile.mkdtemp(prefix=f"mfproj-bench-{prefix}-"))
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "METAFLOW_USER": "bench",
        "METAFLOW_TOKEN_HOME": str(work / "keyring"),
        "CI": "1",
    }
    os.environ.update(env)
    return work, env


def timed_deploy(directory: Path, branch: str, env: dict[str, str]) -> float:
    """Seconds `mfproj deploy --branch BRANCH -o json` takes as a person runs it (a whole process)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mfproj", "deploy", "--branch", branch, "-o", "json"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return time.perf_counter() - started


def report_header(name: str) -> dict[str, Any]:
    """What every results file starts with: which benchmark, when, and on what."""
    return {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu",
    }


def write_report(path: Path, report: dict[str, Any], *, echo: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    if echo:
        print(json.dumps(report, indent=2))
