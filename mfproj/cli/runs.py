"""`mfproj runs [list]`: runs in a namespace, filtered by tags, newest first; `mfproj runs show RUN_ID`.

`runs` is a group whose default command is `list`, so `mfproj runs --tag x` and `mfproj runs FLOW` work
as before, and a flow named `show` is listed with `mfproj runs list show`.
"""

import dataclasses
import datetime as _dt
import enum
from typing import TYPE_CHECKING, Any

import typer

from mfproj.backends import registry
from mfproj.cli import helptext, options, output
from mfproj.cli.selection import Selection, with_selection
from mfproj.errors import UsageError, ValidationError

# --status choices (the statuses every backend's runs are mapped to), completed by the shell scripts.
RunStatus = enum.Enum("RunStatus", {s.lower(): s.lower() for s in registry.RUN_STATUSES}, type=str)  # type: ignore[misc]

if TYPE_CHECKING:
    from mfproj.usecases.runs import RunRow


def _when(value: _dt.datetime | None) -> str:
    if value is None:
        return "-"
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value.astimezone(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def runs_view(rows: "list[RunRow]") -> output.View:
    from mfproj.usecases import local_runs, runs

    label = {**registry.LABELS, local_runs.LOCAL: "local"}
    table = [
        [
            row.run.run_id,
            row.flow,
            row.branch or "-",
            row.run.status,
            _when(row.run.started_at),
            _when(row.run.finished_at),
            label.get(row.backend, row.backend),
            ", ".join(runs.user_tags(row.run.tags)),
        ]
        for row in rows
    ]
    # What says whose run it is comes first; a narrow terminal drops what decorates it (the backend is
    # in the run id's prefix) and shows times to the minute.
    columns = ["run id", "flow", "branch", "status", "started (UTC)", "finished (UTC)", "backend", "tags"]
    minutes = {"started (UTC)": _to_the_minute, "finished (UTC)": _to_the_minute}
    optional = ["finished (UTC)", "backend", "tags", "started (UTC)"]
    ids = ["run id", "branch"]  # whose run it is: never cut
    return output.View(columns, table, empty="no runs match", ids=ids, optional=optional, short=minutes)


def _to_the_minute(shown: str) -> str:
    return shown[:16]


def _check_namespace(namespace: str | None, all_namespaces: bool, limit: int) -> None:
    if namespace is not None and all_namespaces:
        raise UsageError("--namespace and --all-namespaces exclude each other")
    if namespace is not None and (":" not in namespace or namespace.startswith(":") or namespace.endswith(":")):
        raise ValidationError(f"--namespace {namespace!r} is not a namespace (user:<name> or production:<token>)")
    if not 1 <= limit <= 100_000:
        raise ValidationError("--limit must be between 1 and 100000")


def run_list(
    selection: Selection,
    *,
    flows: list[str] | None,
    backends: list[str] | None,
    namespace: str | None,
    all_namespaces: bool,
    query: Any,
    local: bool,
    local_root: str | None,
    all_branches: bool = False,
) -> None:
    from mfproj.backends.base import RunFilter
    from mfproj.usecases import local_runs, runs

    shown = query.limit
    query = dataclasses.replace(query, limit=shown + 1)  # one more than shown: whether the limit cut the list
    if local:
        if backends or selection.branch is not None or selection.production is not None:
            raise UsageError("--metaflow-local reads local runs; --backend, --branch and --production do not apply")
        wanted = None if all_namespaces else (namespace or local_runs.default_local_namespace())
        root = local_runs.local_root(local_root)
        local_query = RunFilter(wanted, query.tags, query.statuses, query.since, query.limit)
        rows = list(local_runs.local_runs(root, flows=flows, query=local_query))
    else:
        found = runs.deployment_runs(
            selection.session(),
            flows=flows,
            backends=backends,
            namespace=namespace,
            all_namespaces=all_namespaces,
            query=query,
            all_branches=all_branches,
        )
        rows = list(found)  # at most `limit` rows
    more = len(rows) > shown
    rows = rows[:shown]
    from mfproj import recent

    recent.remember(row.run.run_id for row in rows)  # for `runs show <TAB>`
    view = runs_view(rows)
    if more and shown > 1:
        view.after = [f"more runs match: these are the newest {shown}; use --limit to see more"]
    output.show(selection.output, [row.as_json() for row in rows], view)


def run_show(selection: Selection, *, run_id: str, flows: list[str] | None, backends: list[str] | None) -> None:
    from mfproj.usecases import runs

    row = runs.find_deployment_run(selection.session(), run_id, flows=flows, backends=backends)
    document = row.as_json(parameters=True)
    width = max(len(k) for k in document)
    lines = [
        f"{key:<{width}}  {value if value is not None else '-'}"
        for key, value in document.items()
        if key not in ("tags", "parameters")
    ]
    lines += [f"{'tags':<{width}}", *(f"  {tag}" for tag in document["tags"])]
    lines += [f"{'parameters':<{width}}", *(f"  {k} = {v}" for k, v in document["parameters"].items())]
    if selection.json:
        output.emit_json(document)
    else:
        output.emit_text("".join(line + "\n" for line in lines))


def _query(tags: list[str], statuses: list[str], since: str | None, limit: int, latest: bool) -> Any:
    from mfproj.backends.base import RunFilter
    from mfproj.usecases import runs

    return RunFilter(
        namespace=None,
        tags=runs.check_tags(tags),
        statuses=runs.parse_statuses(statuses or None),
        since=runs.parse_since(since),
        limit=1 if latest else limit,
    )


# --- the commands (registered by `register`) ---


@with_selection(user=True)
def list_command(
    selection: Selection,
    flows: options.FlowArguments = None,
    backend: options.Backends = None,
    namespace: str = typer.Option(
        None, "--namespace", metavar="NS", help="user:<name> or production:<token> (default: the deployment's)."
    ),
    all_namespaces: bool = typer.Option(False, "--all-namespaces", "-A", help="The global namespace: no filter."),
    tag: list[str] = typer.Option([], "--tag", help="Only runs with this tag (repeatable; all must match)."),
    status: list[RunStatus] = typer.Option(  # type: ignore[valid-type]
        [], "--status", help="Only runs in this status (repeatable).", case_sensitive=False
    ),
    since: str = typer.Option(None, "--since", help="Only runs started since: 7d, 12h, 30m, or a date."),
    limit: int = typer.Option(20, "--limit", help="At most this many runs."),
    latest: bool = typer.Option(False, "--latest", help="Only the newest matching run."),
    metaflow_local: bool = typer.Option(
        False, "--metaflow-local", help="Read local Metaflow runs (.metaflow) instead of deployments."
    ),
    metaflow_root: str = typer.Option(
        None,
        "--metaflow-root",
        metavar="PATH",
        help="Where the local runs are (default: METAFLOW_DATASTORE_SYSROOT_LOCAL, or the nearest .metaflow).",
    ),
) -> None:
    """Runs in a namespace, filtered by tags (all must match), newest first."""
    _check_namespace(namespace, all_namespaces, limit)
    run_list(
        selection,
        flows=flows,
        backends=options.backend_names(backend),
        namespace=namespace,
        all_namespaces=all_namespaces,
        query=_query(tag, [str(s.value) for s in status], since, limit, latest),
        local=metaflow_local or metaflow_root is not None,
        local_root=metaflow_root,
        # -A is the global namespace: every branch, unless --branch/--production narrows it.
        all_branches=all_namespaces and selection.branch is None and selection.production is None,
    )


@with_selection(user=True)
def show_command(
    selection: Selection,
    run_id: str = typer.Argument(..., metavar="RUN_ID", help="sfn-<execution> or argo-<workflow>."),
    flows: options.FlowArguments = None,
    backend: options.Backends = None,
) -> None:
    """One run of the branch's deployments, with its tags and parameters."""
    run_show(selection, run_id=run_id, flows=flows, backends=options.backend_names(backend))


@with_selection(user=True)
def terminate_command(
    selection: Selection,
    run_id: str = typer.Argument(..., metavar="RUN_ID", help="sfn-<execution> or argo-<workflow>."),
    flows: options.FlowArguments = None,
    authorize: options.Authorize = None,
    authorize_file: options.AuthorizeFile = None,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Stop a running run of the branch's deployments (same authorization as delete)."""
    from mfproj.usecases import terminate

    def confirm(run: Any) -> bool:
        return output.confirm(
            f"stop {run.run_id} ({run.status})?", yes=yes, refusal=f"stopping {run.run_id} needs --yes"
        )

    result = terminate.terminate(
        selection.session(),
        run_id,
        flows=flows,
        token_options=options.token_options(authorize, authorize_file, False),
        confirm=confirm,
    )
    if result is None:
        output.info("nothing stopped")
        return
    shown = result.run.run_id
    if not result.stopped:
        said = [f"{shown} had already ended {result.run.status}"]
    elif result.ended:
        said = [f"stopped {shown}: now {result.run.status}"]
    else:  # the stop was taken; the run has not been seen ending
        said = [
            f"asked {shown} to stop; after {terminate.STOP_SETTLE_SECONDS:g} s it is still {result.run.status}",
            f"hint: mfproj runs show {shown} says when it has ended",
        ]
    output.show(selection.output, result.as_json(), output.View(after=said))


def register(app: "typer.Typer") -> None:
    group = typer.Typer(
        cls=options.ListByDefault,
        help="Runs in a namespace, filtered by tags (all must match), newest first ('list', the default), "
        "or one run with its tags and parameters ('show RUN_ID').",
        no_args_is_help=False,
    )
    app.add_typer(group, name="runs")
    group.command("list", cls=helptext.Command)(list_command)
    group.command("show", cls=helptext.Command)(show_command)
    group.command("terminate", cls=helptext.Command)(terminate_command)
