"""Production tokens: generation (random, or the reference's deterministic sequence)."""

from __future__ import annotations

import random
import string
import zlib

from mfproj.errors import ValidationError

METAFLOW_SEQUENCE_LENGTH = 10_000


def metaflow_token(prefix: str, index: int) -> str:
    """Token `index` of the reference's sequence: four distinct letters drawn from a seeded generator.

    The seed is the Adler-32 checksum of `<prefix>-<index>-`, so anyone who knows the project and
    branch can compute every token. That is why mfproj's default scheme is random.
    """
    stem = f"{prefix}-{index}-"
    letters = random.Random(zlib.adler32(stem.encode("utf-8"))).sample(string.ascii_lowercase, 4)
    return stem + "".join(letters)


def metaflow_successor(prefix: str, previous: str | None) -> str:
    """The reference's `new_token`: index 0 first, then the token after `previous`."""
    if previous is None:
        return metaflow_token(prefix, 0)
    stem, _, _ = previous.rpartition("-")
    head, _, index_text = stem.rpartition("-")
    if head != prefix or not index_text.isdigit() or metaflow_token(prefix, int(index_text)) != previous:
        raise ValidationError(
            f"the deployed token is not part of the metaflow token sequence for {prefix}",
            hint='use token_scheme = "random" to move to a fresh random token',
        )
    index = int(index_text)
    if index + 1 >= METAFLOW_SEQUENCE_LENGTH:
        raise ValidationError(
            f"the metaflow token sequence for {prefix} ends at index {METAFLOW_SEQUENCE_LENGTH - 1}",
            hint='use token_scheme = "random" to move to a fresh random token',
        )
    return metaflow_token(prefix, index + 1)
