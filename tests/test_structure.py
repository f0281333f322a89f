"""The house rules, checked on the source (ARCHITECTURE.md is their map): small modules and functions,
the backend list written once, and the walls between the layers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mfproj.backends import registry

PACKAGE = Path(__file__).resolve().parent.parent / "mfproj"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    """Every module imported anywhere in the file (at the top or inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _top_level_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_modules_and_functions_are_small(path: Path) -> None:
    text = path.read_text()
    assert ast.get_docstring(ast.parse(text)), f"{_name(path)} does not say what it owns (a module docstring)"
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{_name(path)} has {len(text.splitlines())} lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{_name(path)}.{node.name} has {length} lines"


def test_the_backend_list_is_written_once() -> None:
    """No tuple, list or set of two or more backend names outside the registry."""
    names = set(registry.NAMES) | set(registry.CLI_NAMES)
    for path in MODULES:
        if path.name == "registry.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                literal = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
                assert len(literal & names) < 2, f"{_name(path)} lists backends at line {node.lineno}"


def test_the_core_imports_no_backend_module_by_name() -> None:
    for path in MODULES:
        module = _name(path)
        if module.startswith("mfproj.backends"):
            continue
        for imported in _imports(path):
            for spec in registry.SPECS:
                assert not imported.startswith(f"mfproj.backends.{spec.name}"), f"{module} imports {imported}"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_the_walls_between_layers(path: Path) -> None:
    module = _name(path)
    imported = _imports(path)
    if not module.startswith("mfproj.cli") and module != "mfproj.__main__":  # the entry point calls the CLI
        assert not any(i.startswith(("mfproj.cli", "typer", "rich")) for i in imported), module
    if module.startswith("mfproj.backends"):
        assert not any(i.startswith("mfproj.usecases") for i in imported), module
    # Heavy libraries only inside the functions that need them: importing a module stays cheap.
    heavy = ("boto3", "botocore", "kubernetes", "rich", "yaml", "urllib3")
    assert not any(i.startswith(heavy) for i in _top_level_imports(path)), module


def test_every_backend_package_has_its_parts() -> None:
    for spec in registry.SPECS:
        package = PACKAGE / "backends" / spec.name
        for part in ("__init__.py", "settings.py", "record.py", "backend.py", "runs.py", "deploying.py"):
            assert (package / part).is_file(), f"{spec.name} has no {part}"
        settings = spec.settings_class()
        assert settings.KEYS and callable(settings.parse) and callable(settings.schedule_problem)


def test_backends_are_composed_not_stacked() -> None:
    """A backend is one class over the protocol, holding one object per concern; no part of a backend
    package inherits from another of its classes (a stack of mixins hides where a method lives)."""
    from mfproj.backends.base import Backend

    for spec in registry.SPECS:
        backend_class = registry._load(spec.factory)
        assert backend_class.__bases__ == (Backend,), f"{spec.name}: {backend_class.__mro__}"
        package = PACKAGE / "backends" / spec.name
        own = {
            node.name
            for path in package.glob("*.py")
            for node in ast.parse(path.read_text()).body
            if isinstance(node, ast.ClassDef)
        }
        for path in package.glob("*.py"):
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.ClassDef):
                    bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
                    assert not bases & own, f"{spec.name}.{path.stem}.{node.name} extends {bases & own}"


def test_tests_need_no_untyped_def_ignores() -> None:
    """The `cli` fixtures are typed (`tests.conftest.Cli`): a test that takes them needs no ignore."""
    tests = Path(__file__).resolve().parent
    marker = "type: ignore" + "[no-untyped-def]"  # split, so this file does not match itself
    offenders = [p.name for p in sorted(tests.glob("*.py")) if marker in p.read_text()]
    assert offenders == [], offenders


