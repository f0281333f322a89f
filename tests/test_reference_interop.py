"""Guarding both ways with the reference: Metaflow's own `step-functions create` and `argo-workflows create`
run against the emulators, next to mfproj, on one production deployment.

Each tool refuses the other's production deployment without its token and accepts it with the token:
mfproj writes the owner and token where the reference reads them (the `start` state's
`Parameters.Parameters` on Step Functions, the `metaflow/*` annotations on Argo), and reads them back
from there, so a deployment the reference made since wins over mfproj's older tags.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mfproj import naming
from mfproj.keyring import Keyring
from tests.conftest import Cli, as_user
from tests.testing.fixtures import ROLE, Flow, make_project

pytestmark = pytest.mark.slow

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:myproj.prod.HelloFlow"
PROD = naming.token_prefix("myproj", "prod")
BUCKET = "mfproj-reference-interop"

FLOW = """
from metaflow import FlowSpec, project, step


@project(name="myproj")
class HelloFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    HelloFlow()
"""

# mfproj's template in the reference's shape: a `start` task whose Parameters.Parameters the reference reads.
ASL = {
    "StartAt": "start",
    "States": {
        "start": {
            "Type": "Task",
            "Resource": "arn:aws:states:::batch:submitJob.sync",
            "Parameters": {
                "JobName": "start",
                "JobQueue": "mfproj-queue",
                "JobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/hello:1",
                "Parameters": {"metaflow.flow_name": "HelloFlow", "step_name": "start"},
            },
            "Next": "end",
        },
        "end": {"Type": "Succeed"},
    },
}
ARGO = {"spec": {"entrypoint": "start", "templates": [{"name": "start", "container": {"image": "python:3.11"}}]}}


@pytest.fixture
def proj(tmp_path: Path, aws: Any, kube: Any) -> Path:
    import boto3

    (tmp_path / "flow.py").write_text(FLOW)
    make_project(tmp_path, Flow("HelloFlow", step_functions=ASL, argo_workflows=ARGO, file="hello"))
    # What the reference needs to build a state machine: its datastore bucket and an AWS Batch job queue.
    client = lambda service: boto3.client(service, endpoint_url=aws.url, region_name="us-east-1")  # noqa: E731
    client("s3").create_bucket(Bucket=BUCKET)
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]  # a record in the emulator, no network
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="batch", Description="batch", VpcId=vpc)["GroupId"]
    iam = client("iam")
    role = iam.create_role(RoleName="batch", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    profile = iam.create_instance_profile(InstanceProfileName="batch")["InstanceProfile"]["Arn"]
    batch = client("batch")
    environment = batch.create_compute_environment(
        computeEnvironmentName="mfproj-ce",
        type="MANAGED",
        state="ENABLED",
        serviceRole=role,
        computeResources={
            "type": "EC2",
            "minvCpus": 0,
            "maxvCpus": 4,
            "desiredvCpus": 0,
            "instanceTypes": ["m5.large"],
            "subnets": [subnet],
            "securityGroupIds": [group],
            "instanceRole": profile,
        },
    )
    batch.create_job_queue(
        jobQueueName="mfproj-queue",
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment["computeEnvironmentArn"]}],
    )
    return tmp_path


def _reference(tmp_path: Path, user: str, backend: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """`python flow.py --production <backend> create` as `user`, with that user's own token store."""
    env = {
        **os.environ,
        "METAFLOW_USER": user,
        "METAFLOW_HOME": str(tmp_path / "metaflow-home"),
        "METAFLOW_TOKEN_HOME": str(tmp_path / f"keyring-{user}"),
        "METAFLOW_DEFAULT_DATASTORE": "s3",
        "METAFLOW_DATASTORE_SYSROOT_S3": f"s3://{BUCKET}/metaflow",
        "METAFLOW_DEFAULT_METADATA": "local",
        "METAFLOW_SFN_IAM_ROLE": ROLE,
        "METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE": ROLE,
        "METAFLOW_ECS_S3_ACCESS_IAM_ROLE": ROLE,
        "METAFLOW_BATCH_JOB_QUEUE": "mfproj-queue",
        "METAFLOW_KUBERNETES_NAMESPACE": "default",
    }
    return subprocess.run(
        [sys.executable, "flow.py", "--no-pylint", "--production", backend, "create", *extra],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _sfn_owner_and_token(sfn: Any) -> tuple[str, str]:
    definition = sfn.describe_state_machine(stateMachineArn=ARN)["definition"]
    definition = json.loads(definition) if isinstance(definition, str) else definition
    inner = definition["States"]["start"]["Parameters"]["Parameters"]
    return inner["metaflow.owner"], inner["metaflow.production_token"]


def _argo_owner_and_token(kube: Any) -> tuple[str, str]:
    annotations = kube.objects[("workflowtemplates", "default", "myproj.prod.helloflow")]["metadata"]["annotations"]
    return annotations["metaflow/owner"], annotations["metaflow/production_token"]


@pytest.mark.parametrize("backend", ["step-functions", "argo-workflows"])
def test_each_tool_refuses_the_others_production_deployment_without_the_token(
    cli: Cli, proj: Path, tmp_path: Path, sfn: Any, kube: Any, secrets: set[str], backend: str
) -> None:
    read = (lambda: _sfn_owner_and_token(sfn)) if backend == "step-functions" else (lambda: _argo_owner_and_token(kube))
    # 1. Alice deploys production with mfproj.
    assert cli("deploy", "--production", "--backend", backend, env=as_user("alice", tmp_path)).code == 0
    token = Keyring(tmp_path / "keyring-alice").load_token(PROD)
    assert token is not None
    secrets.add(token)
    assert read() == ("alice", token)  # where the reference looks

    # 2. The reference, as bob without the token: refused, nothing changed.
    refused = _reference(tmp_path, "bob", backend)
    assert refused.returncode != 0, refused.stdout + refused.stderr
    assert "production token" in (refused.stdout + refused.stderr).lower()
    assert read() == ("alice", token)

    # 3. The reference, as bob with the token: accepted; the deployment is now the reference's.
    accepted = _reference(tmp_path, "bob", backend, "--authorize", token)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert read() == ("bob", token)

    # 4. mfproj, as carol without the token: refused, and it says the reference's deployer owns it
    #    (the definition wins over mfproj's older record).
    denied = cli("deploy", "--production", "--backend", backend, env=as_user("carol", tmp_path))
    assert denied.code == 3, denied.stderr
    assert "was deployed by bob" in denied.stderr
    assert read() == ("bob", token)

    # 5. mfproj, as carol with the token: accepted, and the reference's place holds carol and the token.
    allowed = cli("deploy", "--production", "--backend", backend, "--authorize", token, env=as_user("carol", tmp_path))
    assert allowed.code == 0, allowed.stderr
    assert read() == ("carol", token)

    # 6. And the reference guards it again: dave, without the token, is refused.
    assert _reference(tmp_path, "dave", backend).returncode != 0
    assert read() == ("carol", token)
