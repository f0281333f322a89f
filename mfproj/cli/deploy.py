"""`mfproj deploy`, `mfproj delete` and `mfproj trigger`: the Typer face of mfproj.deploy."""

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mfproj.cli import output
from mfproj.errors import RunFailedError, UsageError, ValidationError

if TYPE_CHECKING:
    import typer

    from mfproj import deploy

# The core (mfproj.deploy and the backends) is imported inside the functions that run a command, so
# `mfproj --help` and completion do not pay for it.


def _session(
    manifest_path: str | None,
    branch: str | None,
    production: bool | None,
    profile: str | None,
    progress: "deploy.Progress | None" = None,
    say: "Callable[[str], None] | None" = None,
) -> "deploy.Session":
    from mfproj import deploy, manifest

    loaded = manifest.load(manifest_path)
    return deploy.open_session(
        loaded,
        branch=branch,
        production=production,
        profile=profile,
        progress=progress or deploy._quiet,
        notice=output.warn,
        say=say or output.info,
    )


def _summary(report: "deploy.Report") -> None:
    from mfproj import backends

    rows = [
        [
            o.flow,
            backends.LABELS[o.backend],
            o.name,
            o.action + (f" ({', '.join(o.changes)})" if o.action == "update" else ""),
            o.reason,
        ]
        for o in report.outcomes
    ]
    output.table(None, ["flow", "backend", "deployed as", "action", "authorization"], rows)


def run_deploy(
    *,
    manifest_path: str | None,
    flows: list[str] | None,
    backend_names: list[str] | None,
    branch: str | None,
    production: bool | None,
    token_options: "deploy.TokenOptions",
    tags: list[str],
    dry_run: bool,
    adopt: bool,
    profile: str | None,
    output_format: str,
) -> int:
    from mfproj import backends, deploy

    with output.ProgressView(enabled=output_format != "json" and not dry_run) as view:
        session = _session(manifest_path, branch, production, profile, view.update, view.say)
        report = deploy.deploy(
            session,
            flows=flows,
            backends=backends.normalize(backend_names),
            token_options=token_options,
            extra_tags=tags,
            dry_run=dry_run,
            adopt=adopt,
        )
    if output_format == "json":
        output.emit_json(report.as_json())
        return 0
    output.info(
        f"{report.project} {report.branch}: namespace {report.namespace}"
        + ("  (dry run: nothing changed)" if dry_run else "")
    )
    for outcome in report.outcomes:
        if outcome.diff:
            output.info(f"--- {outcome.flow} on {backends.LABELS[outcome.backend]}: definition diff")
            output.info(outcome.diff)
    _summary(report)
    if report.token_changed and not dry_run:
        from mfproj.identity import branch_options

        options = branch_options(report.branch)
        output.info(
            "new production token stored in your keyring; give it to co-deployers with "
            f"'mfproj token share{' ' + options if options else ''}'"
        )
    return 0


def run_delete(
    *,
    manifest_path: str | None,
    flows: list[str],
    backend_names: list[str] | None,
    branch: str | None,
    production: bool | None,
    token_options: "deploy.TokenOptions",
    yes: bool,
    profile: str | None,
    output_format: str,
) -> int:
    from mfproj import backends, deploy

    session = _session(manifest_path, branch, production, profile)
    plans = deploy.plan_delete(
        session, flows=flows, backends=backends.normalize(backend_names), token_options=token_options
    )
    for _, _, outcome in plans:
        running = outcome.running or 0
        output.info(
            f"{outcome.name} ({backends.LABELS[outcome.backend]}): "
            + (f"{running} execution(s) still running; they are not stopped" if running else "no running executions")
        )
    if not yes:
        if not output.is_interactive():
            raise UsageError(f"deleting {len(plans)} deployment(s) needs --yes when nobody can answer a prompt")
        output.info(f"delete {len(plans)} deployment(s)? [y/N] ")
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            output.info("nothing deleted")
            return 0
    deploy.delete(session, plans)
    if output_format == "json":
        output.emit_json({"deleted": [o.as_json() for _, _, o in plans]})
    else:
        for _, _, outcome in plans:
            output.info(f"deleted {outcome.name} from {backends.LABELS[outcome.backend]}")
        output.info("the production token stays in your keyring (mfproj token forget removes it)")
    return 0


def run_unlock(
    *,
    manifest_path: str | None,
    flows: list[str],
    backend_names: list[str] | None,
    branch: str | None,
    production: bool | None,
    token_options: "deploy.TokenOptions",
    profile: str | None,
    output_format: str,
) -> int:
    from mfproj import backends, deploy

    session = _session(manifest_path, branch, production, profile)
    results = deploy.unlock(
        session, flows=flows, backends=backends.normalize(backend_names), token_options=token_options
    )
    if output_format == "json":
        output.emit_json({"unlocked": [r.as_json() for r in results]})
        return 0
    for result in results:
        where = f"{result.name} ({backends.LABELS[result.backend]})"
        if result.held_by is not None:
            output.info(f"removed the lock on {where}, held by {result.held_by}")
        elif result.backend == "argo_workflows":
            output.info(f"{where}: Argo Workflows takes no lock (its writes are compare-and-swap)")
        else:
            output.info(f"{where}: not locked")
    return 0


