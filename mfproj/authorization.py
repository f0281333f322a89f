"""The authorization rules: which offered token counts for a branch (one branch, one token), and whether
a change to a deployment is allowed (its owner, bound to the principal it authenticated as, or its
token). Pure: the caller's principal and the deployed record come in as values."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mfproj.errors import AuthorizationError, MfprojError, ValidationError
from mfproj.keyring import Keyring, keyring_home
from mfproj.share import decode_share, is_share_string
from mfproj.tokens import strip_namespace, token_prefix_of, tokens_equal, validate_token

TOKEN_VARIABLE = "MFPROJ_PRODUCTION_TOKEN"


@dataclass(frozen=True)
class OwnerRecord:
    """What an existing deployment records about who may change it: owner, token, principal."""

    owner: str | None
    token: str | None
    principal: str | None = None  # who the owner authenticated as when deploying (None: a name only)


@dataclass(frozen=True)
class Caller:
    """Who asks for a change: the name they go by, and (asked only when needed) who the backend says
    their credentials are."""

    name: str
    principal: Callable[[], str | None] = lambda: None
    owner_rule: str = "principal"  # "name": the reference's rule ([project] owner = "name")


@dataclass(frozen=True)
class OfferedToken:
    token: str
    source: str  # "--authorize", "--authorize-file", "MFPROJ_PRODUCTION_TOKEN", "keyring"


@dataclass(frozen=True)
class Decision:
    token: str
    is_new: bool
    reason: str
    warning: str | None = None  # for the person: e.g. an owner recorded by name only


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
    existing: OwnerRecord | None,
    caller: Caller,
    offered: OfferedToken | None,
    generate_new: bool,
    new: Callable[[str | None], str],
    deployment_name: str,
    branch_options: str = "",
    branch_token: str | None = None,
) -> Decision:
    """The rules, as one pure function.

    - nothing deployed (or a deployment without a token): a new token;
    - the owner may redeploy without the token, and the owner is who authenticated as the recorded
      principal under the recorded name (a name alone is the reference's rule: kept for deployments
      recorded without a principal, with a warning, and for `owner_rule` "name"); anyone else must
      offer the deployed token;
    - `generate_new` moves the deployment to a fresh token (namespace), once authorized;
    - `branch_token`, when the branch holds another token than this deployment's, moves it to that one
      (one branch, one token), once authorized.
    """
    previous = existing.token if existing else None
    if previous is None:
        if branch_token is not None and not generate_new:
            return Decision(branch_token, False, "first deployment: joins the branch's production token")
        return Decision(new(None), True, "first deployment: new production token")
    assert existing is not None
    is_owner, warning, mismatch = _owner(existing, caller, deployment_name)
    offered_matches = offered is not None and tokens_equal(offered.token, previous)
    if not is_owner and not offered_matches:
        owner = existing.owner or "someone else"
        options = f" {branch_options}" if branch_options else ""
        if offered is None:
            problem = "you offered no production token"
        else:
            problem = f"the production token from {offered.source} does not match the deployed one"
        if mismatch is not None:
            recorded, yours = mismatch
            problem = (
                f"{owner} authenticated as {recorded} and you authenticate as {yours or 'no known principal'} "
                f"(a name is not an identity), and {problem}"
            )
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
        return Decision(new(previous), True, f"{reason}; new production token", warning)
    if branch_token is not None and not tokens_equal(branch_token, previous):
        return Decision(branch_token, True, f"{reason}; moved to the branch's token", warning)
    return Decision(previous, False, reason, warning)


NAME_ONLY = (
    "{names}: the owner {owner} is recorded by name only (made by Metaflow or an older mfproj), so anyone going by "
    "that name passes as the owner; a deploy with mfproj records who you authenticate as"
)


def _owner(
    existing: OwnerRecord, caller: Caller, deployment_name: str
) -> tuple[bool, str | None, tuple[str, str | None] | None]:
    """(is the caller its owner, a warning, (recorded principal, caller's) when only the name matched)."""
    if existing.owner is None or existing.owner != caller.name:
        return False, None, None
    if caller.owner_rule == "name":
        return True, None, None
    if existing.principal is None:
        return True, NAME_ONLY.format(owner=existing.owner, names=deployment_name), None
    mine = caller.principal()
    if mine is not None and mine == existing.principal:
        return True, None, None
    return False, None, (existing.principal, mine)
