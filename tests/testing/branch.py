"""A two-flow branch (test.solo) and what the tests read of it on the emulators: the builders the
branch-token, keyring, record, text and owner tests share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mfproj import naming
from mfproj.backends.step_functions.record import decode_record
from tests import names as names_for_tests
from tests.testing.fixtures import Flow, make_project

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:{}"
SOLO = naming.token_prefix("myproj", "test.solo")
PASS = {"StartAt": "a", "States": {"a": {"Type": "Pass", "Result": "${mfproj.namespace}", "End": True}}}
WORKFLOW_TEMPLATE = """\
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: replaced
spec:
  entrypoint: start
  templates:
    - name: start
      container:
        image: alpine:3.20
        args: ["${mfproj.namespace}"]
"""


def two_flow_project(root: Path, *, argo: bool = False, sfn: bool = True) -> Path:
    return make_project(
        root,
        *(
            Flow(
                flow,
                step_functions=PASS if sfn else None,
                argo_workflows=WORKFLOW_TEMPLATE if argo else None,
                file=f"flows/{flow}",
            )
            for flow in ("TrainFlow", "GuardFlow")
        ),
    )


def sfn_token(sfn: Any, name: str) -> str | None:
    tags = sfn.list_tags_for_resource(resourceArn=ARN.format(name))["tags"]
    record = decode_record({t["key"]: t["value"] for t in tags})
    return record.production_token if record else None


def argo_token(kube: Any, name: str) -> str | None:
    found = kube.objects.get(("workflowtemplates", "default", name))
    return found["metadata"]["annotations"]["metaflow/production_token"] if found else None


def sfn_name(flow: str, branch: str = "test.solo") -> str:
    return names_for_tests.flow_names("myproj", branch, flow).state_machine


def argo_name(flow: str, branch: str = "test.solo") -> str:
    return names_for_tests.flow_names("myproj", branch, flow).workflow_template


def retemplate(root: Path, flow: str, result: str) -> None:
    document = {"StartAt": "a", "States": {"a": {"Type": "Pass", "Result": result, "End": True}}}
    (root / "flows" / f"{flow}.asl.json").write_text(json.dumps(document))
