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
    # Said when the raiser has no better hint: every error gets a next step.
    default_hint: str = "run again with --debug for details"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint or self.default_hint

    def __str__(self) -> str:
        return self.message


class UsageError(MfprojError):
    """Bad command-line input."""

    default_hint = "see the command's --help"
    code = "usage"

    exit_code = EXIT_USAGE


class ManifestError(UsageError):
    """mfproj.toml is missing, unreadable or invalid. Always names the file and, if known, the key."""

    code = "manifest"

    def __init__(self, source: str, message: str, *, key: str | None = None, hint: str | None = None) -> None:
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + message, hint=hint or (f"fix {key} in {source}" if key else None))
        self.source = source
        self.key = key


class ValidationError(UsageError):
    """A value breaks a rule (a name, a tag, an environment variable)."""

    default_hint = "see the command's --help for the rules"
    code = "validation"


class IdentityError(UsageError):
    """The user cannot be determined."""

    default_hint = "set METAFLOW_USER (or USER)"
    code = "identity"


class AuthorizationError(MfprojError):
    """The production token does not allow this change."""

    default_hint = "pass the deployment's token with --authorize, or get it with 'mfproj token authorize'"
    code = "authorization"

    exit_code = EXIT_AUTHORIZATION


class NotFoundError(MfprojError):
    default_hint = "check the name and the branch ('mfproj deployments' lists what is deployed)"
    code = "not_found"
    exit_code = EXIT_NOT_FOUND


class BackendError(MfprojError):
    """The backend could not be reached or refused the request."""

    default_hint = "check the endpoint and credentials ('mfproj whoami --check' tries each backend)"
    code = "backend"

    exit_code = EXIT_BACKEND


class ConflictError(MfprojError):
    """A concurrent change, a name collision, or an object that mfproj does not own."""

    default_hint = "run again once the other change is done"
    code = "conflict"

    exit_code = EXIT_CONFLICT


class NameCollisionError(ConflictError):
    """Two different inputs map to the same backend name."""

    code = "name_collision"


class RunFailedError(MfprojError):
    default_hint = "'mfproj runs show RUN_ID' shows the run"
    code = "run_failed"
    exit_code = EXIT_RUN_FAILED


class PartiallyAppliedError(MfprojError):
    """A change failed and could not be put back entirely: the message names each deployment that is
    not as it was, and the state it was read back in."""

    default_hint = "run the same command again to finish the change"
    code = "partially_applied"

    exit_code = EXIT_PARTIAL


class InterruptedByUser(MfprojError):
    """Ctrl-C or SIGTERM: what had landed was put back (or finished); the message says which."""

    default_hint = "run the same command again to finish the change"
    code = "interrupted"

    exit_code = EXIT_INTERRUPTED
