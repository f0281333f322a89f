"""AWS Step Functions (and EventBridge for schedules) through boto3.

Finding a deployment costs a constant number of calls: the state machine's ARN is built from the
partition, region and account (one STS call per process) and described; the reference instead pages
through `list_state_machines`. Owner, token and identity live in the state machine's tags, encoded to
fit AWS tag limits; deployments made by the reference are recognised by the values it writes into
the start state of the definition.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from mfproj import cron
from mfproj.backends.base import Backend, DeploymentRecord, Desired, Existing, Run, RunDetails, RunFilter
from mfproj.errors import BackendError, ConflictError, NotFoundError, UsageError, ValidationError
from mfproj.holder import Holder
from mfproj.manifest import StepFunctionsSettings
from mfproj.naming import FlowNames
from mfproj.render import Context, load_json_template, render
from mfproj.tags import bloom_may_contain, tag_bloom
from mfproj.transaction import UndoLog

# --- tags: the deployment record, within AWS limits ---------------------------------------------

TAG_PREFIX = "mfproj:"
# Nonces of the locks this process holds right now: a lock recorded as held by this very process but
# not among them was left by an earlier call that failed to release it (a library user calls again).
_HELD: set[str] = set()
_HELD_LOCK = threading.Lock()
LOCK_TTL_SECONDS = 600
MAX_TAGS = 50
MAX_TAG_VALUE = 256
_SAFE_TAG_VALUE = re.compile(r"^[\w .:/=+\-@]*$")
_RECORD_FIELDS = (
    "owner",
    "production_token",
    "project",
    "branch",
    "flow",
    "project_flow_name",
    "deployed_at",
    "mfproj_version",
    "principal",
)


class TagLimitError(ValidationError):
    """The deployment record does not fit in the tags AWS allows on one resource."""


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8")


def _put(tags: dict[str, str], field: str, text: str) -> None:
    """One value under `mfproj:<field>`: as is when AWS allows it, else base64url, split when long."""
    key = TAG_PREFIX + field
    if len(text) <= MAX_TAG_VALUE and _SAFE_TAG_VALUE.match(text) and not text.startswith(("b64:", "chunks:")):
        tags[key] = text
        return
    encoded = "b64:" + _b64(text)
    if len(encoded) <= MAX_TAG_VALUE:
        tags[key] = encoded
        return
    chunks = [encoded[i : i + MAX_TAG_VALUE] for i in range(0, len(encoded), MAX_TAG_VALUE)]
    tags[key] = f"chunks:{len(chunks)}"
    for index, chunk in enumerate(chunks):
        tags[f"{key}:{index}"] = chunk


def _get(tags: Mapping[str, str], field: str) -> str | None:
    key = TAG_PREFIX + field
    value = tags.get(key)
    if value is None:
        return None
    if value.startswith("chunks:") and value[len("chunks:") :].isdigit():
        value = "".join(tags.get(f"{key}:{i}", "") for i in range(int(value[len("chunks:") :])))
    if value.startswith("b64:"):
        try:
            return _unb64(value[len("b64:") :])
        except ValueError:
            return None
    return value


def encode_record(record: DeploymentRecord, *, foreign_tags: int = 0) -> dict[str, str]:
    """The record as tags; raises TagLimitError (before any call) when it cannot fit."""
    tags: dict[str, str] = {TAG_PREFIX + "managed-by": "mfproj"}
    for field in _RECORD_FIELDS:
        value = getattr(record, field)
        if value is not None:
            _put(tags, field, str(value))
    if record.tags:
        _put(tags, "tags", json.dumps(list(record.tags), ensure_ascii=False, separators=(",", ":")))
    if len(tags) + foreign_tags > MAX_TAGS:
        raise TagLimitError(
            f"the deployment record needs {len(tags)} tags (AWS allows {MAX_TAGS} per state machine"
            + (f", {foreign_tags} of them already used by others" if foreign_tags else "")
            + ")",
            hint="use fewer or shorter deployment tags (--tag and the manifest's tags)",
        )
    return tags


def decode_record(tags: Mapping[str, str]) -> DeploymentRecord | None:
    if TAG_PREFIX + "managed-by" not in tags:
        return None
    values = {field: _get(tags, field) for field in _RECORD_FIELDS}
    tag_list: tuple[str, ...] = ()
    raw_tags = _get(tags, "tags")
    if raw_tags:
        try:
            parsed = json.loads(raw_tags)
            tag_list = tuple(str(t) for t in parsed) if isinstance(parsed, list) else ()
        except ValueError:
            tag_list = ()
    return DeploymentRecord(
        owner=values["owner"],
        production_token=values["production_token"],
        project=values["project"],
        branch=values["branch"],
        flow=values["flow"],
        project_flow_name=values["project_flow_name"],
        deployed_at=values["deployed_at"],
        mfproj_version=values["mfproj_version"],
        principal=values["principal"],
        tags=tag_list,
    )


def _start_parameters(definition: Any) -> dict[str, Any] | None:
    """`States.start.Parameters.Parameters`: where the reference keeps a deployment's owner and token."""
    if not isinstance(definition, dict):
        return None
    states = definition.get("States")
    start = states.get("start") if isinstance(states, dict) else None
    parameters = start.get("Parameters") if isinstance(start, dict) else None
    inner = parameters.get("Parameters") if isinstance(parameters, dict) else None
    return inner if isinstance(inner, dict) else None


