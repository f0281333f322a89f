"""`mfproj whoami`: what mfproj would use, with no request unless --check; --check says which backends
answer and as whom (moto and the Kubernetes emulator behind a counting proxy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli, write_manifest
from tests.emulators import FaultProxy
from tests.k8s_emulator import kubeconfig_for

ALICE = {"METAFLOW_USER": "alice"}
ROLE = "arn:aws:iam::210987654321:role/sfn-exec"


@pytest.fixture
def proxies(aws_proxy: FaultProxy, kube_proxy: FaultProxy) -> tuple[FaultProxy, FaultProxy]:
    return aws_proxy, kube_proxy


@pytest.fixture
def setup(tmp_path: Path, proxies: tuple[FaultProxy, FaultProxy]) -> dict[str, str]:
    write_manifest(
        tmp_path,
        f'[project]\nname = "myproj"\n[[flows]]\nname = "F"\nargo_workflows = "f.yaml"\n'
        f'[step_functions]\nregion = "eu-west-1"\nrole_arn = "{ROLE}"\n[argo_workflows]\nnamespace = "ml"\n',
    )
    (tmp_path / "kubeconfig").write_text(kubeconfig_for(proxies[1].url, context="lab"))
    return {**ALICE, "AWS_ENDPOINT_URL": proxies[0].url, "KUBECONFIG": str(tmp_path / "kubeconfig")}


def test_whoami_says_what_it_would_use_without_a_request(
    cli: Cli, tmp_path: Path, setup: dict[str, str], proxies: tuple[FaultProxy, FaultProxy]
) -> None:
    result = cli("whoami", "-b", "feature", "-o", "json", env=setup)
    assert result.code == 0, result.stderr
    found = result.json()
    assert (found["user"], found["user_branch"], found["branch"]) == ("alice", "user.alice", "test.feature")
    assert found["project"] == "myproj" and found["manifest"] == str(tmp_path / "mfproj.toml")
    assert found["keyring"] == str(tmp_path / "keyring")
    sfn = found["backends"]["step_functions"]
    assert (sfn["endpoint"], sfn["region"], sfn["account"]) == (proxies[0].url, "eu-west-1", "210987654321")
    argo = found["backends"]["argo_workflows"]
    assert (argo["context"], argo["namespace"], argo["server"], argo["user"]) == ("lab", "ml", proxies[1].url, "tester")
    assert "check" not in sfn and "check" not in argo
    assert proxies[0].log == [] and proxies[1].log == [], "no request without --check"
    table = cli("whoami", env=setup)
    assert table.code == 0 and "user branch   user.alice" in table.stdout and "context     lab" in table.stdout


def test_whoami_check_says_which_backends_answer_and_as_whom(
    cli: Cli, setup: dict[str, str], proxies: tuple[FaultProxy, FaultProxy]
) -> None:
    result = cli("whoami", "--check", "-o", "json", env=setup)
    assert result.code == 0, result.stderr
    backends = result.json()["backends"]
    assert backends["step_functions"]["check"]["answers"] is True
    assert backends["step_functions"]["check"]["as"].startswith("arn:aws:")
    assert backends["argo_workflows"]["check"] == {"answers": True, "as": "tester", "problem": None}
    assert proxies[0].log and proxies[1].log


def test_whoami_check_with_a_backend_down_exits_5_and_says_which(cli: Cli, setup: dict[str, str]) -> None:
    env = {**setup, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "MFPROJ_AWS_MAX_ATTEMPTS": "1"}
    result = cli("whoami", "--check", env=env)
    assert result.code == 5, result.stderr
    assert "step functions:" in result.stdout and "does not answer" in result.stdout
    assert "answers, as tester" in result.stdout  # the other backend still reports
    assert result.stderr.startswith("error: Step Functions did not answer") and "hint:" in result.stderr


def test_whoami_works_outside_a_project(cli: Cli, tmp_path: Path) -> None:
    result = cli("whoami", "-o", "json", env=ALICE)
    assert result.code == 0, result.stderr
    assert result.json()["manifest"] is None and "no mfproj.toml" in result.json()["manifest_problem"]
