"""A state machine's history as published versions: each deploy that writes a definition publishes one
(`publish=True` on create and update), its description carrying the deploy's lineage (`mfproj.history`).
Step Functions keeps up to 1,000 versions per state machine; mfproj keeps the manifest's `history`."""

from __future__ import annotations

import contextlib
from typing import Any

from mfproj.backends.base import Desired, Existing
from mfproj.backends.step_functions.client import AwsClient
from mfproj.backends.step_functions.record import definition_of
from mfproj.history import DeployLineage, HistoryEntry, HistoryStop
from mfproj.tokens import fingerprint

MAX_LISTED = 1000  # Step Functions' own limit per state machine: a bound on what is read


class Versions:
    """Publishing, listing and pruning a state machine's versions."""

    def __init__(self, aws: AwsClient) -> None:
        self.aws = aws
        self.published: dict[str, str] = {}  # state machine ARN -> the version this process published

    def note(self, arn: str, answer: dict[str, Any]) -> None:
        """Remembers the version a create or update published (pruning looks only when one did)."""
        if answer.get("stateMachineVersionArn"):
            self.published[arn] = str(answer["stateMachineVersionArn"])

    def publishing(self, desired: Desired) -> dict[str, Any]:
        """The arguments that make a create or update publish a version with the deploy's lineage."""
        token = desired.record.production_token
        lineage = desired.lineage(fingerprint(token) if token else None)
        if lineage is None:
            return {}
        return {"publish": True, "versionDescription": lineage.compact()}

    def forget(self, version_arn: str | None) -> None:
        """Undoes a publication (a deploy rolled back): one attempt, and quiet where the endpoint lacks the
        call; a version left behind is a deploy that never went live, and `history` says so."""
        if not version_arn:
            return
        sfn = self.aws.client("stepfunctions", single_attempt=True)
        with contextlib.suppress(Exception):
            sfn.delete_state_machine_version(stateMachineVersionArn=version_arn)

    def listed(self, arn: str) -> list[dict[str, Any]] | None:
        """The versions of the state machine, newest first; None where the endpoint has no versions."""
        import botocore.exceptions as bx

        sfn = self.aws.client("stepfunctions", single_attempt=True)
        found: list[dict[str, Any]] = []
        token = None
        try:
            while len(found) < MAX_LISTED:
                page = sfn.list_state_machine_versions(
                    stateMachineArn=arn, maxResults=100, **({"nextToken": token} if token else {})
                )
                found += page.get("stateMachineVersions", [])
                token = page.get("nextToken")
                if not token:
                    break
        except bx.ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
                return None  # an emulator without versions (moto answers 500)
            raise
        return sorted(found, key=lambda v: _number(v.get("stateMachineVersionArn")), reverse=True)[:MAX_LISTED]

    def entries(self, existing: Existing, *, enough: HistoryStop | None = None) -> list[HistoryEntry]:
        """The kept deploys, newest first: one DescribeStateMachine per version (on a 20-a-second bucket),
        read only back to the first `enough` accepts."""
        listed = self.listed(existing.identifier)
        if not listed:
            return []
        sfn = self.aws.client("stepfunctions")
        entries = []
        for version in listed:
            arn = str(version.get("stateMachineVersionArn", ""))
            described = sfn.describe_state_machine(stateMachineArn=arn)
            lineage = DeployLineage.parse_compact(described.get("description"))
            if lineage is None:
                continue  # published by someone else: not a deploy of mfproj's
            entries.append(HistoryEntry(lineage, definition_of(described.get("definition")), arn))
            if enough is not None and enough(entries[-1]):
                break
        return entries

    def prune(self, arn: str, keep: int) -> int:
        """Deletes all but the newest `keep` versions, asked only when this process published one past
        `keep` (version numbers only grow: below it there cannot be more)."""
        if _number(self.published.get(arn)) <= keep:
            return 0
        listed = self.listed(arn) or []
        sfn = self.aws.client("stepfunctions")
        forgotten = 0
        for version in listed[keep:]:
            sfn.delete_state_machine_version(stateMachineVersionArn=version["stateMachineVersionArn"])
            forgotten += 1
        return forgotten


def _number(arn: object) -> int:
    """A version ARN's number (`…:stateMachine:name:12` → 12)."""
    text = str(arn or "")
    tail = text.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0
