"""The Typer application: global options, one module per command group, one error handler."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from mfproj import __version__
from mfproj.cli import completion, deploy, deployments, helptext, init, lifecycle, names, output, runs, token

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
        help="Path to mfproj.toml, or a pyproject.toml with a tool.mfproj table. Default: search upwards.",
        dir_okay=False,
        show_default=False,
    ),
    no_color: bool = typer.Option(False, "--no-color", help="No colour in output (also: NO_COLOR=1)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    output.set_no_color(no_color)
    ctx.obj = {"manifest": manifest, "debug": debug}


for module in (names, init, deploy, deployments, lifecycle, runs, token, completion):
    module.register(app)


def command() -> Any:
    return typer.main.get_command(app)


def run(args: list[str]) -> int:
    """Runs the CLI and turns every failure into an exit code through one handler."""
    output.set_format("table")
    debug = "--debug" in args or bool(os.environ.get("MFPROJ_DEBUG"))
    from mfproj import interrupts

    try:
        with interrupts.terminate_as_interrupt():  # SIGTERM (a cancelled CI job) is handled as Ctrl-C
            result = command().main(args=args, prog_name="mfproj", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except BrokenPipeError:
        raise  # main() ends quietly: the reader went away
    except (typer.Abort, KeyboardInterrupt):
        output.info("interrupted")
        return 130
    except Exception as exc:
        # Typer's (vendored) click usage errors know how to show themselves, with exit code 2.
        show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(exit_code, int):
            if output.wants_json(args):
                from mfproj.errors import UsageError

                return output.report_error(UsageError(exc.format_message()), debug=False, as_json=True)  # type: ignore[attr-defined]
            show()
            return exit_code
        return output.report_error(exc, debug=debug, as_json=output.wants_json(args))
    return int(result or 0)
