"""Shared fixtures: a clean environment per test and a helper that runs the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

# Variables that change mfproj's answers; every test starts without them.
_ISOLATED_PREFIXES = ("METAFLOW_", "MFPROJ_", "AWS_", "GITHUB_", "GITLAB_", "CI_", "BUILDKITE", "CIRCLE")
_ISOLATED_NAMES = (
    "USER",
    "USERNAME",
    "SUDO_USER",
    "LOGNAME",
    "NO_COLOR",
    "CI",
    "KUBECONFIG",
    "JENKINS_URL",
    "BUILD_URL",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(_ISOLATED_PREFIXES) or name in _ISOLATED_NAMES:
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("METAFLOW_TOKEN_HOME", str(tmp_path / "keyring"))
    monkeypatch.chdir(tmp_path)
    yield


def stored_tokens(home: Path) -> set[str]:
    """Every production token in a keyring directory (for the secrets guard)."""
    found = set()
    if home.is_dir():
        for path in home.iterdir():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError, UnicodeDecodeError):
                continue
            if isinstance(data, dict) and isinstance(data.get("production_token"), str):
                found.add(data["production_token"])
    return found


@pytest.fixture
def secrets() -> set[str]:
    """Tokens a test knows about; `cli` fails the test if one shows up in output it did not ask for."""
    return set()


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def _guard(args: tuple[str, ...], known: set[str], result: Result, reveal: bool) -> Result:
    if not reveal:
        for token in known:
            for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
                if token in text:
                    pytest.fail(f"mfproj {' '.join(args)} printed a production token on {stream}: {text!r}")
    return result


def run_in_process(args: tuple[str, ...], env: dict[str, str], cwd: Path, stdin: str | None) -> Result:
    """`mfproj ARGS` in this process: the same entry point as the console script, with its own
    environment, working directory, standard streams and exit code (about 20x cheaper than a process)."""
    import contextlib
    import io

    from mfproj.cli import main, output

    saved_env, saved_cwd, saved_stdin = dict(os.environ), os.getcwd(), sys.stdin
    stdout, stderr = io.StringIO(), io.StringIO()
    code: int = 0
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.stdin = io.StringIO(stdin or "")
    output.set_no_color(False)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        sys.stdin = saved_stdin
    return Result(code, stdout.getvalue(), stderr.getvalue())


def run_subprocess(args: tuple[str, ...], env: dict[str, str], cwd: Path, stdin: str | None) -> Result:
    done = subprocess.run(
        [sys.executable, "-m", "mfproj", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        input=stdin,
        timeout=60,
    )
    return Result(done.returncode, done.stdout, done.stderr)


class Cli(Protocol):
    """`mfproj ARGS` as the `cli` and `cli_process` fixtures run it."""

    def __call__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stdin: str | None = None,
        reveal: bool = False,
    ) -> Result: ...


def _runner(tmp_path: Path, secrets: set[str], execute: Any) -> Cli:
    def run(
        *args: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stdin: str | None = None,
        reveal: bool = False,
    ) -> Result:
        full_env = dict(os.environ)
        full_env.update(env or {})
        keyring = Path(full_env.get("METAFLOW_TOKEN_HOME") or full_env.get("METAFLOW_HOME") or tmp_path / "none")
        known = secrets | stored_tokens(keyring)
        result = execute(args, full_env, cwd or tmp_path, stdin)
        return _guard(args, known | stored_tokens(keyring), result, reveal)

    return run


@pytest.fixture
def cli(tmp_path: Path, secrets: set[str]) -> Cli:
    """Runs `mfproj ARGS` in-process with the test's environment plus `env`.

    The secrets guard: no token known to the test, or stored in the keyring before or after the
    command, may appear in stdout or stderr unless the call says `reveal=True`.
    """
    return _runner(tmp_path, secrets, run_in_process)


@pytest.fixture
def cli_process(tmp_path: Path, secrets: set[str]) -> Cli:
    """As `cli`, in a real `python -m mfproj` process: for what only a process shows (imports, start-up,
    signals, the console entry point)."""
    return _runner(tmp_path, secrets, run_subprocess)


def as_user(user: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of one person: their user name and their own keyring."""
    return {"METAFLOW_USER": user, "METAFLOW_TOKEN_HOME": str(tmp_path / f"keyring-{user}"), **extra}


