"""`mfproj schedules pause|resume`: a branch's schedules stopped from starting runs, and let again."""

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mfproj.cli import helptext, options, output
from mfproj.cli.selection import Selection, with_selection

if TYPE_CHECKING:
    from mfproj.usecases.schedules import ScheduleState


def _change(
    selection: Selection,
    *,
    paused: bool,
    flows: list[str] | None,
    backend: list[Any] | None,
    authorize: str | None,
    authorize_file: Path | None,
) -> None:
    from mfproj.usecases import schedules

    states = schedules.set_paused(
        selection.session(),
        paused=paused,
        flows=flows,
        backends=options.backend_names(backend),
        token_options=options.token_options(authorize, authorize_file, False),
    )
    verb = "paused" if paused else "resumed"
    changed = sum(1 for state in states if state.changed)
    after = [
        f"{verb} {changed} schedule(s)" + (f"; {len(states) - changed} already were" if changed < len(states) else "")
    ]
    view = output.View(["flow", "backend", "name", "schedule", "state"], [_row(s) for s in states], after=after)
    output.show(selection.output, [state.as_json() for state in states], view)


def _row(state: "ScheduleState") -> list[str]:
    shown = "paused" if state.paused else "active"
    return [state.pair.flow.name, options.backend_label(state.pair.backend), state.name, state.schedule, shown]


def _command(*, paused: bool, doc: str) -> Any:
    """`schedules pause` or `schedules resume`: the same options, the one `_change`."""

    @with_selection(user=True)
    def command(
        selection: Selection,
        flows: options.FlowArguments = None,
        backend: options.Backends = None,
        authorize: options.Authorize = None,
        authorize_file: options.AuthorizeFile = None,
    ) -> None:
        _change(
            selection, paused=paused, flows=flows, backend=backend, authorize=authorize, authorize_file=authorize_file
        )

    command.__doc__ = doc
    return command


pause_command = _command(
    paused=True,
    doc="Stop the branch's schedules from starting runs (each kept as deployed; a deploy keeps it paused).",
)
resume_command = _command(paused=False, doc="Let the branch's paused schedules start runs again.")


def register(app: "typer.Typer") -> None:
    group = typer.Typer(
        cls=helptext.Group,
        help="A branch's schedules: pause them (an incident, a migration) and resume them; authorized as a delete.",
    )
    app.add_typer(group, name="schedules")
    group.command("pause", cls=helptext.Command)(pause_command)
    group.command("resume", cls=helptext.Command)(resume_command)
