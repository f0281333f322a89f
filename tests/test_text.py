"""What a backend returns is decoded with limits and shown as text (mfproj/text.py): a crafted record is one
unreadable row, markup and escape codes are printed as text, garbage instead of an API is exit 5."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mfproj.backends.step_functions.record import decode_record, encode_record
from tests.conftest import Cli, as_user
from tests.terminal import drain
from tests.testing.branch import (
    ARN,
    sfn_name,
    two_flow_project,
)

# --- 6. one crafted record ------------------------------------------------------------------------------------


def _bounded_run(args: list[str], cwd: Path, env: dict[str, str]) -> Any:
    """mfproj in a process that may not use more than 1 GiB (a bomb would need many)."""
    import os
    import resource
    import subprocess
    import sys

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    return subprocess.run(
        [sys.executable, "-m", "mfproj", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
    )


def test_a_bomb_record_is_one_unreadable_row_not_a_crash(cli: Cli, tmp_path: Path, sfn: Any) -> None:
    from mfproj.backends.step_functions import record as sfn_record

    two_flow_project(tmp_path)
    env = as_user("alice", tmp_path)
    assert cli("deploy", env=env).code == 0
    bomb = ARN.format(sfn_name("TrainFlow", "user.alice"))
    sfn.tag_resource(resourceArn=bomb, tags=[{"key": "mfproj:git_branch", "value": "chunks:99999999999"}])
    nested: dict[str, str] = {}
    sfn_record._put(nested, "tags", "[" * 2500)
    other = ARN.format(sfn_name("GuardFlow", "user.alice"))
    sfn.tag_resource(resourceArn=other, tags=[{"key": k, "value": v} for k, v in nested.items()])
    listings = (
        ["deployments"],
        ["deployments", "-o", "json"],
        ["runs", "-A"],
        ["namespaces"],
        ["teardown", "--dry-run", "--user", "alice"],
        ["gc", "--dry-run", "--older-than", "0d"],
    )
    for args in listings:
        done = _bounded_run(args, tmp_path, env)
        assert done.returncode == 0, (args, done.stderr)
        assert "unexpected" not in done.stderr
        assert "cannot be read" in done.stderr and "chunks" in done.stderr
    listing = _bounded_run(["deployments", "-o", "json"], tmp_path, env)
    assert {d["state"] for d in json.loads(listing.stdout)} == {"unreadable"}
    refused = cli("deploy", "TrainFlow", env=env)
    assert refused.code == 6 and "cannot be read" in refused.stderr


# --- 7. backend text is text ------------------------------------------------------------------------------------


def _on_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """mfproj with stdout and stderr on one pseudo-terminal; its exit code and the raw bytes shown."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "mfproj", *args],
        stdout=follower,
        stderr=follower,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env={**os.environ, **env, "COLUMNS": "200", "TERM": "xterm"},
    )
    os.close(follower)
    shown = drain(leader, process)
    code = process.wait(timeout=30)
    os.close(leader)
    return code, shown.decode("utf-8", "replace")


HOSTILE = "eve[/bold]\x1b]0;pwned\x07\x1b[2J"


def test_markup_and_escape_codes_from_a_backend_are_printed_as_text(cli: Cli, tmp_path: Path, sfn: Any) -> None:
    from dataclasses import replace

    two_flow_project(tmp_path)
    env = as_user("alice", tmp_path)
    assert cli("deploy", "--branch", "solo", env=env).code == 0
    arn = ARN.format(sfn_name("TrainFlow"))
    tags = {t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=arn)["tags"]}
    record = decode_record(tags)
    assert record is not None
    hostile = encode_record(replace(record, owner=HOSTILE, tags=("x[/y]",)))
    sfn.tag_resource(resourceArn=arn, tags=[{"key": k, "value": v} for k, v in hostile.items()])
    for args in (
        ["deployments"],
        ["teardown", "--dry-run", "--branch", "solo"],
        ["deploy", "TrainFlow", "--branch", "solo"],
    ):
        code, shown = _on_terminal(args, tmp_path, as_user("mallory", tmp_path) if args[0] == "deploy" else env)
        assert code == (3 if args[0] == "deploy" else 0), shown
        assert "\x1b]0;" not in shown and "\x1b[2J" not in shown, shown
        if args[0] != "teardown":  # its plan names no owner
            assert "\\x1b]0;pwned\\x07\\x1b[2J" in shown, shown
            assert "eve[/bold]" in shown


# --- 12. garbage from a backend ---------------------------------------------------------------------------------


@pytest.fixture
def captive_portal() -> Any:
    """A server on 127.0.0.1 that answers every request with an HTML page (a proxy's login page)."""
    import http.server
    import threading

    class Portal(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _page(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            page = b"<html><body>Please sign in to the guest network</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        do_GET = do_POST = do_PUT = do_DELETE = _page

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Portal)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_html_page_instead_of_aws_is_exit_5_naming_the_endpoint(
    cli: Cli, tmp_path: Path, aws: Any, captive_portal: str
) -> None:
    two_flow_project(tmp_path)
    result = cli("deploy", env={**as_user("alice", tmp_path), "AWS_ENDPOINT_URL": captive_portal})
    assert result.code == 5, result.stderr
    assert captive_portal in result.stderr and "unexpected" not in result.stderr


def test_an_html_page_instead_of_kubernetes_is_exit_5_naming_the_server(
    cli: Cli, tmp_path: Path, kube: Any, captive_portal: str
) -> None:
    from tests.k8s_emulator import kubeconfig_for

    two_flow_project(tmp_path, argo=True, sfn=False)
    (tmp_path / "portal-kubeconfig").write_text(kubeconfig_for(captive_portal))
    env = {**as_user("alice", tmp_path), "KUBECONFIG": str(tmp_path / "portal-kubeconfig")}
    result = cli("deploy", env=env)
    assert result.code == 5, result.stderr
    assert captive_portal in result.stderr and "unexpected" not in result.stderr


@pytest.mark.parametrize("raw", [b'{"stateMachineArn": "arn:aws:states', b"{}", b"<html>oops</html>"])
def test_a_cut_off_or_empty_answer_is_exit_5(cli: Cli, tmp_path: Path, aws: Any, raw: bytes) -> None:
    from tests.emulators import FaultProxy

    two_flow_project(tmp_path)
    env = as_user("alice", tmp_path)
    assert cli("deploy", env=env).code == 0
    proxy = FaultProxy(aws.url)
    try:
        proxy.fail("DescribeStateMachine", status=200, raw=raw)
        result = cli("deploy", env={**env, "AWS_ENDPOINT_URL": proxy.url})
    finally:
        proxy.stop()
    assert result.code == 5, result.stderr
    assert proxy.url in result.stderr and "unexpected" not in result.stderr
