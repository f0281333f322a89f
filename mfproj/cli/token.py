"""`mfproj token`: list, show, share, authorize and forget production tokens in the local keyring."""

import os
import sys
from pathlib import Path
from typing import Any

import typer

from mfproj import authorization, identity, tokens
from mfproj.cli import helptext, output
from mfproj.cli.selection import Selection, with_selection
from mfproj.errors import NotFoundError, UsageError, ValidationError
from mfproj.identity import branch_options
from mfproj.keyring import Keyring, StoredToken, keyring_home
from mfproj.share import Share, encode_share, is_share_string


def _describe(stored: StoredToken, *, reveal: bool = False) -> dict[str, Any]:
    return {
        "token_prefix": stored.token_prefix,
        "project": stored.project,
        "branch": stored.branch,
        "token": stored.token if reveal else tokens.mask(stored.token),
        "revealed": reveal,
        "stored_at": stored.stored_at,
        "source": stored.source,
        "path": str(stored.path),
    }


def _branches_here(manifest_path: str | None) -> list[tuple[str, str]]:
    """The (project, branch) pairs one can name from here, to recognise Metaflow's own token files (they
    hold the token alone): the manifest's project with prod, your user branch, and the test and prod
    branch of each local git branch. None without a manifest."""
    from mfproj import gitbranch, lineage, manifest
    from mfproj.errors import MfprojError

    try:
        loaded = manifest.load(manifest_path)
    except MfprojError:
        return []
    user = identity.resolve_user()
    branches = ["prod", *([f"user.{user}"] if user else [])]
    listed = lineage.git(loaded.root, "for-each-ref", "--format=%(refname:short)", "refs/heads") or ""
    for git_branch in listed.splitlines()[:1000]:
        try:
            branch = gitbranch.normalize(git_branch)
        except ValidationError:
            continue
        branches += [f"test.{branch}", f"prod.{branch}"]
    return [(loaded.project, branch) for branch in dict.fromkeys(branches)]


def run_list(output_format: str, manifest_path: str | None = None) -> None:
    entries, problems = Keyring().scan()
    if any(e.project is None and e.branch is None for e in entries):
        from mfproj.keyring import attribute

        entries = attribute(entries, _branches_here(manifest_path))
    rows = [
        [e.token_prefix, e.project or "?", e.branch or "?", tokens.mask(e.token), e.stored_at or "?", e.source or "?"]
        for e in entries
    ]
    empty = None if problems else f"no tokens in {keyring_home()}"  # with problems, the error says it
    view = output.View(["token prefix", "project", "branch", "token", "stored", "source"], rows, empty=empty)
    output.show(output_format, [_describe(e) for e in entries], view)
    if problems:  # said, never hidden behind "no tokens": a token the user counts on may be in there
        for problem in problems[1:]:
            output.warn(problem.message)
        first = problems[0]
        raise type(first)(
            f"{len(problems)} token file(s) cannot be read: {first.message}" if len(problems) > 1 else first.message,
            hint=first.hint,
        )


def _require(target: identity.Target) -> StoredToken:
    stored = Keyring().load(target.token_prefix)
    if stored is None or stored.token is None:
        options = branch_options(target.branch)
        raise NotFoundError(
            f"no production token stored for {target.project} {target.branch} ({target.token_prefix})",
            hint="get a share string from a teammate and run "
            f"'mfproj token authorize{' ' + options if options else ''} -'",
        )
    return stored


def run_show(target: identity.Target, *, reveal: bool, output_format: str) -> None:
    stored = _require(target)
    described = _describe(stored, reveal=reveal)
    described.update(project=target.project, branch=target.branch)
    if output_format == "json":
        output.emit_json(described)
    elif reveal:
        print(stored.token)
    else:
        output.info(f"{target.project} {target.branch} ({target.token_prefix}); --reveal prints the token")
        print(described["token"])


def run_share(target: identity.Target, *, output_format: str) -> None:
    stored = _require(target)
    assert stored.token is not None
    share = encode_share(Share(target.project, target.branch, target.token_prefix, stored.token))
    if output_format == "json":
        output.emit_json(
            {"share": share, "project": target.project, "branch": target.branch, "token_prefix": target.token_prefix}
        )
        return
    print(share)
    if sys.stdout.isatty():
        options = branch_options(target.branch)
        command = f"mfproj token authorize{' ' + options if options else ''} -"
        output.info(
            f"\nThis string carries the production token of {target.project} {target.branch}; send it privately."
            f"\nThe receiver runs:  {command}\nand pastes it (CI: store the string as a secret and set "
            f"{authorization.TOKEN_VARIABLE}, or run 'mfproj token authorize --from-env VAR')."
        )


