"""The test servers themselves: a request a handler fails on is kept by the server, never printed on the
standard error of the process, where an in-process `mfproj` command under test is writing its own."""

from __future__ import annotations

import contextlib
import io
import socket
import time
from typing import Any


def _send_broken_request(url: str) -> None:
    """A request whose Content-Length is not a number: the handler fails on it."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: nonsense\r\n\r\n")
        with contextlib.suppress(OSError):
            connection.recv(1024)


def test_a_request_the_proxy_fails_on_is_not_printed_on_stderr(aws_proxy: Any) -> None:
    """The Kubernetes emulator's server is the same QuietServer (it answers this request with a 400)."""
    target = aws_proxy
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        _send_broken_request(target.url)
        for _ in range(50):  # the handler runs in the server's thread: wait for it (bounded)
            if getattr(target, "handler_errors", None):
                break
            time.sleep(0.05)
    assert stderr.getvalue() == ""
    assert len(target.handler_errors) == 1 and "ValueError" in target.handler_errors[0]
