"""LocalStack's Step Functions as a second, more faithful emulator (versions, aliases, definitions as text,
StateMachineAlreadyExists, validate_state_machine_definition, executions that really run). It runs in a
virtual environment of its own (`.venv-localstack`, made by `.ci/run` / `make localstack`), in host mode,
on a free port of 127.0.0.1, once per test session. See ../shared/spec/environment-facts.md."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "000000000000"  # LocalStack's, whatever the access key


def localstack_python() -> Path | None:
    """The interpreter that has LocalStack: MFPROJ_LOCALSTACK_PYTHON, or the repository's .venv-localstack."""
    configured = os.environ.get("MFPROJ_LOCALSTACK_PYTHON")
    if configured:
        return Path(configured) if Path(configured).exists() else None
    installed = ROOT / ".venv-localstack" / ".installed"  # written by `make localstack` once pip succeeded
    return ROOT / ".venv-localstack" / "bin" / "python" if installed.exists() else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalStackServer:
    """LocalStack (stepfunctions, events, sts) in a child process; `stop` ends its whole process group."""

    def __init__(self, python: Path, *, ready_within: float = 90.0) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._root = tempfile.TemporaryDirectory(prefix="mfproj-localstack-")
        self._log = open(Path(self._root.name) / "localstack.log", "wb")  # noqa: SIM115 - closed in stop()
        env = {
            **os.environ,
            "GATEWAY_SERVER": "hypercorn",
            "GATEWAY_LISTEN": f"127.0.0.1:{self.port}",
            "LOCALSTACK_HOST": f"127.0.0.1:{self.port}",
            "SERVICES": "stepfunctions,events,sts",
            "PERSISTENCE": "0",
            "FILESYSTEM_ROOT": self._root.name,
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "DISABLE_EVENTS": "1",  # no analytics calls home
        }
        self._process = subprocess.Popen(
            [str(python), "-m", "localstack.runtime.main"],
            env=env,
            cwd=self._root.name,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_ready(ready_within)
        except Exception:
            self.stop()
            raise

    def _wait_ready(self, within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"LocalStack exited with {self._process.returncode}: {self.log_tail()}")
            health = self.url + "/_localstack/health"
            with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=2) as up:
                if up.status == 200:
                    self._warm_up()
                    return
            time.sleep(0.3)
        raise RuntimeError(f"LocalStack did not answer within {within:.0f} s: {self.log_tail()}")

    def _warm_up(self) -> None:
        """The first Step Functions call loads the service (seconds): paid here, once, not by a test."""
        self.client("stepfunctions").list_state_machines()

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def reset(self) -> None:
        """Removes every state machine and EventBridge rule: each test starts from an empty account."""
        sfn, events = self.client("stepfunctions"), self.client("events")
        for machine in sfn.list_state_machines().get("stateMachines", []):
            sfn.delete_state_machine(stateMachineArn=machine["stateMachineArn"])
        for rule in events.list_rules().get("Rules", []):
            targets = events.list_targets_by_rule(Rule=rule["Name"]).get("Targets", [])
            if targets:
                events.remove_targets(Rule=rule["Name"], Ids=[t["Id"] for t in targets])
            events.delete_rule(Name=rule["Name"])

    def log_tail(self, lines: int = 20) -> str:
        self._log.flush()
        text = (Path(self._root.name) / "localstack.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(timeout=5)
        self._log.close()
        self._root.cleanup()