def guard_for_reference(definition: Any, *, owner: str, token: str) -> Any:
    """Writes the owner and token where the reference reads them, when the definition has that place
    (a `start` state with a `Parameters.Parameters` map): then Metaflow guards mfproj's deployment."""
    inner = _start_parameters(definition)
    if inner is not None:
        inner["metaflow.owner"] = owner
        inner["metaflow.production_token"] = token
    return definition


def reference_record(definition: Any) -> DeploymentRecord | None:
    """Owner and token as the reference reads them: from `States.start.Parameters.Parameters`, or (for
    its older definitions) from the start task's container environment."""
    inner = _start_parameters(definition) or {}
    owner, token = inner.get("metaflow.owner"), inner.get("metaflow.production_token")
    if owner is None and token is None and isinstance(definition, dict):
        state = (definition.get("States") or {}).get("start")
        parameters = state.get("Parameters") if isinstance(state, dict) else None
        overrides = parameters.get("ContainerOverrides") if isinstance(parameters, dict) else None
        environment = overrides.get("Environment") if isinstance(overrides, dict) else None
        if isinstance(environment, list):
            env = {e.get("Name"): e.get("Value") for e in environment if isinstance(e, dict)}
            owner, token = env.get("METAFLOW_OWNER"), env.get("METAFLOW_PRODUCTION_TOKEN")
    if owner is None and token is None:
        return None
    return DeploymentRecord(
        owner=str(owner) if owner not in (None, "None") else None,
        production_token=str(token) if token not in (None, "None") else None,
        managed_by="metaflow",
    )


def merge_records(tagged: DeploymentRecord | None, definition: Any) -> DeploymentRecord | None:
    """mfproj's tags, unless the definition says otherwise: the reference writes only the definition, so
    when its owner or token differ from the tags, someone deployed with Metaflow since, and it wins."""
    found = reference_record(definition)
    if tagged is None:
        return found
    inner = _start_parameters(definition)
    if found is None or inner is None or not ({"metaflow.owner", "metaflow.production_token"} & inner.keys()):
        return tagged
    if (found.owner, found.production_token) == (tagged.owner, tagged.production_token):
        return tagged
    return replace(tagged, owner=found.owner, production_token=found.production_token, managed_by="metaflow")


# --- schedules ----------------------------------------------------------------------------------

_DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


def _expand_days(field: str) -> list[int]:
    days: set[int] = set()
    names = {name: index for index, name in enumerate(_DAY_NAMES)}
    for item in field.split(","):
        span, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            low, high = 0, 6
        else:
            ends = [names[v.upper()] if not v.isdigit() else int(v) for v in span.split("-")]
            low, high = ends[0], ends[-1]
            if step_text and len(ends) == 1:
                high = 6
        days.update(d % 7 for d in range(low, high + 1, step))
    return sorted(days)


def to_eventbridge(expression: str) -> str:
    """A 5-field cron (UTC) as an EventBridge schedule: `cron(min hour dom month dow year)`."""
    minute, hour, dom, month, dow = cron.validate_cron(expression).split()

    def every(field: str, start: str) -> str:
        return start + field[1:] if field.startswith("*/") else field

    minute, hour = every(minute, "0"), every(hour, "0")
    dom, month = every(dom, "1"), every(month, "1")
    if dow == "*":
        dow = "?"
    elif dom == "*":
        dom = "?"
        days = _expand_days(dow)
        dow = "*" if len(days) == 7 else ",".join(_DAY_NAMES[d] for d in days)
        if dow == "*":
            dom, dow = "*", "?"
    else:
        raise ValidationError(
            f"schedule {expression!r} restricts both day of month and day of week, "
            "which EventBridge cannot express (it needs one of them to be ?)",
            hint="use '*' for one of the two fields",
        )
    return f"cron({minute} {hour} {dom} {month} {dow} *)"


