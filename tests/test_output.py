"""The surface people touch: bad input ends in one `error:` line, a `hint:` line and the documented exit
code, never a traceback; a reader that goes away ends the command quietly. (Issue #14.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, write_manifest
from tests.terminal import in_terminal

ARGO_FLOW = '[project]\nname = "p"\n[[flows]]\nname = "F"\nargo_workflows = "f.yaml"\n'
WORKFLOW_TEMPLATE = """\
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
spec:
  entrypoint: start
  templates:
    - name: start
      container: {image: alpine, command: [echo, "${mfproj.namespace}"]}
"""


def _manifest_dir(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "empty").mkdir()
    return {}


def _template_is_a_directory(tmp_path: Path) -> dict[str, str]:
    write_manifest(
        tmp_path, '[project]\nname = "p"\n[[flows]]\nname = "F"\nargo_workflows = "flows"\n', templates=False
    )
    (tmp_path / "flows").mkdir()
    return {}


def _kubeconfig(text: str) -> Any:
    def setup(tmp_path: Path) -> dict[str, str]:
        write_manifest(tmp_path, ARGO_FLOW)
        (tmp_path / "f.yaml").write_text(WORKFLOW_TEMPLATE)
        (tmp_path / "kubeconfig").write_text(text)
        return {"KUBECONFIG": str(tmp_path / "kubeconfig")}

    return setup


def _keyring_under_a_file(variable: str) -> Any:
    def setup(tmp_path: Path) -> dict[str, str]:
        write_manifest(tmp_path, ARGO_FLOW)
        (tmp_path / "a-file").write_text("")
        env = {variable: str(tmp_path / "a-file" / "home")}
        if variable == "HOME":
            env["METAFLOW_TOKEN_HOME"] = ""
        return env

    return setup


def _lock_file_blocked(tmp_path: Path) -> dict[str, str]:
    """The keyring's lock file cannot be opened for writing (here: a directory stands in its place; as
    a non-root user a read-only keyring fails the same open)."""
    from mfproj import naming

    write_manifest(tmp_path, ARGO_FLOW)
    keyring = tmp_path / "keyring"
    (keyring / f".{naming.token_prefix('p', 'test.x')}.lock").mkdir(parents=True)
    return {}


def _corrupt_keyring(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "keyring").mkdir(exist_ok=True)
    (tmp_path / "keyring" / "mfprj-abcdef").write_text("{not json")
    return {}


def _no_manifest_needed(tmp_path: Path) -> dict[str, str]:
    write_manifest(tmp_path, ARGO_FLOW)
    return {}


def _prod_token(tmp_path: Path) -> str:
    from mfproj import naming, tokens

    return tokens.random_token(naming.token_prefix("p", "test.x"), None)


BAD_INPUT: list[tuple[str, Any, list[str], int, str]] = [
    ("since overflow", None, ["runs", "--since", "99999999d"], 2, "reaches back before the year 1"),
    ("negative timeout", None, ["trigger", "F", "--wait", "--timeout", "-5"], 2, "--timeout -5 is not a number"),
    ("nan timeout", None, ["trigger", "F", "--wait", "--timeout", "nan"], 2, "--timeout nan is not a number"),
    ("timeout without wait", None, ["trigger", "F", "--timeout", "5"], 2, "--timeout applies to --wait"),
    ("unknown option", None, ["deploy", "--nope"], 2, "no such option: --nope"),
    ("bad choice", None, ["names", "-o", "yaml"], 2, "'yaml' is not one of 'table', 'wide', 'json'"),
    ("not a number", None, ["runs", "--limit", "x"], 2, "invalid value for '--limit': not a whole number"),
    ("unknown command", None, ["deplyo"], 2, "no such command 'deplyo'"),
    ("missing argument", None, ["runs", "show"], 2, "missing argument 'RUN_ID'"),
    ("bad status", None, ["runs", "--status", "done"], 2, "'done' is not one of"),
    ("-m DIR names", _manifest_dir, ["-m", "empty", "names"], 2, "empty: is a directory without mfproj.toml"),
    ("-m DIR deploy", _manifest_dir, ["-m", "empty", "deploy"], 2, "empty: is a directory without mfproj.toml"),
    ("-m missing", None, ["-m", "missing.toml", "deploy"], 2, "missing.toml: no such file"),
    ("template dir", _template_is_a_directory, ["names"], 2, "template 'flows' is a directory, not a file"),
    ("kubeconfig text", _kubeconfig("just text\n"), ["deploy"], 2, "kubeconfig is not a kubeconfig"),
    ("kubeconfig yaml", _kubeconfig("a: [\n"), ["deploy"], 2, "kubeconfig is not a kubeconfig"),
    (
        "keyring not writable",
        _keyring_under_a_file("METAFLOW_TOKEN_HOME"),
        ["token", "authorize", "-b", "x", "TOKEN"],
        2,
        "cannot create the keyring directory",
    ),
    (
        "HOME missing",
        _keyring_under_a_file("HOME"),
        ["token", "authorize", "-b", "x", "TOKEN"],
        2,
        "cannot create the keyring directory",
    ),
    (
        "keyring lock blocked",
        _lock_file_blocked,
        ["token", "authorize", "-b", "x", "TOKEN"],
        2,
        "cannot write to the keyring",
    ),
    ("corrupt keyring", _corrupt_keyring, ["token", "list"], 2, "mfprj-abcdef is corrupt (not JSON)"),
    ("forget nothing", _no_manifest_needed, ["token", "forget", "-b", "x"], 4, "no production token stored"),
]


@pytest.mark.parametrize(("name", "setup", "args", "code", "message"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_every_bad_input_is_one_error_and_a_hint(
    cli: Cli, tmp_path: Path, name: str, setup: Any, args: list[str], code: int, message: str, fmt: str
) -> None:
    env = {"METAFLOW_USER": "alice", **(setup(tmp_path) if setup else {})}
    args = [_prod_token(tmp_path) if a == "TOKEN" else a for a in args]
    as_json = fmt == "json" and args[0] != "-m" and "-o" not in args  # -m: before any command
    result = cli(*args, *(["-o", "json"] if as_json else []), env=env, reveal=True)
    assert result.code == code, result.stderr
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr, result.stderr
    if as_json:
        error = json.loads(result.stderr)["error"]
        assert message in error["message"] and error["hint"] and error["exit_code"] == code, error
        return
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error:") and message in lines[0], result.stderr
    assert any(line.startswith("hint:") for line in lines[1:]), result.stderr
    assert result.stdout == "", "an error prints no result"
    if name in ("keyring not writable", "HOME missing"):
        assert not (tmp_path / "a-file").read_text(), "nothing half written"


def test_a_manifest_with_a_byte_order_mark_loads(cli: Cli, tmp_path: Path) -> None:
    path = write_manifest(tmp_path, '[project]\nname = "p"\n[[flows]]\nname = "F"\nargo_workflows = "f.json"\n')
    path.write_text("\ufeff" + path.read_text(), encoding="utf-8")
    result = cli("names", "-o", "json", env={"METAFLOW_USER": "alice"})
    assert result.code == 0, result.stderr
    assert result.json()["project"] == "p"


def test_init_writes_files_to_be_shared(cli: Cli, tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        assert cli("init", "--project", "p", "--flow", "F", "--dir", str(tmp_path / "new")).code == 0
    finally:
        os.umask(previous)
    for path in (tmp_path / "new").rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o777 == 0o644, path


@pytest.mark.parametrize("fmt", ["json", "table"])
@pytest.mark.parametrize("listing", ["names", "runs --metaflow-local -A"])  # the fast path, and Typer's
def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path, fmt: str, listing: str) -> None:
    write_manifest(tmp_path, '[project]\nname = "p"\n[[flows]]\nname = "F"\nargo_workflows = "f.json"\n')
    _local_runs(tmp_path / ".metaflow", 3)
    # `true` exits at once, before mfproj writes: every write meets a closed pipe.
    command = f"{sys.executable} -m mfproj {listing} -o {fmt} | true; echo $" + "{PIPESTATUS[0]}"
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "METAFLOW_USER": "alice"},
    )
    assert "Traceback" not in done.stderr and "Exception" not in done.stderr, done.stderr
    assert done.stdout.strip() == "141"  # ended by the closed pipe (128 + SIGPIPE), as other tools end


# --- wording and checks met with a real backend (the Kubernetes emulator) ---

ALICE = {"METAFLOW_USER": "alice"}


@pytest.fixture
def argo_project(tmp_path: Path, kube: Any) -> Path:
    write_manifest(tmp_path, ARGO_FLOW)
    (tmp_path / "f.yaml").write_text(WORKFLOW_TEMPLATE)
    return tmp_path


def test_argo_not_deployed_names_the_workflow_template(cli: Cli, argo_project: Path) -> None:
    for args in (["delete", "F", "--yes"], ["trigger", "F"]):
        result = cli(*args, env=ALICE)
        assert result.code == 4, result.stderr
        assert "p.user.alice.f" in result.stderr and "p.user.alice.F" not in result.stderr, result.stderr


def test_an_unchanged_argo_dry_run_shows_no_diff_of_volatile_annotations(cli: Cli, argo_project: Path) -> None:
    assert cli("deploy", env=ALICE).code == 0
    (argo_project / "f.yaml").write_text(WORKFLOW_TEMPLATE.replace("alpine", "alpine:3.20"))
    plan = cli("deploy", "--dry-run", "-o", "json", env=ALICE)
    assert plan.code == 0, plan.stderr
    diff = plan.json()["deployments"][0]["diff"]
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed and all("image" in line for line in changed), changed  # the one real change, nothing else


def test_delete_json_says_owner_not_redeploy(cli: Cli, argo_project: Path) -> None:
    assert cli("deploy", env=ALICE).code == 0
    result = cli("delete", "F", "--yes", "-o", "json", env=ALICE)
    assert result.code == 0, result.stderr
    assert {d["authorization"] for d in result.json()["deleted"]} == {"owner"}


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (WORKFLOW_TEMPLATE + "specs:\n  entrypoint: x\n", "unknown top-level key(s) specs"),
        (
            "metadata:\n  annotations:\n    a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"    {c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                for p, c in zip("abcdef", "bcdefg", strict=True)
            )
            + "spec: {entrypoint: s, templates: [{name: s, container: {image: x, args: *g}}]}\n",
            "expands to more than 100000 values",
        ),
    ],
    ids=["unknown key", "alias bomb"],
)
def test_a_workflow_template_that_cannot_be_meant_is_refused_before_any_request(
    cli: Cli, argo_project: Path, kube: Any, template: str, message: str
) -> None:
    (argo_project / "f.yaml").write_text(template)
    result = cli("deploy", env=ALICE)
    assert result.code == 2, result.stderr
    assert result.stderr.startswith("error:") and message in result.stderr, result.stderr
    assert "hint:" in result.stderr
    assert not kube.objects, "nothing sent"


def test_trigger_refuses_to_push_a_run_past_50_user_tags(cli: Cli, argo_project: Path, kube: Any) -> None:
    deployed = [f"--tag=d{i}" for i in range(30)]
    assert cli("deploy", *deployed, env=ALICE).code == 0
    workflows_before = [key for key in kube.objects if key[0] == "workflows"]
    result = cli("trigger", "F", *[f"--tag=t{i}" for i in range(25)], env=ALICE)
    assert result.code == 2, result.stderr
    assert "would have 55 distinct user tags" in result.stderr and "hint:" in result.stderr
    assert [key for key in kube.objects if key[0] == "workflows"] == workflows_before, "no run started"
    assert cli("trigger", "F", *[f"--tag=t{i}" for i in range(20)], env=ALICE).code == 0


def test_names_json_has_no_rule_for_an_unscheduled_flow(cli: Cli, tmp_path: Path) -> None:
    write_manifest(
        tmp_path,
        '[project]\nname = "p"\n[[flows]]\nname = "F"\nstep_functions = "f.json"\n'
        '[[flows]]\nname = "G"\nstep_functions = "g.json"\nschedule = "0 3 * * *"\n'
        '[step_functions]\nrole_arn = "arn:aws:iam::123456789012:role/r"\n',
    )
    flows = cli("names", "-o", "json", env=ALICE).json()["flows"]
    rules = {f["flow"]: f["step_functions"]["eventbridge_rule"] for f in flows}
    assert rules["F"] is None and rules["G"]


# --- tables that fit the terminal ---


def _local_runs(root: Path, count: int) -> list[str]:
    ids = []
    for index in range(count):
        run_id = f"sfn-{index:04d}a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d6e7f"
        meta = root / "HelloFlow" / run_id / "_meta"
        meta.mkdir(parents=True)
        tags = [f"experiment:a-rather-long-tag-value-{index}", "team:ml-platform"]
        system = ["user:alice", "runtime:dev", "project:p", "project_branch:user.alice"]
        document = {"run_number": run_id, "flow_id": "HelloFlow", "tags": tags, "system_tags": system}
        meta.joinpath("_self.json").write_text(json.dumps({**document, "ts_epoch": 1_795_304_173_000 + index}))
        ids.append(run_id)
    (root / "HelloFlow" / "_meta").mkdir(parents=True, exist_ok=True)
    (root / "HelloFlow" / "_meta" / "_self.json").write_text('{"flow_id": "HelloFlow", "ts_epoch": 1}')
    return ids


@pytest.mark.parametrize("columns", [80, 160])
def test_run_ids_never_wrap_and_the_table_fits(tmp_path: Path, columns: int) -> None:
    ids = _local_runs(tmp_path / ".metaflow", 3)
    shown = in_terminal(["runs", "--metaflow-local", "-A"], tmp_path, {"METAFLOW_USER": "alice"}, columns)
    lines = shown.splitlines()
    for run_id in ids:
        assert any(run_id in line for line in lines), f"{run_id} is not whole on one line:\n{shown}"
    assert max(len(line.rstrip()) for line in lines) <= columns, shown
    wide = in_terminal(["runs", "--metaflow-local", "-A", "-o", "wide"], tmp_path, {"METAFLOW_USER": "alice"}, 80)
    assert "experiment:a-rather-long-tag-value-2, team:ml-platform" in wide, wide  # every column in full


def test_a_list_cut_by_the_limit_says_so(cli: Cli, tmp_path: Path) -> None:
    _local_runs(tmp_path / ".metaflow", 3)
    cut = cli("runs", "--metaflow-local", "-A", "--limit", "2", env=ALICE)
    assert cut.code == 0 and len(cut.stdout.splitlines()) == 3, cut.stdout  # header + 2
    assert "more runs match" in cut.stderr and "--limit" in cut.stderr
    whole = cli("runs", "--metaflow-local", "-A", "--limit", "3", env=ALICE)
    assert whole.code == 0 and "more runs" not in whole.stderr
    assert len(cli("runs", "--metaflow-local", "-A", "--limit", "2", "-o", "json", env=ALICE).json()) == 2


# --- progress that fits the terminal ---


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _draw(view: Any, height: int, width: int = 80) -> list[str]:
    from rich.console import Console

    console = Console(width=width, height=height, record=True, file=open(os.devnull, "w"), color_system=None)  # noqa: SIM115
    console.print(view.render(height))
    return console.export_text().rstrip("\n").splitlines()


def test_the_live_view_collapses_to_counts_when_it_would_not_fit() -> None:
    from mfproj.cli.progress import ProgressView

    clock = _Clock()
    view = ProgressView(enabled=False, clock=clock)
    for index in range(30):
        for backend in ("step_functions", "argo_workflows"):
            view.update(f"Flow{index:02d}", backend, "reading")
    clock.now += 5
    for index in range(24):
        view.update(f"Flow{index:02d}", "step_functions", "unchanged")
        view.update(f"Flow{index:02d}", "argo_workflows", "updated")
    view.update("Flow24", "step_functions", "waiting on a lock")
    view.update("Flow25", "step_functions", "waiting on a lock")
    view.update("Flow26", "argo_workflows", "failed")
    clock.now += 95  # Flow27..29 have been reading for 100 s: it says so, not a static "reading"
    lines = _draw(view, height=24)
    assert len(lines) <= 22, lines  # fits, with the prompt's line to spare: nothing scrolls away
    assert lines[0].startswith("48/60 done, 2 waiting on a lock, 1 failed · 1m40s"), lines[0]
    assert not any("unchanged" in line or "updated" in line for line in lines), "finished rows give way"
    assert any("Flow27" in line and "reading" in line and "1m40s" in line for line in lines), lines
    tall = _draw(view, height=80)
    assert len(tall) == 61, "where everything fits, every row is shown"
    small = _draw(view, height=8)
    assert len(small) <= 6 and "more in progress" in small[-1], small


def test_the_summary_counts_retries_of_the_backend_clients(cli: Cli, tmp_path: Path, aws: Any) -> None:
    from mfproj import retries
    from mfproj.cli.progress import ProgressView
    from tests.emulators import THROTTLED, Fault, FaultProxy

    write_manifest(
        tmp_path,
        '[project]\nname = "p"\n[[flows]]\nname = "F"\nstep_functions = "f.json"\n'
        '[step_functions]\nregion = "us-east-1"\nrole_arn = "arn:aws:iam::123456789012:role/r"\n',
        templates=False,
    )
    (tmp_path / "f.json").write_text('{"StartAt": "a", "States": {"a": {"Type": "Pass", "End": true}}}')
    proxy = FaultProxy(aws.url)
    try:
        view = ProgressView(enabled=False)
        proxy.faults.append(Fault("DescribeStateMachine", status=400, body=THROTTLED, times=2))  # retried
        result = cli("deploy", env={**ALICE, "AWS_ENDPOINT_URL": proxy.url})
        assert result.code == 0, result.stderr
        assert retries.total() - view.retries_before == 2
        assert "2 retries" in view.summary()
    finally:
        proxy.stop()


def test_ctrl_c_while_waiting_says_the_run_goes_on(tmp_path: Path, argo_project: Path) -> None:
    import signal
    import time

    env = {**os.environ, **ALICE, "METAFLOW_TOKEN_HOME": str(tmp_path / "keyring")}
    deployed = subprocess.run(
        [sys.executable, "-m", "mfproj", "deploy"],
        cwd=argo_project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert deployed.returncode == 0, deployed.stderr
    waiting = subprocess.Popen(
        [sys.executable, "-m", "mfproj", "trigger", "F", "--wait"],
        cwd=argo_project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert waiting.stderr is not None
    started = waiting.stderr.readline()  # "started argo-… (…)": the run exists, the wait has begun
    assert started.startswith("started argo-"), started
    time.sleep(1.0)
    waiting.send_signal(signal.SIGINT)
    rest = waiting.communicate(timeout=30)[1]
    assert waiting.returncode == 130, rest
    run_id = started.split()[1]
    assert f"{run_id} goes on running" in rest, rest
    assert f"mfproj runs show {run_id}" in rest and f"mfproj runs terminate {run_id}" in rest, rest
    assert "Traceback" not in rest


# --- safe paste ---


def test_pasting_a_wrapped_share_string_on_a_terminal_is_hidden_and_whole(tmp_path: Path) -> None:
    import pty
    import select
    import time

    from mfproj import naming, tokens
    from mfproj.share import Share, encode_share

    write_manifest(tmp_path, ARGO_FLOW)
    prefix = naming.token_prefix("p", "test.x")
    token = tokens.random_token(prefix, None)
    share = encode_share(Share("p", "test.x", prefix, token))
    wrapped = "\r".join(share[i : i + 40] for i in range(0, len(share), 40)) + "\r"  # as a terminal wraps it
    leader, follower = pty.openpty()
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    process = subprocess.Popen(
        [sys.executable, "-m", "mfproj", "token", "authorize", "-b", "x", "-"],
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env={**env, **ALICE, "METAFLOW_TOKEN_HOME": str(tmp_path / "keyring")},
        start_new_session=True,
        text=True,
    )
    os.close(follower)
    assert process.stderr is not None
    prompt = process.stderr.readline()
    assert "paste" in prompt and "hidden" in prompt, prompt
    os.write(leader, (wrapped + "echo the-rest-of-the-paste\r").encode())
    _, errors = process.communicate(timeout=30)
    echoed = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and select.select([leader], [], [], 0.2)[0]:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        echoed += chunk
    os.close(leader)
    assert process.returncode == 0, errors
    assert tokens.tokens_equal(json_token(tmp_path / "keyring" / prefix), token), "the whole string was read"
    assert share[:40].encode() not in echoed and share[-20:].encode() not in echoed, "nothing echoed"
    assert token not in errors


def json_token(path: Path) -> str:
    return str(json.loads(path.read_text())["production_token"])


def test_waiting_for_a_run_shows_its_status_and_elapsed_time(capsys: pytest.CaptureFixture[str]) -> None:
    from mfproj.backends.base import Run
    from mfproj.cli.progress import RunWatch

    clock = _Clock()
    watch = RunWatch("sfn-abc", clock=clock)
    clock.now += 65
    watch.poll(Run(run_id="sfn-abc", status="RUNNING"))
    assert watch.line().startswith("sfn-abc RUNNING · 1m05s")  # the terminal's live line
    clock.now += 10
    watch.poll(Run(run_id="sfn-abc", status="RUNNING"))  # no change: no new log line
    watch.poll(Run(run_id="sfn-abc", status="SUCCEEDED"))
    logged = capsys.readouterr().err.splitlines()  # not a terminal: one line per change, for CI logs
    assert logged == ["sfn-abc RUNNING after 1m05s", "sfn-abc SUCCEEDED after 1m15s"]
