"""`mfproj runs`: runs in a namespace, filtered by tags, newest first; `mfproj runs show RUN_ID`."""

import datetime as _dt
from typing import TYPE_CHECKING

from mfproj.cli import output
from mfproj.errors import UsageError, ValidationError

if TYPE_CHECKING:
    import typer

    from mfproj import runs

# The core is imported inside the functions that run a command: `--help` and completion stay fast.

_LOCAL = "metaflow_local"


def _when(value: _dt.datetime | None) -> str:
    if value is None:
        return "-"
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value.astimezone(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _render(rows: "list[runs.RunRow]", output_format: str) -> None:
    from mfproj import backends, runs

    if output_format == "json":
        output.emit_json([row.as_json() for row in rows])
        return
    if not rows:
        output.info("no runs match")
        return
    label = {**backends.LABELS, _LOCAL: "local"}
    output.table(
        None,
        ["run id", "flow", "branch", "backend", "status", "started (UTC)", "finished (UTC)", "tags"],
        [
            [
                row.details.run_id,
                row.flow,
                row.branch or "-",
                label.get(row.backend, row.backend),
                row.details.status,
                _when(row.details.started_at),
                _when(row.details.finished_at),
                ", ".join(runs.user_tags(row.details.tags)),
            ]
            for row in rows
        ],
    )


def run_list(
    *,
    manifest_path: str | None,
    flows: list[str] | None,
    backend_names: list[str] | None,
    branch: str | None,
    production: bool | None,
    namespace: str | None,
    all_namespaces: bool,
    tags: list[str],
    statuses: list[str] | None,
    since: str | None,
    limit: int,
    latest: bool,
    metaflow_local: str | None,
    profile: str | None,
    output_format: str,
) -> int:
    from mfproj import backends, deploy, manifest, runs
    from mfproj.backends.base import RunFilter

    if namespace is not None and all_namespaces:
        raise UsageError("--namespace and --all-namespaces exclude each other")
    if namespace is not None and (":" not in namespace or namespace.startswith(":") or namespace.endswith(":")):
        raise ValidationError(f"--namespace {namespace!r} is not a namespace (user:<name> or production:<token>)")
    if not 1 <= limit <= 100_000:
        raise ValidationError("--limit must be between 1 and 100000")
    query = RunFilter(
        namespace=None,
        tags=runs.check_tags(tags),
        statuses=runs.parse_statuses(statuses),
        since=runs.parse_since(since),
        limit=1 if latest else limit,
    )
    if metaflow_local is not None:
        if backend_names or branch is not None or production is not None:
            raise UsageError("--metaflow-local reads local runs; --backend, --branch and --production do not apply")
        wanted = None if all_namespaces else (namespace or runs.default_local_namespace())
        root = runs.local_root(metaflow_local or None)
        local_query = RunFilter(wanted, query.tags, query.statuses, query.since, query.limit)
        _render(list(runs.local_runs(root, flows=flows, query=local_query)), output_format)
        return 0
    loaded = manifest.load(manifest_path)
    session = deploy.open_session(loaded, branch=branch, production=production, profile=profile)
    rows = runs.deployment_runs(
        session,
        flows=flows,
        backends=backends.normalize(backend_names),
        namespace=namespace,
        all_namespaces=all_namespaces,
        query=query,
    )
    _render(list(rows), output_format)  # at most `limit` rows
    return 0


def run_show(
    *,
    manifest_path: str | None,
    run_id: str,
    flows: list[str] | None,
    backend_names: list[str] | None,
    branch: str | None,
    production: bool | None,
    profile: str | None,
    output_format: str,
) -> int:
    from mfproj import backends, deploy, manifest, runs

    loaded = manifest.load(manifest_path)
    session = deploy.open_session(loaded, branch=branch, production=production, profile=profile)
    row = runs.find_deployment_run(session, run_id, flows=flows, backends=backends.normalize(backend_names))
    document = row.as_json(parameters=True)
    if output_format == "json":
        output.emit_json(document)
        return 0
    width = max(len(k) for k in document)
    for key, value in document.items():
        if key in ("tags", "parameters"):
            continue
        print(f"{key:<{width}}  {value if value is not None else '-'}")
    print(f"{'tags':<{width}}")
    for tag in document["tags"]:
        print(f"  {tag}")
    print(f"{'parameters':<{width}}")
    for key, value in document["parameters"].items():
        print(f"  {key} = {value}")
    return 0


def register(app: "typer.Typer") -> None:
    import typer

    from mfproj.cli import options

    @app.command(
        "runs",
        help="Runs in a namespace, filtered by tags (all must match), newest first. "
        "'mfproj runs show RUN_ID' prints one run with its tags and parameters.",
    )
    def runs_command(
        ctx: typer.Context,
        flows: options.FlowArguments = None,
        backend: options.Backends = None,
        branch: options.Branch = None,
        production: options.Production = None,
        namespace: str = typer.Option(
            None, "--namespace", metavar="NS", help="user:<name> or production:<token> (default: the deployment's)."
        ),
        all_namespaces: bool = typer.Option(False, "--all-namespaces", "-A", help="The global namespace: no filter."),
        tag: list[str] = typer.Option([], "--tag", help="Only runs with this tag (repeatable; all must match)."),
        status: list[str] = typer.Option(
            [], "--status", help="running, succeeded, failed, timed_out, aborted, pending (repeatable)."
        ),
        since: str = typer.Option(None, "--since", help="Only runs started since: 7d, 12h, 30m, or a date."),
        limit: int = typer.Option(20, "--limit", help="At most this many runs."),
        latest: bool = typer.Option(False, "--latest", help="Only the newest matching run."),
        metaflow_local: str = typer.Option(
            None,
            "--metaflow-local",
            metavar="[PATH]",
            help="Read local Metaflow runs (.metaflow, found upwards or under PATH) instead of deployments.",
        ),
        profile: options.Profile = None,
        output_format: options.Output = options.OutputFormat.table,
    ) -> None:
        backend_names = [b.value for b in backend] if backend else None
        if flows and flows[0] == "show":
            if len(flows) < 2:
                raise UsageError("usage: mfproj runs show RUN_ID [FLOW...]")
            raise typer.Exit(
                run_show(
                    manifest_path=options.manifest_path(ctx),
                    run_id=flows[1],
                    flows=flows[2:] or None,
                    backend_names=backend_names,
                    branch=branch,
                    production=production,
                    profile=profile,
                    output_format=output_format.value,
                )
            )
        raise typer.Exit(
            run_list(
                manifest_path=options.manifest_path(ctx),
                flows=flows,
                backend_names=backend_names,
                branch=branch,
                production=production,
                namespace=namespace,
                all_namespaces=all_namespaces,
                tags=tag,
                statuses=status or None,
                since=since,
                limit=limit,
                latest=latest,
                metaflow_local=metaflow_local,
                profile=profile,
                output_format=output_format.value,
            )
        )
