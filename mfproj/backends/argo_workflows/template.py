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
    if kind != "WorkflowTemplate" or not isinstance(document.get("spec"), dict):
        raise TemplateError(f"{path}: expected a WorkflowTemplate (kind: WorkflowTemplate, with a spec), got {kind}")
    return document
