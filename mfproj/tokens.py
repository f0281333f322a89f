"""Production tokens: generation, the local keyring, share strings, and the authorization rules.

The keyring is Metaflow's token store, in the same place and format, so both tools share it:
one JSON file per token prefix under `$METAFLOW_TOKEN_HOME`, else `$METAFLOW_HOME`, else
`~/.metaflowconfig`, with the key `production_token`. mfproj adds a key of its own (`mfproj`:
project, branch, when and how stored) and keeps any others. Unlike the reference, writes are atomic
(temporary file, fsync, rename) and serialized by a lock; files are 0600 in a 0700 directory; a symlink
in place of a token file is refused; a corrupt file is reported, never overwritten.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import stat
import string
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mfproj.errors import AuthorizationError, MfprojError, ValidationError

METAFLOW_SEQUENCE_LENGTH = 10_000
RANDOM_PART_LENGTH = 26
_RANDOM_ALPHABET = string.ascii_lowercase + string.digits
NAMESPACE_PREFIX = "production:"
_TOKEN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,255}$")
_PREFIX_FILE_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,127}$")
_MAX_TOKEN_FILE = 1 << 20  # token files are tiny; anything larger is not ours to parse


class KeyringError(MfprojError):
    """The keyring cannot be read or written safely. Exit code 2: the user must fix a file."""

    exit_code = 2


class CorruptTokenFileError(KeyringError):
    """A token file that is not a JSON object. Reported with its path, never overwritten."""


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


def tokens_equal(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


# --- share strings ------------------------------------------------------------------------------

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
    validate_token(share.token, where="the token in the share string")
    return share


# --- keyring ------------------------------------------------------------------------------------


def keyring_home(env: Mapping[str, str] | None = None) -> Path:
    """Metaflow's rule; an empty variable counts as unset (the reference would write to `/<prefix>`)."""
    env = os.environ if env is None else env
    home = env.get("METAFLOW_TOKEN_HOME") or env.get("METAFLOW_HOME") or "~/.metaflowconfig"
    return Path(home).expanduser()


@dataclass(frozen=True)
class StoredToken:
    token_prefix: str
    token: str | None
    path: Path
    project: str | None = None
    branch: str | None = None
    stored_at: str | None = None
    source: str | None = None


