"""A process on a real pseudo-terminal, for the tests of what a person sees (tables, escapes, live views)."""

from __future__ import annotations

import os
import select
import subprocess
import time


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
