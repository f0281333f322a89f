"""Templates: `${mfproj.<name>}` placeholders inside the strings of a JSON (or YAML) document.

Substitution happens on the parsed document, so every value is escaped correctly when the document
is written back out. `$${mfproj.x}` stands for the literal text `${mfproj.x}`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mfproj.errors import ValidationError

PLACEHOLDERS = (
    "project",
    "branch",
    "flow",
    "project_flow_name",
    "deployed_name",
    "namespace",
    "owner",
    "is_production",
)
_PLACEHOLDER = re.compile(r"(\$?)\$\{mfproj\.([^}]*)\}")


class TemplateError(ValidationError):
    """A template cannot be read or rendered; names the file and the position."""


@dataclass(frozen=True)
class Context:
    project: str
    branch: str
    flow: str
    project_flow_name: str
    deployed_name: str
    namespace: str
    owner: str
    is_production: bool

    def values(self) -> dict[str, str]:
        return {
            "project": self.project,
            "branch": self.branch,
            "flow": self.flow,
            "project_flow_name": self.project_flow_name,
            "deployed_name": self.deployed_name,
            "namespace": self.namespace,
            "owner": self.owner,
            "is_production": "true" if self.is_production else "false",
        }


def read_template(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read the template: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise TemplateError(f"{path}: the template is not UTF-8 text") from None


def load_json_template(path: Path) -> Any:
    text = read_template(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None


def _line_of(text: str, needle: str) -> int | None:
    index = text.find(needle)
    return None if index < 0 else text.count("\n", 0, index) + 1


def render(document: Any, context: Context, *, source: Path) -> Any:
    """A copy of `document` with every placeholder replaced; unknown placeholders are errors."""
    values = context.values()
    raw_text: str | None = None

    def substitute(text: str, where: str) -> str:
        def one(match: re.Match[str]) -> str:
            nonlocal raw_text
            if match.group(1):  # `$${...}`: an escaped, literal placeholder
                return match.group(0)[1:]
            name = match.group(2)
            if name not in values:
                if raw_text is None:
                    try:
                        raw_text = source.read_text(encoding="utf-8")
                    except (OSError, UnicodeDecodeError):
                        raw_text = ""
                line = _line_of(raw_text, match.group(0))
                position = f"{source}:{line}" if line else str(source)
                raise TemplateError(
                    f"{position}: unknown placeholder ${{mfproj.{name}}} at {where or 'the top level'}",
                    hint="known placeholders: " + ", ".join(f"${{mfproj.{p}}}" for p in PLACEHOLDERS),
                )
            return values[name]

        return _PLACEHOLDER.sub(one, text)

    def walk(node: Any, where: str) -> Any:
        if isinstance(node, str):
            return substitute(node, where)
        if isinstance(node, list):
            return [walk(item, f"{where}[{index}]") for index, item in enumerate(node)]
        if isinstance(node, Mapping):
            return {
                substitute(key, where): walk(value, f"{where}.{key}" if where else key) for key, value in node.items()
            }
        return node

    return walk(document, "")


def canonical(document: Any) -> str:
    """One text per document, for comparisons and diffs."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)