class Keyring:
    def __init__(self, home: Path | None = None) -> None:
        self.home = home if home is not None else keyring_home()

    def path(self, token_prefix: str) -> Path:
        if not _PREFIX_FILE_RE.match(token_prefix):
            raise ValidationError(f"{token_prefix!r} is not a token prefix")
        return self.home / token_prefix

    # reading

    def _read(self, path: Path) -> dict[str, Any] | None:
        """The file's JSON object; None if absent. Refuses symlinks and reports corrupt files."""
        try:
            info = path.lstat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise KeyringError(f"cannot read {path}: {exc.strerror}") from None
        if stat.S_ISLNK(info.st_mode):
            raise KeyringError(
                f"{path} is a symbolic link; mfproj does not follow links in the keyring",
                hint="replace it with a regular file, or remove it",
            )
        if not stat.S_ISREG(info.st_mode):
            raise KeyringError(f"{path} is not a regular file")
        if info.st_size > _MAX_TOKEN_FILE:
            raise KeyringError(f"{path} is too large to be a token file ({info.st_size} bytes)")
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as handle:
                raw = handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise KeyringError(f"cannot read {path}: {exc.strerror}") from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise CorruptTokenFileError(
                f"{path} is corrupt (not JSON); mfproj will not overwrite it",
                hint=f"inspect it, then remove it (rm {path}) and authorize again",
            ) from None
        if not isinstance(data, dict):
            raise CorruptTokenFileError(f"{path} is corrupt (not a JSON object); mfproj will not overwrite it")
        return data

    def load(self, token_prefix: str) -> StoredToken | None:
        path = self.path(token_prefix)
        data = self._read(path)
        if data is None:
            return None
        return _stored(token_prefix, path, data)

    def load_token(self, token_prefix: str) -> str | None:
        stored = self.load(token_prefix)
        return stored.token if stored else None

    def entries(self) -> list[StoredToken]:
        """Every token file in the keyring (files with a `production_token` key), sorted by prefix."""
        try:
            names = sorted(os.listdir(self.home))
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            if name.startswith(".") or not _PREFIX_FILE_RE.match(name):
                continue
            path = self.home / name
            try:
                data = self._read(path)
            except KeyringError:
                continue  # not necessarily ours (Metaflow keeps config.json here too)
            if data is not None and "production_token" in data:
                found.append(_stored(name, path, data))
        return found

    # writing

    @contextlib.contextmanager
    def _locked(self, token_prefix: str) -> Iterator[None]:
        """An exclusive lock per prefix, across processes (flock on a side file)."""
        import fcntl

        self._ensure_home()
        lock_path = self.home / f".{token_prefix}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _ensure_home(self) -> None:
        try:
            self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
            if self.home.stat().st_mode & 0o077:
                os.chmod(self.home, 0o700)
        except PermissionError:
            pass  # a shared, read-only home is used as it is; writes below will say what failed
        except OSError as exc:
            raise KeyringError(f"cannot create the keyring directory {self.home}: {exc.strerror}") from None

    def _remove_stale_temporaries(self, path: Path) -> None:
        # Writers hold the prefix's lock while their temporary file exists, so under the lock any
        # temporary file of this prefix was left by a writer that died (SIGKILL, power loss).
        for stale in self.home.glob(f".{path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()

    def _write(self, path: Path, data: Mapping[str, Any]) -> None:
        text = json.dumps(data, indent=None, separators=(", ", ": "))
        fd, temp = tempfile.mkstemp(dir=self.home, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp, 0o600)
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        with contextlib.suppress(OSError):  # make the rename itself durable
            dir_fd = os.open(self.home, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def store(
        self, token_prefix: str, token: str, *, project: str | None, branch: str | None, source: str
    ) -> StoredToken:
        validate_token(token)
        path = self.path(token_prefix)
        with self._locked(token_prefix):
            self._remove_stale_temporaries(path)
            data = self._read(path) or {}
            data["production_token"] = token
            data["mfproj"] = {
                "project": project,
                "branch": branch,
                "stored_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "source": source,
            }
            try:
                self._write(path, data)
            except OSError as exc:
                raise KeyringError(f"cannot write {path}: {exc.strerror}") from None
        return _stored(token_prefix, path, data)

    def forget(self, token_prefix: str) -> bool:
        """Removes the token (and mfproj's key); other keys stay. True if there was a token."""
        path = self.path(token_prefix)
        with self._locked(token_prefix):
            try:
                data = self._read(path)
            except CorruptTokenFileError:
                path.unlink()  # asked for explicitly: removing a corrupt file loses nothing readable
                return True
            if data is None:
                return False
            had = data.pop("production_token", None) is not None
            data.pop("mfproj", None)
            if data:
                self._write(path, data)
            else:
                path.unlink()
            return had


def _stored(token_prefix: str, path: Path, data: Mapping[str, Any]) -> StoredToken:
    token = data.get("production_token")
    meta = data.get("mfproj") if isinstance(data.get("mfproj"), dict) else {}
    assert isinstance(meta, dict)

    def text(key: str) -> str | None:
        value = meta.get(key)
        return value if isinstance(value, str) else None

    return StoredToken(
        token_prefix=token_prefix,
        token=token if isinstance(token, str) else None,
        path=path,
        project=text("project"),
        branch=text("branch"),
        stored_at=text("stored_at"),
        source=text("source"),
    )


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
    reason = "owner redeploy" if is_owner or offered is None else f"authorized by the token from {offered.source}"
    if generate_new:
        return Decision(new(previous), True, f"{reason}; new production token")
    return Decision(previous, False, reason)
