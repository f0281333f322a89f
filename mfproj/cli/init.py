"""`mfproj init`: write a starter manifest and templates for one flow."""

import json
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from mfproj import manifest, naming
from mfproj.cli import helptext, output
from mfproj.errors import UsageError, ValidationError

if TYPE_CHECKING:
    import typer

_HEADER = """\
# mfproj manifest; every key is described in mfproj's README ("Manifest reference").
# Deployed names: <project>.<branch>.<Flow>; preview them with `mfproj names`.
"""

STARTER_ASL = {
    "Comment": "${mfproj.project_flow_name}, deployed by ${mfproj.owner}",
    "StartAt": "start",
    "States": {
        "start": {
            "Type": "Pass",
            "Result": {
                "project": "${mfproj.project}",
                "branch": "${mfproj.branch}",
                "namespace": "${mfproj.namespace}",
            },
            "Next": "end",
        },
        "end": {"Type": "Succeed"},
    },
}

STARTER_ARGO = """\
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: set-by-mfproj
spec:
  entrypoint: start
  templates:
    - name: start
      container:
        image: alpine:3.20
        command: [echo]
        args: ["${mfproj.project_flow_name} in ${mfproj.namespace}"]
"""


def default_project_name(directory: Path) -> str:
    name = re.sub(r"[^a-z0-9_]+", "_", directory.resolve().name.lower()).strip("_")
    return name[: naming.PROJECT_NAME_MAX] or "my_project"


def _snake(flow: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", flow).lower()


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        # mkstemp makes 0600; these files are meant to be committed and shared: 0666 less the umask.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def run(*, directory: Path, project: str | None, flow: str, force: bool) -> None:
    import tomli_w

    project = project or default_project_name(directory)
    naming.validate_project_name(project)
    naming.validate_flow_name(flow)
    target = directory / manifest.MANIFEST_NAME
    if target.exists() and not force:
        raise UsageError(f"{target} already exists", hint="pass --force to overwrite it")

    stem = _snake(flow)
    asl = directory / "flows" / f"{stem}.asl.json"
    argo = directory / "flows" / f"{stem}.yaml"
    document = {
        "project": {"name": project, "token_scheme": "random"},
        "flows": [
            {
                "name": flow,
                "step_functions": asl.relative_to(directory).as_posix(),
                "argo_workflows": argo.relative_to(directory).as_posix(),
                "tags": [],
            }
        ],
        "step_functions": {
            "region": "us-east-1",
            "role_arn": "arn:aws:iam::123456789012:role/sfn-exec",
            "state_machine_prefix": "",
        },
        "argo_workflows": {"namespace": "default", "context": ""},
    }
    written, kept = [], []
    for path, text in (
        (asl, json.dumps(STARTER_ASL, indent=2) + "\n"),
        (argo, STARTER_ARGO),
    ):
        if force or not path.exists():
            _write_atomically(path, text)
            written.append(path)
        else:
            kept.append(path)
    _write_atomically(target, _HEADER + tomli_w.dumps(document))
    written.append(target)
    # Prove what was written loads; a bug here must not leave the user with a broken manifest.
    try:
        manifest.load_manifest(target)
    except ValidationError:  # pragma: no cover - guards against a broken starter
        target.unlink(missing_ok=True)
        raise
    for path in written:
        output.info(f"wrote {path}")
    for path in kept:  # someone's template: never overwritten without --force, and said
        output.info(f"kept {path} (it exists; --force overwrites it with the starter)")
    output.info("next: edit the role ARN and templates, then run 'mfproj names'")


def register(app: "typer.Typer") -> None:
    import typer

    @app.command("init", cls=helptext.Command)
    def init_command(
        project: str = typer.Option(None, "--project", help="Project name ([a-z0-9_]); default: the directory's."),
        flow: str = typer.Option("ProjectFlow", "--flow", help="Name of the first flow."),
        directory: Path = typer.Option(Path("."), "--dir", help="Where to write mfproj.toml.", file_okay=False),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing mfproj.toml and templates."),
    ) -> None:
        """Write a starter mfproj.toml (and templates for one flow) in the current directory."""
        run(directory=directory, project=project, flow=flow, force=force)
