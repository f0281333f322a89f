"""`mfproj promote --branch B [--to-branch C]`: deploy to production exactly what is deployed on test.B.

"Exactly" is the source: the git commit recorded on test.B's deployments. The manifest and templates of
that commit are read from git (whatever the working tree holds), first rendered for test.B and compared
with what is deployed there (proving the source), then deployed to `prod` (or `prod.C`) with the usual
production token rules. A test.B deployed from a dirty tree, from no git repository, or with flows from
different commits cannot be promoted.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from mfproj import gitbranch, identity, lineage, manifest
from mfproj.backends import registry
from mfproj.backends.base import Existing
from mfproj.errors import NotFoundError, UsageError
from mfproj.usecases import deploy
from mfproj.usecases.deployments import DRIFT, judge
from mfproj.usecases.parallel import parallel
from mfproj.usecases.report import Report
from mfproj.usecases.session import Pair, Session, TokenOptions, open_session, select_pairs


def _git(directory: Path, *args: str) -> bytes:
    done = subprocess.run(["git", *args], cwd=directory, capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        raise UsageError(f"git {' '.join(args)} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _promotable(branch: str, found: list[tuple[Pair, Existing | None]]) -> str:
    """How to promote what is there: the flows deployed on every backend they have, or else the backends
    every selected flow is deployed on ('' when neither)."""
    gone = {(pair.flow.name, pair.backend) for pair, existing in found if existing is None}
    flows = [f for f in dict.fromkeys(p.flow.name for p, _ in found) if not any(g[0] == f for g in gone)]
    backends = [b for b in dict.fromkeys(p.backend for p, _ in found) if not any(g[1] == b for g in gone)]
    start = f"mfproj promote {identity.branch_options(branch)}"
    if flows:
        return f", or promote the flows that are: {start} {' '.join(flows)}"
    if backends:
        chosen = " ".join(f"--backend {registry.spec(b).cli_name}" for b in backends)
        return f", or promote what is there: {start} {chosen}"
    return ""


def source_commit(source: Session, flows: list[str] | None, backends: list[str] | None) -> tuple[str, list[Existing]]:
    """The one clean commit test.B's selected deployments were made from; refuses anything else."""
    pairs = select_pairs(source, flows, backends)
    source.prefetch(pairs)
    found = parallel(lambda pair: source.backend(pair.backend).read(pair.names), pairs)
    missing = [
        f"{p.flow.name} ({registry.label(p.backend)}: {source.backend(p.backend).deployed_name(p.names)})"
        for p, e in zip(pairs, found, strict=True)
        if e is None
    ]
    branch = source.target.branch
    if missing:
        raise NotFoundError(
            f"not deployed on {branch}: {', '.join(missing)}",
            hint="deploy and test it there first" + _promotable(branch, list(zip(pairs, found, strict=True))),
        )
    records = [e.record for e in found if e is not None and e.record is not None]
    if any(r.commit is None for r in records):
        raise UsageError(
            f"{branch} was deployed from outside a git repository: there is no commit to promote",
            hint=f"deploy {branch} again from a clean checkout, test it, then promote",
        )
    if any(r.dirty for r in records):
        raise UsageError(
            f"{branch} was deployed from a dirty tree: what ran there is in no commit",
            hint=f"commit, deploy {branch} again from the clean tree, test it, then promote",
        )
    commits = sorted({str(r.commit) for r in records})
    if len(commits) > 1:
        raise UsageError(
            f"{branch}'s flows come from different commits ({', '.join(c[:10] for c in commits)})",
            hint=f"deploy every flow of {branch} from one commit, then promote",
        )
    return commits[0], [e for e in found if e is not None]


@contextmanager
def checkout_of(loaded: manifest.Manifest, commit: str) -> Iterator[manifest.Manifest]:
    """The manifest (and its templates) as they are at `commit`, read from git into a temporary directory."""
    top = Path(_git(loaded.root, "rev-parse", "--show-toplevel").decode().strip())
    relative = loaded.root.resolve().relative_to(top.resolve())
    prefix = "" if str(relative) == "." else f"{relative.as_posix()}/"
    names = _git(top, "ls-tree", "-r", "--name-only", "-z", commit, "--", prefix or ".").decode().split("\0")
    with tempfile.TemporaryDirectory(prefix="mfproj-promote-") as directory:
        root = Path(directory)
        for name in filter(None, names):
            target = root / name[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_git(top, "show", f"{commit}:{name}"))
        yield manifest.load_manifest(root / loaded.path.name)


