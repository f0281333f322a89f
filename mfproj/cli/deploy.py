"""`mfproj deploy`, `delete`, `unlock` and `trigger`: parse, call the use-case, render its result.

The use-cases (and the backends' libraries) are imported inside the functions that run a command, so
`mfproj --help` and completion do not pay for them.
"""

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mfproj.cli import helptext, options, output, progress
from mfproj.cli.selection import Selection, with_selection
from mfproj.errors import RunFailedError, UsageError, ValidationError

if TYPE_CHECKING:
    from mfproj.usecases.report import Report
    from mfproj.usecases.session import TokenOptions


def deploy_view(report: "Report") -> output.View:
    from mfproj.identity import branch_options

    before = [
        f"{report.project} {report.branch}: namespace {report.namespace}"
        + ("  (dry run: nothing changed)" if report.dry_run else "")
    ]
    for outcome in report.outcomes:
        if outcome.diff:
            before += [f"--- {outcome.flow} on {options.backend_label(outcome.backend)}: definition diff", outcome.diff]
    after = []
    if report.token_changed and not report.dry_run:
        selecting = branch_options(report.branch)
        after.append(
            "new production token stored in your keyring; give it to co-deployers with "
            f"'mfproj token share{' ' + selecting if selecting else ''}'"
        )
    rows = [
        [
            o.flow,
            options.backend_label(o.backend),
            o.name,
            o.action + (f" ({', '.join(o.changes)})" if o.action == "update" else ""),
            o.reason,
        ]
        for o in report.outcomes
    ]
    # The deployed name holds the flow: a narrow terminal leaves the flow column out first.
    columns = ["flow", "backend", "deployed as", "action", "authorization"]
    return output.View(columns, rows, before, after, optional=["flow"])


def run_deploy(
    selection: Selection,
    *,
    flows: list[str] | None,
    backends: list[str] | None,
    token_options: "TokenOptions",
    tags: list[str],
    dry_run: bool,
    adopt: bool,
    allow_branch: bool = False,
    allow_dirty: bool = False,
) -> None:
    from mfproj.usecases import deploy

    with progress.ProgressView(enabled=not selection.json and not dry_run) as view:
        session = selection.session(progress=view.update, say=view.say)
        report = deploy.deploy(
            session,
            flows=flows,
            backends=backends,
            token_options=token_options,
            extra_tags=tags,
            dry_run=dry_run,
            adopt=adopt,
            allow_branch=allow_branch,
            allow_dirty=allow_dirty,
        )
    output.show(selection.output, report.as_json(), deploy_view(report))


def run_delete(
    selection: Selection, *, flows: list[str], backends: list[str] | None, token_options: "TokenOptions", yes: bool
) -> None:
    from mfproj.usecases import delete

    session = selection.session()
    plans = delete.plan_delete(session, flows=flows, backends=backends, token_options=token_options)
    for _, _, outcome in plans:
        running = outcome.running or 0
        output.info(
            f"{outcome.name} ({options.backend_label(outcome.backend)}): "
            + (f"{running} execution(s) still running; they are not stopped" if running else "no running executions")
        )
    count = len(plans)
    if not output.confirm(
        f"delete {count} deployment(s)?",
        yes=yes,
        refusal=f"deleting {count} deployment(s) needs --yes when nobody can answer a prompt",
    ):
        output.info("nothing deleted")
        return
    delete.delete(session, plans)
    view = output.View(
        after=[f"deleted {o.name} from {options.backend_label(o.backend)}" for _, _, o in plans]
        + ["the production token stays in your keyring (mfproj token forget removes it)"]
    )
    output.show(selection.output, {"deleted": [o.as_json() for _, _, o in plans]}, view)


def run_unlock(
    selection: Selection,
    *,
    flows: list[str],
    backends: list[str] | None,
    token_options: "TokenOptions",
    all_locks: bool = False,
) -> None:
    from mfproj.usecases import unlock

    session = selection.session()
    if all_locks:
        results = unlock.unlock_all(session, token_options=token_options)
        if not results:
            output.info(f"no lock is left on {session.target.branch}")
    else:
        results = unlock.unlock(session, flows=flows, backends=backends, token_options=token_options)
    lines = []
    for result in results:
        where = f"{result.name} ({options.backend_label(result.backend)})"
        if result.held_by is not None:
            lines.append(f"removed the lock on {where}, held by {result.held_by}")
        elif not result.lockable:
            lines.append(
                f"{where}: {options.backend_label(result.backend)} takes no lock (its writes are compare-and-swap)"
            )
        else:
            lines.append(f"{where}: not locked")
    output.show(selection.output, {"unlocked": [r.as_json() for r in results]}, output.View(after=lines))


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
    selection: Selection,
    *,
    flow: str,
    backend: str | None,
    tags: list[str],
    params: list[str],
    input_file: Path | None,
    wait: bool,
    timeout: float,
) -> None:
    from mfproj.usecases import trigger

    session = selection.session()
    triggered = trigger.trigger(
        session,
        flow=flow,
        backend_name=backend,
        tags=tags,
        params=trigger.parse_params(params),
        input_document=_input_document(input_file),
    )
    from mfproj import recent

    recent.remember([triggered.run.run_id])
    if not selection.json:
        output.info(f"started {triggered.run.run_id} ({triggered.name} on {options.backend_label(triggered.backend)})")
    failure = None
    if wait:
        try:
            with progress.RunWatch(triggered.run.run_id) as watch:
                trigger.wait(session, triggered, timeout=timeout, poll=watch.poll)
        except RunFailedError as exc:
            failure = exc
        except KeyboardInterrupt:
            _stopped_waiting(selection, triggered)
            raise
    if selection.json:
        output.emit_json(triggered.as_json())
    else:
        print(triggered.run.run_id)  # the run id alone on stdout, for scripts
        if wait and failure is None:
            output.info(f"{triggered.run.run_id} {triggered.run.status}")
    if failure is not None:
        raise failure


