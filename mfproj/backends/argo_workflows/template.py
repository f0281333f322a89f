"""Reading a WorkflowTemplate (YAML or JSON) from the manifest's template path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mfproj.render import TemplateError, read_template


def load_template(path: Path) -> Any:
    """A WorkflowTemplate in YAML or JSON; a bare `spec` (with `templates`) is accepted too."""
    import yaml

    text = read_template(path)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise TemplateError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(document, dict):
        raise TemplateError(f"{path}: a WorkflowTemplate must be a mapping")
    if "spec" not in document and ("templates" in document or "entrypoint" in document):
        document = {"spec": document}
    kind = document.get("kind", "WorkflowTemplate")
    if kind != "WorkflowTemplate":
        raise TemplateError(f"{path}: expected a WorkflowTemplate, got kind: {kind}")
    if not isinstance(document.get("spec"), dict):
        raise TemplateError(f"{path}: a WorkflowTemplate needs a spec (a mapping with entrypoint and templates)")
    unknown = sorted(str(key) for key in document if key not in _TOP_LEVEL_KEYS)
    if unknown:  # the API server would drop them silently: a typo (`specs:`) would deploy something else
        raise TemplateError(
            f"{path}: unknown top-level key(s) {', '.join(unknown)}; a WorkflowTemplate has only "
            f"{', '.join(_TOP_LEVEL_KEYS)}"
        )
    _check_size(document, path)
    return document


_TOP_LEVEL_KEYS = ("apiVersion", "kind", "metadata", "spec")
MAX_NODES = 100_000  # far above any real template; a YAML alias bomb expands past it at once
MAX_DEPTH = 100


def _check_size(document: Any, path: Path) -> None:
    """Counts the document's values as sent (YAML aliases expanded), stopping at the limits, so that
    a few lines of nested aliases (a "billion laughs") are refused before anything is serialized."""
    count = 0
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES or depth > MAX_DEPTH:
            raise TemplateError(
                f"{path}: the template expands to more than {MAX_NODES} values or {MAX_DEPTH} levels "
                "(YAML aliases nested in aliases?)",
                hint="expand the aliases (&name / *name) by hand, or split the template",
            )
        if isinstance(node, dict):
            stack.extend((value, depth + 1) for value in node.values())
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)
