"""Reading, planning, applying (under the run's undo log) and deleting a state machine and its schedule."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from mfproj.backends.base import Desired, Existing
from mfproj.backends.step_functions.client import AwsClient
from mfproj.backends.step_functions.names import eventbridge_rule, state_machine
from mfproj.backends.step_functions.record import (
    TAG_PREFIX,
    decode_record,
    definition_digest,
    definition_of,
    encode_record,
    guard_for_reference,
    merge_records,
)
from mfproj.backends.step_functions.runs import input_document
from mfproj.backends.step_functions.schedule import to_eventbridge
from mfproj.backends.step_functions.versions import Versions
from mfproj.errors import NotFoundError, ValidationError
from mfproj.naming import FlowNames, eventbridge_rule_name
from mfproj.render import Context, load_json_template, render
from mfproj.text import printable
from mfproj.transaction import UndoLog


@contextlib.contextmanager
def _unknown_outcome(log: UndoLog, key: str, said: str, undo: Callable[[], None]) -> Iterator[None]:
    """A write whose answer never came (the connection dropped or timed out: the service may have taken
    it) is put back too, as if it had landed. A refusal (a ClientError) changed nothing."""
    import botocore.exceptions as bx

    try:
        yield
    except (bx.ConnectionError, bx.HTTPClientError, bx.ReadTimeoutError):
        log.push(key, said, undo)
        raise


def _consistent(tags: Mapping[str, str], definition: Any) -> bool:
    """Whether tags read through the tagging API are those written with this definition."""
    record = decode_record(tags)
    return record is not None and record.definition_digest == definition_digest(definition)


class StateMachines:
    """A flow's state machine and its EventBridge schedule: read, plan, apply under the undo log, delete."""

    def __init__(self, aws: AwsClient) -> None:
        self.aws = aws
        self.versions = Versions(aws)
        self._prefetched: dict[str, dict[str, str]] = {}  # ARN -> tags, read for many at once (`prefetch`)
        self._unlisted: set[str] = set()  # ARNs the last prefetch asked for and found no state machine at
        self._prefetch_lock = threading.Lock()
        self._can_validate = True  # until the endpoint shows it has no ValidateStateMachineDefinition

    def deployed_name(self, names: FlowNames) -> str:
        return state_machine(names)

    def render(self, template: Path, context: Context) -> Any:
        document = render(load_json_template(template), context, source=template)
        if not isinstance(document, dict) or "StartAt" not in document or "States" not in document:
            raise ValidationError(f"{template}: not an Amazon States Language document (needs StartAt and States)")
        token = context.namespace.removeprefix("production:")
        return guard_for_reference(document, owner=context.owner, token=token)

    def prefetched(self, tags_by_arn: Mapping[str, dict[str, str]], *, listed: list[str]) -> None:
        """Tags read for many state machines at once (the tagging API): the next read of each uses them.
        `listed`: the ARNs asked for in batches that were all answered (those not found have no tags)."""
        with self._prefetch_lock:
            self._prefetched.update(tags_by_arn)
            self._unlisted = {arn for arn in listed if arn not in tags_by_arn}

    def read_listed(self, names: FlowNames) -> tuple[bool, Existing | None]:
        """The state machine as the tagging API listed it (its record, no definition, no call); unknown
        where it said nothing. Eventually consistent: only a guess of what a deploy will write (the deploy
        then reads for real, under its locks, before it plans and writes)."""
        arn = self.aws.state_machine_arn(state_machine(names))
        with self._prefetch_lock:
            tags, unlisted = self._prefetched.get(arn), arn in self._unlisted
        if tags is None:
            return unlisted, None
        record = decode_record(tags)
        return True, Existing(self.aws.name, state_machine(names), arn, None, record, details={"listed": tags})

    def read(self, names: FlowNames) -> Existing | None:
        arn = self.aws.state_machine_arn(state_machine(names))
        with self._prefetch_lock:
            tags = self._prefetched.pop(arn, None)
        return self.read_arn(arn, state_machine(names), tags, tags_may_lag=tags is not None)

    def read_named(self, name: str) -> Existing | None:
        return self.read_arn(self.aws.state_machine_arn(name), name)

    def read_arn(
        self, arn: str, name: str, tags: Mapping[str, str] | None = None, *, tags_may_lag: bool = False
    ) -> Existing | None:
        """The state machine at `arn` with its record and schedule (`tags` when already known). Tags from
        the tagging API (`tags_may_lag`: it is eventually consistent) are used only when their record's
        digest is the definition's; otherwise the state machine's own tags are read."""
        sfn = self.aws.client("stepfunctions")
        with self.aws.errors(f"reading {name}"):
            try:
                described = sfn.describe_state_machine(stateMachineArn=arn)
            except sfn.exceptions.StateMachineDoesNotExist:
                return None
            definition = definition_of(described["definition"])  # no definition: not a state machine answer
            if tags is not None and tags_may_lag and not _consistent(tags, definition):
                tags = None
            if tags is None:
                tags = {t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=arn).get("tags", [])}
        record = merge_records(decode_record(tags), definition)
        rule = self._read_rule(eventbridge_rule_name(name))
        return Existing(
            backend=self.aws.name,
            name=name,
            identifier=arn,
            definition=definition,
            record=record,
            schedule=rule["schedule"] if rule else None,
            details={"role": described.get("roleArn"), "tags": dict(tags), "rule": rule},
            schedule_paused=bool(rule and rule.get("state") == "DISABLED"),
        )

    def pause_schedule(self, existing: Existing, *, paused: bool) -> bool:
        rule = existing.details.get("rule")
        if rule is None or (rule.get("state") == "DISABLED") == paused:
            return False
        events = self.aws.client("events")
        with self.aws.errors(f"{'pausing' if paused else 'resuming'} the schedule {rule['name']}"):
            if paused:
                events.disable_rule(Name=rule["name"])
            else:
                events.enable_rule(Name=rule["name"])
        return True

    def _read_rule(self, rule_name: str) -> dict[str, Any] | None:
        events = self.aws.client("events")
        with self.aws.errors(f"reading the EventBridge rule {rule_name}"):
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

    def validate(self, desired: Desired) -> list[str]:
        """ValidateStateMachineDefinition's errors for the definition. An endpoint or region without the
        call (an emulator answers 500 or an unknown operation; a role may lack the permission) is asked
        once, quietly: the deploy goes on as it would have without the check."""
        import botocore.exceptions as bx

        if not self._can_validate:
            return []
        sfn = self.aws.client("stepfunctions", single_attempt=True)
        try:
            answer = sfn.validate_state_machine_definition(definition=json.dumps(desired.definition), type="STANDARD")
        except (bx.ClientError, bx.EndpointConnectionError, bx.ReadTimeoutError, AttributeError):
            # AttributeError: a botocore too old to know the call
            self._can_validate = False
            return []
        if answer.get("result") != "FAIL":
            return []
        found = [d for d in answer.get("diagnostics", []) if d.get("severity") == "ERROR"]
        return [printable(f"{d.get('code', 'INVALID')}: {d.get('message', '')}", limit=300) for d in found[:5]]

    def _desired_tags(self, desired: Desired, existing: Existing | None) -> dict[str, str]:
        foreign = 0
        if existing is not None:
            foreign = sum(1 for key in existing.details.get("tags", {}) if not key.startswith(TAG_PREFIX))
        record = replace(desired.record, definition_digest=definition_digest(desired.definition))
        return encode_record(record, foreign_tags=foreign)

    def _desired_target(self, desired: Desired, arn: str) -> dict[str, Any]:
        return {
            "Id": eventbridge_rule(desired.names)[:64],
            "Arn": arn,
            "RoleArn": self.aws.role(),
            "Input": json.dumps(input_document(desired.scheduled_run), sort_keys=True),
        }

    def changes(self, existing: Existing, desired: Desired) -> list[str]:
        if "listed" in existing.details:  # as listed (read_listed): what its record says, no more
            record = existing.record
            if record is None or record.definition_digest != definition_digest(desired.definition):
                return ["definition", "record"]
            return [] if record.comparable() == desired.record.comparable() else ["record"]
        found = []
        if existing.definition != desired.definition:
            found.append("definition")
        if existing.details.get("role") != self.aws.role():
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
                or rule.get("state") not in ("ENABLED", "DISABLED")  # DISABLED: paused, a choice kept
            ):
                found.append("schedule")
        return found

    # applying: every write pushes how to put it back onto the run's undo log

    def apply(self, desired: Desired, existing: Existing | None, log: UndoLog, key: str) -> None:
        tags = self._desired_tags(desired, existing)
        role = self.aws.role()
        schedule = to_eventbridge(desired.schedule) if desired.schedule else None
        sfn = self.aws.client("stepfunctions")
        name = state_machine(desired.names)
        with self.aws.errors(f"deploying {name}"):
            if existing is None:
                log.check()
                arn = self.aws.state_machine_arn(name)
                with _unknown_outcome(log, key, f"may have created {name}", lambda: self._undo_if_ours(arn, desired)):
                    created = sfn.create_state_machine(
                        name=name,
                        definition=json.dumps(desired.definition),
                        roleArn=role,
                        type="STANDARD",
                        tags=[{"key": k, "value": v} for k, v in tags.items()],
                        **self.versions.publishing(desired),
                    )
                arn = created["stateMachineArn"]
                self.versions.note(arn, created)
                log.push(key, f"created the state machine {name}", lambda: self._undo_create(arn))
            else:
                arn = existing.identifier
                if existing.definition != desired.definition or existing.details.get("role") != role:
                    log.check()
                    with _unknown_outcome(
                        log, key, f"may have updated {name}", lambda: self._undo_update(existing, None)
                    ):
                        updated = sfn.update_state_machine(
                            stateMachineArn=arn,
                            definition=json.dumps(desired.definition),
                            roleArn=role,
                            **self.versions.publishing(desired),
                        )
                    self.versions.note(arn, updated)
                    version = updated.get("stateMachineVersionArn")
                    log.push(key, f"updated the definition of {name}", lambda: self._undo_update(existing, version))
                log.check()
                self._retag(arn, existing.details.get("tags", {}), tags)
                log.push(key, f"re-tagged {name}", lambda: self._undo_tags(existing))
            self._apply_rule(desired, arn, schedule, existing, log, key)

    def _undo_if_ours(self, arn: str, desired: Desired) -> None:
        """A create whose answer was lost: the state machine is deleted only if it is the one it sent."""
        sfn = self.aws.client("stepfunctions")
        with self.aws.errors("checking a state machine it may have created"):
            try:
                described = sfn.describe_state_machine(stateMachineArn=arn)
            except sfn.exceptions.StateMachineDoesNotExist:
                return
        if definition_of(described.get("definition")) == desired.definition:
            self._undo_create(arn)

    def _undo_create(self, arn: str) -> None:
        with self.aws.errors("deleting a state machine it had created"):
            self.aws.client("stepfunctions").delete_state_machine(stateMachineArn=arn)

    def _undo_update(self, existing: Existing, version: str | None) -> None:
        with self.aws.errors(f"putting back the definition of {existing.name}"):
            self.aws.client("stepfunctions").update_state_machine(
                stateMachineArn=existing.identifier,
                definition=json.dumps(existing.definition),
                roleArn=existing.details["role"],
            )
        self.versions.forget(version)  # the version of a deploy that did not land

    def _undo_tags(self, existing: Existing) -> None:
        sfn = self.aws.client("stepfunctions")
        with self.aws.errors(f"putting back the tags of {existing.name}"):
            current = {
                t["key"]: t["value"]
                for t in sfn.list_tags_for_resource(resourceArn=existing.identifier).get("tags", [])
            }
            self._retag(existing.identifier, current, existing.details.get("tags", {}))

    def _retag(self, arn: str, current: Mapping[str, str], wanted: Mapping[str, str]) -> None:
        sfn = self.aws.client("stepfunctions")
        stale = [key for key in current if key.startswith(TAG_PREFIX) and key not in wanted]
        if stale:
            sfn.untag_resource(resourceArn=arn, tagKeys=stale)
        changed = {k: v for k, v in wanted.items() if current.get(k) != v}
        if changed:
            sfn.tag_resource(resourceArn=arn, tags=[{"key": k, "value": v} for k, v in changed.items()])

    def _apply_rule(
        self, desired: Desired, arn: str, schedule: str | None, existing: Existing | None, log: UndoLog, key: str
    ) -> None:
        events = self.aws.client("events")
        rule_name = eventbridge_rule(desired.names)
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
        paused = bool(previous and previous.get("state") == "DISABLED")  # a paused schedule stays paused
        events.put_rule(
            Name=rule_name,
            ScheduleExpression=schedule,
            State="DISABLED" if paused else "ENABLED",
            Description=f"mfproj: runs {desired.names.project_flow_name} on {desired.schedule} (UTC)",
        )
        events.put_targets(Rule=rule_name, Targets=[target])
        if previous:
            old_ids = [t["Id"] for t in previous.get("targets", []) if t.get("Id") != target["Id"]]
            if old_ids:
                events.remove_targets(Rule=rule_name, Ids=old_ids)

    def _remove_rule(self, rule_name: str, targets: list[dict[str, Any]]) -> None:
        events = self.aws.client("events")
        if targets:
            events.remove_targets(Rule=rule_name, Ids=[t["Id"] for t in targets])
        with contextlib.suppress(events.exceptions.ResourceNotFoundException):
            events.delete_rule(Name=rule_name)

    def _undo_rule(self, rule_name: str, previous: dict[str, Any] | None) -> None:
        events = self.aws.client("events")
        with self.aws.errors(f"putting back the schedule {rule_name}"):
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
        with self.aws.errors(f"deleting {existing.name}"):
            if rule is not None:
                self._remove_rule(rule["name"], rule.get("targets", []))
            sfn = self.aws.client("stepfunctions")
            try:
                sfn.delete_state_machine(stateMachineArn=existing.identifier)
            except sfn.exceptions.StateMachineDoesNotExist:
                raise NotFoundError(f"{existing.name} no longer exists on Step Functions") from None
