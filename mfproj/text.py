"""Text that came from someone else (a backend's tags, labels, owners, names; a user's input) made safe
to show: control characters and bidirectional overrides escaped, so nothing rewrites the reader's
terminal, and long values cut with a note. Pure stdlib."""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the bidirectional overrides/isolates that reorder what a line shows.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_WITH_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, keep_newlines: bool = False, limit: int | None = None) -> str:
    """`text` as a terminal shows it literally: every control character escaped (`\\x1b`), newlines and
    tabs kept only with `keep_newlines`; longer than `limit` characters, cut with '…'."""
    value = str(text)
    if limit is not None and len(value) > limit:
        value = value[: max(limit - 1, 0)] + "…"
    return (_UNSAFE if keep_newlines else _UNSAFE_WITH_BREAKS).sub(_escape, value)