# --- the backend --------------------------------------------------------------------------------


class StepFunctionsBackend(Backend):
    name = "step_functions"
    label = "Step Functions"
    runtime = "step-functions"

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

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._make_client(service)
            return self._clients[service]

    def _make_client(self, service: str) -> Any:
        import boto3
        import botocore.config
        import botocore.exceptions

        from mfproj import __version__

        try:
            session = boto3.session.Session(profile_name=self.profile, region_name=self.region())
        except botocore.exceptions.ProfileNotFound:
            raise UsageError(f"AWS profile {self.profile!r} not found", hint="check --profile / AWS_PROFILE") from None
        if session.region_name is None:
            raise UsageError(
                "no AWS region: set [step_functions] region in the manifest, or AWS_REGION",
            )
        config = botocore.config.Config(
            # total_max_attempts counts the first attempt too (max_attempts would not).
            retries={"mode": "standard", "total_max_attempts": int(self.env.get("MFPROJ_AWS_MAX_ATTEMPTS", "5"))},
            connect_timeout=float(self.env.get("MFPROJ_AWS_CONNECT_TIMEOUT", "5")),
            read_timeout=float(self.env.get("MFPROJ_AWS_READ_TIMEOUT", "30")),
            user_agent_extra=f"mfproj/{__version__}",
            max_pool_connections=32,  # flows deploy concurrently
        )
        endpoint = None
        if service == "stepfunctions" and self.env.get("AWS_ENDPOINT_URL_STEPFUNCTIONS"):
            endpoint = self.env["AWS_ENDPOINT_URL_STEPFUNCTIONS"]
        return session.client(service, config=config, endpoint_url=endpoint)

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """botocore's exceptions as mfproj errors: one line that names the endpoint and what to do."""
        import botocore.exceptions as bx

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
                    "the service is busy or failing; wait and run the command again"
                    if code in ("ThrottlingException", "TooManyRequestsException") or (status or 0) >= 500
                    else None
                )
            )
            raise BackendError(
                f"Step Functions at {self.endpoint()} refused {doing}: {code}: {error.get('Message', '')}".rstrip(": "),
                hint=hint,
            ) from None
        except bx.BotoCoreError as e:
            raise BackendError(f"Step Functions at {self.endpoint()} failed while {doing}: {e}") from None

    def identity(self) -> dict[str, str]:
        """Account, partition and caller ARN: one STS call per process."""
        with self._lock:
            cached = self._identity
        if cached is not None:
            return cached
        with self._errors("asking STS who you are"):
            answer = self.client("sts").get_caller_identity()
        arn = answer["Arn"]
        found = {"account": answer["Account"], "arn": arn, "partition": arn.split(":")[1]}
        with self._lock:
            self._identity = found
        return found

    def state_machine_arn(self, name: str) -> str:
        who = self.identity()
        region = self.client("stepfunctions").meta.region_name
        return f"arn:{who['partition']}:states:{region}:{who['account']}:stateMachine:{name}"

    def principal(self) -> str:
        return self.identity()["arn"]

    # locking: Step Functions has no compare-and-swap, so concurrent deploys take a lock first

    def lock_name(self, state_machine: str) -> str:
        digest = base64.b32encode(hashlib.sha1(state_machine.encode(), usedforsecurity=False).digest())
        return "mfproj-lock-" + digest.decode("ascii").lower()[:24]

    def acquire(self, names: FlowNames, *, holder: Holder, timeout: float, waiting: Callable[[str], None]) -> Any:
        """A lock is a state machine of its own: creating one is exclusive on AWS (a second create with
        another definition fails). The definition carries a nonce, checked after the create, which also
        covers emulators that answer a second create with the first one's ARN.

        A lock whose holder is a process of this host that is gone, or older than LOCK_TTL_SECONDS,
        is broken at once; one held elsewhere is waited for (saying so once) up to `timeout` seconds."""
        arn = self.state_machine_arn(self.lock_name(names.state_machine))
        nonce = uuid.uuid4().hex
        try:
            with self._errors(f"locking {names.state_machine}"):
                return self._take_lock(names, arn, nonce, holder, timeout, waiting)
        except BaseException:
            self._drop_if_ours(arn, nonce)  # a lock created just before a failure or Ctrl-C must not linger
            raise

    def _lock_definition(self, names: FlowNames, nonce: str, holder: Holder) -> str:
        note = {
            "lock": names.state_machine,
            "holder": holder.as_json(),
            "nonce": nonce,
            "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        return json.dumps({"Comment": json.dumps(note), "StartAt": "lock", "States": {"lock": {"Type": "Succeed"}}})

    def _take_lock(
        self, names: FlowNames, arn: str, nonce: str, holder: Holder, timeout: float, waiting: Callable[[str], None]
    ) -> tuple[str, str]:
        import time

        sfn = self.client("stepfunctions")
        definition = self._lock_definition(names, nonce, holder)
        deadline = time.monotonic() + timeout
        said = False
        for _ in range(100_000):  # bounded in count as well as by the deadline
            with contextlib.suppress(sfn.exceptions.StateMachineAlreadyExists, sfn.exceptions.StateMachineDeleting):
                sfn.create_state_machine(
                    name=arn.rsplit(":", 1)[1],
                    definition=definition,
                    roleArn=self._role(),
                    tags=[{"key": TAG_PREFIX + "lock", "value": "true"}],
                )
            try:
                described = sfn.describe_state_machine(stateMachineArn=arn)
            except sfn.exceptions.StateMachineDoesNotExist:
                continue
            held = _lock_note(described)
            if held.get("nonce") == nonce:
                with _HELD_LOCK:
                    _HELD.add(nonce)
                return (arn, nonce)
            if described.get("status") != "DELETING" and self._is_stale(held):
                self._delete_lock(arn, held.get("nonce"))
                continue
            who = _held_by(held)
            if time.monotonic() >= deadline:
                raise ConflictError(
                    f"another deploy of {names.state_machine} is in progress ({who}); "
                    f"waited {timeout:g} s for its lock",
                    hint="wait for it to finish and run the command again; if its holder is gone, "
                    "'mfproj unlock' removes the lock (MFPROJ_LOCK_TIMEOUT sets how long to wait)",
                )
            if not said and described.get("status") != "DELETING":
                waiting(f"waiting for the lock on {names.state_machine}, held by {who} (up to {timeout:g} s)")
                said = True
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
        raise ConflictError(f"could not lock {names.state_machine}", hint="run the command again")

    @staticmethod
    def _is_stale(held: Mapping[str, Any]) -> bool:
        owner = Holder.from_json(held.get("holder"))
        if owner is not None and owner.is_gone():
            return True  # its process on this host no longer exists: broken at once
        if owner is not None and owner.is_this_process():
            with _HELD_LOCK:
                return held.get("nonce") not in _HELD
        try:
            since = _dt.datetime.fromisoformat(str(held.get("since")))
        except ValueError:
            return True  # not a lock note mfproj can read: not a lock anyone holds
        return (_dt.datetime.now(_dt.timezone.utc) - since).total_seconds() > LOCK_TTL_SECONDS

    def _delete_lock(self, arn: str, nonce: Any) -> bool:
        """Deletes the lock only if it is still the one with `nonce` (not a lock taken since)."""
        sfn = self.client("stepfunctions")
        try:
            current = _lock_note(sfn.describe_state_machine(stateMachineArn=arn))
        except sfn.exceptions.StateMachineDoesNotExist:
            return False
        if current.get("nonce") != nonce:
            return False
        sfn.delete_state_machine(stateMachineArn=arn)
        return True

    def _drop_if_ours(self, arn: str, nonce: str) -> None:
        with contextlib.suppress(Exception):
            self._delete_lock(arn, nonce)

    def release(self, handle: Any) -> None:
        """Gives back a lock taken by `acquire`: only the holder's own (same nonce) is deleted. Raises
        BackendError when the service refuses (the lock is then broken by the next run on this host)."""
        if handle:
            arn, nonce = handle
            with _HELD_LOCK:
                _HELD.discard(nonce)
            with self._errors(f"releasing the lock {arn.rsplit(':', 1)[1]}"):
                self._delete_lock(arn, nonce)

    def lock_holder(self, names: FlowNames) -> str | None:
        """Who holds the deployment's lock, or None if nobody does."""
        sfn = self.client("stepfunctions")
        arn = self.state_machine_arn(self.lock_name(names.state_machine))
        with self._errors(f"reading the lock of {names.state_machine}"):
            try:
                return _held_by(_lock_note(sfn.describe_state_machine(stateMachineArn=arn)))
            except sfn.exceptions.StateMachineDoesNotExist:
                return None

    def unlock(self, names: FlowNames) -> str | None:
        """Removes the deployment's lock whoever holds it; returns who held it (None: there was none)."""
        sfn = self.client("stepfunctions")
        arn = self.state_machine_arn(self.lock_name(names.state_machine))
        with self._errors(f"removing the lock of {names.state_machine}"):
            try:
                held = _lock_note(sfn.describe_state_machine(stateMachineArn=arn))
                sfn.delete_state_machine(stateMachineArn=arn)
            except sfn.exceptions.StateMachineDoesNotExist:
                return None
        return _held_by(held)

    # reading

    def deployed_name(self, names: FlowNames) -> str:
        return names.state_machine

    def render(self, template: Path, context: Context) -> Any:
        document = render(load_json_template(template), context, source=template)
        if not isinstance(document, dict) or "StartAt" not in document or "States" not in document:
            raise ValidationError(f"{template}: not an Amazon States Language document (needs StartAt and States)")
        token = context.namespace.removeprefix("production:")
        return guard_for_reference(document, owner=context.owner, token=token)

    def read(self, names: FlowNames) -> Existing | None:
        sfn = self.client("stepfunctions")
        arn = self.state_machine_arn(names.state_machine)
        with self._errors(f"reading {names.state_machine}"):
            try:
                described = sfn.describe_state_machine(stateMachineArn=arn)
            except sfn.exceptions.StateMachineDoesNotExist:
                return None
            tag_list = sfn.list_tags_for_resource(resourceArn=arn).get("tags", [])
        tags = {t["key"]: t["value"] for t in tag_list}
        definition = described["definition"]
        if isinstance(definition, str):  # AWS returns text; moto sometimes an object
            with contextlib.suppress(ValueError):
                definition = json.loads(definition)
        record = merge_records(decode_record(tags), definition)
        rule = self._read_rule(names.eventbridge_rule)
        return Existing(
            backend=self.name,
            name=names.state_machine,
            identifier=arn,
            definition=definition,
            record=record,
            schedule=rule["schedule"] if rule else None,
            details={"role": described.get("roleArn"), "tags": tags, "rule": rule},
        )

    def _read_rule(self, rule_name: str) -> dict[str, Any] | None:
        events = self.client("events")
        with self._errors(f"reading the EventBridge rule {rule_name}"):
            try:
                rule = events.describe_rule(Name=rule_name)
            except events.exceptions.ResourceNotFoundException:
                return None
            targets = events.list_targets_by_rule(Rule=rule_name).get("Targets", [])
        return {
            "name": rule_name,
            "schedule": rule.get("ScheduleExpression"),
            "state": rule.get("State"),
            "description": rule.get("Description"),
            "targets": targets,
        }

    # planning

    def _desired_tags(self, desired: Desired, existing: Existing | None) -> dict[str, str]:
        foreign = 0
        if existing is not None:
            foreign = sum(1 for key in existing.details.get("tags", {}) if not key.startswith(TAG_PREFIX))
        return encode_record(desired.record, foreign_tags=foreign)

    def _desired_target(self, desired: Desired, arn: str) -> dict[str, Any]:
        return {
            "Id": desired.names.eventbridge_rule[:64],
            "Arn": arn,
            "RoleArn": self._role(),
            "Input": json.dumps({"Parameters": "{}", "mfproj": desired.run_metadata}, sort_keys=True),
        }

    def _role(self) -> str:
        if not self.settings.role_arn:
            raise UsageError(
                "no IAM role for Step Functions: set [step_functions] role_arn in the manifest",
                hint='for example role_arn = "arn:aws:iam::123456789012:role/sfn-exec"',
            )
        return self.settings.role_arn

    def changes(self, existing: Existing, desired: Desired) -> list[str]:
        found = []
        if existing.definition != desired.definition:
            found.append("definition")
        if existing.details.get("role") != self._role():
            found.append("role")
        if existing.record is None or existing.record.comparable() != desired.record.comparable():
            found.append("record")
        wanted_schedule = to_eventbridge(desired.schedule) if desired.schedule else None
        rule = existing.details.get("rule")
        if wanted_schedule != existing.schedule:
            found.append("schedule")
        elif rule is not None and wanted_schedule is not None:
            wanted_target = self._desired_target(desired, existing.identifier)
            current = [t for t in rule.get("targets", []) if t.get("Id") == wanted_target["Id"]]
            if (
                not current
                or any(current[0].get(k) != v for k, v in wanted_target.items())
                or rule.get("state") != "ENABLED"
            ):
                found.append("schedule")
        return found

    # applying: every write pushes how to put it back onto the run's undo log

    def apply(self, desired: Desired, existing: Existing | None, log: UndoLog, key: str) -> None:
        tags = self._desired_tags(desired, existing)
        role = self._role()
        schedule = to_eventbridge(desired.schedule) if desired.schedule else None
        sfn = self.client("stepfunctions")
        name = desired.names.state_machine
        with self._errors(f"deploying {name}"):
            if existing is None:
                log.check()
                arn = sfn.create_state_machine(
                    name=name,
                    definition=json.dumps(desired.definition),
                    roleArn=role,
                    type="STANDARD",
                    tags=[{"key": k, "value": v} for k, v in tags.items()],
                )["stateMachineArn"]
                log.push(key, f"created the state machine {name}", lambda: self._undo_create(arn))
            else:
                arn = existing.identifier
                if existing.definition != desired.definition or existing.details.get("role") != role:
                    log.check()
                    sfn.update_state_machine(
                        stateMachineArn=arn, definition=json.dumps(desired.definition), roleArn=role
                    )
                    log.push(key, f"updated the definition of {name}", lambda: self._undo_update(existing))
                log.check()
                self._retag(arn, existing.details.get("tags", {}), tags)
                log.push(key, f"re-tagged {name}", lambda: self._undo_tags(existing))
            self._apply_rule(desired, arn, schedule, existing, log, key)

    def _undo_create(self, arn: str) -> None:
        with self._errors("deleting a state machine it had created"):
            self.client("stepfunctions").delete_state_machine(stateMachineArn=arn)

    def _undo_update(self, existing: Existing) -> None:
        with self._errors(f"putting back the definition of {existing.name}"):
            self.client("stepfunctions").update_state_machine(
                stateMachineArn=existing.identifier,
                definition=json.dumps(existing.definition),
                roleArn=existing.details["role"],
            )

    def _undo_tags(self, existing: Existing) -> None:
        sfn = self.client("stepfunctions")
        with self._errors(f"putting back the tags of {existing.name}"):
            current = {
                t["key"]: t["value"]
                for t in sfn.list_tags_for_resource(resourceArn=existing.identifier).get("tags", [])
            }
            self._retag(existing.identifier, current, existing.details.get("tags", {}))

    def _retag(self, arn: str, current: Mapping[str, str], wanted: Mapping[str, str]) -> None:
        sfn = self.client("stepfunctions")
        stale = [key for key in current if key.startswith(TAG_PREFIX) and key not in wanted]
        if stale:
            sfn.untag_resource(resourceArn=arn, tagKeys=stale)
        changed = {k: v for k, v in wanted.items() if current.get(k) != v}
        if changed:
            sfn.tag_resource(resourceArn=arn, tags=[{"key": k, "value": v} for k, v in changed.items()])

    def _apply_rule(
        self, desired: Desired, arn: str, schedule: str | None, existing: Existing | None, log: UndoLog, key: str
    ) -> None:
        events = self.client("events")
        rule_name = desired.names.eventbridge_rule
        previous = existing.details.get("rule") if existing else None
        if schedule is None:
            if previous is not None:
                log.check()
                self._remove_rule(rule_name, previous.get("targets", []))
                log.push(key, f"removed the schedule {rule_name}", lambda: self._undo_rule(rule_name, previous))
            return
        target = self._desired_target(desired, arn)
        log.check()
        # Pushed first: a put_rule that lands and a put_targets that fails must both be undone.
        log.push(key, f"put the schedule {rule_name}", lambda: self._undo_rule(rule_name, previous))
        events.put_rule(
            Name=rule_name,
            ScheduleExpression=schedule,
            State="ENABLED",
            Description=f"mfproj: runs {desired.names.project_flow_name} on {desired.schedule} (UTC)",
        )
        events.put_targets(Rule=rule_name, Targets=[target])
        if previous:
            old_ids = [t["Id"] for t in previous.get("targets", []) if t.get("Id") != target["Id"]]
            if old_ids:
                events.remove_targets(Rule=rule_name, Ids=old_ids)

    def _remove_rule(self, rule_name: str, targets: list[dict[str, Any]]) -> None:
        events = self.client("events")
        if targets:
            events.remove_targets(Rule=rule_name, Ids=[t["Id"] for t in targets])
        with contextlib.suppress(events.exceptions.ResourceNotFoundException):
            events.delete_rule(Name=rule_name)

    def _undo_rule(self, rule_name: str, previous: dict[str, Any] | None) -> None:
        events = self.client("events")
        with self._errors(f"putting back the schedule {rule_name}"):
            if previous is None:
                try:
                    targets = events.list_targets_by_rule(Rule=rule_name).get("Targets", [])
                except events.exceptions.ResourceNotFoundException:
                    return
                self._remove_rule(rule_name, targets)
                return
            events.put_rule(
                Name=previous["name"],
                ScheduleExpression=previous["schedule"],
                State=previous.get("state") or "ENABLED",
                **({"Description": previous["description"]} if previous.get("description") else {}),
            )
            current = events.list_targets_by_rule(Rule=rule_name).get("Targets", [])
            extra = [t["Id"] for t in current if t["Id"] not in {p["Id"] for p in previous.get("targets", [])}]
            if extra:
                events.remove_targets(Rule=rule_name, Ids=extra)
            if previous.get("targets"):
                events.put_targets(Rule=previous["name"], Targets=previous["targets"])

    def fingerprint(self, existing: Existing | None) -> Any:
        if existing is None:
            return None
        rule = existing.details.get("rule")
        return {
            "definition": existing.definition,
            "role": existing.details.get("role"),
            "record": existing.record.comparable() if existing.record else None,
            "schedule": existing.schedule,
            "rule": None if rule is None else {k: rule.get(k) for k in ("state", "targets")},
        }

    # deleting

    def delete(self, existing: Existing) -> None:
        rule = existing.details.get("rule")
        with self._errors(f"deleting {existing.name}"):
            if rule is not None:
                self._remove_rule(rule["name"], rule.get("targets", []))
            sfn = self.client("stepfunctions")
            try:
                sfn.delete_state_machine(stateMachineArn=existing.identifier)
            except sfn.exceptions.StateMachineDoesNotExist:
                raise NotFoundError(f"{existing.name} no longer exists on Step Functions") from None

    def running(self, existing: Existing, *, limit: int = 1000) -> int:
        sfn = self.client("stepfunctions")
        count = 0
        with self._errors(f"counting the running executions of {existing.name}"):
            paginator = sfn.get_paginator("list_executions")
            pages = paginator.paginate(
                stateMachineArn=existing.identifier,
                statusFilter="RUNNING",
                PaginationConfig={"MaxItems": limit, "PageSize": 100},
            )
            for page in pages:
                count += len(page.get("executions", []))
        return count

    # runs

    def start(self, existing: Existing, payload: dict[str, Any], run_tags: list[str]) -> Run:
        sfn = self.client("stepfunctions")
        # <26 random base32>.<Bloom filter of the tags>: 67 of the 80 characters a name may have.
        name = f"{base64.b32encode(uuid.uuid4().bytes).decode('ascii').rstrip('=').lower()}.{tag_bloom(run_tags)}"
        text = json.dumps(payload, ensure_ascii=False)
        if len(text.encode("utf-8")) > 256 * 1024:
            raise ValidationError("the execution input is larger than the 256 KiB Step Functions allows")
        with self._errors(f"starting {existing.name}"):
            started = sfn.start_execution(stateMachineArn=existing.identifier, name=name, input=text)
        return Run(
            run_id=f"sfn-{name}",
            status="RUNNING",
            identifier=started["executionArn"],
            started_at=_iso(started.get("startDate")),
        )

    def run(self, existing: Existing, run_id: str) -> Run:
        if not run_id.startswith("sfn-"):
            raise ValidationError(f"{run_id!r} is not a Step Functions run id (they start with sfn-)")
        name = run_id[len("sfn-") :]
        arn = existing.identifier.replace(":stateMachine:", ":execution:", 1) + f":{name}"
        sfn = self.client("stepfunctions")
        with self._errors(f"reading the run {run_id}"):
            try:
                described = sfn.describe_execution(executionArn=arn)
            except sfn.exceptions.ExecutionDoesNotExist:
                raise NotFoundError(f"no run {run_id} of {existing.name}") from None
        return Run(
            run_id=run_id,
            status=described["status"],
            identifier=arn,
            started_at=_iso(described.get("startDate")),
            finished_at=_iso(described.get("stopDate")),
            details={"error": described.get("error"), "cause": described.get("cause")},
        )

    def list_runs(self, existing: Existing, query: RunFilter) -> Iterator[RunDetails]:
        """Newest first (as AWS lists them). Only candidates are read: executions that pass the status and
        time filters and whose name's Bloom filter may hold every wanted tag."""
        from concurrent.futures import ThreadPoolExecutor

        sfn = self.client("stepfunctions")
        required = query.required_tags()
        arguments: dict[str, Any] = {"stateMachineArn": existing.identifier, "PaginationConfig": {"PageSize": 100}}
        if query.statuses and len(query.statuses) == 1:
            arguments["statusFilter"] = next(iter(query.statuses))

        def describe(execution: Mapping[str, Any]) -> RunDetails:
            with self._errors(f"reading the run sfn-{execution['name']}"):
                described = sfn.describe_execution(executionArn=execution["executionArn"])
            return _details_of(described, f"sfn-{execution['name']}", existing.name)

        with ThreadPoolExecutor(max_workers=8) as pool, self._errors(f"listing the runs of {existing.name}"):
            for page in sfn.get_paginator("list_executions").paginate(**arguments):
                candidates, finished = [], False
                for execution in page.get("executions", []):
                    if query.since and execution["startDate"] < query.since:
                        finished = True  # listed newest first: everything after is older
                        break
                    if query.statuses and execution["status"] not in query.statuses:
                        continue
                    _, dot, bloom = execution["name"].rpartition(".")
                    if dot and not all(bloom_may_contain(bloom, tag) for tag in required):
                        continue
                    candidates.append(execution)
                for start in range(0, len(candidates), 16):  # bounded batches, read concurrently, in order
                    for details in pool.map(describe, candidates[start : start + 16]):
                        if query.matches(details):
                            yield details
                if finished:
                    return

    def find_run(self, existing: Existing, run_id: str) -> RunDetails | None:
        if not run_id.startswith("sfn-"):
            return None
        arn = existing.identifier.replace(":stateMachine:", ":execution:", 1) + f":{run_id[len('sfn-') :]}"
        sfn = self.client("stepfunctions")
        with self._errors(f"reading the run {run_id}"):
            try:
                described = sfn.describe_execution(executionArn=arn)
            except sfn.exceptions.ExecutionDoesNotExist:
                return None
        return _details_of(described, run_id, existing.name)


def _details_of(described: Mapping[str, Any], run_id: str, deployment: str) -> RunDetails:
    try:
        document = json.loads(described.get("input") or "{}")
    except ValueError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    metadata = document.get("mfproj") if isinstance(document.get("mfproj"), dict) else {}
    tags = metadata.get("tags") if isinstance(metadata, dict) else None
    parameters: dict[str, Any] = {}
    with contextlib.suppress(ValueError, TypeError):
        loaded = json.loads(document.get("Parameters") or "{}")
        if isinstance(loaded, dict):
            parameters.update(loaded)
    parameters.update({k: v for k, v in document.items() if k not in ("Parameters", "mfproj")})
    return RunDetails(
        run_id=run_id,
        status=described["status"],
        started_at=described.get("startDate"),
        finished_at=described.get("stopDate"),
        tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
        parameters=parameters,
        deployment=deployment,
    )


def _lock_note(described: Mapping[str, Any]) -> dict[str, Any]:
    """The note a lock state machine keeps in its definition's Comment."""
    text = described.get("definition")
    try:
        document = json.loads(text) if isinstance(text, str) else text
        note = json.loads(document.get("Comment", "{}") if isinstance(document, dict) else "{}")
    except (ValueError, AttributeError, TypeError):
        return {}
    return note if isinstance(note, dict) else {}


def _held_by(held: Mapping[str, Any]) -> str:
    owner = Holder.from_json(held.get("holder"))
    who = owner.describe() if owner else str(held.get("holder") or "unknown")
    return f"{who}, since {held.get('since', '?')}"


def _iso(value: Any) -> str | None:
    if isinstance(value, _dt.datetime):
        return value.astimezone(_dt.timezone.utc).isoformat(timespec="seconds")
    return None
