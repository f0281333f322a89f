"""Static shell completion scripts, generated from the live command tree.

Commands, options and fixed choices are written into the scripts, so completing them runs no Python.
Only values that depend on the project call the fast path (no Typer): `mfproj __complete flows` (the
manifest's flow names) and `mfproj __complete run-ids` (run ids this user listed or started lately).
`scripts/gen_completions.py` writes `completions/`; a test fails when the files there differ from what
this module generates.
"""

import enum
import shlex
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from mfproj.cli import helptext

if TYPE_CHECKING:
    import typer

SHELLS = ("bash", "zsh", "fish")
FILES = {"bash": "mfproj.bash", "zsh": "_mfproj", "fish": "mfproj.fish"}
_FILES_MARK = "__files__"
# Positional parameters completed with the manifest's flow names.
_FLOW_ARGUMENTS = {"flows", "flow"}


@dataclass
class OptionSpec:
    names: list[str]
    takes_value: bool
    choices: list[str] = field(default_factory=list)
    is_path: bool = False
    help: str = ""


@dataclass
class CommandSpec:
    path: str  # "" for the root, "token show" for a subcommand
    help: str
    options: list[OptionSpec]
    subcommands: list[str]
    completes_flows: bool
    argument_choices: list[str] = field(default_factory=list)
    completes_run_ids: bool = False


def _value_kind(param: Any) -> tuple[list[str], bool]:
    """(fixed choices, completes file names) of a parameter's value."""
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    args = getattr(annotation, "__args__", None) or (annotation,)
    is_path = any(isinstance(a, type) and issubclass(a, PurePath) for a in args)
    return helptext.choices(param), is_path


def command_tree(root: Any) -> list[CommandSpec]:
    """Walks Typer's click command objects; hidden commands and options are left out."""
    specs: list[CommandSpec] = []

    def visit(command: Any, path: str) -> None:
        options = []
        flows = run_ids = False
        argument_choices: list[str] = []
        children = getattr(command, "commands", {})
        default = children.get(getattr(command, "default_command", None) or "")
        # A group with a default command (`runs` runs `runs list`) completes that command's options too.
        params = [*command.params, *(default.params if default is not None else [])]
        for param in params:
            if getattr(param, "hidden", False):
                continue
            if param.param_type_name == "argument":
                run_ids = run_ids or param.name == "run_id"
                flows = flows or (param.name in _FLOW_ARGUMENTS and not run_ids)
                argument_choices += _value_kind(param)[0]
                continue
            choices, is_path = _value_kind(param)
            options.append(
                OptionSpec(
                    names=[*param.opts, *param.secondary_opts],
                    takes_value=helptext.takes_value(param),
                    choices=choices,
                    is_path=is_path,
                    help=(param.help or "").split(". ")[0].rstrip("."),
                )
            )
        options.append(OptionSpec(names=["--help", "-h"], takes_value=False, help="Show help"))
        subcommands = []
        for name, child in children.items():
            if not getattr(child, "hidden", False):
                subcommands.append(name)
        specs.append(
            CommandSpec(
                path=path,
                help=(command.help or "").strip().splitlines()[0] if command.help else "",
                options=options,
                subcommands=sorted(subcommands),
                completes_flows=flows,
                argument_choices=argument_choices,
                completes_run_ids=run_ids,
            )
        )
        for name in sorted(subcommands):
            visit(children[name], f"{path} {name}".strip())

    visit(root, "")
    return specs


def _case_table(function: str, arms: list[tuple[str, str]], args: str = '"$1"') -> str:
    lines = [f"_mfproj_{function}() {{", f"    case {args} in"]
    for pattern, body in arms:
        lines.append(f"        {pattern}) {body} ;;")
    lines += ["    esac", "}"]
    return "\n".join(lines)


