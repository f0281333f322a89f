"""Who holds a lock: user, host and process, so a lock left by a process that is gone can be broken.

A process is identified by its pid and its start time (from /proc where there is one), so a pid
reused by another process does not keep a dead deploy's lock alive.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), if known."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # the command name may hold spaces and parentheses
    return fields[19] if len(fields) > 19 else None


@dataclass(frozen=True)
class Holder:
    user: str
    host: str
    pid: int
    started: str | None = None

    @classmethod
    def current(cls, user: str) -> Holder:
        return cls(user=user, host=socket.gethostname(), pid=os.getpid(), started=_start_time(os.getpid()))

    @classmethod
    def from_json(cls, data: Any) -> Holder | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(str(data["user"]), str(data["host"]), int(data["pid"]), data.get("started"))
        except (KeyError, TypeError, ValueError):
            return None

    def as_json(self) -> dict[str, Any]:
        return {"user": self.user, "host": self.host, "pid": self.pid, "started": self.started}

    def describe(self) -> str:
        return f"{self.user} (pid {self.pid} on {self.host})"

    def is_this_process(self) -> bool:
        me = Holder.current(self.user)
        return (self.host, self.pid, self.started) == (me.host, me.pid, me.started)

    def is_gone(self) -> bool:
        """True only when this host can tell for sure: same host, and no such process (or another one
        with the same pid). A holder on another host is never declared gone here."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # it exists, under another user
        started = _start_time(self.pid)
        return bool(self.started and started and started != self.started)
