"""Builders of test projects: a manifest and its templates from a list of flows, so each test says what its
project is (flows, backends, schedules, templates) instead of writing mfproj.toml by hand."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROLE = "arn:aws:iam::123456789012:role/sfn-exec"


def pass_machine(result: Any, *, state: str = "a") -> dict[str, Any]:
    """A one-state Step Functions definition whose Pass result tells deploys apart."""
    return {"StartAt": state, "States": {state: {"Type": "Pass", "Result": result, "End": True}}}


def succeed_machine() -> dict[str, Any]:
    return {"StartAt": "a", "States": {"a": {"Type": "Succeed"}}}


def wait_machine(seconds: int = 600) -> dict[str, Any]:
    """A run that is still running when the test acts on it."""
    return {"StartAt": "w", "States": {"w": {"Type": "Wait", "Seconds": seconds, "End": True}}}


def workflow_template(templates: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A minimal Argo WorkflowTemplate body (mfproj fills in the metadata)."""
    return {"spec": {"entrypoint": "a", "templates": [{"name": "a"}] if templates is None else templates}}


@dataclass
class Flow:
    """One flow of a test project. `step_functions`/`argo_workflows` are the template contents (a dict is
    written as JSON, a str as is; None: not on that backend); `file` is the templates' path without suffix
    (default: the flow's name), `.asl.json` for Step Functions, `.json` or `.yaml` (text) for Argo."""

    name: str
    step_functions: dict[str, Any] | str | None = None
    argo_workflows: dict[str, Any] | str | None = None
    schedule: str | None = None
    tags: list[str] = field(default_factory=list)
    file: str | None = None

    def paths(self) -> tuple[str | None, str | None]:
        stem = self.file or self.name
        argo_suffix = ".yaml" if isinstance(self.argo_workflows, str) else ".json"
        return (
            f"{stem}.asl.json" if self.step_functions is not None else None,
            f"{stem}{argo_suffix}" if self.argo_workflows is not None else None,
        )


def write_templates(root: Path, *flows: Flow) -> None:
    """(Re)writes the flows' templates: a test changes what it deploys next by writing them again."""
    for flow in flows:
        for path, content in zip(flow.paths(), (flow.step_functions, flow.argo_workflows), strict=True):
            if path is None:
                continue
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")


def make_project(
    root: Path,
    *flows: Flow,
    project: str = "myproj",
    project_lines: str = "",
    role_arn: str | None = ROLE,
    region: str = "us-east-1",
    extra: str = "",
) -> Path:
    """Writes mfproj.toml and the flows' templates under `root`; returns `root`. `project_lines` go into
    [project]; `extra` is appended (more tables)."""
    root.mkdir(parents=True, exist_ok=True)
    write_templates(root, *flows)
    lines = ["[project]", f'name = "{project}"', *([project_lines] if project_lines else [])]
    for flow in flows:
        sfn_path, argo_path = flow.paths()
        lines += ["", "[[flows]]", f'name = "{flow.name}"']
        lines += [f'step_functions = "{sfn_path}"'] if sfn_path else []
        lines += [f'argo_workflows = "{argo_path}"'] if argo_path else []
        lines += [f'schedule = "{flow.schedule}"'] if flow.schedule else []
        lines += [f"tags = {json.dumps(flow.tags)}"] if flow.tags else []
    lines += ["", "[step_functions]", f'region = "{region}"']
    lines += [f'role_arn = "{role_arn}"'] if role_arn else []
    (root / "mfproj.toml").write_text("\n".join(lines) + "\n" + (extra + "\n" if extra else ""), encoding="utf-8")
    return root


def git_commit(root: Path, message: str) -> str:
    """Commits everything under `root` (a repository made on first use); returns the commit."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    if not (root / ".git").exists():
        subprocess.run([*git, "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", message], cwd=root, check=True)
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, check=True, capture_output=True, text=True)
    return done.stdout.strip()
