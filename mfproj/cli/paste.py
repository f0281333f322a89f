"""Reading a pasted secret on a terminal: no echo (it would stay on screen and in terminal logs), and
all of a paste that a terminal wrapped over several lines (the rest would otherwise run as shell
commands and land in the shell's history)."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

from mfproj.cli.output import info

MAX_LINES = 64  # a share string is a few hundred characters: a paste is never longer


def complete_offer(text: str) -> bool:
    """Whether a paste so far is a whole share string (its checksum matches) or a whole project token."""
    from mfproj.errors import MfprojError
    from mfproj.share import decode_share, is_share_string
    from mfproj.tokens import RANDOM_PART_LENGTH

    if is_share_string(text):
        try:
            decode_share(text)
        except MfprojError:
            return False
        return True
    return re.fullmatch(rf"(production:)?mfprj-[a-z2-7]{{16}}-\d+-[a-z0-9]{{{RANDOM_PART_LENGTH}}}", text) is not None


def read_hidden(prompt: str, complete: Callable[[str], bool] = complete_offer) -> str:
    """Lines from the terminal with echo off, joined without their whitespace, until what was read is
    complete or a blank line comes (or end of input)."""
    import termios

    descriptor = sys.stdin.fileno()
    saved = termios.tcgetattr(descriptor)
    hidden = termios.tcgetattr(descriptor)
    hidden[3] &= ~termios.ECHO
    parts: list[str] = []
    try:
        termios.tcsetattr(descriptor, termios.TCSADRAIN, hidden)
        info(prompt)  # only once echo is off: a paste that comes at once is not shown either
        for _ in range(MAX_LINES):
            line = sys.stdin.readline()
            piece = "".join(line.split())
            if not piece:  # a blank line, or the end of input
                break
            parts.append(piece)
            if complete("".join(parts)):
                break
    finally:
        termios.tcsetattr(descriptor, termios.TCSADRAIN, saved)
    read = "".join(parts)
    info(f"(read {len(read)} characters)" if read else "(nothing read)")
    return read
