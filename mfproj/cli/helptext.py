"""Help as people expect it from a command line, for every command: plain text (no panels), flags
without a value, values as a short upper-case name, choices listed once as `[a|b]`, usage lines like
`mfproj runs show [OPTIONS] RUN_ID [FLOW]...`.

Typer's own help shows Python types (`<list[str]>`, `<bool>`), so every command and group of the CLI is
made with the classes here (`tests/test_help.py` walks the whole tree and checks the rules).
"""

from __future__ import annotations

import enum
from typing import Any

from typer.core import TyperCommand, TyperGroup


def choices(param: Any) -> list[str]:
    """The fixed values a parameter accepts (an Enum annotation, alone or in a list), else []."""
    descriptor = getattr(param, "type_descriptor", None)
    values = getattr(descriptor, "choices", None) or ()
    return [str(v.value if isinstance(v, enum.Enum) else v) for v in values]


def takes_value(param: Any) -> bool:
    return not getattr(param, "is_flag", False) and not getattr(param, "count", False)


def value_name(param: Any) -> str:
    """What stands for an option's value: its choices, its declared metavar, or its name in capitals."""
    listed = choices(param)
    if listed:
        return "[" + "|".join(listed) + "]"
    if param.metavar:
        return str(param.metavar)
    longest = max([*param.opts], key=len).lstrip("-")
    return str(longest).replace("-", "_").upper()


def argument_name(param: Any) -> str:
    name = str(param.metavar or param.name).upper()
    return f"{name}..." if param.nargs != 1 else name


def _usage_piece(param: Any) -> str:
    name = str(param.metavar or param.name).upper()
    if not param.required:
        name = f"[{name}]"
    return f"{name}..." if param.nargs != 1 else name


def _default(param: Any) -> str | None:
    if not param.show_default or not takes_value(param) or param.default in (None, (), []):
        return None
    value = param.default
    return str(value.value if isinstance(value, enum.Enum) else value)


def option_record(param: Any) -> tuple[str, str]:
    names = sorted(param.opts, key=lambda name: (name.startswith("--"), name))
    label = ", ".join(names)
    if param.secondary_opts:
        label += " / " + ", ".join(param.secondary_opts)
    if takes_value(param):
        label += " " + value_name(param)
    text = param.help or ""
    extras = []
    default = _default(param)
    if default is not None:
        extras.append(f"default: {default}")
    if param.envvar and param.show_envvar:
        envvars = param.envvar if isinstance(param.envvar, (list, tuple)) else [param.envvar]
        extras.append("env: " + ", ".join(envvars))
    if extras:
        text = f"{text} [{'; '.join(extras)}]".strip()
    return label, text


def argument_record(param: Any) -> tuple[str, str]:
    text = param.help or ""
    listed = choices(param)
    if listed:
        text = f"{text} One of: {', '.join(listed)}.".strip()
    return argument_name(param), text


class _Conventional:
    """Usage and the parameter lists written by us; the description and layout stay click's."""

    params: list[Any]

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = ["[OPTIONS]"]
        pieces += [_usage_piece(p) for p in self.get_params(ctx) if p.param_type_name == "argument"]  # type: ignore[attr-defined]
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        params = [p for p in self.get_params(ctx) if not getattr(p, "hidden", False)]  # type: ignore[attr-defined]
        arguments = [argument_record(p) for p in params if p.param_type_name == "argument"]
        options = [option_record(p) for p in params if p.param_type_name == "option"]
        if arguments:
            with formatter.section("Arguments"):
                formatter.write_dl(arguments)
        if options:
            with formatter.section("Options"):
                formatter.write_dl(options)


class Command(_Conventional, TyperCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "rich_markup_mode": None})


class Group(_Conventional, TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "rich_markup_mode": None})

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [*super().collect_usage_pieces(ctx), "COMMAND [ARGS]..."]

    def format_options(self, ctx: Any, formatter: Any) -> None:
        super().format_options(ctx, formatter)
        default = self.commands.get(getattr(self, "default_command", None) or "")
        if default is not None:  # `mfproj runs --tag x` is `mfproj runs list --tag x`: say so here
            params = [p for p in default.params if not getattr(p, "hidden", False)]
            with formatter.section(f"Arguments and options of '{default.name}' (the default command)"):
                formatter.write_dl(
                    [argument_record(p) for p in params if p.param_type_name == "argument"]
                    + [option_record(p) for p in params if p.param_type_name == "option"]
                )
        rows = []
        for name in self.list_commands(ctx):  # type: ignore[attr-defined]
            command = self.get_command(ctx, name)  # type: ignore[attr-defined]
            if command is not None and not command.hidden:
                rows.append((name, (command.help or "").strip().split("\n\n")[0].replace("\n", " ")))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)  # the whole first paragraph, wrapped, never cut with "..."
