"""The Argo Workflows backend: its parts (client, deploying, runs) as one `Backend`. Its writes are
compare-and-swap (resourceVersion), so it takes no lock."""

from __future__ import annotations

from mfproj.backends.argo_workflows.inventory import Inventorying
from mfproj.backends.argo_workflows.runs import Running
from mfproj.backends.base import Backend


class ArgoWorkflowsBackend(Inventorying, Running, Backend):
    name = "argo_workflows"
