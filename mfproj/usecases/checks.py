"""The checks every change to an existing deployment passes, whatever the command: that it is this
branch's deployment with a readable record (`identity_check`), and that the caller may change it
(`authorize_change`: its owner, or its token)."""

from __future__ import annotations

from mfproj import authorization, identity, naming
from mfproj.backends import registry
from mfproj.backends.base import Existing
from mfproj.errors import ConflictError
from mfproj.usecases.session import Pair, Session


def identity_check(existing: Existing, pair: Pair, session: Session, adopt: bool) -> None:
    record = existing.record
    if record is not None and record.unreadable:
        raise ConflictError(
            f"the record of {existing.name} on {registry.label(pair.backend)} cannot be read "
            f"({record.unreadable}): mfproj does not change a deployment whose owner and token it cannot trust",
            hint="someone wrote its tags or annotations by hand; its owner can 'mfproj delete' it and deploy again",
        )
    if record is None:
        if not adopt:
            raise ConflictError(
                f"a {registry.label(pair.backend)} deployment named {existing.name} exists but was not made by mfproj "
                "or Metaflow (it records no owner or production token)",
                hint="pass --adopt to take it over, or rename the flow or branch",
            )
        return
    found = record.flow_key()
    if found is not None:
        naming.check_same_deployment(
            pair.backend,
            existing.name,
            existing=found,
            wanted=(session.target.project, session.target.branch, pair.flow.name),
        )


def authorize_change(
    session: Session, offered: authorization.OfferedToken | None, flow: str, existing: Existing
) -> str:
    """The authorization of a change that makes no token (delete, unlock, terminate, teardown): the
    deployment's owner, or its token; returns the reason, or raises AuthorizationError (exit 3)."""
    record = existing.record
    assert record is not None
    decision = authorization.authorize(
        existing=authorization.OwnerRecord(record.owner, record.production_token, record.principal),
        caller=session.caller(existing.backend),
        offered=offered,
        generate_new=False,
        new=lambda previous: "",  # never called: generate_new is False
        deployment_name=f"{flow} ({existing.name})",
        branch_options=identity.branch_options(session.target.branch),
    )
    if decision.warning:
        session.notice_once(decision.warning)
    return decision.reason
