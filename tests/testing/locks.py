"""Step Functions locks as another process would have left them: for the lock, teardown and unlock tests."""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

from mfproj.backends.step_functions.backend import StepFunctionsBackend
from mfproj.backends.step_functions.settings import StepFunctionsSettings
from mfproj.holder import Holder
from tests import names as names_for_tests
from tests.testing.fixtures import ROLE

NAMES = names_for_tests.flow_names("myproj", "user.alice", "HelloFlow")
ELSEWHERE = Holder(user="bob", host="build-agent-7", pid=4242, started="1")


def lock_backend() -> StepFunctionsBackend:
    return StepFunctionsBackend(StepFunctionsSettings(region="us-east-1", role_arn=ROLE), env=os.environ)


def plant_lock(sfn: Any, holder: Holder, *, age: float = 0.0, nonce: str = "planted") -> str:
    """A lock as another process would have left it."""
    backend = lock_backend()
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=age)
    scope = backend.lock_scope(NAMES)  # the branch's lock
    note = {"lock": scope, "holder": holder.as_json(), "nonce": nonce, "since": since.isoformat()}
    definition = {"Comment": json.dumps(note), "StartAt": "lock", "States": {"lock": {"Type": "Succeed"}}}
    name = backend.lock_name(scope)
    return str(sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"])
