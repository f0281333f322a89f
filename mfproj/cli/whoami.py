"""`mfproj whoami`: user, branches, keyring, manifest and each backend's endpoint, as mfproj sees them."""

from typing import TYPE_CHECKING, Any

import typer

from mfproj.cli import helptext, output
from mfproj.cli.selection import Selection, with_selection

if TYPE_CHECKING:
    from mfproj.usecases.whoami import WhoAmI

_SETTINGS_SHOWN = ("endpoint", "region", "account", "profile", "context", "namespace", "server", "user", "kubeconfig")


def whoami_view(found: "WhoAmI") -> output.View:
    from mfproj.backends import registry

    def show(value: Any) -> str:
        return "-" if value in (None, "") else str(value)

    lines = [
        f"user          {show(found.user)}",
        f"user branch   {show(found.user_branch)}",
        f"branch        {show(found.branch)}",
        f"project       {show(found.project)}",
        f"manifest      {found.manifest or '- (' + (found.manifest_problem or 'none') + ')'}",
        f"keyring       {found.keyring}",
    ]
    for view in found.backends:
        lines.append(f"{registry.label(view.backend).lower()}:")
        for key in _SETTINGS_SHOWN:
            if key in view.settings:
                lines.append(f"  {key:<12}{show(view.settings[key])}")
        if view.settings.get("problem"):
            lines.append(f"  problem     {view.settings['problem']}")
        if view.answers is True:
            lines.append(f"  check       answers, as {show(view.answer.get('as'))}")
        elif view.answers is False:
            lines.append(f"  check       does not answer: {view.problem}")
    return output.View(after=lines)


@with_selection()
def whoami_command(
    selection: Selection,
    check: bool = typer.Option(False, "--check", help="Also ask each backend (one cheap request) who you are."),
) -> None:
    """Who mfproj takes you for and where it would deploy: no request is made unless --check."""

    from mfproj.errors import BackendError
    from mfproj.usecases import whoami

    found = whoami.whoami(
        manifest_path=selection.manifest_path,
        branch=selection.branch,
        production=selection.production,
        profile=selection.profile,
        env=selection.env(),
        check=check,
    )
    if selection.json:
        output.emit_json(found.as_json())
    else:
        output.emit_text("".join(line + "\n" for line in whoami_view(found).after))
    from mfproj.backends import registry

    failed = [registry.label(view.backend) for view in found.backends if view.answers is False]
    if failed:
        raise BackendError(
            f"{', '.join(failed)} did not answer (see above)",
            hint="check the endpoint, credentials and network; 'mfproj whoami' shows what is configured",
        )


def register(app: "typer.Typer") -> None:
    app.command("whoami", cls=helptext.Command)(whoami_command)
