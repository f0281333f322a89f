"""Production tokens: generation (random, or the reference's sequence), masking, and the rules: which
offered token counts for a branch, and whether a change is authorized. The keyring is keyring.py; share
strings are share.py.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import random
import re
import secrets
import string
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mfproj.errors import AuthorizationError, MfprojError, ValidationError
from mfproj.keyring import Keyring, keyring_home
from mfproj.share import decode_share, is_share_string

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


_PROJECT_TOKEN = re.compile(r"\b(mfprj-[a-z2-7]{16}-\d+)-[A-Za-z0-9]+")


def mask_text(text: str, known: Iterable[str] = ()) -> str:
    """Every production token in `text` masked: any project token (`mfprj-…-<n>-…`, whoever's it is)
    and each `known` token of another shape."""
    for secret in sorted({k for k in known if k}, key=len, reverse=True):
        text = text.replace(secret, mask(secret))
    return _PROJECT_TOKEN.sub(lambda match: f"{match.group(1)}-****", text)


def mask_tags(tags: Iterable[str]) -> list[str]:
    """Run tags as shown: the production tag's token masked (it is a secret)."""
    return [f"production:{mask(tag[len('production:') :])}" if tag.startswith("production:") else tag for tag in tags]


def tokens_equal(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


# --- share strings ------------------------------------------------------------------------------

# --- authorization ------------------------------------------------------------------------------

TOKEN_VARIABLE = "MFPROJ_PRODUCTION_TOKEN"


@dataclass(frozen=True)
class Deployment:
    """What an existing deployment records about itself."""

    owner: str | None
    token: str | None


@dataclass(frozen=True)
class OfferedToken:
    token: str
    source: str  # "--authorize", "--authorize-file", "MFPROJ_PRODUCTION_TOKEN", "keyring"


@dataclass(frozen=True)
class Decision:
    token: str
    is_new: bool
    reason: str


@dataclass(frozen=True)
class BranchRef:
    """The project branch an offered token must belong to."""

    project: str
    branch: str
    token_prefix: str


def parse_offer(raw: str, target: BranchRef, *, where: str, owner_of: Callable[[str], str | None]) -> str:
    """The token in a share string or a bare token (`production:` accepted), for `target` only.

    One branch, one token: a share string for another project or branch, or a token whose prefix is
    not the branch's, is refused (exit 2) and the message names the branch it belongs to where
    `owner_of(prefix)` can tell (`"<project> <branch>"`).
    """
    from mfproj.identity import branch_options

    text = raw.strip()
    if not text:
        raise ValidationError(f"{where}: no token given (the value is empty)")
    if is_share_string(text):
        share = decode_share(text)
        if (share.project, share.branch, share.token_prefix) != (target.project, target.branch, target.token_prefix):
            options = branch_options(share.branch)
            raise ValidationError(
                f"{where}: this share string is for {share.project} {share.branch}, "
                f"not {target.project} {target.branch}",
                hint=(
                    f"select its branch ({options or 'the user branch: no --branch, no --production'}), "
                    f"for example 'mfproj token authorize{' ' + options if options else ''} -'; "
                    f"or ask for the share string of {target.branch}"
                    if share.project == target.project
                    else f"use it in the {share.project} project, next to its mfproj.toml"
                ),
            )
        return share.token
    token = validate_token(strip_namespace(text), where=where)
    if not token.startswith(target.token_prefix + "-"):
        raise ValidationError(
            f"{where}: this token belongs to {_belongs(token, owner_of)}, not to {target.project} {target.branch} "
            f"(whose tokens start with {target.token_prefix}-)",
            hint="check --branch / --production, or ask for the share string of this branch, which names its branch",
        )
    return token


def branch_finder(project: str, user: str | None, keyring: Keyring | None) -> Callable[[str], str | None]:
    """`owner_of` for `parse_offer`: which project branch a token prefix belongs to, where it can be known
    (a prefix is a hash): the keyring's own notes, then this project's `prod` and the caller's user branch."""
    from mfproj.naming import token_prefix

    def owner_of(prefix: str) -> str | None:
        if keyring is not None:
            with contextlib.suppress(MfprojError):
                stored = keyring.load(prefix)
                if stored is not None and stored.project and stored.branch:
                    return f"{stored.project} {stored.branch}"
        for branch in ("prod", f"user.{user}" if user else None):
            if branch and token_prefix(project, branch) == prefix:
                return f"{project} {branch}"
        return None

    return owner_of


def token_prefix_of(token: str) -> str | None:
    """`mfprj-<16>` of a project token, or None for a token of another shape."""
    match = re.match(r"^(mfprj-[a-z2-7]{16})-\d+-", token)
    return match.group(1) if match else None


def _belongs(token: str, owner_of: Callable[[str], str | None]) -> str:
    prefix = token_prefix_of(token)
    if prefix is None:
        return "no project branch (it is not a project token)"
    known = owner_of(prefix)
    return known if known else f"another branch or project (token prefix {prefix})"


def offered_token(
    *,
    target: BranchRef,
    authorize: str | None = None,
    authorize_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    keyring: Keyring | None = None,
    owner_of: Callable[[str], str | None] = lambda prefix: None,
    warn: Callable[[str], None] = lambda message: None,
) -> OfferedToken | None:
    """The token the caller offers for `target`, from the first place that has one, in the documented order.

    An explicit offer (`--authorize`, `--authorize-file`) for another branch is an error; the
    environment variable is set once for many deploys in CI, so one for another branch is ignored
    with a warning; a keyring file is per prefix, and a token in it of another prefix is ignored too.
    """
    env = os.environ if env is None else env
    if authorize is not None:
        return OfferedToken(parse_offer(authorize, target, where="--authorize", owner_of=owner_of), "--authorize")
    if authorize_file is not None:
        text = _read_text(authorize_file, where="--authorize-file")
        return OfferedToken(parse_offer(text, target, where="--authorize-file", owner_of=owner_of), "--authorize-file")
    if env.get(TOKEN_VARIABLE, "").strip():
        try:
            token = parse_offer(env[TOKEN_VARIABLE], target, where=TOKEN_VARIABLE, owner_of=owner_of)
        except ValidationError as exc:
            warn(f"{exc.message}; ignored for {target.branch}")
        else:
            return OfferedToken(token, TOKEN_VARIABLE)
    stored = (keyring or Keyring(keyring_home(env))).load_token(target.token_prefix)
    if stored and not stored.startswith(target.token_prefix + "-"):
        warn(f"the keyring file for {target.token_prefix} holds a token of another branch; ignored")
        return None
    return OfferedToken(stored, "keyring") if stored else None


def _read_text(path: Path, *, where: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"{where}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValidationError(f"{where}: {path} is not text") from None


def authorize(
    *,
    existing: Deployment | None,
    caller: str,
    offered: OfferedToken | None,
    generate_new: bool,
    new: Callable[[str | None], str],
    deployment_name: str,
    branch_options: str = "",
) -> Decision:
    """The reference's rules, as one pure function.

    - nothing deployed (or a deployment without a token): a new token;
    - the previous owner may redeploy without the token; anyone else must offer the deployed token;
    - `generate_new` moves the deployment to a fresh token (namespace), once authorized.
    """
    previous = existing.token if existing else None
    if previous is None:
        return Decision(new(None), True, "first deployment: new production token")
    assert existing is not None
    is_owner = existing.owner is not None and existing.owner == caller
    offered_matches = offered is not None and tokens_equal(offered.token, previous)
    if not is_owner and not offered_matches:
        owner = existing.owner or "someone else"
        options = f" {branch_options}" if branch_options else ""
        if offered is None:
            problem = "you offered no production token"
        else:
            problem = f"the production token from {offered.source} does not match the deployed one"
        raise AuthorizationError(
            f"{deployment_name} was deployed by {owner}, and {problem}",
            hint=(
                f"ask {owner} (or anyone with the token) to run 'mfproj token share{options}' and give you "
                f"the string, then run 'mfproj token authorize{options} -' and paste it; in CI set "
                f"{TOKEN_VARIABLE} from a secret. To start a separate namespace instead, deploy to another branch."
            ),
        )
    reason = "owner" if is_owner or offered is None else f"authorized by the token from {offered.source}"
    if generate_new:
        return Decision(new(previous), True, f"{reason}; new production token")
    return Decision(previous, False, reason)
