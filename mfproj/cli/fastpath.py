"""Answers the hottest invocations without importing Typer (which alone costs ~6x `python -c pass`).

Handled here: `mfproj --version`, `mfproj [GLOBAL...] names [...]` with the options it knows, and
`mfproj __complete flows|run-ids` (called by the static completion scripts). Anything else, including
`--help` and every unknown or malformed option, returns None and goes to Typer, which owns help
and usage errors. Tests run the same inputs through both paths and compare the results.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from mfproj import __version__

_GLOBAL_VALUE = {"--manifest", "-m"}
_GLOBAL_FLAGS = {"--no-color", "--debug"}


def _split_value(args: list[str], index: int, names: set[str]) -> tuple[str, str, int] | None:
    """Recognizes `--opt value`, `--opt=value` and `-xvalue`; returns (name, value, next index)."""
    word = args[index]
    for name in names:
        if word == name:
            if index + 1 >= len(args):
                return None
            return name, args[index + 1], index + 2
        if name.startswith("--") and word.startswith(name + "="):
            return name, word[len(name) + 1 :], index + 1
        if not name.startswith("--") and word.startswith(name) and len(word) > len(name):
            return name, word[len(name) :], index + 1
    return None


def try_run(args: list[str]) -> int | None:
    if args == ["--version"]:
        print(f"mfproj {__version__}")
        return 0
    manifest_path: str | None = os.environ.get("MFPROJ_MANIFEST") or None
    debug = bool(os.environ.get("MFPROJ_DEBUG"))
    no_color = False
    index = 0
    while index < len(args) and args[index].startswith("-"):
        word = args[index]
        if word in _GLOBAL_FLAGS:
            debug = debug or word == "--debug"
            no_color = no_color or word == "--no-color"
            index += 1
            continue
        found = _split_value(args, index, _GLOBAL_VALUE)
        if found is None:
            return None
        manifest_path, index = found[1], found[2]
    if index >= len(args):
        return None
    command, rest = args[index], args[index + 1 :]
    if command == "__complete":
        return _complete(rest, manifest_path)
    if command != "names":
        return None
    parsed = _parse_names(rest)
    if parsed is None:
        return None

    from mfproj.cli import names, output
    from mfproj.cli.selection import Selection, whole_branch
    from mfproj.errors import MfprojError

    output.set_no_color(no_color)
    try:
        chosen = whole_branch(parsed.branch, parsed.production, None)
        selection = Selection(
            manifest_path, chosen["branch"], chosen["production"], None, parsed.output_format, owner=chosen["owner"]
        )
        names.run(selection, flows=parsed.flows or None, strict=parsed.strict)
        return 0
    except MfprojError as exc:
        return output.report_error(exc, debug=debug, as_json=parsed.output_format == "json")


@dataclass
class _NamesArgs:
    flows: list[str] = field(default_factory=list)
    branch: str | None = None
    production: bool | None = None
    output_format: str = "table"
    strict: bool = False


def _parse_names(rest: list[str]) -> _NamesArgs | None:
    parsed = _NamesArgs()
    flags = {
        "--production": ("production", True),
        "--no-production": ("production", False),
        "--strict": ("strict", True),
    }
    index = 0
    while index < len(rest):
        word = rest[index]
        if not word.startswith("-"):
            parsed.flows.append(word)
            index += 1
        elif word in flags:
            setattr(parsed, *flags[word])
            index += 1
        elif (found := _split_value(rest, index, {"--branch", "-b"})) is not None:
            parsed.branch, index = found[1], found[2]
        elif (found := _split_value(rest, index, {"--output", "-o"})) is not None and found[1] in (
            "table",
            "wide",
            "json",
        ):
            parsed.output_format, index = found[1], found[2]
        else:
            return None  # help, unknown options and bad values: Typer explains them
    return parsed


def _complete(rest: list[str], manifest_path: str | None) -> int:
    """Values for the completion scripts; silent on any error (a completion must never print one)."""
    if rest[:1] == ["run-ids"]:
        from mfproj import recent

        sys.stdout.write("".join(f"{run_id}\n" for run_id in recent.run_ids()))
        return 0
    if rest[:1] != ["flows"]:
        return 0
    try:
        from mfproj import manifest

        loaded = manifest.load(manifest_path)
    except Exception:
        return 0
    sys.stdout.write("".join(f"{flow.name}\n" for flow in loaded.flows))
    return 0