# Modules cheap enough (most are loaded by Python itself) that importing them inside a function only hides
# a dependency; the heavy ones (boto3, kubernetes, rich, yaml, subprocess, …) stay function-local.
LIGHT_STDLIB = frozenset(
    {
        "abc", "base64", "collections", "contextlib", "copy", "dataclasses", "datetime", "enum", "functools",
        "hashlib", "itertools", "json", "math", "os", "pathlib", "re", "string", "sys", "threading", "time",
        "typing",
    }
)  # fmt: skip


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_function_local_imports_of_light_stdlib_modules(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                names = []
                if isinstance(inner, ast.Import):
                    names = [alias.name for alias in inner.names]
                elif isinstance(inner, ast.ImportFrom) and inner.module and not inner.level:
                    names = [inner.module]
                light = [n for n in names if n.split(".")[0] in LIGHT_STDLIB]
                assert not light, f"{_name(path)}.{node.name} imports {light} inside (line {inner.lineno})"


def test_no_core_module_names_a_backend() -> None:
    """Adding a backend touches its package and one registry entry: outside `mfproj/backends/`, no module
    names one (as a string, an attribute of FlowNames, or a settings table). `mfproj init`, which writes a
    starter manifest for the backends it knows, is the one exception."""
    names = set(registry.NAMES) | set(registry.CLI_NAMES)
    for path in MODULES:
        module = _name(path)
        if module.startswith("mfproj.backends") or module == "mfproj.cli.init":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value not in names, f"{module} names the backend {node.value!r} (line {node.lineno})"


CLI = PACKAGE / "cli"
COMMON_OPTIONS = ("Branch", "Production", "Profile", "Output", "BranchFromGit")


def test_the_common_options_are_declared_once() -> None:
    """--branch, --production, --branch-from-git, --profile and -o are added by `with_selection`, never
    written into a command's signature again (promote's own --branch means something else: a plain Option)."""
    found = []
    for path in sorted(CLI.glob("*.py")):
        if path.name in ("options.py", "selection.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            named = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            if named and node.value.id == "options" and node.attr in COMMON_OPTIONS:  # type: ignore[attr-defined]
                found.append(f"{path.name}:{node.lineno} options.{node.attr}")
    assert not found, found


def test_commands_end_by_returning_not_by_an_exit_that_is_always_zero() -> None:
    """No `raise typer.Exit(run_x(...))` around functions that always return 0, and no module-level output
    format (the command's format travels on the click context's Invocation)."""
    found = []
    for path in sorted(CLI.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                called = ast.unparse(node.exc.func)
                if called == "typer.Exit" and path.name != "app.py":  # --version's eager callback is the one
                    found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
            if isinstance(node, ast.FunctionDef) and node.name == "set_format":
                found.append(f"{path.name}:{node.lineno} def set_format")
    assert not found, found


TESTS = Path(__file__).resolve().parent
# Subjects a test file may be named after besides a module, a package or a command: the repository's own
# documents and scripts, and the test helpers that are tested themselves.
PROJECT_SUBJECTS = ("readme", "demo", "structure", "help", "bench", "golden", "k8s_emulator", "emulators", "reference")


def _subjects() -> set[str]:
    from mfproj.cli.app import command

    modules = {path.stem for path in MODULES} | {path.parent.name for path in MODULES}
    return modules | {name.replace("-", "_") for name in command().commands} | set(PROJECT_SUBJECTS)


def test_test_files_are_named_after_what_they_test() -> None:
    subjects = _subjects()
    unnamed = []
    for path in sorted(TESTS.glob("test_*.py")):
        stem = path.stem.removeprefix("test_")
        if not any(stem == subject or stem.startswith(subject + "_") for subject in subjects):
            unnamed.append(path.name)
    assert not unnamed, f"name these after the module or command they test: {unnamed}"


def test_tests_share_builders_instead_of_copying_them() -> None:
    """Projects come from tests/testing/fixtures.py, fault proxies from conftest, and no test module imports
    another (what two share lives in tests/testing/)."""
    found = []
    for path in sorted(TESTS.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests.test_"):
                found.append(f"{path.name}:{node.lineno} imports {node.module}")
            if not isinstance(node, ast.FunctionDef) or not any(
                "fixture" in ast.unparse(d) for d in node.decorator_list
            ):
                continue
            body = ast.unparse(node)
            if "FaultProxy(" in body:
                found.append(f"{path.name}:{node.lineno} fixture {node.name} builds its own FaultProxy")
            if node.name == "proj" and "make_project(" not in path.read_text():
                found.append(f"{path.name}:{node.lineno} fixture proj writes its project by hand")
    assert not found, found
