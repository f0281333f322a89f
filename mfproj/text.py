"""Text that came from someone else (a backend's tags, labels, owners, names; a user's input) made safe
to show: control characters and bidirectional overrides escaped, so nothing rewrites the reader's
terminal, and long values cut with a note. Pure stdlib."""

from __future__ import annotations

import json
import re
from typing import Any

MAX_JSON_DEPTH = 8  # what mfproj writes into tags and annotations nests 2 deep at most


class Unreadable(ValueError):
    """A value someone else wrote that is past the limits mfproj reads within (sizes, counts, nesting)."""


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


def _depth(text: str) -> int:
    """How deep brackets nest in a JSON text (counted before parsing, so a bomb never reaches json)."""
    deepest = depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def bounded_json(text: str, *, where: str, depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads for text someone else wrote: nesting at most `depth` (MAX_JSON_DEPTH for a record;
    a kept workflow spec nests deeper, and gets its own bound)."""
    if _depth(text) > depth:
        raise Unreadable(f"{where} nests deeper than {depth}")
    try:
        return json.loads(text)
    except ValueError:
        raise Unreadable(f"{where} is not JSON") from None