def _input_document(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationError(f"--input-file: cannot read {path}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"--input-file: {path} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ValidationError(f"--input-file: {path} must hold a JSON object")
    return document


def run_trigger(
    *,
    manifest_path: str | None,
    flow: str,
    backend_name: str | None,
    branch: str | None,
    production: bool | None,
    tags: list[str],
    params: list[str],
    input_file: Path | None,
    wait: bool,
    timeout: float,
    profile: str | None,
    output_format: str,
) -> int:
    from mfproj import backends, deploy

    session = _session(manifest_path, branch, production, profile)
    normalized = backends.normalize([backend_name] if backend_name else None)
    triggered = deploy.trigger(
        session,
        flow=flow,
        backend_name=normalized[0] if normalized else None,
        tags=tags,
        params=deploy.parse_params(params),
        input_document=_input_document(input_file),
    )
    if output_format != "json":
        output.info(f"started {triggered.run.run_id} ({triggered.name} on {backends.LABELS[triggered.backend]})")
    failure = None
    if wait:
        try:
            deploy.wait(session, triggered, timeout=timeout)
        except RunFailedError as exc:
            failure = exc
    if output_format == "json":
        output.emit_json(triggered.as_json())
    else:
        print(triggered.run.run_id)
        if wait and failure is None:
            output.info(f"{triggered.run.run_id} {triggered.run.status}")
    if failure is not None:
        raise failure
    return 0


def _token_options(authorize: str | None, authorize_file: Path | None, generate_new: bool) -> "deploy.TokenOptions":
    from mfproj import deploy

    return deploy.TokenOptions(authorize, authorize_file, generate_new)


def register(app: "typer.Typer") -> None:
    import typer

    from mfproj.cli import options

    @app.command("deploy")
    def deploy_command(
        ctx: typer.Context,
        flows: options.FlowArguments = None,
        backend: options.Backends = None,
        branch: options.Branch = None,
        production: options.Production = None,
        authorize: options.Authorize = None,
        authorize_file: options.AuthorizeFile = None,
        generate_new_token: bool = typer.Option(
            False, "--generate-new-token", help="Move the deployment to a fresh production token (namespace)."
        ),
        tag: list[str] = typer.Option([], "--tag", help="A tag for every run of the deployment (repeatable)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan and the definition diff; change nothing."),
        adopt: bool = typer.Option(False, "--adopt", help="Take over a deployment that mfproj did not make."),
        profile: options.Profile = None,
        output_format: options.Output = options.OutputFormat.table,
    ) -> None:
        """Deploy flows to the selected branch, guarded by its production token."""
        raise typer.Exit(
            run_deploy(
                manifest_path=options.manifest_path(ctx),
                flows=flows,
                backend_names=[b.value for b in backend] if backend else None,
                branch=branch,
                production=production,
                token_options=_token_options(authorize, authorize_file, generate_new_token),
                tags=tag,
                dry_run=dry_run,
                adopt=adopt,
                profile=profile,
                output_format=output_format.value,
            )
        )

    @app.command("delete")
    def delete_command(
        ctx: typer.Context,
        flows: list[str] = typer.Argument(..., metavar="FLOW...", help="Flows whose deployment to delete."),
        backend: options.Backends = None,
        branch: options.Branch = None,
        production: options.Production = None,
        authorize: options.Authorize = None,
        authorize_file: options.AuthorizeFile = None,
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
        profile: options.Profile = None,
        output_format: options.Output = options.OutputFormat.table,
    ) -> None:
        """Delete deployments (their schedules too); the keyring keeps the token."""
        raise typer.Exit(
            run_delete(
                manifest_path=options.manifest_path(ctx),
                flows=flows,
                backend_names=[b.value for b in backend] if backend else None,
                branch=branch,
                production=production,
                token_options=_token_options(authorize, authorize_file, False),
                yes=yes,
                profile=profile,
                output_format=output_format.value,
            )
        )

    @app.command("unlock")
    def unlock_command(
        ctx: typer.Context,
        flows: list[str] = typer.Argument(..., metavar="FLOW...", help="Flows whose deployment lock to remove."),
        backend: options.Backends = None,
        branch: options.Branch = None,
        production: options.Production = None,
        authorize: options.Authorize = None,
        authorize_file: options.AuthorizeFile = None,
        profile: options.Profile = None,
        output_format: options.Output = options.OutputFormat.table,
    ) -> None:
        """Remove a deployment's write lock left by a deploy that is gone (same authorization as deploy)."""
        raise typer.Exit(
            run_unlock(
                manifest_path=options.manifest_path(ctx),
                flows=flows,
                backend_names=[b.value for b in backend] if backend else None,
                branch=branch,
                production=production,
                token_options=_token_options(authorize, authorize_file, False),
                profile=profile,
                output_format=output_format.value,
            )
        )

    @app.command("trigger")
    def trigger_command(
        ctx: typer.Context,
        flow: str = typer.Argument(..., metavar="FLOW", help="The flow to run."),
        backend: options.Backend = None,
        branch: options.Branch = None,
        production: options.Production = None,
        tag: list[str] = typer.Option([], "--tag", help="A tag for this run (repeatable)."),
        param: list[str] = typer.Option([], "--param", metavar="KEY=VALUE", help="A run parameter (repeatable)."),
        input_file: Path = typer.Option(None, "--input-file", help="A JSON object merged into the run's input."),
        wait: bool = typer.Option(False, "--wait", help="Follow the run; exit 7 if it fails, times out or aborts."),
        timeout: float = typer.Option(3600.0, "--timeout", help="Seconds --wait waits at most."),
        profile: options.Profile = None,
        output_format: options.Output = options.OutputFormat.table,
    ) -> None:
        """Start a run of a deployed flow, with its namespace and tags in the run's input."""
        raise typer.Exit(
            run_trigger(
                manifest_path=options.manifest_path(ctx),
                flow=flow,
                backend_name=backend.value if backend else None,
                branch=branch,
                production=production,
                tags=tag,
                params=param,
                input_file=input_file,
                wait=wait,
                timeout=timeout,
                profile=profile,
                output_format=output_format.value,
            )
        )
