"""The Step Functions backend: its parts (client, lock, deploying, runs) as one `Backend`.

Finding a deployment costs a constant number of calls: the state machine's ARN is built from the
partition, region and account (one STS call per process) and described; the reference instead pages
through `list_state_machines`.
"""

from __future__ import annotations

from mfproj.backends.base import Backend
from mfproj.backends.step_functions.inventory import Inventorying
from mfproj.backends.step_functions.lock import Locking
from mfproj.backends.step_functions.runs import Running


class StepFunctionsBackend(Locking, Inventorying, Running, Backend):
    name = "step_functions"
