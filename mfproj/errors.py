"""One error hierarchy. Each error carries a documented exit code and a hint for the user.

Exit codes (documented in the README):
    0 ok, 1 unexpected, 2 usage / manifest / validation, 3 authorization (production token),
    4 not found, 5 backend unreachable or failed, 6 conflict, 7 run failed, 8 partially applied,
    130 interrupted (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_AUTHORIZATION = 3
EXIT_NOT_FOUND = 4
EXIT_BACKEND = 5
EXIT_CONFLICT = 6
EXIT_RUN_FAILED = 7
EXIT_PARTIAL = 8
EXIT_INTERRUPTED = 130


class MfprojError(Exception):
    """An expected failure: shown as one line (plus a hint), never as a traceback."""

    exit_code: int = EXIT_UNEXPECTED
    code: str = "error"  # stable, for scripts: {"error": {"code": …}} under -o json

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(MfprojError):
    """Bad command-line input."""

    code = "usage"

    exit_code = EXIT_USAGE


class ManifestError(UsageError):
    """mfproj.toml is missing, unreadable or invalid. Always names the file and, if known, the key."""

    code = "manifest"

    def __init__(self, source: str, message: str, *, key: str | None = None, hint: str | None = None) -> None:
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + message, hint=hint)
        self.source = source
        self.key = key


class ValidationError(UsageError):
    """A value breaks a rule (a name, a tag, an environment variable)."""

    code = "validation"


class IdentityError(UsageError):
    """The user cannot be determined."""

    code = "identity"


class AuthorizationError(MfprojError):
    """The production token does not allow this change."""

    code = "authorization"

    exit_code = EXIT_AUTHORIZATION


class NotFoundError(MfprojError):
    code = "not_found"
    exit_code = EXIT_NOT_FOUND


class BackendError(MfprojError):
    """The backend could not be reached or refused the request."""

    code = "backend"

    exit_code = EXIT_BACKEND


class ConflictError(MfprojError):
    """A concurrent change, a name collision, or an object that mfproj does not own."""

    code = "conflict"

    exit_code = EXIT_CONFLICT


class NameCollisionError(ConflictError):
    """Two different inputs map to the same backend name."""

    code = "name_collision"


class RunFailedError(MfprojError):
    code = "run_failed"
    exit_code = EXIT_RUN_FAILED


class PartiallyAppliedError(MfprojError):
    """A change failed and could not be put back entirely: the message names each deployment that is
    not as it was, and the state it was read back in."""

    code = "partially_applied"

    exit_code = EXIT_PARTIAL


class InterruptedByUser(MfprojError):
    """Ctrl-C or SIGTERM: what had landed was put back (or finished); the message says which."""

    code = "interrupted"

    exit_code = EXIT_INTERRUPTED