def write_manifest(directory: Path, body: str, *, templates: bool = True) -> Path:
    """Writes mfproj.toml (dedented) and, if asked, empty templates for every referenced file."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "mfproj.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    if templates:
        from mfproj.manifest import tomllib

        data = tomllib.loads(path.read_text())
        for flow in data.get("flows", []):
            for key in ("step_functions", "argo_workflows"):
                if isinstance(flow.get(key), str):
                    template = directory / flow[key]
                    template.parent.mkdir(parents=True, exist_ok=True)
                    template.write_text("{}\n")
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A two-flow project in tmp_path; returns the manifest path."""
    return write_manifest(
        tmp_path,
        """
        [project]
        name = "myproj"

        [[flows]]
        name = "HelloFlow"
        step_functions = "flows/hello.asl.json"
        argo_workflows = "flows/hello.yaml"

        [[flows]]
        name = "NightlyFlow"
        step_functions = "flows/nightly.asl.json"
        schedule = "0 3 * * *"

        [step_functions]
        role_arn = "arn:aws:iam::123456789012:role/sfn-exec"
        """,
    )


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Any]:
    from tests.emulators import MotoServer

    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def aws(moto_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A clean emulator for this test, with the environment pointing at it."""
    moto_server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    yield moto_server


@pytest.fixture
def sfn(aws: Any) -> Any:
    import boto3

    return boto3.client("stepfunctions", endpoint_url=aws.url, region_name="us-east-1")


@pytest.fixture
def events(aws: Any) -> Any:
    import boto3

    return boto3.client("events", endpoint_url=aws.url, region_name="us-east-1")


@pytest.fixture(scope="session")
def k8s_server() -> Iterator[Any]:
    from tests.k8s_emulator import KubernetesEmulator

    server = KubernetesEmulator()
    yield server
    server.stop()


@pytest.fixture
def kube(k8s_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """A clean Kubernetes emulator for this test, with KUBECONFIG pointing at it."""
    k8s_server.reset()
    config = tmp_path / "kubeconfig"
    config.write_text(k8s_server.kubeconfig())
    monkeypatch.setenv("KUBECONFIG", str(config))
    yield k8s_server


@pytest.fixture
def aws_proxy(aws: Any) -> Iterator[Any]:
    """A FaultProxy in front of moto (the test points AWS_ENDPOINT_URL at it where it wants faults)."""
    from tests.emulators import FaultProxy

    proxy = FaultProxy(aws.url)
    yield proxy
    proxy.stop()


@pytest.fixture
def kube_proxy(kube: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A FaultProxy in front of the Kubernetes emulator, with KUBECONFIG pointing at the proxy."""
    from tests.emulators import FaultProxy
    from tests.k8s_emulator import kubeconfig_for

    proxy = FaultProxy(kube.url)
    (tmp_path / "proxied-kubeconfig").write_text(kubeconfig_for(proxy.url))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "proxied-kubeconfig"))
    yield proxy
    proxy.stop()


# --- LocalStack: the second Step Functions emulator (tests/localstack.py) ---


@pytest.fixture(scope="session")
def localstack_server() -> Iterator[Any]:
    """One LocalStack per test run: every test that uses it is in the xdist group "localstack" (see
    pytest_collection_modifyitems), so one worker runs them all and starts it once."""
    from tests.localstack import LocalStackServer, localstack_python

    python = localstack_python()
    if python is None:
        message = "LocalStack is not installed (make localstack, or MFPROJ_LOCALSTACK_PYTHON)"
        if os.environ.get("MFPROJ_REQUIRE_LOCALSTACK"):  # CI installs it: missing there is a failure
            pytest.fail(message)
        pytest.skip(message)
    server = LocalStackServer(python)
    yield server
    server.stop()


@dataclass
class StepFunctionsEmulator:
    """The Step Functions emulator a contract test runs on: its endpoint, account and a client maker."""

    name: str
    url: str
    account: str
    server: Any

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1")

    def state_machine_arn(self, name: str) -> str:
        return f"arn:aws:states:us-east-1:{self.account}:stateMachine:{name}"


def _point_aws_at(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")


@pytest.fixture
def localstack(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> StepFunctionsEmulator:
    """LocalStack emptied for this test, with the environment pointing at it."""
    from tests.localstack import ACCOUNT

    server = request.getfixturevalue("localstack_server")
    server.reset()
    _point_aws_at(server.url, monkeypatch)
    return StepFunctionsEmulator("localstack", server.url, ACCOUNT, server)


@pytest.fixture(params=["moto", "localstack"])
def sfn_emulator(request: pytest.FixtureRequest) -> StepFunctionsEmulator:
    """The Step Functions contract tests run on both emulators: moto, and LocalStack (closer to AWS)."""
    if request.param == "localstack":
        return request.getfixturevalue("localstack")  # type: ignore[no-any-return]
    moto = request.getfixturevalue("aws")
    return StepFunctionsEmulator("moto", moto.url, "123456789012", moto)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on LocalStack share one worker (and so one LocalStack) and carry the `localstack` marker."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        callspec = getattr(item, "callspec", None)
        on_localstack = "localstack" in fixtures or (
            callspec is not None and callspec.params.get("sfn_emulator") == "localstack"
        )
        if on_localstack:
            item.add_marker(pytest.mark.localstack)
            item.add_marker(pytest.mark.xdist_group("localstack"))
