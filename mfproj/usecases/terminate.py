"""`mfproj runs terminate RUN_ID`: stop a running run, with the authorization of a delete (the run's
deployment's owner, or its token); a run of another branch or project is refused, as the reference does."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from mfproj import identity
from mfproj.backends import registry
from mfproj.backends.base import Backend, DeploymentRecord, Existing, Run
from mfproj.errors import AuthorizationError, NotFoundError, UsageError
from mfproj.usecases.checks import authorize_change, identity_check
from mfproj.usecases.runs import Located, locate_run
from mfproj.usecases.session import Session, TokenOptions, offer_for


@dataclass
class Terminated:
    run: Run
    flow: str
    branch: str
    backend: str
    deployment: str
    stopped: bool  # False: it had already ended
    authorization: str

    @property
    def ended(self) -> bool:
        """Whether the run was seen ended: a stop is taken at once and carried out a moment later."""
        return self.run.finished

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run.run_id,
            "flow": self.flow,
            "branch": self.branch,
            "backend": self.backend,
            "deployment": self.deployment,
            "status": self.run.status,
            "stopped": self.stopped,
            "ended": self.ended,
            "authorization": self.authorization,
        }


STOP_SETTLE_SECONDS = 10.0  # how long a stopped run is read until the backend says it has ended


def _settled(backend: Backend, existing: Existing, run: Run) -> Run:
    """The run as the backend describes it once it has ended, or as last read when it has not within
    STOP_SETTLE_SECONDS (backing off from 0.1 s to 1 s between reads)."""
    deadline = time.monotonic() + STOP_SETTLE_SECONDS
    pause = 0.1
    for _ in range(1000):  # bounded in count as well as by the deadline
        run = backend.get_run(existing, run.run_id) or run
        left = deadline - time.monotonic()
        if run.finished or left <= 0:
            break
        time.sleep(min(pause, left))
        pause = min(1.0, pause * 2)
    return run


def find(session: Session, run_id: str, flows: list[str] | None) -> Located:
    """The run among the selected branch's deployments (or those gone); refused when it is another
    branch's; 4 if unknown."""
    try:
        return locate_run(session, run_id, flows=flows, backends=None)
    except NotFoundError:
        spec = registry.for_run_id(run_id)
        if spec is not None:
            _refuse_if_elsewhere(session, spec.name, run_id)
        raise


def _record_of_run(run: Run, flow: str, branch: str) -> DeploymentRecord:
    """Whose a run of a deployment that is gone is: the production namespace its tags name (the
    deployment's token then). Without one nobody can be authorized, and the run is not stopped."""
    token = next((tag.split(":", 1)[1] for tag in run.tags if tag.startswith("production:")), None)
    if not token:
        raise AuthorizationError(
            f"{run.run_id}: its deployment is gone and the run names no production namespace",
            hint="stop it with the backend's own tools",
        )
    return DeploymentRecord(owner=None, production_token=token, branch=branch, flow=flow)


def _refuse_if_elsewhere(session: Session, backend_name: str, run_id: str) -> None:
    from mfproj.usecases.deployments import inventory

    backend = session.backend(backend_name)
    for _, existing in inventory(session, [backend_name], include_metaflow=False, full=False):
        record = existing.record
        if record is None or record.branch == session.target.branch or backend.get_run(existing, run_id) is None:
            continue
        branch = record.branch or ""
        options = identity.selecting_options(branch)
        raise UsageError(
            f"{run_id} is a run of {record.project} {record.branch}, not of {session.target.branch}",
            hint=f"select its branch: mfproj runs terminate {run_id}{' ' + options if options else ''}",
        )


def terminate(
    session: Session,
    run_id: str,
    *,
    flows: list[str] | None = None,
    token_options: TokenOptions = TokenOptions(),
    confirm: Callable[[Run], bool] = lambda run: True,
) -> Terminated | None:
    """Stops the run once authorized and confirmed (`confirm` sees the run; False: nothing is done)."""
    offered = offer_for(session, token_options)
    located = find(session, run_id, flows)
    pair, existing, run = located.pair, located.existing, located.run
    if located.gone:  # authorized by the run's own namespace: its deployment's token
        existing = replace(existing, record=_record_of_run(run, pair.flow.name, session.target.branch))
    else:
        identity_check(existing, pair, session, adopt=False)
    reason = authorize_change(session, offered, pair.flow.name, existing)
    backend = session.backend(pair.backend)
    stopped = not run.finished
    if stopped and not confirm(run):
        return None
    if stopped:
        backend.stop_run(existing, run, reason=f"terminated by {session.user} with mfproj")
        run = _settled(backend, existing, run)
    return Terminated(run, pair.flow.name, session.target.branch, pair.backend, existing.name, stopped, reason)
