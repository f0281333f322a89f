"""Production tokens: their format, generation (random, or the reference's sequence) and masking. The
rules (which offered token counts, whether a change is authorized) are authorization.py; the keyring is
keyring.py; share strings are share.py.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import secrets
import string
import zlib
from collections.abc import Iterable

from mfproj.errors import ValidationError

METAFLOW_SEQUENCE_LENGTH = 10_000
RANDOM_PART_LENGTH = 26
_RANDOM_ALPHABET = string.ascii_lowercase + string.digits
NAMESPACE_PREFIX = "production:"
_TOKEN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,255}\Z")


# --- generation ---------------------------------------------------------------------------------


def metaflow_token(prefix: str, index: int) -> str:
    """Token `index` of the reference's sequence: four distinct letters drawn from a seeded generator.

    The seed is the Adler-32 checksum of `<prefix>-<index>-`, so anyone who knows the project and
    branch can compute every token. That is why mfproj's default scheme is random.
    """
    stem = f"{prefix}-{index}-"
    letters = random.Random(zlib.adler32(stem.encode("utf-8"))).sample(string.ascii_lowercase, 4)
    return stem + "".join(letters)


def token_index(prefix: str, token: str) -> int | None:
    """The `<n>` of `<prefix>-<n>-<rest>`, or None for a token of another shape."""
    if not token.startswith(prefix + "-"):
        return None
    index_text, dash, _ = token[len(prefix) + 1 :].partition("-")
    return int(index_text) if dash and index_text.isdigit() else None


def metaflow_successor(prefix: str, previous: str | None) -> str:
    """The reference's `new_token`: index 0 first, then the token after `previous`."""
    if previous is None:
        return metaflow_token(prefix, 0)
    index = token_index(prefix, previous)
    if index is None or metaflow_token(prefix, index) != previous:
        raise ValidationError(
            f"the deployed token is not part of the metaflow token sequence for {prefix}",
            hint='use token_scheme = "random" to move to a fresh random token',
        )
    if index + 1 >= METAFLOW_SEQUENCE_LENGTH:
        raise ValidationError(
            f"the metaflow token sequence for {prefix} ends at index {METAFLOW_SEQUENCE_LENGTH - 1}",
            hint='use token_scheme = "random" to move to a fresh random token',
        )
    return metaflow_token(prefix, index + 1)


def random_token(prefix: str, previous: str | None) -> str:
    """`<prefix>-<n>-<26 random [a-z0-9]>`, n one more than the index of the token it replaces."""
    index = 0 if previous is None else (token_index(prefix, previous) or 0) + 1
    tail = "".join(secrets.choice(_RANDOM_ALPHABET) for _ in range(RANDOM_PART_LENGTH))
    return f"{prefix}-{index}-{tail}"


def new_token(scheme: str, prefix: str, previous: str | None) -> str:
    if scheme == "metaflow":
        return metaflow_successor(prefix, previous)
    return random_token(prefix, previous)


def strip_namespace(token: str) -> str:
    """Accepts `production:<token>` as well as the bare token, as the reference's --authorize."""
    token = token.strip()
    return token[len(NAMESPACE_PREFIX) :] if token.startswith(NAMESPACE_PREFIX) else token


def validate_token(token: str, *, where: str = "token") -> str:
    if not _TOKEN_RE.match(token):
        # Never echo the value: it may be a real token with a typo.
        raise ValidationError(
            f"{where} is not a production token (letters, digits, '-', '_' and '.', at most 256 characters)"
        )
    return token


def mask(token: str | None) -> str:
    """A token with its secret part hidden: `mfprj-abc-3-****`."""
    if not token:
        return "-"
    head, dash, _ = token.rpartition("-")
    if dash and head:
        return f"{head}-****"
    return token[:4] + "****"


def fingerprint(token: str) -> str:
    """A short, non-secret mark that tells two tokens apart whose masks are the same (`#1a2b3c`)."""

    return "#" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:6]


_PROJECT_TOKEN = re.compile(r"\b(mfprj-[a-z2-7]{16}-\d+)-[A-Za-z0-9]+")
# A share string carries a token: masked whole wherever tokens are (even damaged or cut, as pasted).
_SHARE_STRING = re.compile(r"mfproj-share-1\.[A-Za-z0-9_\-.]*")


def mask_text(text: str, known: Iterable[str] = ()) -> str:
    """Every production token in `text` masked: any project token (`mfprj-…-<n>-…`, whoever's it is)
    and each `known` token of another shape."""
    for secret in sorted({k for k in known if k}, key=len, reverse=True):
        text = text.replace(secret, mask(secret))
    text = _SHARE_STRING.sub("mfproj-share-1.****", text)
    return _PROJECT_TOKEN.sub(lambda match: f"{match.group(1)}-****", text)


def mask_tags(tags: Iterable[str]) -> list[str]:
    """Run tags as shown: the production tag's token masked (it is a secret)."""
    return [f"production:{mask(tag[len('production:') :])}" if tag.startswith("production:") else tag for tag in tags]


def tokens_equal(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def token_prefix_of(token: str) -> str | None:
    """`mfprj-<16>` of a project token, or None for a token of another shape."""
    match = re.match(r"^(mfprj-[a-z2-7]{16})-\d+-", token)
    return match.group(1) if match else None