def _stopped_waiting(selection: Selection, triggered: Any) -> None:
    """Ctrl-C while following a run stops the waiting only: say so, and how to go on."""
    from mfproj.identity import branch_options

    run_id = triggered.run.run_id
    where = branch_options(selection.target().branch)
    where = f" {where}" if where else ""
    output.info(
        f"stopped waiting; {run_id} goes on running ({triggered.run.status} when last seen).\n"
        f"  follow it:  mfproj runs show{where} {run_id}\n"
        f"  stop it:    mfproj runs terminate{where} {run_id}"
    )


def _wait_timeout(wait: bool, timeout: float | None) -> float:

    from mfproj.errors import UsageError

    if timeout is None:
        return 3600.0
    if not wait:
        raise UsageError("--timeout applies to --wait", hint="add --wait, or leave out --timeout")
    if math.isnan(timeout) or not 0 < timeout <= 7 * 86400:
        raise ValidationError(
            f"--timeout {timeout:g} is not a number of seconds from 0 to 604800 (a week)", hint="for example 1800"
        )
    return timeout


# --- the commands (registered by `register`) ---


@with_selection(from_git=True)
def deploy_command(
    selection: Selection,
    flows: options.FlowArguments = None,
    backend: options.Backends = None,
    authorize: options.Authorize = None,
    authorize_file: options.AuthorizeFile = None,
    generate_new_token: bool = typer.Option(
        False, "--generate-new-token", help="Move the deployment to a fresh production token (namespace)."
    ),
    tag: list[str] = typer.Option([], "--tag", help="A tag for every run of the deployment (repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan and the definition diff; change nothing."),
    adopt: bool = typer.Option(False, "--adopt", help="Take over a deployment that mfproj did not make."),
    allow_branch: bool = typer.Option(
        False, "--allow-branch", help="Deploy production from a git branch other than production_branch."
    ),
    allow_dirty: bool = typer.Option(False, "--allow-dirty", help="Deploy production from a dirty tree."),
) -> None:
    """Deploy flows to the selected branch, guarded by its production token."""
    run_deploy(
        selection,
        flows=flows,
        backends=options.backend_names(backend),
        token_options=options.token_options(authorize, authorize_file, generate_new_token),
        tags=tag,
        dry_run=dry_run,
        adopt=adopt,
        allow_branch=allow_branch,
        allow_dirty=allow_dirty,
    )


@with_selection()
def delete_command(
    selection: Selection,
    flows: list[str] = typer.Argument(..., metavar="FLOW...", help="Flows whose deployment to delete."),
    backend: options.Backends = None,
    authorize: options.Authorize = None,
    authorize_file: options.AuthorizeFile = None,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete deployments (their schedules too); the keyring keeps the token."""
    token_options = options.token_options(authorize, authorize_file, False)
    run_delete(selection, flows=flows, backends=options.backend_names(backend), token_options=token_options, yes=yes)


@with_selection()
def unlock_command(
    selection: Selection,
    flows: list[str] = typer.Argument(None, metavar="[FLOW]...", help="Flows whose deployment lock to remove."),
    all_locks: bool = typer.Option(
        False, "--all", help="Every lock left on the branch, of deployed flows or not (lists what it removes)."
    ),
    backend: options.Backends = None,
    authorize: options.Authorize = None,
    authorize_file: options.AuthorizeFile = None,
) -> None:
    """Remove a deployment's write lock left by a deploy that is gone (same authorization as deploy)."""
    token_options = options.token_options(authorize, authorize_file, False)
    if bool(flows) == all_locks:
        raise UsageError(
            "name the flows whose locks to remove, or pass --all (not both)", hint="for example 'mfproj unlock --all'"
        )
    run_unlock(
        selection,
        flows=flows or [],
        backends=options.backend_names(backend),
        token_options=token_options,
        all_locks=all_locks,
    )


@with_selection()
def trigger_command(
    selection: Selection,
    flow: str = typer.Argument(..., metavar="FLOW", help="The flow to run."),
    backend: options.Backend = None,
    tag: list[str] = typer.Option([], "--tag", help="A tag for this run (repeatable)."),
    param: list[str] = typer.Option([], "--param", metavar="KEY=VALUE", help="A run parameter (repeatable)."),
    input_file: Path = typer.Option(None, "--input-file", help="A JSON object merged into the run's input."),
    wait: bool = typer.Option(False, "--wait", help="Follow the run; exit 7 if it fails, times out or aborts."),
    timeout: float = typer.Option(None, "--timeout", help="Seconds --wait waits at most (default 3600)."),
) -> None:
    """Start a run of a deployed flow, with its namespace and tags in the run's input."""
    timeout = _wait_timeout(wait, timeout)  # checked before the run starts
    chosen = options.backend_names([backend]) if backend else None
    run_trigger(
        selection,
        flow=flow,
        backend=chosen[0] if chosen else None,
        tags=tag,
        params=param,
        input_file=input_file,
        wait=wait,
        timeout=timeout,
    )


def register(app: "typer.Typer") -> None:
    app.command("deploy", cls=helptext.Command)(deploy_command)
    app.command("delete", cls=helptext.Command)(delete_command)
    app.command("unlock", cls=helptext.Command)(unlock_command)
    app.command("trigger", cls=helptext.Command)(trigger_command)
