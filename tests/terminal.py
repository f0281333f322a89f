"""A process on a real pseudo-terminal, for the tests of what a person sees (tables, escapes, live views)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path


def drain(leader: int, process: subprocess.Popen[bytes], *, seconds: float = 60.0) -> bytes:
    """Everything the process shows on the terminal whose leader side is `leader`, until it ends or the
    terminal closes (at most `seconds`)."""
    chunks = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:
                break  # the terminal closed: the process ended
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    return b"".join(chunks)


def in_terminal(args: list[str], cwd: Path, env: dict[str, str], columns: int) -> str:
    """Runs mfproj with stdout on a real pseudo-terminal `columns` wide; returns what it showed."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "mfproj", *args],
        stdout=follower,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env={**os.environ, **env, "NO_COLOR": "1", "COLUMNS": str(columns), "TERM": "xterm"},
    )
    os.close(follower)
    raw = drain(leader, process)
    process.wait(timeout=30)
    os.close(leader)
    shown = raw.decode("utf-8", "replace").replace("\r\n", "\n")
    return re.sub(r"\x1b\[[0-9;]*m", "", shown)  # styles (bold) are not width
