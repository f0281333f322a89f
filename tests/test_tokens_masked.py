"""The whole CLI surface with a known production token: it appears nowhere unless a command reveals it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mfproj import naming
from mfproj.keyring import Keyring
from tests.conftest import Cli, write_manifest

PREFIX = naming.token_prefix("myproj", "prod")


def test_the_token_is_never_printed_unless_asked(
    cli: Cli, tmp_path: Path, aws: Any, kube: Any, secrets: set[str]
) -> None:
    (tmp_path / "a.asl.json").write_text(
        json.dumps({"StartAt": "a", "States": {"a": {"Type": "Pass", "Result": "${mfproj.namespace}", "End": True}}})
    )
    (tmp_path / "a.json").write_text(json.dumps({"spec": {"entrypoint": "a", "templates": []}}))
    write_manifest(
        tmp_path,
        """
        [project]
        name = "myproj"
        [[flows]]
        name = "HelloFlow"
        step_functions = "a.asl.json"
        argo_workflows = "a.json"
        schedule = "0 * * * *"
        [step_functions]
        region = "us-east-1"
        role_arn = "arn:aws:iam::123456789012:role/r"
        """,
        templates=False,
    )
    alice = {"METAFLOW_USER": "alice", "METAFLOW_TOKEN_HOME": str(tmp_path / "kr-alice")}
    bob = {"METAFLOW_USER": "bob", "METAFLOW_TOKEN_HOME": str(tmp_path / "kr-bob")}
    p = "--production"
    sfn = ("--backend", "step-functions")

    assert cli("deploy", p, env=alice).code == 0  # the branch's first deployment makes its token
    known = Keyring(tmp_path / "kr-alice").load_token(PREFIX)
    assert known is not None
    secrets.add(known)  # the `cli` fixture fails on any output with it, unless reveal=True
    commands: list[tuple[tuple[str, ...], dict[str, str], int]] = [
        (("names", p), alice, 0),
        (("names", p, "-o", "json"), alice, 0),
        (("deploy", p), alice, 0),
        (("deploy", p, "-o", "json"), alice, 0),
        (("deploy", p, "--dry-run"), alice, 0),
        (("deploy", p, "--dry-run", "-o", "json"), alice, 0),
        (("--debug", "deploy", p), bob, 3),
        (("deploy", p, "--authorize", f"{PREFIX}-0-wrongwrongwrongwrongwrongwr"), bob, 3),
        (("--debug", "deploy", p, "--authorize", f"{PREFIX}-0-wrongwrongwrongwrongwrongwr"), bob, 3),
        (("trigger", "HelloFlow", *sfn, p, "--wait"), alice, 0),
        (("trigger", "HelloFlow", *sfn, p, "--tag", "x", "-o", "json"), alice, 0),
        (("trigger", "HelloFlow", "--backend", "argo-workflows", p, "-o", "json"), alice, 0),
        (("runs", p), alice, 0),
        (("runs", p, "-o", "json"), alice, 0),
        (("runs", p, "--all-namespaces", "-o", "json"), alice, 0),
        (("runs", p, "--namespace", f"production:{known}", "-o", "json"), alice, 0),
        (("token", "list"), alice, 0),
        (("token", "list", "-o", "json"), alice, 0),
        (("token", "show", p), alice, 0),
        (("token", "show", p, "-o", "json"), alice, 0),
        (("token", "share", p), alice, 0),  # the share string encodes the token; it never shows it bare
        (("token", "share", p, "-o", "json"), alice, 0),
        (("--debug", "token", "authorize", p, f"{PREFIX}-0-abcd", "--from-env", "X"), bob, 2),
        (("delete", "HelloFlow", p, "--yes"), bob, 3),
        (("--debug", "delete", "HelloFlow", p, "--yes"), bob, 3),
    ]
    for args, env, code in commands:
        result = cli(*args, env=env)
        assert result.code == code, (args, result.stderr)
    in_namespace = cli("runs", p, "--namespace", f"production:{known}", "-o", "json", env=alice).json()
    assert len(in_namespace) == 3  # the deployment really runs under the known token
    run_id = cli("runs", p, "--latest", "-o", "json", env=alice).json()[0]["run_id"]
    assert cli("runs", "show", run_id, p, env=alice).code == 0
    assert cli("runs", "show", run_id, p, "-o", "json", env=alice).code == 0
    # Asked for, it is shown.
    assert known in cli("token", "show", p, "--reveal", env=alice, reveal=True).stdout
    assert cli("delete", "HelloFlow", p, "--yes", env=alice).code == 0
    # No file mfproj wrote outside the keyrings holds it (mfproj writes no logs).
    for path in tmp_path.rglob("*"):
        if path.is_file() and "kr-" not in str(path.relative_to(tmp_path)):
            assert known not in path.read_text(errors="ignore"), path


FOREIGN = "mfprj-aaaaaaaaaaaaaaaa-3-notmineatallnotmineatall12"


def test_every_token_is_masked_in_dry_run_diffs_not_only_the_callers(
    cli: Cli, tmp_path: Path, aws: Any, secrets: set[str]
) -> None:
    secrets.add(FOREIGN)
    template = {
        "Comment": "copied from " + FOREIGN,
        "StartAt": "a",
        "States": {"a": {"Type": "Pass", "Result": "${mfproj.namespace}", "End": True}},
    }
    (tmp_path / "a.asl.json").write_text(json.dumps({**template, "Comment": "v1"}))
    write_manifest(
        tmp_path,
        """
        [project]
        name = "myproj"
        [[flows]]
        name = "HelloFlow"
        step_functions = "a.asl.json"
        [step_functions]
        region = "us-east-1"
        role_arn = "arn:aws:iam::123456789012:role/r"
        """,
        templates=False,
    )
    alice = {"METAFLOW_USER": "alice", "METAFLOW_TOKEN_HOME": str(tmp_path / "kr-alice")}
    assert cli("deploy", "--production", env=alice).code == 0
    deployed = Keyring(tmp_path / "kr-alice").load_token(PREFIX)
    assert deployed
    secrets.add(deployed)
    (tmp_path / "a.asl.json").write_text(json.dumps(template))
    # Bob, with the token, plans a move to a fresh token: the diff shows the deployed token, the new one and
    # a token copied into the template by hand; none of them in clear.
    bob = {"METAFLOW_USER": "bob", "METAFLOW_TOKEN_HOME": str(tmp_path / "kr-bob"), "MFPROJ_PRODUCTION_TOKEN": deployed}
    for output in ("table", "json"):
        result = cli("deploy", "--production", "--dry-run", "--generate-new-token", "-o", output, env=bob)
        assert result.code == 0, result.stderr
        text = result.stdout + result.stderr
        assert "mfprj-aaaaaaaaaaaaaaaa-3-****" in text
        assert f"{PREFIX}-0-****" in text and f"{PREFIX}-1-****" in text


def test_errors_and_tracebacks_mask_every_token(capsys: Any) -> None:
    from mfproj.cli import output
    from mfproj.errors import BackendError

    error = BackendError(f"the server said: bad annotation {FOREIGN}", hint=f"remove {FOREIGN}")
    try:
        raise error
    except BackendError as exc:
        assert output.report_error(exc, debug=True) == 5
    written = capsys.readouterr().err
    assert FOREIGN not in written
    assert written.count("mfprj-aaaaaaaaaaaaaaaa-3-****") >= 3  # message, hint and the traceback's own line
    assert "Traceback" in written
