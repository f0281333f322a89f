"""`mfproj deployments [list]`, `mfproj deployments show FLOW` and `mfproj namespaces`: the whole project,
every branch, every backend."""

import datetime as _dt
from typing import TYPE_CHECKING

import typer

from mfproj.cli import helptext, options, output
from mfproj.cli.selection import Selection, with_selection

if TYPE_CHECKING:
    from mfproj.usecases.deployments import Deployment, Listing


def _branch(selection: Selection, all_branches: bool) -> str | None:
    """None (every branch) unless --branch or --production names one."""
    if all_branches or (selection.branch is None and selection.production is None):
        return None
    return selection.target().branch


def _moment(text: str | None) -> str:
    """A recorded time to the second, in UTC (`2026-12-01T10:00:00Z`): Metaflow records microseconds,
    and sometimes no zone (its UTC)."""
    if not text:
        return "-"
    try:
        moment = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text  # someone else's text: shown as it is (printable, by the table)
    moment = moment.replace(tzinfo=moment.tzinfo or _dt.timezone.utc).astimezone(_dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _row(deployment: "Deployment") -> list[str]:
    from mfproj import tokens
    from mfproj.backends import registry

    record = deployment.record
    commit = (record.commit or "-")[:10] + ("+dirty" if record.dirty else "")
    state = deployment.state + (f" ({', '.join(deployment.drift)})" if deployment.drift else "")
    return [
        record.flow or "?",
        record.branch or "?",
        registry.label(deployment.backend),
        deployment.existing.name,
        record.owner or "-",
        f"production:{tokens.mask(record.production_token)}",
        _moment(record.deployed_at),
        record.managed_by,
        commit,
        (deployment.existing.schedule or "-") + (" (paused)" if deployment.existing.schedule_paused else ""),
        state,
    ]


def listing_view(listing: "Listing") -> output.View:
    columns = ["flow", "branch", "backend", "name", "owner", "namespace", "deployed", "made by", "commit"]
    after = []
    if not listing.looked_for_metaflow:
        after.append(
            "deployments made by Metaflow itself were not looked for (they carry no tags); "
            "--include-metaflow finds them by name"
        )
    return output.View(
        [*columns, "schedule", "state"],
        [_row(d) for d in listing.deployments],
        after=after,
        empty="no deployments of this project",
        optional=["made by", "namespace", "deployed", "owner", "commit", "schedule", "backend"],
    )


@with_selection()
def list_command(
    selection: Selection,
    flows: options.FlowArguments = None,
    backend: options.Backends = None,
    all_branches: bool = typer.Option(False, "--all-branches", help="Every branch (the default)."),
    include_metaflow: bool = typer.Option(
        False, "--include-metaflow", help="Also deployments made by Metaflow itself (found by name)."
    ),
) -> None:
    """Every deployment of the project: branch, owner, namespace, lineage, schedule, state vs the manifest."""
    from mfproj.usecases import deployments

    listing = deployments.list_deployments(
        selection.session(),
        flows=flows,
        backends=options.backend_names(backend),
        branch=_branch(selection, all_branches),
        include_metaflow=include_metaflow,
    )
    output.show(selection.output, listing.as_json(), listing_view(listing))


@with_selection()
def show_command(
    selection: Selection,
    flow: str = typer.Argument(..., metavar="FLOW", help="The flow whose deployment to show."),
    backend: options.Backends = None,
    include_metaflow: bool = typer.Option(
        False, "--include-metaflow", help="Also look for deployments made by Metaflow itself (by name)."
    ),
) -> None:
    """One deployment in detail: record, lineage, schedule, its last 5 runs, and the diff against the manifest."""
    from mfproj.usecases import deployments

    session = selection.session()
    found = deployments.show_deployment(
        session,
        flow=flow,
        branch=session.target.branch,
        backends=options.backend_names(backend),
        include_metaflow=include_metaflow,
    )
    documents = [d.as_json() for d in found]
    lines: list[str] = []
    for document in documents:
        width = max(len(key) for key in [*document, "last runs"])  # every value in one column
        fields = [(k, v) for k, v in document.items() if k not in ("diff", "runs")]
        lines += [f"{k:<{width}}  {v if v is not None else '-'}" for k, v in fields]
        runs = ", ".join(f"{r['run_id']} {r['status']}" for r in document.get("runs") or []) or "-"
        lines.append(f"{'last runs':<{width}}  {runs}")
        lines += ["diff against the manifest:", document.get("diff") or "  (none)", ""]
    if selection.json:
        output.emit_json(documents)
    else:
        output.emit_text("\n".join(lines) + "\n")


@with_selection(branch=False)
def namespaces_command(
    selection: Selection,
    count_runs: bool = typer.Option(False, "--count-runs", help="Also count each namespace's runs."),
) -> None:
    """Each production namespace of the project: its branch, deployments, and whether your keyring has it."""
    from mfproj.backends import registry
    from mfproj.usecases import deployments

    found = deployments.namespaces(selection.session(), count_runs=count_runs)
    rows = [
        [
            f"{ns.as_json()['namespace']} {ns.as_json()['fingerprint']}",
            ", ".join(ns.branches),
            ", ".join(f"{d.record.flow} ({registry.label(d.backend)})" for d in ns.deployments),
            "yes" if ns.in_keyring else "no",
            "-" if ns.runs is None else str(ns.runs),
        ]
        for ns in found
    ]
    view = output.View(["namespace", "branch", "deployments", "in your keyring", "runs"], rows, empty="no namespaces")
    output.show(selection.output, [ns.as_json() for ns in found], view)


def register(app: "typer.Typer") -> None:
    group = typer.Typer(
        cls=options.ListByDefault,
        help="Every deployment of the project ('list', the default), or one in detail ('show FLOW').",
    )
    app.add_typer(group, name="deployments")
    group.command("list", cls=helptext.Command)(list_command)
    group.command("show", cls=helptext.Command)(show_command)
    app.command("namespaces", cls=helptext.Command)(namespaces_command)