def _posix_helpers(specs: list[CommandSpec]) -> str:
    """Case tables shared by bash and zsh: both accept this syntax."""
    commands = [(shlex.quote(s.path), f"echo {shlex.quote(' '.join(s.subcommands))}") for s in specs if s.subcommands]
    options = [
        (shlex.quote(s.path), f"echo {shlex.quote(' '.join(n for o in s.options for n in o.names))}") for s in specs
    ]
    takes_value = []
    values = []
    for spec in specs:
        for option in spec.options:
            if not option.takes_value:
                continue
            keys = "|".join(shlex.quote(f"{spec.path}:{n}") for n in option.names)
            takes_value.append((keys, "return 0"))
            if option.choices:
                values.append((keys, f"echo {shlex.quote(' '.join(option.choices))}"))
            elif option.is_path:
                values.append((keys, f"echo {_FILES_MARK}"))
    takes_value.append(("*", "return 1"))
    flows = [(shlex.quote(s.path), "command mfproj __complete flows 2>/dev/null") for s in specs if s.completes_flows]
    flows += [
        (shlex.quote(s.path), f"echo {shlex.quote(' '.join(s.argument_choices))}") for s in specs if s.argument_choices
    ]
    flows += [
        (shlex.quote(s.path), "command mfproj __complete run-ids 2>/dev/null") for s in specs if s.completes_run_ids
    ]
    parts = [
        _case_table("commands", commands or [("*", ":")]),
        _case_table("options", options),
        _case_table("takes_value", takes_value, '"$1:$2"'),
        _case_table("values", values or [("*", ":")], '"$1:$2"'),
        _case_table("arguments", flows or [("*", ":")]),
    ]
    return "\n\n".join(parts)


_BASH_MAIN = r"""
_mfproj() {
    local cur="${COMP_WORDS[COMP_CWORD]}" cmdpath="" word skip=0 i subs
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${COMP_WORDS[i]}"
        if ((skip)); then skip=0; continue; fi
        case "$word" in
            -*=*) ;;
            -*) _mfproj_takes_value "$cmdpath" "$word" && skip=1 ;;
            *)
                subs=" $(_mfproj_commands "$cmdpath") "
                [[ "$subs" == *" $word "* ]] && cmdpath="${cmdpath:+$cmdpath }$word"
                ;;
        esac
    done
    if ((skip)); then
        local values
        values="$(_mfproj_values "$cmdpath" "${COMP_WORDS[COMP_CWORD-1]}")"
        if [[ "$values" == __files__ ]]; then
            COMPREPLY=($(compgen -f -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$values" -- "$cur"))
        fi
        return 0
    fi
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$(_mfproj_options "$cmdpath")" -- "$cur"))
        return 0
    fi
    # A group's subcommands, and the arguments of its default command (`runs` lists flows too).
    COMPREPLY=($(compgen -W "$(_mfproj_commands "$cmdpath") $(_mfproj_arguments "$cmdpath")" -- "$cur"))
    return 0
}

complete -F _mfproj mfproj
"""

_ZSH_MAIN = r"""
_mfproj() {
    local cur="${words[CURRENT]}" cmdpath="" word skip=0 i subs values
    for ((i = 2; i < CURRENT; i++)); do
        word="${words[i]}"
        if ((skip)); then skip=0; continue; fi
        case "$word" in
            -*=*) ;;
            -*) _mfproj_takes_value "$cmdpath" "$word" && skip=1 ;;
            *)
                subs=" $(_mfproj_commands "$cmdpath") "
                [[ "$subs" == *" $word "* ]] && cmdpath="${cmdpath:+$cmdpath }$word"
                ;;
        esac
    done
    if ((skip)); then
        values="$(_mfproj_values "$cmdpath" "${words[CURRENT-1]}")"
        if [[ "$values" == __files__ ]]; then
            _files
        else
            compadd -- ${=values}
        fi
        return
    fi
    if [[ "$cur" == -* ]]; then
        compadd -- ${=$(_mfproj_options "$cmdpath")}
        return
    fi
    compadd -- ${=$(_mfproj_commands "$cmdpath")} ${=$(_mfproj_arguments "$cmdpath")}
}

if [[ "$funcstack[1]" == "_mfproj" ]]; then
    _mfproj "$@"
else
    compdef _mfproj mfproj
fi
"""


