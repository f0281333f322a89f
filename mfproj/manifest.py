"""Find, load and validate the manifest: `mfproj.toml`, or `[tool.mfproj]` in `pyproject.toml`.

Every error names the file, the key (`flows[1].name`, counted from 0) and the rule.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mfproj import cron, naming
from mfproj.backends import registry
from mfproj.errors import ManifestError, ValidationError
from mfproj.tags import TagError, validate_tags

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

MANIFEST_NAME = "mfproj.toml"
PYPROJECT_NAME = "pyproject.toml"
MANIFEST_VARIABLE = "MFPROJ_MANIFEST"
TOKEN_SCHEMES = ("random", "metaflow")
BACKENDS = registry.NAMES

_TOP_KEYS = ("project", "flows", *BACKENDS)
_PROJECT_KEYS = ("name", "token_scheme", "production_branch", "schedules", "owner", "history")
HISTORY_DEFAULT = 20  # deploys kept per deployment (Step Functions allows 1,000 versions per state machine)
HISTORY_MAX = 1000
SCHEDULES = ("all", "production")
OWNER_RULES = ("principal", "name")
_FLOW_KEYS = ("name", *BACKENDS, "schedule", "tags")


@dataclass(frozen=True)
class Flow:
    name: str
    templates: Mapping[str, Path] = field(default_factory=dict)  # backend name -> template path
    schedule: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def backends(self) -> tuple[str, ...]:
        """The backends this flow has a template for, in the registry's order."""
        return tuple(b for b in BACKENDS if b in self.templates)

    def template(self, backend: str) -> Path:
        return self.templates[backend]


def _closest_flow(name: str, known: list[str]) -> str | None:
    """The flow `name` was probably meant to be: alike once case and the `Flow` every name ends with are
    set aside (else NoSuchFlow would suggest HelloFlow)."""

    def core(text: str) -> str:
        return text.lower().removesuffix("flow")

    cores = {core(flow): flow for flow in known}
    close = difflib.get_close_matches(core(name), list(cores), n=1, cutoff=0.6)
    return cores[close[0]] if close else None


@dataclass(frozen=True)
class Manifest:
    path: Path
    project: str
    flows: tuple[Flow, ...]
    token_scheme: str = "random"
    settings: Mapping[str, Any] = field(default_factory=dict)  # backend name -> its settings object
    production_branch: str | None = None  # the git branch production deploys must come from
    schedules: str = "all"  # "production": only production branches keep their schedules
    owner: str = "principal"  # "name": an owner is the name alone (the reference's rule)
    history: int = HISTORY_DEFAULT  # how many deploys each deployment keeps for `mfproj rollback`

    def schedule_of(self, flow: Flow, *, is_production: bool) -> str | None:
        """The flow's schedule on a branch: none off production when `schedules = "production"`."""
        return flow.schedule if self.schedules == "all" or is_production else None

    def settings_for(self, backend: str) -> Any:
        """The [<backend>] table, parsed by the backend's own settings class."""
        found = self.settings.get(backend)
        return found if found is not None else registry.spec(backend).settings_class()()

    @property
    def root(self) -> Path:
        return self.path.parent

    def flow(self, name: str) -> Flow:
        for flow in self.flows:
            if flow.name == name:
                return flow
        known = [f.name for f in self.flows]
        close = _closest_flow(name, known)
        listed = f"flows in {self.path.name}: {', '.join(known) or 'none'}"
        hint = f"did you mean {close!r}? ({listed})" if close else listed
        raise ValidationError(f"no flow named {name!r} in {self.path}", hint=hint)

    def flows_named(self, names: list[str] | None) -> list[Flow]:
        """The named flows in the order given (duplicates dropped), or every flow."""
        if not names:
            return list(self.flows)
        return [self.flow(name) for name in dict.fromkeys(names)]

    def flow_names(self, branch: str, flow: str, env: Mapping[str, str] | None = None) -> naming.FlowNames:
        """The flow's names on every backend, with this manifest's settings for each."""
        return registry.flow_names(self.project, branch, flow, self.settings, env)


# --- discovery ----------------------------------------------------------------------------------


def _has_tool_table(pyproject: Path) -> bool:
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    tool = data.get("tool")
    return isinstance(tool, dict) and "mfproj" in tool


