"""Share strings: one checksummed copy-paste string that carries a branch's production token with its
project, branch and token prefix, so a truncated paste or one for another branch is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

from mfproj.errors import ValidationError

SHARE_PREFIX = "mfproj-share-1."


@dataclass(frozen=True)
class Share:
    project: str
    branch: str
    token_prefix: str
    token: str


def encode_share(share: Share) -> str:
    """One copy-paste string: version, payload (base64url JSON) and a checksum of the payload."""
    payload = json.dumps(
        {"p": share.project, "b": share.branch, "x": share.token_prefix, "t": share.token},
        separators=(",", ":"),
        sort_keys=True,
    ).encode("utf-8")
    body = base64.urlsafe_b64encode(payload).decode("ascii").rstrip("=")
    return f"{SHARE_PREFIX}{body}.{_checksum(body)}"


def _checksum(body: str) -> str:
    return hashlib.sha256(body.encode("ascii")).hexdigest()[:10]


def is_share_string(value: str) -> bool:
    return value.strip().startswith(SHARE_PREFIX)


def decode_share(value: str) -> Share:
    text = "".join(value.split())  # a paste may be wrapped over lines
    broken = ValidationError(
        "the share string is damaged or incomplete (its checksum does not match)",
        hint="copy the whole string again from 'mfproj token share'",
    )
    if not text.startswith(SHARE_PREFIX) or not text.isascii():
        raise broken
    body, dot, checksum = text[len(SHARE_PREFIX) :].rpartition(".")
    if not dot or not hmac.compare_digest(_checksum(body), checksum):
        raise broken
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        share = Share(project=data["p"], branch=data["b"], token_prefix=data["x"], token=data["t"])
    except (ValueError, KeyError, TypeError):
        raise broken from None
    if not all(isinstance(v, str) for v in (share.project, share.branch, share.token_prefix, share.token)):
        raise broken
    from mfproj.tokens import validate_token

    validate_token(share.token, where="the token in the share string")
    if not share.token.startswith(share.token_prefix + "-"):
        # A well-formed string whose token is another branch's: it would be stored under this branch.
        raise ValidationError(
            f"the share string names {share.project} {share.branch} (token prefix {share.token_prefix}), "
            "but the token in it has another prefix",
            hint="ask for a new share string from 'mfproj token share' on the branch it is for",
        )
    return share
