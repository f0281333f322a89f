"""The Step Functions write lock. Step Functions has no compare-and-swap, so a change first takes its
branch's lock: a small state machine whose creation is exclusive on AWS, recording who holds it. One lock
per branch and deploy (not one per flow): CreateStateMachine and DeleteStateMachine are throttled at one
a second per account, and a deploy settles the branch's one token across all its flows anyway.

A lock whose holder is a process of this host that is gone, or older than LOCK_TTL_SECONDS by the
service's own clock, is broken at once; one held elsewhere is waited for (saying so once) up to a
timeout; only its holder releases it.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from mfproj.backends.base import LeftLock
from mfproj.backends.step_functions.client import AwsClient
from mfproj.backends.step_functions.names import state_machine
from mfproj.backends.step_functions.record import TAG_PREFIX
from mfproj.errors import BackendError, ConflictError
from mfproj.holder import Holder
from mfproj.naming import FlowNames, attach_state_machine_prefix

LOCK_TTL_SECONDS = 600
_FIRST_PAUSE = 0.05  # after a lock broken or gone: tried again soon, then less and less often
_WAIT_PAUSE = 1.0  # between looks at a lock someone holds
# Nonces of the locks this process holds right now: a lock recorded as held by this very process but
# not among them was left by an earlier call that failed to release it (a library user calls again).
_HELD: set[str] = set()
_HELD_LOCK = threading.Lock()
LockHandle = tuple[str, str]  # (lock ARN, nonce)


class StateMachineLock:
    """The write lock of a deployment (Step Functions has no compare-and-swap)."""

    def __init__(self, aws: AwsClient) -> None:
        self.aws = aws

    @staticmethod
    def scope(names: FlowNames) -> str:
        """What one lock guards: the branch's state machines (`<prefix><project>.<branch>`; flow names have
        no dot, so the branch is everything before the last one)."""
        return state_machine(names).rsplit(".", 1)[0]

    def lock_name(self, state_machine: str) -> str:
        digest = base64.b32encode(hashlib.sha1(state_machine.encode(), usedforsecurity=False).digest())
        return "mfproj-lock-" + digest.decode("ascii").lower()[:24]

    def acquire(self, names: FlowNames, *, holder: Holder, timeout: float, waiting: Callable[[str], None]) -> Any:
        """A lock is a state machine of its own: creating one is exclusive on AWS (a second create with
        another definition fails). The definition carries a nonce, checked after the create, which also
        covers emulators that answer a second create with the first one's ARN.

        A lock whose holder is a process of this host that is gone, or older than LOCK_TTL_SECONDS,
        is broken at once; one held elsewhere is waited for (saying so once) up to `timeout` seconds."""
        arn = self.aws.state_machine_arn(self.lock_name(self.scope(names)))
        nonce = uuid.uuid4().hex
        # Registered before the create: between its create and its own check, a lock this process is
        # taking must not look abandoned to another thread of the same process (it would break it).
        with _HELD_LOCK:
            _HELD.add(nonce)
        try:
            with self.aws.errors(f"locking {self.scope(names)}"):
                return self._take_lock(names, arn, nonce, holder, timeout, waiting)
        except BaseException:
            with _HELD_LOCK:
                _HELD.discard(nonce)
            self._drop_if_ours(arn, nonce)  # a lock created just before a failure or Ctrl-C must not linger
            raise

    def _lock_definition(self, names: FlowNames, nonce: str, holder: Holder) -> str:
        note = {
            "lock": self.scope(names),
            "holder": holder.as_json(),
            "nonce": nonce,
            "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        return json.dumps({"Comment": json.dumps(note), "StartAt": "lock", "States": {"lock": {"Type": "Succeed"}}})

    def _take_lock(
        self, names: FlowNames, arn: str, nonce: str, holder: Holder, timeout: float, waiting: Callable[[str], None]
    ) -> tuple[str, str]:
        sfn = self.aws.client("stepfunctions")
        definition = self._lock_definition(names, nonce, holder)
        deadline = time.monotonic() + timeout
        said, pause = False, _FIRST_PAUSE
        who: str | None = None
        for _ in range(100_000):  # bounded in count as well as by the deadline
            with contextlib.suppress(sfn.exceptions.StateMachineAlreadyExists, sfn.exceptions.StateMachineDeleting):
                sfn.create_state_machine(
                    name=arn.rsplit(":", 1)[1],
                    definition=definition,
                    roleArn=self.aws.role(),
                    tags=[
                        {"key": TAG_PREFIX + "lock", "value": "true"},
                        {"key": TAG_PREFIX + "lock-of", "value": self.scope(names)},
                    ],
                )
            described = self._describe_lock(arn)
            held = _lock_note(described) if described is not None else {}
            if held.get("nonce") == nonce:
                return (arn, nonce)
            live = described is not None and described.get("status") != "DELETING"
            if live and self._is_stale(held, _server_age(described or {})):
                self._delete_lock(arn, held.get("nonce"))  # then tried again, after a short pause
            elif live:
                who, pause = _held_by(held), _WAIT_PAUSE
                if not said:
                    waiting(f"waiting for the lock on {self.scope(names)}, held by {who} (up to {timeout:g} s)")
                    said = True
            left = deadline - time.monotonic()
            if left <= 0 and who is None:  # never held by anyone it could name: broken or deleting at each look
                raise ConflictError(
                    f"could not take the lock on {self.scope(names)} in {timeout:g} s: at every look it was being "
                    "deleted or was not a lock mfproj can read",
                    hint="run the command again; 'mfproj unlock' removes what is there",
                )
            if left <= 0:
                raise ConflictError(
                    f"another deploy of {self.scope(names)} is in progress ({who}); waited {timeout:g} s for its lock",
                    hint="wait for it to finish and run the command again; if its holder is gone, "
                    "'mfproj unlock' removes the lock (MFPROJ_LOCK_TIMEOUT sets how long to wait)",
                )
            # Every pass pauses: a lock broken, deleting or gone again at each look is not a reason to spin.
            time.sleep(min(pause, left))
            pause = min(_WAIT_PAUSE, pause * 2)
        raise ConflictError(f"could not lock {self.scope(names)}", hint="run the command again")

    def _describe_lock(self, arn: str) -> Mapping[str, Any] | None:
        """The lock state machine as described, None when there is none. An answer without a definition
        says nothing of whose it is: an error, never a lock to break (or to take)."""
        sfn = self.aws.client("stepfunctions")
        try:
            described: Mapping[str, Any] = sfn.describe_state_machine(stateMachineArn=arn)
        except sfn.exceptions.StateMachineDoesNotExist:
            return None
        if not isinstance(described.get("definition"), str):
            raise BackendError(
                f"Step Functions described the lock {arn.rsplit(':', 1)[1]} without its definition",
                hint="run the command again; if it says so again, 'mfproj unlock' removes the lock",
            )
        return described

    @staticmethod
    def _is_stale(held: Mapping[str, Any], age: float | None) -> bool:
        """Whether a lock may be broken. Its age is the service's own (its creation time against the
        time the service answered): a waiter whose clock is off never breaks a live lock."""
        owner = Holder.from_json(held.get("holder"))
        if owner is not None and owner.is_gone():
            return True  # its process on this host no longer exists: broken at once
        if owner is not None and owner.is_this_process():
            with _HELD_LOCK:
                return held.get("nonce") not in _HELD
        if not held.get("nonce"):
            return True  # not a lock note mfproj can read: not a lock anyone holds
        return age is not None and age > LOCK_TTL_SECONDS

    def _delete_lock(self, arn: str, nonce: Any) -> bool:
        """Deletes the lock only if it is still the one with `nonce` (not a lock taken since)."""
        sfn = self.aws.client("stepfunctions")
        described = self._describe_lock(arn)
        if described is None or _lock_note(described).get("nonce") != nonce:
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
            with self.aws.errors(f"releasing the lock {arn.rsplit(':', 1)[1]}"):
                self._delete_lock(arn, nonce)

    def lock_holder(self, names: FlowNames) -> str | None:
        """Who holds the deployment's lock, or None if nobody does."""
        sfn = self.aws.client("stepfunctions")
        arn = self.aws.state_machine_arn(self.lock_name(self.scope(names)))
        with self.aws.errors(f"reading the lock of {self.scope(names)}"):
            try:
                return _held_by(_lock_note(sfn.describe_state_machine(stateMachineArn=arn)))
            except sfn.exceptions.StateMachineDoesNotExist:
                return None

    def find_locks(self, project: str, branch: str) -> list[LeftLock]:
        """Every lock of the branch's state machines (leftovers of killed deploys): found through the
        tagging API by their lock tag, kept when the state machine they guard is the branch's."""
        start = attach_state_machine_prefix(f"{project}.{branch}.", self.aws.settings.name_prefix(self.aws.env))
        tagging, sfn = self.aws.client("resourcegroupstaggingapi"), self.aws.client("stepfunctions")
        found = []
        with self.aws.errors(f"finding the locks of {project} {branch}"):
            pages = tagging.get_paginator("get_resources").paginate(
                TagFilters=[{"Key": TAG_PREFIX + "lock", "Values": ["true"]}],
                ResourceTypeFilters=["states:stateMachine"],
            )
            arns = [m["ResourceARN"] for page in pages for m in page.get("ResourceTagMappingList", [])][:10_000]
            for arn in arns:
                try:
                    described = sfn.describe_state_machine(stateMachineArn=arn)
                except sfn.exceptions.StateMachineDoesNotExist:
                    continue
                guarded = _lock_of(described)
                if guarded == start[:-1] or guarded.startswith(start):  # the branch's, or a flow's (older)
                    found.append(LeftLock(arn, guarded, _held_by(_lock_note(described))))
        return found

    def remove_lock(self, lock: LeftLock) -> None:
        sfn = self.aws.client("stepfunctions")
        with (
            self.aws.errors(f"removing the lock of {lock.guards}"),
            contextlib.suppress(sfn.exceptions.StateMachineDoesNotExist),
        ):
            sfn.delete_state_machine(stateMachineArn=lock.identifier)

    def unlock(self, names: FlowNames) -> str | None:
        """Removes the deployment's lock whoever holds it; returns who held it (None: there was none)."""
        sfn = self.aws.client("stepfunctions")
        arn = self.aws.state_machine_arn(self.lock_name(self.scope(names)))
        with self.aws.errors(f"removing the lock of {self.scope(names)}"):
            try:
                held = _lock_note(sfn.describe_state_machine(stateMachineArn=arn))
                sfn.delete_state_machine(stateMachineArn=arn)
            except sfn.exceptions.StateMachineDoesNotExist:
                return None
        return _held_by(held)


def _lock_of(described: Mapping[str, Any]) -> str:
    return str(_lock_note(described).get("lock") or "")[:256]


def _server_age(described: Mapping[str, Any]) -> float | None:
    """Seconds since the lock was created, by the service's clock alone: its `creationDate` against the
    `Date` of the very answer that carried it. None when the answer lacks either."""
    import email.utils

    created = described.get("creationDate")
    header = ((described.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}).get("date")
    if not isinstance(created, _dt.datetime) or not header:
        return None
    try:
        now = email.utils.parsedate_to_datetime(str(header))
    except (TypeError, ValueError):
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=_dt.timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=_dt.timezone.utc)
    return (now - created).total_seconds()


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
