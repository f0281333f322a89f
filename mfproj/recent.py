"""Run ids this user saw lately (`runs`, `trigger`), kept so that `runs show <TAB>` can complete them
without a network call. A cache only: failing to read or write it never fails a command."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

KEEP = 200


def cache_file(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or "~", ".cache")
    return Path(base).expanduser() / "mfproj" / "recent-run-ids"


def run_ids(env: Mapping[str, str] | None = None) -> list[str]:
    try:
        text = cache_file(env).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    return [line for line in text.splitlines() if line and not line.startswith("#")][:KEEP]


def remember(ids: Iterable[str], env: Mapping[str, str] | None = None) -> None:
    """Puts `ids` (newest first) in front of the ones kept; written whole through a rename, so a
    reader never sees half a file."""
    fresh = [i for i in dict.fromkeys(ids) if i and "\n" not in i]
    if not fresh:
        return
    kept = fresh + [i for i in run_ids(env) if i not in set(fresh)]
    path = cache_file(env)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".recent-")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write("".join(f"{i}\n" for i in kept[:KEEP]))
        os.replace(temporary, path)
    except OSError:
        return
