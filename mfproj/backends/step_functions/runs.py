"""Runs of a state machine: executions started with the run's metadata in their input, named
`<random>.<Bloom filter of the run's tags>` so that listing by tag reads only the candidates.

Step Functions lists executions without their input, where the run's tags live; the name is listed,
so it carries a 200-bit Bloom filter of the tags: an execution whose filter lacks a wanted tag is
skipped without reading it; the others are read and checked exactly.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from mfproj.backends.base import Existing, Run, RunFilter, RunRequest
from mfproj.backends.step_functions.client import AwsClient
from mfproj.backends.step_functions.names import SHORT_RUN_ID
from mfproj.errors import ValidationError
from mfproj.text import printable

RUN_ID_PREFIX = "sfn-"  # the reference's form: sfn-<execution name>
MAX_INPUT_BYTES = 256 * 1024
BLOOM_BITS = 200  # 40 base32 characters
_BLOOM_HASHES = 3
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


def _positions(tag: str) -> list[int]:
    digest = hashlib.sha256(tag.encode("utf-8")).digest()
    return [int.from_bytes(digest[4 * i : 4 * i + 4], "big") % BLOOM_BITS for i in range(_BLOOM_HASHES)]


def tag_bloom(tags: Iterable[str]) -> str:
    bits = 0
    for tag in tags:
        for position in _positions(tag):
            bits |= 1 << position
    return "".join(_BASE32[(bits >> (5 * i)) & 31] for i in range(BLOOM_BITS // 5))


def bloom_may_contain(bloom: str, tag: str) -> bool:
    """False: the tag is certainly absent. True: it may be present (read the run to be sure)."""
    if len(bloom) != BLOOM_BITS // 5 or any(c not in _BASE32 for c in bloom):
        return True  # not a filter of ours: nothing can be ruled out
    bits = 0
    for i, char in enumerate(bloom):
        bits |= _BASE32.index(char) << (5 * i)
    return all(bits >> position & 1 for position in _positions(tag))


def input_document(request: RunRequest) -> dict[str, Any]:
    """The execution input: the --input-file object, `Parameters` (JSON text, as the reference passes
    them) and `mfproj`, the run metadata."""
    return {**request.extra_input, "Parameters": json.dumps(request.parameters), "mfproj": request.metadata()}


MAX_EXPANDED = 10_000  # executions a short run id is looked for among, newest first


def _is_short(name: str) -> bool:
    return len(name) == SHORT_RUN_ID and all(c in "abcdefghijklmnopqrstuvwxyz234567" for c in name)


class Executions:
    """A deployment's runs: executions, started, followed, listed and stopped."""

    def __init__(self, aws: AwsClient) -> None:
        self.aws = aws

    def running(self, existing: Existing, *, limit: int = 1000) -> list[str]:
        sfn = self.aws.client("stepfunctions")
        found: list[str] = []
        with self.aws.errors(f"counting the running executions of {existing.name}"):
            paginator = sfn.get_paginator("list_executions")
            pages = paginator.paginate(
                stateMachineArn=existing.identifier,
                statusFilter="RUNNING",
                PaginationConfig={"MaxItems": limit, "PageSize": 100},
            )
            for page in pages:
                found += [RUN_ID_PREFIX + printable(e.get("name", ""), limit=80) for e in page.get("executions", [])]
        return found[:limit]

    def start(self, existing: Existing, request: RunRequest) -> Run:
        sfn = self.aws.client("stepfunctions")
        # <26 random base32>.<Bloom filter of the tags>: 67 of the 80 characters a name may have.
        name = f"{base64.b32encode(uuid.uuid4().bytes).decode('ascii').rstrip('=').lower()}.{tag_bloom(request.tags)}"
        text = json.dumps(input_document(request), ensure_ascii=False)
        if len(text.encode("utf-8")) > MAX_INPUT_BYTES:
            raise ValidationError("the execution input is larger than the 256 KiB Step Functions allows")
        with self.aws.errors(f"starting {existing.name}"):
            started = sfn.start_execution(stateMachineArn=existing.identifier, name=name, input=text)
        return Run(
            run_id=RUN_ID_PREFIX + name,
            status="RUNNING",
            started_at=started.get("startDate"),
            tags=request.tags,
            parameters=dict(request.parameters),
            deployment=existing.name,
        )

    def stop_run(self, existing: Existing, run: Run, *, reason: str) -> None:
        arn = existing.identifier.replace(":stateMachine:", ":execution:", 1) + f":{run.run_id[len(RUN_ID_PREFIX) :]}"
        with self.aws.errors(f"stopping the run {run.run_id}"):
            self.aws.client("stepfunctions").stop_execution(executionArn=arn, error="mfproj.Terminated", cause=reason)

    def get_run(self, existing: Existing, run_id: str) -> Run | None:
        """The run by its id, or by the short form a narrow table shows (`sfn-<12 random>`)."""
        if not run_id.startswith(RUN_ID_PREFIX):
            return None
        if _is_short(run_id[len(RUN_ID_PREFIX) :]):
            whole = self._expand(existing, run_id[len(RUN_ID_PREFIX) :])
            if whole is None:
                return None
            run_id = RUN_ID_PREFIX + whole
        arn = existing.identifier.replace(":stateMachine:", ":execution:", 1) + f":{run_id[len(RUN_ID_PREFIX) :]}"
        sfn = self.aws.client("stepfunctions")
        with self.aws.errors(f"reading the run {run_id}"):
            try:
                described = sfn.describe_execution(executionArn=arn)
            except sfn.exceptions.ExecutionDoesNotExist:
                return None
        return run_of(described, run_id, existing.name)

    def _expand(self, existing: Existing, short: str) -> str | None:
        """The execution name a short id stands for, among the newest MAX_EXPANDED executions."""
        sfn = self.aws.client("stepfunctions")
        found: set[str] = set()
        with self.aws.errors(f"finding the run {RUN_ID_PREFIX}{short}"):
            pages = sfn.get_paginator("list_executions").paginate(
                stateMachineArn=existing.identifier, PaginationConfig={"MaxItems": MAX_EXPANDED, "PageSize": 1000}
            )
            try:
                listed = list(pages)
            except sfn.exceptions.StateMachineDoesNotExist:
                return None  # deleted: its runs are found by their whole id only
            for page in listed:
                found |= {
                    str(e["name"]) for e in page.get("executions", []) if str(e.get("name", "")).startswith(short)
                }
        if len(found) > 1:
            raise ValidationError(f"{RUN_ID_PREFIX}{short} stands for {len(found)} runs: give the whole run id")
        return next(iter(found), None)

    def list_runs(self, existing: Existing, query: RunFilter) -> Iterator[Run]:
        """Newest first (as AWS lists them). Only candidates are read: executions that pass the status and
        time filters and whose name's Bloom filter may hold every wanted tag."""
        from concurrent.futures import ThreadPoolExecutor

        sfn = self.aws.client("stepfunctions")
        # Without tags to check, every listed run is kept: pages need be no larger than the limit.
        page_size = 100 if query.required_tags() else max(1, min(100, query.limit))
        arguments: dict[str, Any] = {
            "stateMachineArn": existing.identifier,
            "PaginationConfig": {"PageSize": page_size},
        }
        if query.statuses and len(query.statuses) == 1:
            arguments["statusFilter"] = next(iter(query.statuses))

        def describe(execution: Mapping[str, Any]) -> Run:
            with self.aws.errors(f"reading the run {RUN_ID_PREFIX}{execution['name']}"):
                described = sfn.describe_execution(executionArn=execution["executionArn"])
            return run_of(described, RUN_ID_PREFIX + execution["name"], existing.name)

        with ThreadPoolExecutor(max_workers=8) as pool, self.aws.errors(f"listing the runs of {existing.name}"):
            for page in sfn.get_paginator("list_executions").paginate(**arguments):
                candidates, finished = _candidates(page.get("executions", []), query)
                if not query.required_tags():  # nothing to check in the input: read only the runs kept
                    yield from (_listed(execution, existing.name) for execution in candidates)
                    if finished:
                        return
                    continue
                for start in range(0, len(candidates), 16):  # bounded batches, read concurrently, in order
                    for run in pool.map(describe, candidates[start : start + 16]):
                        if query.matches(run):
                            yield run
                if finished:
                    return