def _header(shell: str) -> str:
    return (
        f"# {shell} completion for mfproj. Generated by scripts/gen_completions.py from the CLI; do not edit.\n"
        "# Commands and options complete without running Python; flow names come from\n"
        "# `mfproj __complete flows`.\n"
    )


def _fish(specs: list[CommandSpec]) -> str:
    lines = [_header("fish").rstrip("\n"), "complete -c mfproj -f"]
    by_path = {s.path: s for s in specs}

    def condition(path: str) -> str:
        if not path:
            return "__fish_use_subcommand"
        words = path.split()
        parts = [f"__fish_seen_subcommand_from {w}" for w in words]
        siblings = by_path[path].subcommands
        if siblings:
            parts.append("not __fish_seen_subcommand_from " + " ".join(siblings))
        return "; and ".join(parts)

    for spec in specs:
        cond = condition(spec.path)
        for sub in spec.subcommands:
            child = by_path[f"{spec.path} {sub}".strip()]
            lines.append(f"complete -c mfproj -n {shlex.quote(cond)} -a {sub} -d {shlex.quote(child.help)}")
        for option in spec.options:
            flags = []
            for name in option.names:
                flags.append(f"-l {name[2:]}" if name.startswith("--") else f"-s {name[1:]}")
            extra = ""
            if option.takes_value:
                if option.choices:
                    extra = f" -x -a {shlex.quote(' '.join(option.choices))}"
                elif option.is_path:
                    extra = " -r -F"
                else:
                    extra = " -x"
            lines.append(
                f"complete -c mfproj -n {shlex.quote(cond)} {' '.join(flags)}{extra} -d {shlex.quote(option.help)}"
            )
        if spec.argument_choices:
            lines.append(f"complete -c mfproj -n {shlex.quote(cond)} -a {shlex.quote(' '.join(spec.argument_choices))}")
        if spec.completes_flows:
            lines.append(
                f"complete -c mfproj -n {shlex.quote(cond)} -a '(command mfproj __complete flows 2>/dev/null)'"
            )
        if spec.completes_run_ids:
            lines.append(
                f"complete -c mfproj -n {shlex.quote(cond)} -a '(command mfproj __complete run-ids 2>/dev/null)'"
            )
    return "\n".join(lines) + "\n"


def generate(shell: str, root: Any | None = None) -> str:
    if root is None:
        from mfproj.cli.app import command

        root = command()
    specs = command_tree(root)
    if shell == "bash":
        return _header("bash") + "\n" + _posix_helpers(specs) + "\n" + _BASH_MAIN
    if shell == "zsh":
        return "#compdef mfproj\n" + _header("zsh") + "\n" + _posix_helpers(specs) + "\n" + _ZSH_MAIN
    if shell == "fish":
        return _fish(specs)
    raise ValueError(shell)


def register(app: "typer.Typer") -> None:
    import typer

    from mfproj.cli import output

    shell_type = enum.Enum("Shell", {name: name for name in SHELLS}, type=str)  # type: ignore[misc]

    @app.command("completion", cls=helptext.Command)
    def completion_command(
        shell: shell_type = typer.Argument(..., help="The shell.", show_default=False),  # type: ignore[valid-type]
    ) -> None:
        """Print the shell completion script (static: completing commands runs no Python).

        bash: eval "$(mfproj completion bash)"; zsh: mfproj completion zsh > "${fpath[1]}/_mfproj";
        fish: mfproj completion fish > ~/.config/fish/completions/mfproj.fish
        """
        output.emit_text(generate(shell.value))