def find_manifest(
    explicit: str | os.PathLike[str] | None = None,
    *,
    start: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """`--manifest`, else MFPROJ_MANIFEST, else the nearest mfproj.toml or pyproject.toml with [tool.mfproj]."""
    env = os.environ if env is None else env
    given = explicit or env.get(MANIFEST_VARIABLE)
    if given:
        path = Path(given).expanduser()
        origin = "--manifest" if explicit else MANIFEST_VARIABLE
        if path.is_dir():  # `-m DIR` means the manifest in DIR, as `git -C DIR` means the repository there
            inside = path / MANIFEST_NAME
            if inside.is_file():
                return inside
            if (path / PYPROJECT_NAME).is_file() and _has_tool_table(path / PYPROJECT_NAME):
                return path / PYPROJECT_NAME
            raise ManifestError(
                str(path),
                f"is a directory without {MANIFEST_NAME} (or pyproject.toml with [tool.mfproj])",
                hint=f"give {origin} the manifest file, or a directory that has one",
            )
        if not path.is_file():
            raise ManifestError(str(path), "no such file", hint=f"check the path given by {origin}")
        return path
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / MANIFEST_NAME
        if candidate.is_file():
            return candidate
        pyproject = directory / PYPROJECT_NAME
        if pyproject.is_file() and _has_tool_table(pyproject):
            return pyproject
    raise ManifestError(
        str(here / MANIFEST_NAME),
        f"no {MANIFEST_NAME} (or pyproject.toml with [tool.mfproj]) here or in any parent directory",
        hint="run 'mfproj init' to write one, or pass --manifest PATH",
    )


def load_manifest(path: Path) -> Manifest:
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (some editors write one) is not TOML
    except OSError as exc:
        raise ManifestError(str(path), f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ManifestError(str(path), "is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(str(path), f"invalid TOML: {exc}") from None
    key_prefix = ""
    if path.name == PYPROJECT_NAME:
        tool = data.get("tool")
        if not isinstance(tool, dict) or "mfproj" not in tool:
            raise ManifestError(str(path), "has no [tool.mfproj] table", hint="add one, or use mfproj.toml")
        data = tool["mfproj"]
        key_prefix = "tool.mfproj."
        if not isinstance(data, dict):
            raise ManifestError(str(path), "must be a table", key="tool.mfproj")
    return parse_manifest(data, path=path, key_prefix=key_prefix)


def load(explicit: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Manifest:
    return load_manifest(find_manifest(explicit, env=env))


# --- validation ---------------------------------------------------------------------------------


class _Reader:
    """Typed access to a TOML table that reports the file and dotted key on every error."""

    def __init__(self, path: Path, key_prefix: str) -> None:
        self.source = str(path)
        self.key_prefix = key_prefix

    def fail(self, key: str, message: str, hint: str | None = None) -> ManifestError:
        return ManifestError(self.source, message, key=self.key_prefix + key, hint=hint)

    def table(self, data: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
        value = data.get(key, {}) if key else data
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table, not {_type_name(value)}")
        self.no_unknown(value, allowed, key)
        return value

    def no_unknown(self, table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
        for name in table:
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
                raise self.fail(f"{where}.{name}" if where else name, "unknown key", hint=hint)

    def string(self, table: Mapping[str, Any], name: str, where: str, *, required: bool = False) -> str | None:
        value = table.get(name)
        if value is None:
            if required:
                raise self.fail(f"{where}.{name}" if where else name, "is required")
            return None
        if not isinstance(value, str):
            raise self.fail(f"{where}.{name}" if where else name, f"must be a string, not {_type_name(value)}")
        return value


def _type_name(value: object) -> str:
    return {dict: "a table", list: "an array", bool: "a boolean", int: "an integer", float: "a number"}.get(
        type(value), type(value).__name__
    )


def parse_manifest(data: Mapping[str, Any], *, path: Path, key_prefix: str = "") -> Manifest:
    read = _Reader(path, key_prefix)
    read.no_unknown(data, _TOP_KEYS, "")

    if "project" not in data:
        raise read.fail("project", "is required", hint='add [project] with name = "your_project"')
    project_table = read.table(data, "project", _PROJECT_KEYS)
    project = read.string(project_table, "name", "project", required=True)
    assert project is not None
    try:
        naming.validate_project_name(project)
    except ValidationError as exc:
        raise read.fail("project.name", exc.message, hint=exc.hint) from None

    raw_flows = data.get("flows", [])
    if not isinstance(raw_flows, list):
        raise read.fail("flows", "must be an array of tables ([[flows]])")
    flows: list[Flow] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_flows):
        where = f"flows[{index}]"
        if not isinstance(raw, dict):
            raise read.fail(where, "must be a table ([[flows]])")
        flow = _parse_flow(read, raw, where, path.parent)
        if flow.name in seen:
            raise read.fail(
                f"{where}.name",
                f"duplicate flow name {flow.name!r} (also flows[{seen[flow.name]}].name)",
                hint="each [[flows]] entry needs its own name",
            )
        seen[flow.name] = index
        flows.append(flow)

    settings = {}
    for spec in registry.SPECS:
        settings_class = spec.settings_class()
        table = read.table(data, spec.name, settings_class.KEYS)
        for key in table:
            read.string(table, key, spec.name)  # every setting is a string

        def fail(key: str, message: str, *, section: str = spec.name) -> ManifestError:
            return read.fail(f"{section}.{key}", message)

        settings[spec.name] = settings_class.parse(table, base=path.parent, fail=fail)

    return Manifest(
        path=path, project=project, flows=tuple(flows), settings=settings, **_project_rules(read, project_table)
    )


def _project_rules(read: _Reader, project_table: Mapping[str, Any]) -> dict[str, Any]:
    """[project]'s choices besides its name: token scheme, production branch, schedules, owner rule."""
    scheme = read.string(project_table, "token_scheme", "project") or "random"
    if scheme not in TOKEN_SCHEMES:
        raise read.fail("project.token_scheme", f"must be one of {', '.join(TOKEN_SCHEMES)}, not {scheme!r}")
    schedules = read.string(project_table, "schedules", "project") or "all"
    if schedules not in SCHEDULES:
        raise read.fail("project.schedules", f"must be one of {', '.join(SCHEDULES)}, not {schedules!r}")
    owner = read.string(project_table, "owner", "project") or "principal"
    if owner not in OWNER_RULES:
        raise read.fail(
            "project.owner",
            f"must be one of {', '.join(OWNER_RULES)}, not {owner!r}",
            hint='"principal" (the default): an owner redeploys without the token only as who they authenticated as',
        )
    history = project_table.get("history", HISTORY_DEFAULT)
    if isinstance(history, bool) or not isinstance(history, int) or not 1 <= history <= HISTORY_MAX:
        raise read.fail(
            "project.history",
            f"must be a whole number of deploys to keep, from 1 to {HISTORY_MAX}, not {history!r}",
            hint=f"the default keeps {HISTORY_DEFAULT}",
        )
    return {
        "token_scheme": scheme,
        "production_branch": read.string(project_table, "production_branch", "project") or None,
        "schedules": schedules,
        "owner": owner,
        "history": history,
    }


def _repository_root(directory: Path) -> Path:
    """The git work tree holding `directory` (found by its `.git`, no subprocess), else `directory`."""
    start = directory.resolve()
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate
    return start


def _inside(path: Path, root: Path) -> bool:
    """Whether `path` (symbolic links followed) is `root` or below it."""
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    return True


def _parse_flow(read: _Reader, raw: Mapping[str, Any], where: str, base: Path) -> Flow:
    read.no_unknown(raw, _FLOW_KEYS, where)
    name = read.string(raw, "name", where, required=True)
    assert name is not None
    try:
        naming.validate_flow_name(name)
    except ValidationError as exc:
        raise read.fail(f"{where}.name", exc.message) from None

    templates: dict[str, Path] = {}
    for backend in BACKENDS:
        value = read.string(raw, backend, where)
        if value is None:
            continue
        template = base / value
        if not _inside(template, _repository_root(base)):
            raise read.fail(
                f"{where}.{backend}",
                f"template {value!r} is outside the repository ({_repository_root(base)}): templates are "
                "paths relative to the manifest that stay inside its repository (or its directory outside git)",
                hint="move the template into the project and give its relative path",
            )
        if template.is_dir():
            raise read.fail(f"{where}.{backend}", f"template {value!r} is a directory, not a file (relative to {base})")
        if not template.is_file():
            raise read.fail(f"{where}.{backend}", f"template {value!r} does not exist (relative to {base})")
        templates[backend] = template

    schedule = read.string(raw, "schedule", where)
    if schedule is not None:
        try:
            schedule = cron.validate_cron(schedule)
        except ValidationError as exc:
            raise read.fail(f"{where}.schedule", exc.message, hint='for example "0 * * * *" (hourly)') from None
        for backend in templates:
            problem = registry.spec(backend).settings_class().schedule_problem(schedule)
            if problem:
                raise read.fail(
                    f"{where}.schedule",
                    f"{schedule!r} {problem}",
                    hint="use '*' for the day of month or the day of week",
                )

    raw_tags = raw.get("tags", [])
    if not isinstance(raw_tags, list):
        raise read.fail(f"{where}.tags", f"must be an array of strings, not {_type_name(raw_tags)}")
    try:
        tags = validate_tags(raw_tags, where="tags", user_tags=True)
    except TagError as exc:
        raise read.fail(f"{where}.{exc.key}", exc.rule) from None

    return Flow(name=name, templates=templates, schedule=schedule, tags=tags)
