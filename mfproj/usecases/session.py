"""What every use-case starts from: the session (manifest, target branch, caller, backends, the
callbacks that report to the person), the offered token, and the (flow, backend) pairs to act on,
checked against every rule that needs no request."""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mfproj import authorization, envsettings, identity, lineage, naming, project, render
from mfproj.backends import registry
from mfproj.backends.base import Backend
from mfproj.errors import MfprojError, UsageError, ValidationError
from mfproj.keyring import Keyring, keyring_home
from mfproj.manifest import Flow, Manifest
from mfproj.tags import TagError, validate_tags

Progress = Callable[[str, str, str], None]  # (flow, backend, what is happening)


def quiet(flow: str, backend: str, message: str) -> None:
    pass


@dataclass(frozen=True)
class TokenOptions:
    authorize: str | None = None
    authorize_file: Path | None = None
    generate_new_token: bool = False


@dataclass
class Session:
    """What every use-case needs: the manifest, the target branch, the caller, the backends."""

    manifest: Manifest
    target: identity.Target
    user: str
    env: Mapping[str, str]
    profile: str | None = None
    keyring: Keyring | None = None
    progress: Progress = quiet
    notice: Callable[[str], None] = lambda message: None  # warnings for the person running the command
    say: Callable[[str], None] = lambda message: None  # what the command is doing (waiting for a lock)
    _backends: dict[str, Backend] = field(default_factory=dict)
    _lineage: lineage.Lineage | None = None
    _said: set[str] = field(default_factory=set)
    _rendered: dict[tuple[str, str, render.Context], Any] = field(default_factory=dict)
    _deploy_id: list[str] = field(default_factory=list)

    def deploy_id(self) -> str:
        """The id of this command's deploy (or rollback): one for every flow and backend it writes, so a
        branch's history is a list of deploys. Sortable by time (to the microsecond: two deploys in one
        second keep their order): `20261201T220600.123456Z-3fa9c2`."""
        if not self._deploy_id:
            now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
            self._deploy_id.append(f"{now}-{secrets.token_hex(3)}")
        return self._deploy_id[0]

    def rendered(self, pair: Pair, context: render.Context, token: str) -> Any:
        """The pair's template rendered for `context` with `token` in it. Each template is rendered once
        per context in a session, with a stand-in token (so the first render can come before any request
        and the plan under the locks reuses it); the real token is put in place of the stand-in."""
        key = (pair.flow.name, pair.backend, context)
        if key not in self._rendered:
            self._rendered[key] = self.backend(pair.backend).render(pair.flow.template(pair.backend), context)
        return _with_token(copy.deepcopy(self._rendered[key]), token)

    def notice_once(self, message: str) -> None:
        """A warning said once per session, however often the plan that finds it runs."""
        if message not in self._said:
            self._said.add(message)
            self.notice(message)

    def backend(self, name: str) -> Backend:
        if name not in self._backends:
            self._backends[name] = registry.create(name, self.manifest, profile=self.profile, env=self.env)
        return self._backends[name]

    def with_origin(self, origin: lineage.Lineage) -> Session:
        """The same session, recording `origin` as where its deploys come from (a promotion)."""
        return replace(self, _lineage=origin)

    def origin(self) -> lineage.Lineage:
        """Where this deploy comes from (git, CI), read once per session."""
        if self._lineage is None:
            self._lineage = lineage.read(self.manifest.root, self.env)
        return self._lineage

    def used_backends(self) -> list[str]:
        """The backends some flow of the manifest has a template for, in the registry's order."""
        return [b for b in registry.NAMES if any(b in flow.backends for flow in self.manifest.flows)]

    def caller(self, backend: str) -> authorization.Caller:
        """The caller as a deployment on `backend` judges its owner: the name, and the principal that
        backend's credentials authenticate as (asked only when a record needs it)."""
        return authorization.Caller(
            name=self.user, principal=lambda: self.backend(backend).principal(), owner_rule=self.manifest.owner
        )

    def prefetch(self, pairs: Iterable[Pair]) -> None:
        """Has each backend read at once what it can for many deployments (Step Functions: the tags of
        all, one tagging-API call per 100, not one call each on a 1-a-second bucket); the next read of each
        uses it. A failure here is none: each read then asks for itself, and says what is wrong."""
        by_backend: dict[str, list[naming.FlowNames]] = {}
        for pair in pairs:
            by_backend.setdefault(pair.backend, []).append(pair.names)
        for backend, names in by_backend.items():
            with contextlib.suppress(MfprojError):
                self.backend(backend).prefetch(names)

    def get_keyring(self) -> Keyring:
        if self.keyring is None:
            self.keyring = Keyring(keyring_home(self.env))
        return self.keyring


# Stands for the production token while a template is rendered: the token is known only after the reads.
TOKEN_STAND_IN = "mfproj-token-not-yet-known-4f1c9e0b2d"


