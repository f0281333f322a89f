"""Bad input, generated: never a traceback, always an error that names what is wrong, and no invalid
name ever reaches an API (checked on the requests the emulators received)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfproj import identity, manifest, naming, tags
from mfproj.errors import EXIT_UNEXPECTED, ManifestError, MfprojError, ValidationError
from mfproj.share import SHARE_PREFIX, decode_share

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# --- manifests ----------------------------------------------------------------------------------

KEYS = [
    "project",
    "name",
    "flows",
    "step_functions",
    "argo_workflows",
    "schedule",
    "tags",
    "region",
    "role_arn",
    "namespace",
    "token_scheme",
    "context",
    "kubeconfig",
    "state_machine_prefix",
    "nmae",
    "x",
]
scalars = st.one_of(
    st.text(max_size=20),
    st.integers(),
    st.booleans(),
    st.floats(allow_nan=False),
    st.sampled_from(["HelloFlow", "my_proj", "0 * * * *", "us-east-1", "metaflow", "random", "x.json", ""]),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.sampled_from(KEYS), children, max_size=4)
    ),
    max_leaves=12,
)
documents = st.dictionaries(st.sampled_from(KEYS), values, max_size=5)


@SETTINGS
@given(document=documents)
def test_any_manifest_loads_or_fails_with_file_and_key(tmp_path: Path, document: dict[str, Any]) -> None:
    import tomli_w

    path = tmp_path / "mfproj.toml"
    try:
        path.write_text(tomli_w.dumps(document))
    except (TypeError, ValueError):
        return  # not representable in TOML
    try:
        loaded = manifest.load_manifest(path)
    except ManifestError as exc:
        assert str(exc).startswith(f"{path}: ")
        assert exc.key is not None or "invalid TOML" in str(exc) or "is required" in str(exc)
        return
    assert loaded.project and all(naming.FLOW_NAME_RE.match(f.name) for f in loaded.flows)


@SETTINGS
@given(text=st.text(max_size=300))
def test_any_text_as_a_manifest_fails_cleanly(tmp_path: Path, text: str) -> None:
    path = tmp_path / "mfproj.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    with contextlib.suppress(ManifestError):
        manifest.load_manifest(path)


# --- identity, names, tags, share strings -------------------------------------------------------

env_values = st.one_of(st.none(), st.text(max_size=30), st.sampled_from(["root", "", "1", "0", "True", "maybe"]))


@SETTINGS
@given(
    user=env_values,
    owner=env_values,
    branch=env_values,
    production=env_values,
    cli_branch=st.one_of(st.none(), st.text(max_size=20)),
    cli_production=st.one_of(st.none(), st.booleans()),
)
def test_any_identity_resolves_or_names_the_problem(
    tmp_path: Path,
    user: str | None,
    owner: str | None,
    branch: str | None,
    production: str | None,
    cli_branch: str | None,
    cli_production: bool | None,
) -> None:
    env = {
        k: v
        for k, v in {
            "METAFLOW_USER": user,
            "METAFLOW_OWNER": owner,
            "MFPROJ_BRANCH": branch,
            "MFPROJ_PRODUCTION": production,
            "METAFLOW_HOME": str(tmp_path),
        }.items()
        if v is not None
    }
    try:
        target = identity.target_for("myproj", branch=cli_branch, production=cli_production, env=env, cwd=tmp_path)
    except MfprojError as exc:
        assert exc.exit_code == 2 and exc.message
        return
    assert target.branch != "user.None" and target.branch != "user."
    assert target.token_prefix == naming.token_prefix("myproj", target.branch)


@SETTINGS
@given(values=st.lists(st.one_of(st.text(max_size=600), st.integers(), st.none(), st.binary(max_size=5)), max_size=60))
def test_any_tag_list_validates_or_names_the_tag(values: list[Any]) -> None:
    try:
        result = tags.validate_tags(values, where="--tag", user_tags=True)
    except tags.TagError as exc:
        assert re.fullmatch(r"--tag(\[\d+\])?", exc.key) and exc.rule
        return
    assert all(isinstance(t, str) and 0 < len(t) <= 500 for t in result) and len(result) <= 50


@SETTINGS
@given(text=st.text(max_size=400))
def test_any_share_string_decodes_or_is_refused(text: str) -> None:
    for candidate in (text, SHARE_PREFIX + text):
        try:
            decode_share(candidate)
        except ValidationError as exc:
            assert exc.exit_code == 2
            assert "damaged or incomplete" in exc.message or "not a production token" in exc.message


# --- the command line ---------------------------------------------------------------------------

WORDS = [
    "names",
    "init",
    "token",
    "list",
    "show",
    "share",
    "authorize",
    "forget",
    "completion",
    "bash",
    "zsh",
    "runs",
    "--branch",
    "-b",
    "--production",
    "--no-production",
    "-o",
    "--output",
    "json",
    "table",
    "yaml",
    "--strict",
    "--tag",
    "--limit",
    "--since",
    "7d",
    "--namespace",
    "user:x",
    "--all-namespaces",
    "--reveal",
    "--all",
    "--yes",
    "--force",
    "--project",
    "--flow",
    "HelloFlow",
    "-",
    "--from-env",
    "NOPE",
    "--from-file",
    "/nonexistent",
    "--metaflow-local",
    "Bad-Name",
    "",
    "x" * 200,
    "--help",
    "--manifest",
    "mfproj.toml",
    "--no-color",
    "--status",
    "weird",
    "--latest",
    "--",
    "é",
    "--version",
]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "mfproj.toml").write_text('[project]\nname = "myproj"\n[[flows]]\nname = "HelloFlow"\n')
    (tmp_path / ".metaflow").mkdir()
    monkeypatch.setenv("METAFLOW_USER", "alice")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    yield tmp_path


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=st.lists(st.sampled_from(WORDS), max_size=7))
def test_any_command_line_ends_with_a_documented_exit_code(workdir: Path, args: list[str]) -> None:
    from mfproj.cli import app as typer_app
    from mfproj.cli import fastpath

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = fastpath.try_run(list(args))
        if code is None:
            code = typer_app.run(list(args))
    assert code in (0, 2, 3, 4, 5, 6, 7), (args, code, err.getvalue())
    assert code != EXIT_UNEXPECTED
    assert "Traceback" not in err.getvalue(), (args, err.getvalue())


# --- no invalid name reaches an API ---------------------------------------------------------------

_SFN_NAME = re.compile(r"^[^\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]{1,80}$")
_RULE_NAME = re.compile(r"^[.\-_A-Za-z0-9]{1,64}$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@pytest.fixture
def proxied(tmp_path: Path, aws_proxy: Any, kube_proxy: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any, Path]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_proxy.url)
    (tmp_path / "a.asl.json").write_text(json.dumps({"StartAt": "a", "States": {"a": {"Type": "Succeed"}}}))
    (tmp_path / "a.json").write_text(json.dumps({"spec": {"entrypoint": "a", "templates": []}}))
    return aws_proxy, kube_proxy, tmp_path


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    user=st.text(min_size=1, max_size=40).filter(lambda u: u != "root" and "\x00" not in u),
    project=st.from_regex(r"[a-z0-9_]{1,30}", fullmatch=True),
    flow=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,40}", fullmatch=True),
)
def test_no_invalid_name_ever_reaches_an_api(
    proxied: tuple[Any, Any, Path], user: str, project: str, flow: str
) -> None:
    from mfproj.usecases import deploy, session

    aws_proxy, kube_proxy, root = proxied
    path = root / "mfproj.toml"
    path.write_text(
        f'[project]\nname = "{project}"\n[[flows]]\nname = "{flow}"\nstep_functions = "a.asl.json"\n'
        'argo_workflows = "a.json"\nschedule = "0 * * * *"\n'
        '[step_functions]\nregion = "us-east-1"\nrole_arn = "arn:aws:iam::123456789012:role/r"\n'
    )
    env = {**os.environ, "METAFLOW_USER": user, "METAFLOW_TOKEN_HOME": str(root / "keyring")}
    try:
        opened = session.open_session(manifest.load_manifest(path), branch=None, production=None, env=env)
        report = deploy.deploy(opened)
    except MfprojError as exc:
        # refused before the first request, a collision, or an earlier example's deployment of these names
        assert exc.exit_code in (2, 3, 6), exc
    else:
        # An example hypothesis repeats (while shrinking) finds its own earlier deployment unchanged.
        if any(o.action == "create" for o in report.outcomes if o.backend == "step_functions"):
            assert any(a.endswith("CreateStateMachine") for a, _ in aws_proxy.bodies)
        if any(o.action == "create" for o in report.outcomes if o.backend == "argo_workflows"):
            assert any(line.startswith("POST") for line, _ in kube_proxy.bodies)
        assert all(o.action in ("create", "unchanged") for o in report.outcomes), report.outcomes
    for action, body in aws_proxy.bodies:
        document = json.loads(body or b"{}") if action.startswith("AWS") else {}
        if action.endswith(("CreateStateMachine", "PutRule")):
            name = document.get("name") or document.get("Name")
            assert (_RULE_NAME if action.endswith("PutRule") else _SFN_NAME).match(name), (action, name)
    for request_line, body in kube_proxy.bodies:
        if request_line.startswith(("POST", "PUT")) and body and "selfsubjectreviews" not in request_line:
            name = json.loads(body)["metadata"].get("name") or "generated"
            assert _K8S_NAME.match(name) and len(name) <= 63, (request_line, name)
    aws_proxy.clear()
    kube_proxy.clear()