CONFIGURATION = frozenset({"role"})


def code_of(
    tested: manifest.Manifest, caller: manifest.Manifest, commit: str, *, notice: Callable[[str], None]
) -> manifest.Manifest:
    """The caller's manifest with the tested commit's flows and templates: code moves, configuration does
    not. Where production goes and as whom (every backend table, the project's rules) stays the caller's,
    so nothing the tested commit says is run or reached (a kubeconfig's exec plugin, another role)."""
    if tested.project != caller.project:
        raise UsageError(
            f"commit {commit[:10]} is of project {tested.project!r}, not {caller.project!r}",
            hint="promote from the checkout of the project that was tested",
        )
    differing = [name for name in registry.NAMES if tested.settings.get(name) != caller.settings.get(name)]
    if differing:
        tables = ", ".join(f"[{name}]" for name in differing)
        notice(
            f"commit {commit[:10]} has other {tables} settings than your manifest: production is deployed with "
            "yours (only flows and templates come from the tested commit)"
        )
    return replace(caller, flows=tested.flows)


def promote(
    session: Session,
    *,
    source_branch: str,
    to_branch: str | None = None,
    flows: list[str] | None = None,
    backends: list[str] | None = None,
    token_options: TokenOptions = TokenOptions(),
    dry_run: bool = False,
    allow_branch: bool = False,
    allow_dirty: bool = False,
) -> tuple[str, Report]:
    """Returns the promoted commit and the production deploy's report. `session` is the caller's."""
    loaded, env = session.manifest, session.env
    origin = session.origin()  # the caller's working tree, read from git once
    # Promote takes the code from git: only tracked changes count (the caller's manifest is configuration).
    tracked = lineage.git(loaded.root, "status", "--porcelain", "--untracked-files=no")
    origin = replace(origin, dirty=bool(tracked)) if tracked is not None else origin
    production_branch = gitbranch.committed_production_branch(loaded.path, loaded.production_branch)
    gitbranch.check_production_source(
        origin, env, production_branch, allow_branch=allow_branch, allow_dirty=allow_dirty
    )
    source = open_session(loaded, branch=source_branch, production=False, profile=session.profile, env=env)
    commit, deployed = source_commit(source, flows, backends)
    with checkout_of(loaded, commit) as tested:
        then = code_of(tested, loaded, commit, notice=session.notice)
        proof = replace(source, manifest=then)  # the same backends, judging against the commit's flows
        judged = [judge(proof, e.backend, e, detail=False) for e in deployed]
        # The proof is of code: settings that are configuration (the execution role) are the caller's anyway.
        drifted = [d for d in judged if d.state == DRIFT and set(d.drift) - CONFIGURATION]
        if drifted:
            first = drifted[0]
            raise UsageError(
                f"{source.target.branch}'s {first.record.flow} on {first.backend} is not what commit {commit[:10]} "
                f"renders ({', '.join(sorted(set(first.drift) - CONFIGURATION))} differs): "
                "it was changed after that deploy",
                hint=f"deploy {source.target.branch} again from {commit[:10]}, test it, then promote",
            )
        target = open_session(
            then, branch=to_branch, production=True, profile=session.profile, env=env, notice=session.notice
        )
        # What was promoted: the tested branch at its commit, and its live deploy (`mfproj history` there).
        tested_deploy = max((e.record.deploy_id for e in deployed if e.record and e.record.deploy_id), default=None)
        promoted = f"{source.target.branch}@{commit}" + (f"/{tested_deploy}" if tested_deploy else "")
        target = target.with_origin(replace(origin, commit=commit, dirty=False, promoted_from=promoted))
        # The guard rails were checked on the caller's tree above; the temporary checkout has no git.
        report = deploy.deploy(
            target,
            flows=flows,
            backends=backends,
            token_options=token_options,
            dry_run=dry_run,
            allow_branch=True,
            allow_dirty=True,
        )
    return commit, report