def _candidates(executions: list[Mapping[str, Any]], query: RunFilter) -> tuple[list[Mapping[str, Any]], bool]:
    """The executions of one page worth reading, and whether the listing can stop after this page."""
    required = query.required_tags()
    candidates: list[Mapping[str, Any]] = []
    for execution in executions:
        if query.since and execution["startDate"] < query.since:
            return candidates, True  # listed newest first: everything after is older
        if query.statuses and execution["status"] not in query.statuses:
            continue
        _, dot, bloom = execution["name"].rpartition(".")
        if dot and not all(bloom_may_contain(bloom, tag) for tag in required):
            continue
        candidates.append(execution)
    return candidates, False


def _listed(execution: Mapping[str, Any], deployment: str) -> Run:
    return Run(
        run_id=RUN_ID_PREFIX + execution["name"],
        status=execution["status"],
        started_at=_utc(execution.get("startDate")),
        finished_at=_utc(execution.get("stopDate")),
        deployment=deployment,
        partial=True,
    )


def run_of(described: Mapping[str, Any], run_id: str, deployment: str) -> Run:
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
    error = described.get("error")
    cause = described.get("cause")
    return Run(
        run_id=run_id,
        status=described["status"],
        started_at=_utc(described.get("startDate")),
        finished_at=_utc(described.get("stopDate")),
        tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
        parameters=parameters,
        deployment=deployment,
        error=f"{error}: {cause}" if error and cause else error or cause,
    )


def _utc(value: Any) -> _dt.datetime | None:
    return value.astimezone(_dt.timezone.utc) if isinstance(value, _dt.datetime) else None
