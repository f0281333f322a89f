"""`mfproj teardown`: remove a whole branch (the lifecycle commands that change many deployments at once)."""

import datetime as _dt
from dataclasses import replace
from typing import TYPE_CHECKING

import typer

from mfproj import identity
from mfproj.backends import registry
from mfproj.cli import helptext, options, output
from mfproj.cli.selection import Selection, with_selection
from mfproj.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from mfproj.usecases.session import Session
    from mfproj.usecases.teardown import Item


@with_selection(user=True)
def teardown_command(
    selection: Selection,
    authorize: options.Authorize = None,
    authorize_file: options.AuthorizeFile = None,
    terminate_runs: bool = typer.Option(False, "--terminate-runs", help="Stop the branch's running runs too."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be removed; change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Remove every deployment of one branch on every backend: flows, orphans, schedules and locks."""
    from mfproj.usecases import teardown

    if selection.branch is None and not selection.production and selection.owner is None:
        raise UsageError(
            "name the branch to tear down: --branch B, --production [--branch B], or --user U",
            hint="production branches are torn down only with --production named",
        )
    session = selection.session()
    # Counted before a prompt, for the person to read; with --yes, each just before it goes.
    items = teardown.plan_teardown(
        session, token_options=options.token_options(authorize, authorize_file, False), count_running=dry_run or not yes
    )
    if not items:
        _leftover_locks(selection, session, dry_run=dry_run)
        return
    view = _plan_view(items)
    if dry_run:
        plan = teardown.Teardown(session.target.branch, items, dry_run=True)
        view.before = [f"{session.target.branch}: {len(items)} deployment(s)  (dry run: nothing changed)"]
        output.show(selection.output, plan.as_json(), view)
        return
    if not selection.json and not yes:
        output.table(view.columns, view.rows, ids=["name"], wide=selection.output == "wide")
    if not output.confirm(
        f"remove {len(items)} deployment(s) of {session.target.branch}?",
        yes=yes,
        refusal=f"tearing down {session.target.branch} needs --yes when nobody can answer a prompt",
    ):
        output.info("nothing removed")
        return
    result = teardown.teardown(session, items, terminate_runs=terminate_runs)
    running = [(i, run_id) for i in items for run_id in i.running or []]
    after = [f"removed {teardown.label(i)} ({i.existing.name})" for i in items]
    after += [
        f"removed the leftover lock on {name}" for name in result.locks if name not in {i.existing.name for i in items}
    ]
    if result.token_in_keyring:
        branch = session.target.branch
        selecting = identity.selecting_options(branch)
        command = " ".join(["mfproj token forget", *([selecting] if selecting else [])])
        after.append(
            f"your keyring still holds {branch}'s production token: '{command}' removes it "
            "(kept: it is the branch's token again if the branch is deployed again)"
        )
    if running and not terminate_runs:  # named: once their deployment is gone, nothing else lists them
        after.append(f"{len(running)} run(s) left running (--terminate-runs would have stopped them):")
        after += [f"  {run_id} ({i.pair.flow.name} on {registry.label(i.pair.backend)})" for i, run_id in running]
    output.show(selection.output, result.as_json(), output.View(after=after))


def _leftover_locks(selection: Selection, session: "Session", *, dry_run: bool) -> None:
    """A branch with no deployment left may still hold locks of killed deploys: they go too."""
    from mfproj.usecases import teardown

    if dry_run:
        raise NotFoundError(f"nothing is deployed in {session.target.branch}", hint="'mfproj deployments' lists it all")
    leftovers = teardown.teardown(session, [])  # or NotFoundError when no lock is left either
    lines = [f"removed the leftover lock on {name}" for name in leftovers.locks]
    output.show(selection.output, leftovers.as_json(), output.View(after=lines))


def _plan_view(items: "list[Item]") -> output.View:
    rows = [
        [
            i.pair.flow.name,
            options.backend_label(i.pair.backend),
            i.existing.name,
            i.existing.schedule or "-",
            "?" if i.running is None else str(len(i.running)),
            i.reason if i.authorized else f"REFUSED: {i.reason}",
        ]
        for i in items
    ]
    # The name holds the flow: a narrow terminal leaves the flow column out first, then the schedule.
    columns = ["flow", "backend", "name", "schedule", "running", "authorization"]
    return output.View(columns, rows, optional=["flow", "schedule"])


@with_selection(branch=False)
def gc_command(
    selection: Selection,
    older_than: str = typer.Option(None, "--older-than", metavar="AGE", help="Not deployed again for this long: 30d."),
    merged: bool = typer.Option(False, "--merged", help="Whose git branch is merged into (or gone from) the default."),
    branches: str = typer.Option(None, "--branches", metavar="GLOB", help="Only branches matching: 'test.*'."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan; change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Tear down the stale branches you may remove."),
) -> None:
    """Find stale branches (never production) and, with --yes, tear down the ones you may."""

    from mfproj.usecases import gc, runs

    session = selection.session()
    age = None
    if older_than is not None or not merged:
        since = runs.parse_since(older_than or "30d", now=_dt.datetime.now(_dt.timezone.utc))
        age = _dt.datetime.now(_dt.timezone.utc) - since if since else None
    stale = gc.find_stale(session, older_than=age, merged=merged, pattern=branches)
    if yes and not dry_run:
        stale = gc.collect(session, stale)
    documents = [s.as_json() for s in stale]
    rows = [
        [
            d["branch"],
            ", ".join(d["flows"]),
            ", ".join(d["owners"]),
            d["last_deployed"] or "-",
            d["last_run"] or "-",
            "; ".join(d["why"]),
            d["outcome"],
        ]
        for d in documents
    ]
    columns = ["branch", "flows", "owner", "last deployed", "last run", "why stale", "outcome"]
    after = [] if yes and not dry_run else (["run again with --yes to tear them down"] if stale else [])
    view = output.View(columns, rows, after=after, empty="no stale branches")
    output.show(selection.output, documents, view)


@with_selection(branch=False)
def promote_command(
    selection: Selection,
    flows: options.FlowArguments = None,
    branch: str = typer.Option(..., "--branch", "-b", metavar="B", help="Promote what is deployed on test.<B>."),
    to_branch: str = typer.Option(None, "--to-branch", metavar="C", help="To prod.<C> (default: prod)."),
    backend: options.Backends = None,
    authorize: options.Authorize = None,
    authorize_file: options.AuthorizeFile = None,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan and the diff against production now."),
    allow_branch: bool = typer.Option(
        False, "--allow-branch", help="Promote from a git branch other than production_branch."
    ),
    allow_dirty: bool = typer.Option(False, "--allow-dirty", help="Promote from a dirty tree."),
) -> None:
    """Deploy to production exactly the commit deployed (and tested) on test.<B>."""
    from mfproj.cli.deploy import deploy_view
    from mfproj.usecases import promote

    session = replace(selection, production=True, branch=to_branch).session()
    commit, report = promote.promote(
        session,
        source_branch=branch,
        to_branch=to_branch,
        flows=flows,
        backends=options.backend_names(backend),
        token_options=options.token_options(authorize, authorize_file, False),
        dry_run=dry_run,
        allow_branch=allow_branch,
        allow_dirty=allow_dirty,
    )
    view = deploy_view(report)
    view.before = [f"promoting test.{branch} at commit {commit[:10]} to {report.branch}", *view.before]
    output.show(selection.output, {**report.as_json(), "commit": commit, "source": f"test.{branch}"}, view)


def register(app: "typer.Typer") -> None:
    app.command("promote", cls=helptext.Command)(promote_command)
    app.command("teardown", cls=helptext.Command)(teardown_command)
    app.command("gc", cls=helptext.Command)(gc_command)