def _with_token(node: Any, token: str) -> Any:
    if isinstance(node, str):
        return node.replace(TOKEN_STAND_IN, token)
    if isinstance(node, list):
        return [_with_token(item, token) for item in node]
    if isinstance(node, dict):
        return {_with_token(k, token): _with_token(v, token) for k, v in node.items()}
    return node


def open_session(
    manifest: Manifest,
    *,
    branch: str | None,
    production: bool | None,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
    progress: Progress = quiet,
    notice: Callable[[str], None] = lambda message: None,
    say: Callable[[str], None] = lambda message: None,
) -> Session:
    env = os.environ if env is None else env
    envsettings.check(env)  # before any request: a typo in a setting is exit 2 naming it
    target = identity.target_for(manifest.project, branch=branch, production=production, env=env)
    user = identity.require_user(env)
    return Session(
        manifest=manifest,
        target=target,
        user=user,
        env=env,
        profile=profile,
        progress=progress,
        notice=notice,
        say=say,
    )


def offer_for(session: Session, options: TokenOptions) -> authorization.OfferedToken | None:
    """The token the caller offers for the session's branch; another branch's is refused or ignored
    (see authorization.offered_token). Called before any request."""
    target = session.target
    keyring = session.get_keyring()
    return authorization.offered_token(
        target=authorization.BranchRef(target.project, target.branch, target.token_prefix),
        authorize=options.authorize,
        authorize_file=options.authorize_file,
        env=session.env,
        keyring=keyring,
        owner_of=authorization.branch_finder(target.project, session.user, keyring),
        warn=session.notice,
    )


@dataclass(frozen=True)
class Pair:
    flow: Flow
    backend: str
    names: naming.FlowNames


def select_pairs(session: Session, flows: list[str] | None, backends: list[str] | None) -> list[Pair]:
    """(flow, backend) pairs to act on; names are checked against the backends' rules first."""
    manifest, target = session.manifest, session.target
    chosen = manifest.flows_named(flows)
    project.check_collisions(manifest, target, env=session.env)
    pairs = []
    for listed in chosen:
        flow = replace(listed, schedule=manifest.schedule_of(listed, is_production=target.is_production))
        available = flow.backends
        wanted = [b for b in (backends or available) if b in available]
        if flows and backends and not wanted:
            raise UsageError(
                f"flow {flow.name!r} has no template for {', '.join(registry.label(b) for b in backends)}",
                hint=f'add {backends[0]} = "path/to/template" to its [[flows]] table',
            )
        names = manifest.flow_names(target.branch, flow.name, session.env)
        for backend in wanted:
            problems = project.flow_problems(manifest, flow, names, branch=target.branch, backends=[backend])
            if problems:
                first = problems[0]
                raise ValidationError(f"{flow.name}: {first.message()}", hint=first.hint)
            pairs.append(Pair(flow, backend, names))
    if not pairs:
        which = ", ".join(registry.label(b) for b in backends) if backends else "any backend"
        raise UsageError(
            f"no selected flow has a template for {which}",
            hint=" or ".join(f'{name} = "…"' for name in registry.NAMES) + " in a [[flows]] table",
        )
    return pairs


def branch_pairs(session: Session, *, exclude: list[Pair]) -> list[Pair]:
    """Every other (flow, backend) of the manifest on the session's branch: where the branch's token may
    already be deployed. Flows whose names break a backend's rules cannot be deployed, so are left out."""
    manifest, target = session.manifest, session.target
    taken = {(pair.flow.name, pair.backend) for pair in exclude}
    found = []
    for flow in manifest.flows:
        names = manifest.flow_names(target.branch, flow.name, session.env)
        for backend in flow.backends:
            if (flow.name, backend) in taken:
                continue
            if not project.flow_problems(manifest, flow, names, branch=target.branch, backends=[backend]):
                found.append(Pair(flow, backend, names))
    return found


def deployment_tags(flow: Flow, extra: list[str]) -> tuple[str, ...]:
    try:
        return validate_tags([*flow.tags, *extra], where="--tag", user_tags=True)
    except TagError as exc:
        raise ValidationError(f"{exc.key}: {exc.rule}") from None


def run_tags_for(session: Session, backend: str, token: str, branch: str | None = None) -> list[str]:
    """The system tags of a run of `branch` (default: the session's): the reference's, in its order."""
    target = session.target
    return [
        f"project:{target.project}",
        f"project_branch:{branch or target.branch}",
        f"production:{token}",
        f"runtime:{registry.spec(backend).runtime}",
    ]


def lock_timeout(env: Mapping[str, str]) -> float:
    """How long a change waits for another holder's lock: MFPROJ_LOCK_TIMEOUT seconds (default 120)."""
    return envsettings.number(env, "MFPROJ_LOCK_TIMEOUT")
