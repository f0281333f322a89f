"""`mfproj history` and `mfproj rollback`: a branch's deploys, and putting the branch back to one of them."""

from typing import TYPE_CHECKING

import typer

from mfproj.cli import helptext, options, output
from mfproj.cli.selection import Selection, with_selection

if TYPE_CHECKING:
    from mfproj.usecases.history import BranchHistory


def history_view(history: "BranchHistory") -> output.View:
    from mfproj.backends import registry

    rows = []
    for deploy in history.deploys:
        lineage = deploy.lineage
        wrote = ", ".join(f"{p.flow.name} ({registry.label(p.backend)})" for p, _ in deploy.wrote)
        live = "yes" if len(deploy.live) == len(deploy.wrote) else ("partly" if deploy.live else "no")
        what = f"rollback to {lineage.rolled_back_to}" if lineage.rolled_back_to else "deploy"
        rows.append(
            [
                deploy.deploy_id,
                (lineage.deployed_at or "-").replace("+00:00", "Z"),
                lineage.principal or lineage.owner or "-",
                (lineage.commit or "-")[:10],
                wrote,
                what,
                live,
            ]
        )
    kept = "/".join(str(n) for n in sorted(set(history.kept.values())))
    after = [f"deploys kept per deployment: {kept}"] if kept else []
    columns = ["deploy", "when", "who", "commit", "flows", "what", "live"]
    return output.View(
        columns,
        rows,
        after=after,
        empty=f"no deploys kept for {history.branch}",
        ids=["deploy"],
        optional=["commit", "what"],
    )


@with_selection()
def history_command(
    selection: Selection,
    flows: options.FlowArguments = None,
    backend: options.Backends = None,
) -> None:
    """The branch's deploys, newest first: id, when, who, commit, what each wrote, whether it is live."""
    from mfproj.usecases.history import branch_history

    found = branch_history(selection.session(), flows=flows, backends=options.backend_names(backend))
    view = history_view(found)
    view.before = [f"{found.branch}: {len(found.deploys)} deploy(s) kept"]
    output.show(selection.output, found.as_json(), view)


@with_selection()
def rollback_command(
    selection: Selection,
    flows: options.FlowArguments = None,
    backend: options.Backends = None,
    to: str = typer.Option(
        None, "--to", metavar="DEPLOY_ID", help="The deploy to put back (default: the one before the live one)."
    ),
    authorize: options.Authorize = None,
    authorize_file: options.AuthorizeFile = None,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan and the definition diff; change nothing."),
) -> None:
    """Put the branch (or the named flows) back to the previous deploy, or to an older one by its id."""
    from mfproj.cli import progress
    from mfproj.cli.deploy import deploy_view
    from mfproj.usecases.rollback import rollback

    with progress.ProgressView(enabled=not selection.json and not dry_run) as view:
        session = selection.session(progress=view.update, say=view.say)
        done = rollback(
            session,
            flows=flows,
            backends=options.backend_names(backend),
            to=to,
            token_options=options.token_options(authorize, authorize_file, False),
            dry_run=dry_run,
        )
    shown = deploy_view(done.report)
    shown.before = [f"rolling {done.report.branch} back to deploy {done.target}", *shown.before]
    if not dry_run and any(o.action != "unchanged" for o in done.report.outcomes):
        shown.after = [f"rolled back to {done.target} as deploy {session.deploy_id()}", *shown.after]
    output.show(selection.output, done.as_json(), shown)


def register(app: "typer.Typer") -> None:
    app.command("history", cls=helptext.Command)(history_command)
    app.command("rollback", cls=helptext.Command)(rollback_command)
