"""`mfproj trigger`: start a run of a deployed flow with its namespace and tags; `wait` follows it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mfproj import tokens
from mfproj.backends import registry
from mfproj.backends.base import Run, RunRequest, iso
from mfproj.errors import ConflictError, NotFoundError, RunFailedError, UsageError, ValidationError
from mfproj.tags import MAX_USER_TAGS, TagError, validate_tags
from mfproj.usecases.session import Pair, Session, run_tags_for, select_pairs


@dataclass
class Triggered:
    flow: str
    branch: str
    backend: str
    name: str
    run: Run

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run.run_id,
            "flow": self.flow,
            "branch": self.branch,
            "backend": self.backend,
            "deployment": self.name,
            "status": self.run.status,
            "started_at": iso(self.run.started_at),
            "finished_at": iso(self.run.finished_at),
            "tags": tokens.mask_tags(self.run.tags),
        }


def parse_params(params: list[str]) -> dict[str, str]:
    result = {}
    for item in params:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValidationError(f"--param {item!r} is not KEY=VALUE")
        result[key] = value
    return result


def trigger(
    session: Session,
    *,
    flow: str,
    backend_name: str | None = None,
    tags: list[str] | None = None,
    params: dict[str, str] | None = None,
    input_document: dict[str, Any] | None = None,
) -> Triggered:
    pair = _one_pair(session, flow, backend_name)
    try:
        trigger_tags = list(validate_tags(tags or [], where="--tag", user_tags=True))
    except TagError as exc:
        raise ValidationError(f"{exc.key}: {exc.rule}") from None
    if "mfproj" in (input_document or {}):
        raise ValidationError("the input document must not have a top-level key 'mfproj' (mfproj writes it)")
    backend = session.backend(pair.backend)
    existing = backend.read(pair.names)
    if existing is None:
        raise NotFoundError(
            f"{flow} is not deployed in {session.target.branch} on {registry.label(pair.backend)} "
            f"(no {backend.deployed_name(pair.names)})",
            hint="run 'mfproj deploy' first",
        )
    token = existing.record.production_token if existing.record else None
    if existing.record is None or not token:
        raise ConflictError(f"{existing.name} records no production token, so its runs have no namespace")
    run_tags = (*run_tags_for(session, pair.backend, token), f"user:{session.user}", *existing.record.tags)
    user_tags = dict.fromkeys([*existing.record.tags, *trigger_tags])
    if len(user_tags) > MAX_USER_TAGS:  # checked before the run starts, as Metaflow checks a run's tags
        raise ValidationError(
            f"--tag: the run would have {len(user_tags)} distinct user tags ({len(existing.record.tags)} from "
            f"the deployment, {len(trigger_tags)} given); at most {MAX_USER_TAGS} are allowed",
            hint="pass fewer --tag values, or deploy with fewer --tag values",
        )
    request = RunRequest(
        flow=flow,
        project=session.target.project,
        branch=session.target.branch,
        namespace=f"production:{token}",
        tags=tuple(dict.fromkeys([*run_tags, *trigger_tags])),
        triggered_by={"type": "user", "name": session.user},
        parameters=dict(params or {}),
        extra_input=dict(input_document or {}),
    )
    run = backend.start(existing, request)
    return Triggered(flow, session.target.branch, pair.backend, existing.name, run)


def _one_pair(session: Session, flow: str, backend_name: str | None) -> Pair:
    selected = select_pairs(session, [flow], [backend_name] if backend_name else None)
    if len(selected) > 1:
        raise UsageError(
            f"{flow} has templates for more than one backend; choose one with --backend",
            hint=" or ".join(f"--backend {spec.cli_name}" for spec in registry.SPECS),
        )
    return selected[0]


def wait(session: Session, triggered: Triggered, *, timeout: float, poll: Callable[[Run], None] | None = None) -> Run:
    """Follows a run to its end; raises RunFailedError (exit 7) on failure, abort or timeout."""
    backend = session.backend(triggered.backend)
    pair = select_pairs(session, [triggered.flow], [triggered.backend])[0]
    existing = backend.read(pair.names)
    if existing is None:
        raise NotFoundError(f"{triggered.name} disappeared while waiting for {triggered.run.run_id}")
    deadline = time.monotonic() + timeout
    delay = 0.2
    for _ in range(1_000_000):  # bounded by the deadline; the count only guards against a stuck clock
        found = backend.get_run(existing, triggered.run.run_id)
        if found is None:
            raise NotFoundError(f"no run {triggered.run.run_id} of {existing.name}")
        triggered.run = found
        if poll:
            poll(found)
        if found.finished:
            break
        if time.monotonic() + delay > deadline:
            raise RunFailedError(
                f"{found.run_id} is still {found.status} after {timeout:g} s",
                hint="it goes on running; raise --timeout, or look at it later",
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 5.0)
    run = triggered.run
    if run.status != "SUCCEEDED":
        raise RunFailedError(f"{run.run_id} ended {run.status}" + (f": {run.error}" if run.error else ""))
    return run
