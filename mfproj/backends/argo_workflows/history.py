"""A WorkflowTemplate's history, which Argo does not keep: a ConfigMap next to the template
(`<template>.history`), one key per deploy (its deploy id, which sorts by time) holding the lineage and
the template as rendered. Written with the template, under the same undo log; the oldest are dropped in
the same write past the manifest's `history` (or past what a ConfigMap holds)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mfproj.backends.argo_workflows.client import KubeClient
from mfproj.backends.base import Desired
from mfproj.history import DeployLineage, HistoryEntry
from mfproj.text import Unreadable, bounded_json
from mfproj.tokens import fingerprint
from mfproj.transaction import UndoLog

MAX_NAME = 253
MAX_DATA = 900 * 1024  # below the API server's 1 MiB for a ConfigMap, with room for its metadata
MAX_READ = 2 * 1024 * 1024  # what is read back at most (someone else may have written it)
SPEC_DEPTH = 64  # a kept template nests deeper than a record


def history_name(template: str) -> str:
    """The ConfigMap's name: the template's and `.history`, shortened with a hash past 253 characters."""
    name = f"{template}.history"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(template.encode()).hexdigest()[:10]
    return f"{template[: MAX_NAME - len(digest) - 10]}-{digest}.history"


class TemplateHistory:
    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube

    def _read(self, template: str) -> dict[str, Any] | None:
        return self.kube.get_config_map(history_name(template), limit=MAX_READ)

    def keep(self, desired: Desired, template: str, labels: dict[str, str], log: UndoLog, key: str) -> None:
        """Adds this deploy to the template's history (and drops the oldest), undone with the deploy."""
        token = desired.record.production_token
        lineage = desired.lineage(fingerprint(token) if token else None)
        if lineage is None:
            return
        current = self._read(template)
        data = dict((current or {}).get("data") or {})
        data[lineage.deploy_id] = json.dumps(
            {"lineage": lineage.as_json(), "definition": desired.definition}, sort_keys=True, separators=(",", ":")
        )
        kept = sorted(data, reverse=True)[: desired.keep]
        while len(kept) > 1 and sum(len(k) + len(data[k].encode()) for k in kept) > MAX_DATA:
            kept.pop()  # the oldest go first when the specs are large
        name = history_name(template)
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "labels": labels},
            "data": {k: data[k] for k in kept},
        }
        log.check()
        version = ((current or {}).get("metadata") or {}).get("resourceVersion")
        self.kube.put_config_map(body, resource_version=version)
        log.push(key, f"kept the deploy in {name}", lambda: self._undo(name, current))

    def _undo(self, name: str, previous: dict[str, Any] | None) -> None:
        with self.kube.errors(f"putting back {name}"):
            if previous is None:
                self.kube.delete_config_map(name)
                return
            now = self.kube.get_config_map(name, limit=MAX_READ)
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "labels": (previous.get("metadata") or {}).get("labels") or {}},
                "data": previous.get("data") or {},
            }
            self.kube.put_config_map(body, resource_version=((now or {}).get("metadata") or {}).get("resourceVersion"))

    def entries(self, template: str) -> list[HistoryEntry]:
        """The kept deploys, newest first; an entry that cannot be read is left out (never a crash)."""
        found = self._read(template)
        data = (found or {}).get("data") or {}
        entries = []
        for deploy_id in sorted(data, reverse=True):
            try:
                value = bounded_json(
                    str(data[deploy_id]), where=f"{history_name(template)}/{deploy_id}", depth=SPEC_DEPTH
                )
            except Unreadable:
                continue
            lineage = DeployLineage.parse(value.get("lineage") if isinstance(value, dict) else None)
            if lineage is None or lineage.deploy_id != deploy_id:
                continue
            entries.append(HistoryEntry(lineage, value.get("definition"), deploy_id))
        return entries

    def forget(self, template: str) -> None:
        """With the template: its history goes too (as a state machine's versions go with it)."""
        self.kube.delete_config_map(history_name(template))
