"""The Typer application: global options, one module per command group, one error handler."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import typer

from mfproj import __version__
from mfproj.cli import (
    completion,
    deploy,
    deployments,
    helptext,
    history,
    init,
    lifecycle,
    names,
    output,
    runs,
    schedules,
    selection,
    token,
    whoami,
)

app = typer.Typer(
    name="mfproj",
    cls=helptext.Group,
    rich_markup_mode=None,
    help="Share one workflow project on AWS Step Functions and Argo Workflows, Metaflow @project style.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        print(f"mfproj {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    manifest: Path = typer.Option(
        None,
        "--manifest",
        "-m",
        metavar="PATH",
        envvar="MFPROJ_MANIFEST",
        help="Path to mfproj.toml (or a pyproject.toml with a tool.mfproj table, or a directory with one). "
        "Default: search upwards.",
        show_default=False,
    ),
    no_color: bool = typer.Option(False, "--no-color", help="No colour in output (also: NO_COLOR=1)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    output.set_no_color(no_color)
    state = selection.invocation(ctx)
    state.manifest, state.debug = (str(manifest) if manifest else None), debug


for module in (names, init, deploy, history, deployments, lifecycle, runs, schedules, token, whoami, completion):
    module.register(app)


def command() -> Any:
    return typer.main.get_command(app)


def run(args: list[str]) -> int:
    """Runs the CLI and turns every failure into an exit code through one handler."""
    output.reset_warnings()
    from mfproj import pacing

    pacing.reset()  # each command its own throttling account (tests run many in one process)
    state = selection.Invocation()
    debug = "--debug" in args or bool(os.environ.get("MFPROJ_DEBUG"))
    from mfproj import interrupts

    stdout, sys.stdout = sys.stdout, output.GuardedStdout(sys.stdout)  # type: ignore[assignment]
    try:
        with interrupts.terminate_as_interrupt():  # SIGTERM (a cancelled CI job) is handled as Ctrl-C
            result = command().main(args=args, prog_name="mfproj", standalone_mode=False, obj=state)
    except typer.Exit as exc:
        if exc.exit_code == 130 and isinstance(exc.__cause__, KeyboardInterrupt):
            output.info("interrupted")  # Typer turns Ctrl-C into a silent Exit(130): say it
        return int(exc.exit_code or 0)
    except (BrokenPipeError, output.ReaderGone):
        raise BrokenPipeError() from None  # main() ends quietly: the reader went away
    except (typer.Abort, KeyboardInterrupt):
        output.info("interrupted")
        return 130
    except Exception as exc:
        if _is_click_usage_error(exc):
            return output.report_error(usage_error(exc), debug=False, as_json=output.wants_json(state.output, args))
        return output.report_error(exc, debug=debug, as_json=output.wants_json(state.output, args))
    finally:
        output.flush_warnings()
        sys.stdout = stdout
    return int(result or 0)


def _is_click_usage_error(exc: Exception) -> bool:
    """Typer's (vendored) click errors about the command line: they carry an exit code and format_message."""
    return isinstance(getattr(exc, "exit_code", None), int) and callable(getattr(exc, "format_message", None))


_PYDANTIC_WORDS = {
    "Input should be a valid integer, unable to parse string as an integer": "not a whole number",
    "Input should be a valid number, unable to parse string as a number": "not a number",
    "Input should be a valid boolean, unable to interpret input": "not true or false",
}


def usage_error(exc: Any) -> Exception:
    """A click usage error in mfproj's own words: one `error:` line naming the option and the rule, and a
    hint (the closest options, or where the help is)."""

    from mfproj.errors import UsageError

    message = " ".join(str(exc.format_message()).split())
    message = message.replace("Value error, ", "").replace(" (env var: 'MFPROJ_MANIFEST')", "")
    hint = None
    possible = re.search(r" \(Possible options: (.+)\)$", message)
    if possible:
        message = message[: possible.start()]
        hint = "did you mean " + " or ".join(possible.group(1).split(", ")) + "?"
    for said, plain in _PYDANTIC_WORDS.items():
        message = message.replace(said, plain)
    message = message.rstrip(".")
    message = message[:1].lower() + message[1:]
    context = getattr(exc, "ctx", None)
    suggestion = re.search(r"\. Did you mean (.+)\?$", message)  # click's own guess, for commands
    if suggestion:
        message, hint = message[: suggestion.start()], f"did you mean {suggestion.group(1)}?"
    where = getattr(context, "command_path", None) or "mfproj"
    help_hint = f"see '{where} --help'"
    return UsageError(message, hint=f"{hint} ({help_hint})" if hint else help_hint)
