"""Clients, errors and identity for Step Functions, EventBridge and STS (boto3, imported here)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from mfproj import envsettings, pacing, retries
from mfproj.backends.step_functions.settings import StepFunctionsSettings
from mfproj.errors import BackendError, UsageError


class AwsClient:
    """What every part of the backend shares: one client per service, one STS call per process, and
    botocore's exceptions turned into one-line mfproj errors that name the endpoint."""

    name = "step_functions"

    def __init__(
        self,
        settings: StepFunctionsSettings,
        *,
        profile: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.env = os.environ if env is None else env
        self.profile = profile or self.env.get("AWS_PROFILE") or None
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._identity: dict[str, str] | None = None
        self._identity_lock = threading.Lock()

    # clients and errors

    def region(self) -> str | None:
        return self.settings.region or self.env.get("AWS_REGION") or self.env.get("AWS_DEFAULT_REGION") or None

    def endpoint(self) -> str:
        explicit = (
            self.env.get("AWS_ENDPOINT_URL_STEPFUNCTIONS")
            or self.env.get("AWS_ENDPOINT_URL_SFN")
            or self.env.get("AWS_ENDPOINT_URL")
        )
        return explicit or f"https://states.{self.region() or '<region>'}.amazonaws.com"

    def client(self, service: str, *, single_attempt: bool = False) -> Any:
        """The service's client, made once; `single_attempt` for an optional call (one the endpoint may
        not have) that must not be retried."""
        key = f"{service}:once" if single_attempt else service
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._make_client(service, single_attempt=single_attempt)
            return self._clients[key]

    def _make_client(self, service: str, *, single_attempt: bool = False) -> Any:
        import boto3
        import botocore.config
        import botocore.exceptions

        from mfproj import __version__

        try:
            session = boto3.session.Session(
                botocore_session=_botocore_session(), profile_name=self.profile, region_name=self.region()
            )
        except botocore.exceptions.ProfileNotFound:
            raise UsageError(f"AWS profile {self.profile!r} not found", hint="check --profile / AWS_PROFILE") from None
        if session.region_name is None:
            raise UsageError(
                "no AWS region: set [step_functions] region in the manifest, or AWS_REGION",
            )
        attempts = 1 if single_attempt else int(envsettings.number(self.env, "MFPROJ_AWS_MAX_ATTEMPTS"))
        config = botocore.config.Config(
            # total_max_attempts counts the first attempt too (max_attempts would not).
            retries={
                "mode": "standard",
                "total_max_attempts": attempts,
            },
            connect_timeout=envsettings.number(self.env, "MFPROJ_AWS_CONNECT_TIMEOUT"),
            read_timeout=envsettings.number(self.env, "MFPROJ_AWS_READ_TIMEOUT"),
            user_agent_extra=f"mfproj/{__version__}",
            max_pool_connections=64,  # flows deploy concurrently (parallel.MAX_WORKERS)
        )
        endpoint = None
        if service == "stepfunctions" and self.env.get("AWS_ENDPOINT_URL_STEPFUNCTIONS"):
            endpoint = self.env["AWS_ENDPOINT_URL_STEPFUNCTIONS"]
        made = session.client(service, config=config, endpoint_url=endpoint)
        made.meta.events.register("request-created", _count_retry)
        if not single_attempt:  # an optional call is asked once, throttled or not
            throttling = pacing.current()
            throttling.budget = envsettings.number(self.env, "MFPROJ_THROTTLE_BUDGET")
            # On the service's own event name: botocore calls the most specific handlers first, and its
            # standard retry handler (a fixed number of attempts) is registered there.
            service_id = made.meta.service_model.service_id.hyphenize()
            made.meta.events.register(f"before-send.{service_id}", _paced)
            made.meta.events.register_first(f"needs-retry.{service_id}", _throttle_retry)
        return made

    @contextlib.contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """botocore's exceptions as mfproj errors: one line that names the endpoint and what to do."""
        import botocore.exceptions as bx
        import botocore.parsers

        try:
            yield
        except (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError, bx.ConnectionClosedError) as e:
            raise BackendError(
                f"cannot reach Step Functions at {self.endpoint()} while {doing}: {e}",
                hint="check the network, the region and AWS_ENDPOINT_URL; then run the command again",
            ) from None
        except (bx.NoCredentialsError, bx.PartialCredentialsError):
            raise BackendError(
                f"no AWS credentials for {self.endpoint()} while {doing}",
                hint="configure credentials (aws configure, AWS_PROFILE or AWS_ACCESS_KEY_ID)",
            ) from None
        except bx.ClientError as e:
            error = e.response.get("Error", {})
            code = error.get("Code", "Error")
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            hint = (
                "check your IAM permissions"
                if code in ("AccessDeniedException", "AccessDenied")
                else (
                    f"throttled past the budget ({pacing.current().budget:g} s, MFPROJ_THROTTLE_BUDGET): other "
                    "callers in the account use the rest of its quota; run the command again later, or raise the budget"
                    if code in pacing.THROTTLE_CODES
                    else (
                        "the service is busy or failing; wait and run the command again"
                        if (status or 0) >= 500
                        else None
                    )
                )
            )
            raise BackendError(
                f"Step Functions at {self.endpoint()} refused {doing}: {code}: {error.get('Message', '')}".rstrip(": "),
                hint=hint,
            ) from None
        except bx.BotoCoreError as e:
            raise BackendError(f"Step Functions at {self.endpoint()} failed while {doing}: {e}") from None
        except (botocore.parsers.ResponseParserError, KeyError, TypeError, AttributeError) as e:
            # An answer that is not AWS's (a proxy's HTML page, a cut-off body, a missing field).
            what = f"no {e}" if isinstance(e, KeyError) else type(e).__name__
            raise BackendError(
                f"Step Functions at {self.endpoint()} answered with something that is not a Step Functions "
                f"response while {doing} ({what})",
                hint="check AWS_ENDPOINT_URL and any proxy in between; then run the command again",
            ) from None

    def caller_identity(self) -> dict[str, str]:
        """Account, partition and caller ARN: one STS call per process, however many threads ask at once."""
        with self._identity_lock:  # held across the call: concurrent first askers wait for one answer
            if self._identity is None:
                with self.errors("asking STS who you are"):
                    answer = self.client("sts").get_caller_identity()
                arn = answer["Arn"]
                self._identity = {"account": answer["Account"], "arn": arn, "partition": arn.split(":")[1]}
            return self._identity

    def whereabouts(self) -> dict[str, str | None]:
        region = self.region()
        if region is None:  # the profile's configured region: boto3 reads ~/.aws/config, no request
            import boto3

            try:
                region = boto3.session.Session(profile_name=self.profile).region_name
            except Exception:  # a missing profile is reported by --check and by every command
                region = None
        role = self.settings.role_arn
        explicit = self.endpoint() if not self.endpoint().startswith("https://states.<region>") else None
        return {
            "endpoint": explicit or (f"https://states.{region}.amazonaws.com" if region else None),
            "region": region,
            "account": role.split(":")[4] if role and role.count(":") >= 5 else None,
            "role_arn": role,
            "profile": self.profile,
        }

    def check(self) -> dict[str, str | None]:
        who = self.caller_identity()
        with self.errors("listing state machines"):
            self.client("stepfunctions").list_state_machines(maxResults=1)
        return {"as": who["arn"], "account": who["account"]}

    def state_machine_arn(self, name: str) -> str:
        who = self.caller_identity()
        region = self.client("stepfunctions").meta.region_name
        return f"arn:{who['partition']}:states:{region}:{who['account']}:stateMachine:{name}"

    def principal(self) -> str:
        return self.caller_identity()["arn"]

    def role(self) -> str:
        if not self.settings.role_arn:
            raise UsageError(
                "no IAM role for Step Functions: set [step_functions] role_arn in the manifest",
                hint='for example role_arn = "arn:aws:iam::123456789012:role/sfn-exec"',
            )
        return self.settings.role_arn


_LOADER: list[Any] = []  # botocore's service-model loader, shared by the process's sessions
_LOADER_LOCK = threading.Lock()


def _botocore_session() -> Any:
    """A botocore session sharing one model loader with the others of the process: each session would
    otherwise parse the service models again (most of a client's start-up)."""
    import botocore.session

    session = botocore.session.Session()
    with _LOADER_LOCK:
        if _LOADER:
            session.register_component("data_loader", _LOADER[0])
        else:
            _LOADER.append(session.get_component("data_loader"))
    return session


def _api(event_name: str) -> str:
    """`before-send.sfn.DescribeStateMachine` → `sfn.DescribeStateMachine`."""
    return event_name.split(".", 1)[1] if "." in event_name else event_name


def _paced(event_name: str = "", **_: Any) -> None:
    """Each attempt waits for its API's pace (none until the API is first throttled, or past the budget)."""
    pacing.current().wait(_api(event_name))


def _throttle_retry(event_name: str = "", response: Any = None, **_: Any) -> float | None:
    """A throttled attempt is retried after its API's pace, until the budget is spent; a success eases the
    pace. Anything else is left to botocore's standard retries (None)."""
    api = _api(event_name)
    if response is None:
        return None
    http, parsed = response
    code = (parsed or {}).get("Error", {}).get("Code") if isinstance(parsed, dict) else None
    if code in pacing.THROTTLE_CODES or getattr(http, "status_code", 0) == 429:
        return pacing.current().retry_after(api)
    if getattr(http, "status_code", 500) < 400:
        pacing.current().pace(api).succeeded()
    return None


def _count_retry(request: Any, **_: Any) -> None:
    """botocore numbers the attempts of one call in the request's context: a second one is a retry."""
    attempt = ((getattr(request, "context", None) or {}).get("retries") or {}).get("attempt", 1)
    if isinstance(attempt, int) and attempt > 1:
        retries.note()