def _read_value(value: str | None, from_env: str | None, from_file: Path | None) -> tuple[str, str]:
    given = [v for v in (value, from_env, from_file) if v is not None]
    if len(given) != 1:
        raise UsageError(
            "give the token exactly one way: VALUE, '-' (standard input), --from-env VAR or --from-file PATH"
        )
    if from_env is not None:
        raw = os.environ.get(from_env)
        if not raw:
            raise ValidationError(f"--from-env: the variable {from_env} is unset or empty")
        return raw, f"env:{from_env}"
    if from_file is not None:
        try:
            return from_file.read_text(encoding="utf-8"), "file"
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(f"--from-file: cannot read {from_file}: {exc}") from None
    if value == "-":
        if output.is_interactive():
            from mfproj.cli import paste

            prompt = "paste the share string or token (hidden; a token alone: then an empty line):"
            return paste.read_hidden(prompt), "stdin"
        return sys.stdin.read(), "stdin"
    assert value is not None
    return value, "argument"


def parse_offer(raw: str, target: identity.Target) -> tuple[str, str]:
    """(token, kind) from a share string or a bare token; refuses tokens of another project or branch."""
    kind = "share" if is_share_string(raw.strip()) else "token"
    keyring = Keyring()
    token = authorization.parse_offer(
        raw,
        authorization.BranchRef(target.project, target.branch, target.token_prefix),
        where="the offered value",
        owner_of=authorization.branch_finder(target.project, target.user, keyring),
    )
    return token, kind


def run_authorize(
    target: identity.Target,
    *,
    value: str | None,
    from_env: str | None,
    from_file: Path | None,
    output_format: str,
) -> None:
    raw, origin = _read_value(value, from_env, from_file)
    token, kind = parse_offer(raw, target)
    stored = Keyring().store(
        target.token_prefix, token, project=target.project, branch=target.branch, source=f"{kind}:{origin}"
    )
    said = [f"stored the production token for {target.project} {target.branch} in {stored.path}"]
    output.show(output_format, _describe(stored), output.View(after=said))
    if origin == "argument":
        output.warn("a token on the command line lands in your shell history; next time use '-' or --from-env")


def run_forget(target: identity.Target, *, everything: bool, yes: bool, output_format: str) -> None:
    keyring = Keyring()
    prefixes = [e.token_prefix for e in keyring.entries()] if everything else [target.token_prefix]
    if (
        everything
        and prefixes
        and not output.confirm(
            f"forget {len(prefixes)} tokens in {keyring.home}?",
            yes=yes,
            refusal=f"--all would forget {len(prefixes)} tokens; pass --yes to confirm",
        )
    ):
        output.info("nothing forgotten")
        return
    forgotten = [p for p in prefixes if keyring.forget(p)]
    if not everything and not forgotten:  # an error only: no result printed before it
        raise NotFoundError(
            f"no production token stored for {target.project} {target.branch} ({target.token_prefix})",
            hint="'mfproj token list' shows the stored tokens",
        )
    view = output.View(after=[f"forgot {prefix}" for prefix in forgotten] or ["no stored token to forget"])
    output.show(output_format, {"forgotten": forgotten}, view)


# --- the commands (registered by `register`) ---


@with_selection(branch=False, profile=False)
def list_command(selection: Selection) -> None:
    """Every stored token prefix, with project and branch where known; tokens masked."""
    run_list(selection.output, selection.manifest_path)


@with_selection(profile=False)
def show_command(
    selection: Selection,
    reveal: bool = typer.Option(False, "--reveal", help="Print the whole token."),
) -> None:
    """The selected branch's stored token, masked unless --reveal."""
    run_show(selection.target(), reveal=reveal, output_format=selection.output)


@with_selection(profile=False)
def share_command(selection: Selection) -> None:
    """One copy-paste string with project, branch and token, checksummed; bare when piped."""
    run_share(selection.target(), output_format=selection.output)


@with_selection(profile=False)
def authorize_command(
    selection: Selection,
    value: str = typer.Argument(
        None, metavar="VALUE", help="A share string or a token; '-' reads standard input.", show_default=False
    ),
    from_env: str = typer.Option(None, "--from-env", metavar="VAR", help="Read the token from this variable."),
    from_file: Path = typer.Option(None, "--from-file", metavar="PATH", help="Read the token from this file."),
) -> None:
    """Store a teammate's token for the selected branch (checked against its project and branch)."""
    target = selection.target()
    run_authorize(target, value=value, from_env=from_env, from_file=from_file, output_format=selection.output)


@with_selection(profile=False, user=True)
def forget_command(
    selection: Selection,
    everything: bool = typer.Option(False, "--all", help="Forget every token in the keyring."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Remove the selected branch's token (or all tokens) from the keyring."""
    # --all reads no manifest: it may be run where there is none
    target = identity.Target("", None, "", False, False, "") if everything else selection.target()
    run_forget(target, everything=everything, yes=yes, output_format=selection.output)


def register(app: "typer.Typer") -> None:
    group = typer.Typer(
        cls=helptext.Group, help="Production tokens in the local keyring: list, show, share, authorize, forget."
    )
    app.add_typer(group, name="token")
    group.command("list", cls=helptext.Command)(list_command)
    group.command("show", cls=helptext.Command)(show_command)
    group.command("share", cls=helptext.Command)(share_command)
    group.command("authorize", cls=helptext.Command)(authorize_command)
    group.command("forget", cls=helptext.Command)(forget_command)
