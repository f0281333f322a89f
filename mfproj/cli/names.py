"""`mfproj names`: every deployment name of the selected branch, computed locally (no network)."""

from typing import TYPE_CHECKING

from mfproj import project
from mfproj.backends import registry
from mfproj.cli import output
from mfproj.cli.selection import Selection, with_selection
from mfproj.errors import ValidationError

if TYPE_CHECKING:
    import typer


def run(selection: Selection, *, flows: list[str] | None, strict: bool = False) -> None:
    output_format = selection.output
    loaded = selection.manifest()
    target = selection.target(loaded)
    selected = loaded.flows_named(flows)
    namings = project.flow_namings(loaded, target, selected)
    sequence = None
    if loaded.token_scheme == "metaflow":
        from mfproj import tokens  # only here: tokens pulls in secrets, tempfile and friends (hot path)

        sequence = [tokens.metaflow_token(target.token_prefix, i) for i in (0, 1)]
    problems = [(naming.flow.name, p) for naming in namings for p in naming.problems]

    header = f"project {loaded.project}  branch {target.branch}  token prefix {target.token_prefix}" + (
        "  (production)" if target.is_production else ""
    )
    # Each backend's names are its own columns (its `names.KINDS`), "-" where the flow has none there.
    kinds = [(spec.name, kind, column) for spec in registry.SPECS for kind, column in spec.names_module().KINDS.items()]
    short = {
        kind: said for spec in registry.SPECS for kind, said in getattr(spec.names_module(), "SHORT_KINDS", {}).items()
    }
    document = project.names_document(loaded, target, namings, metaflow_tokens=sequence)
    rows = []
    for naming, listed in zip(namings, document["flows"], strict=True):
        shown = [
            listed[backend][kind] if listed[backend][kind] and (backend in naming.backends) else "-"
            for backend, kind, _ in kinds
        ]
        rows.append([naming.flow.name, *shown])
    columns = ["flow", *(column for _, _, column in kinds)]
    # At 80 columns three whole names do not fit side by side: then one name per line.
    each = [
        [row[0], short.get(kind, column), name]
        for row in rows
        for (_, kind, column), name in zip(kinds, row[1:], strict=True)
    ]
    narrow = (["flow", "kind", "name"], [line for line in each if line[2] != "-"])
    whole = [*columns[1:], "kind", "name"]  # names are copied into other commands; the flow is in them
    view = output.View(columns, rows, before=[header], ids=whole, narrow=narrow)
    output.show(output_format, document, view)
    for flow_name, problem in problems:
        output.warn(f"{flow_name}: {problem.message()}" + (f" ({problem.hint})" if problem.hint else ""))
    if strict and problems:
        raise ValidationError(f"{len(problems)} problem(s) the backend would refuse", hint="see the warnings above")


def register(app: "typer.Typer") -> None:
    import typer

    from mfproj.cli import helptext, options

    @app.command("names", cls=helptext.Command)
    @with_selection(from_git=True, profile=False)
    def names_command(
        selection: Selection,
        flows: options.FlowArguments = None,
        strict: bool = typer.Option(False, "--strict", help="Exit 2 when a name would be rejected by its backend."),
    ) -> None:
        """Show the deployment names of every flow in the selected branch (no network)."""
        run(selection, flows=flows, strict=strict)
