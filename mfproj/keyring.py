"""The local keyring: Metaflow's token store, in the same place and format, so both tools share it.

One JSON file per token prefix under `$METAFLOW_TOKEN_HOME`, else `$METAFLOW_HOME`, else
`~/.metaflowconfig`, with the key `production_token`. mfproj adds a key of its own (`mfproj`: project,
branch, when and how stored) and keeps any others. Unlike the reference, writes are atomic (temporary
file, fsync, rename) and serialized by a lock; files are 0600 in a 0700 directory; a symlink in place
of a token file is refused; a corrupt file is reported, never overwritten.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mfproj.errors import MfprojError, ValidationError

_PREFIX_FILE_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,127}\Z")
_MAX_TOKEN_FILE = 1 << 20  # token files are tiny; anything larger is not ours to parse


class KeyringError(MfprojError):
    """The keyring cannot be read or written safely. Exit code 2: the user must fix a file."""

    exit_code = 2
    code = "keyring"


class CorruptTokenFileError(KeyringError):
    """A token file that is not a JSON object. Reported with its path, never overwritten."""


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
        return self.scan()[0]

    def scan(self) -> tuple[list[StoredToken], list[KeyringError]]:
        """(every readable token file, what is wrong with each token file that cannot be read). Other
        unreadable files are not counted: Metaflow keeps config.json and more here."""
        from mfproj.naming import TOKEN_PREFIX_PREFIX

        try:
            names = sorted(os.listdir(self.home))
        except FileNotFoundError:
            return [], []
        except OSError as exc:
            return [], [KeyringError(f"cannot read the keyring directory {self.home}: {exc.strerror}")]
        found, problems = [], []
        for name in names:
            if name.startswith(".") or not _PREFIX_FILE_RE.match(name):
                continue
            path = self.home / name
            try:
                data = self._read(path)
            except KeyringError as exc:
                if name.startswith(TOKEN_PREFIX_PREFIX):
                    problems.append(exc)
                continue
            if data is not None and "production_token" in data:
                found.append(_stored(name, path, data))
        return found, problems

    # writing

    @contextlib.contextmanager
    def _locked(self, token_prefix: str) -> Iterator[None]:
        """An exclusive lock per prefix, across processes (flock on a side file)."""
        import fcntl

        self._ensure_home()
        lock_path = self.home / f".{token_prefix}.lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError as exc:  # before any write: nothing is half done
            raise KeyringError(
                f"cannot write to the keyring {self.home}: {exc.strerror}",
                hint="make it writable, or set METAFLOW_TOKEN_HOME to a directory you can write",
            ) from None
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
            raise KeyringError(
                f"cannot create the keyring directory {self.home}: {exc.strerror}",
                hint="set METAFLOW_TOKEN_HOME (or HOME) to a directory you can write",
            ) from None

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
        from mfproj.tokens import validate_token

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

    def check_writable(self, token_prefix: str) -> None:
        """Raises KeyringError unless a token for `token_prefix` could be stored now: the directory exists
        (or is made), its lock opens, and a temporary file can be written there and removed. Called
        before a deploy's first write, so a keyring that cannot keep the token stops it before it starts."""
        path = self.path(token_prefix)
        with self._locked(token_prefix):
            try:
                fd, temp = tempfile.mkstemp(dir=self.home, prefix=f".{path.name}.", suffix=".tmp")
                os.close(fd)
                os.unlink(temp)
            except OSError as exc:
                raise KeyringError(
                    f"cannot write to the keyring {self.home}: {exc.strerror}",
                    hint="make it writable, or set METAFLOW_TOKEN_HOME to a directory you can write",
                ) from None
            if path.is_symlink() or (path.exists() and not path.is_file()):
                raise KeyringError(
                    f"{path} is not a token file (a link or a directory): the token could not be stored",
                    hint="remove it, or set METAFLOW_TOKEN_HOME to another directory",
                )

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


def attribute(entries: list[StoredToken], branches: Iterable[tuple[str, str]]) -> list[StoredToken]:
    """Entries whose file says no project and branch (Metaflow's own token files hold the token alone)
    named after the (project, branch) whose token prefix they are, among `branches`; the others as they
    are. A prefix is a hash of the project and branch: only a branch one can name is recognised."""
    from mfproj.naming import token_prefix

    known = {token_prefix(project, branch): (project, branch) for project, branch in branches}
    named = []
    for entry in entries:
        if entry.project is None and entry.branch is None and entry.token_prefix in known:
            project, branch = known[entry.token_prefix]
            entry = replace(entry, project=project, branch=branch, source=entry.source or "metaflow")
        named.append(entry)
    return named
