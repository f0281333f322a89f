"""The manifest's [argo_workflows] table. Stdlib only."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_K8S_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")

Fail = Callable[[str, str], Exception]


@dataclass(frozen=True)
class ArgoWorkflowsSettings:
    namespace: str = "default"
    context: str | None = None
    kubeconfig: Path | None = None

    KEYS = ("namespace", "context", "kubeconfig")

    @classmethod
    def parse(cls, table: Mapping[str, Any], *, base: Path, fail: Fail) -> ArgoWorkflowsSettings:
        namespace = table.get("namespace") or "default"
        if len(namespace) > 63 or not _K8S_NAMESPACE.match(namespace):
            raise fail(
                "namespace", f"{namespace!r} is not a Kubernetes namespace (DNS-1123 label: a-z, 0-9, '-', at most 63)"
            )
        kubeconfig = table.get("kubeconfig")
        return cls(
            namespace=namespace,
            context=table.get("context") or None,
            kubeconfig=(base / Path(kubeconfig).expanduser()) if kubeconfig else None,
        )

    def problems(self) -> list[tuple[str, str, str]]:
        return []

    @staticmethod
    def schedule_problem(expression: str) -> str | None:
        return None  # Argo's cron takes every 5-field expression
