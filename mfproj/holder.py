"""Who holds a lock: user, host and process, so a lock left by a process that is gone can be broken.

A process is identified by its pid and its start time (from /proc where there is one), so a pid
reused by another process does not keep a dead deploy's lock alive. A host is more than its name: the
kernel's boot id and the PID namespace say whether a pid means the same process here (a container, a
second laptop called `MacBook-Pro.local`, or the same machine after a reboot is another place).
"""

from __future__ import annotations

import functools
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


def _read_link(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read(64).strip() or None
    except OSError:
        return None


@functools.lru_cache(maxsize=1)  # a process's boot and PID namespace do not change while it runs
def _place() -> str | None:
    """This process's host beyond its name: boot id and PID namespace (None where the OS cannot say)."""
    boot, namespace = _boot_id(), _read_link("/proc/self/ns/pid")
    return f"{boot}/{namespace}" if boot and namespace else None


@dataclass(frozen=True)
class Holder:
    user: str
    host: str
    pid: int
    started: str | None = None
    place: str | None = None  # boot id and PID namespace: where `pid` means this process

    @classmethod
    def current(cls, user: str) -> Holder:
        pid = os.getpid()
        return cls(user=user, host=socket.gethostname(), pid=pid, started=_start_time(pid), place=_place())

    @classmethod
    def from_json(cls, data: Any) -> Holder | None:
        if not isinstance(data, dict):
            return None
        try:
            started, place = data.get("started"), data.get("place")
            return cls(
                str(data["user"])[:256],
                str(data["host"])[:256],
                int(data["pid"]),
                str(started)[:64] if started is not None else None,
                str(place)[:256] if place is not None else None,
            )
        except (KeyError, TypeError, ValueError):
            return None

    def as_json(self) -> dict[str, Any]:
        return {"user": self.user, "host": self.host, "pid": self.pid, "started": self.started, "place": self.place}

    def _here(self) -> bool:
        """Whether this holder's pid names a process of this very host, boot and PID namespace."""
        return self.host == socket.gethostname() and self.place is not None and self.place == _place()

    def describe(self) -> str:
        return f"{self.user} (pid {self.pid} on {self.host})"

    def is_this_process(self) -> bool:
        me = Holder.current(self.user)
        return self._here() and (self.pid, self.started) == (me.pid, me.started)

    def is_gone(self) -> bool:
        """True only when this host can tell for sure: same host name, boot and PID namespace, and no such
        process (or another one with the same pid). A holder anywhere else is never declared gone here."""
        if not self._here():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # it exists, under another user
        started = _start_time(self.pid)
        return bool(self.started and started and started != self.started)
