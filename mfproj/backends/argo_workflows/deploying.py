"""Reading, planning, applying (under the run's undo log) and deleting a WorkflowTemplate and its
CronWorkflow. A template is replaced with the resourceVersion read when it was authorized, so a change
made by someone else in between fails with a conflict (exit 6) instead of being overwritten."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mfproj.backends.argo_workflows.client import (
    _VOLATILE_METADATA,
    CRONS,
    GROUP,
    TEMPLATES,
    VERSION,
    KubeClient,
    restorable,
)
from mfproj.backends.argo_workflows.history import TemplateHistory
from mfproj.backends.argo_workflows.labels import (
    LABEL_BRANCH,
    LABEL_FLOW,
    LABEL_PROJECT,
    LABEL_TEMPLATE,
    MANAGED_BY,
    label_value,
    tag_labels,
)
from mfproj.backends.argo_workflows.names import template_name
from mfproj.backends.argo_workflows.record import (
    ANNOTATION_LINEAGE,
    ANNOTATION_PRINCIPAL,
    ANNOTATION_RUN_TAGS,
    ANNOTATION_TIMESTAMP,
    ANNOTATION_VERSION,
    decode_annotations,
    record_annotations,
)
from mfproj.backends.argo_workflows.template import load_template
from mfproj.backends.base import Desired, Existing
from mfproj.errors import NotFoundError
from mfproj.naming import FlowNames
from mfproj.render import Context, render
from mfproj.transaction import UndoLog


class Templates:
    """A flow's WorkflowTemplate and its CronWorkflow: read, plan, apply under the undo log, delete."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.history = TemplateHistory(kube)

    def deployed_name(self, names: FlowNames) -> str:
        return template_name(names)

    def render(self, template: Path, context: Context) -> Any:
        return render(load_template(template), context, source=template)

    def _annotations(self, desired: Desired) -> dict[str, str]:
        return record_annotations(desired.record, flow=desired.flow, schedule=desired.schedule)

    def _labels(self, desired: Desired) -> dict[str, str]:
        record = desired.record
        return {
            MANAGED_BY: "mfproj",
            "app.kubernetes.io/part-of": "metaflow",
            LABEL_PROJECT: label_value(record.project or ""),
            LABEL_BRANCH: label_value(record.branch or ""),
            LABEL_FLOW: label_value(desired.flow),
            LABEL_TEMPLATE: label_value(template_name(desired.names)),
        }

    def _run_metadata(self, desired: Desired, base: dict[str, Any] | None) -> dict[str, Any]:
        """spec.workflowMetadata: what every Workflow started from the template carries."""
        run_tags = list(desired.scheduled_run.tags)
        metadata = copy.deepcopy(base) if isinstance(base, dict) else {}
        labels = dict(metadata.get("labels") or {})
        labels.update(self._labels(desired))
        labels["app.kubernetes.io/name"] = "metaflow-run"
        labels.update(tag_labels(run_tags))
        annotations = dict(metadata.get("annotations") or {})
        annotations.update(self._annotations(desired))
        for volatile in (ANNOTATION_TIMESTAMP, ANNOTATION_LINEAGE, ANNOTATION_PRINCIPAL, ANNOTATION_VERSION):
            annotations.pop(volatile, None)  # the template's own facts: its runs need not change with them
        annotations["metaflow/run_id"] = "argo-{{workflow.name}}"
        annotations[ANNOTATION_RUN_TAGS] = json.dumps(run_tags, ensure_ascii=False)
        metadata["labels"], metadata["annotations"] = labels, annotations
        return metadata

    def document(self, desired: Desired) -> dict[str, Any]:
        rendered = copy.deepcopy(desired.definition)
        metadata = dict(rendered.get("metadata") or {})
        labels = dict(metadata.get("labels") or {})
        labels.update(self._labels(desired))
        labels["app.kubernetes.io/name"] = "metaflow-flow"
        annotations = dict(metadata.get("annotations") or {})
        annotations.update(self._annotations(desired))
        annotations.setdefault("workflows.argoproj.io/title", desired.names.project_flow_name)
        spec = dict(rendered["spec"])
        spec["workflowMetadata"] = self._run_metadata(desired, spec.get("workflowMetadata"))
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "WorkflowTemplate",
            "metadata": {
                "name": template_name(desired.names),
                "namespace": self.kube.namespace,
                "labels": labels,
                "annotations": annotations,
            },
            "spec": spec,
        }

    def _cron_document(self, desired: Desired, *, suspend: bool = False) -> dict[str, Any]:
        metadata = self._run_metadata(desired, None)
        metadata["annotations"]["metaflow/triggered_by"] = json.dumps({"type": "schedule"})
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "CronWorkflow",
            "metadata": {
                "name": template_name(desired.names),
                "namespace": self.kube.namespace,
                "labels": self._labels(desired),
            },
            "spec": {
                "schedule": desired.schedule,
                "timezone": "Etc/UTC",
                "concurrencyPolicy": "Allow",
                "workflowMetadata": metadata,
                "workflowSpec": {"workflowTemplateRef": {"name": template_name(desired.names)}},
                **({"suspend": True} if suspend else {}),
            },
        }

    @staticmethod
    def _comparable(document: Mapping[str, Any] | None) -> Any:
        if document is None:
            return None
        clean = copy.deepcopy(dict(document))
        clean.pop("status", None)
        metadata = clean.get("metadata") or {}
        for key in _VOLATILE_METADATA:
            metadata.pop(key, None)
        for volatile in (ANNOTATION_TIMESTAMP, ANNOTATION_PRINCIPAL, ANNOTATION_LINEAGE, ANNOTATION_VERSION):
            (metadata.get("annotations") or {}).pop(volatile, None)
        return clean

    def deployed_document(self, existing: Existing) -> Any:
        return self._comparable(existing.details.get("template"))

    def desired_document(self, desired: Desired) -> Any:
        return self._comparable(self.document(desired))  # no deploy time, principal or version: not changes

    # --- reading --------------------------------------------------------------------------------

    def read(self, names: FlowNames) -> Existing | None:
        with self.kube.errors(f"reading the WorkflowTemplate {template_name(names)}"):
            template = self.kube.get(TEMPLATES, template_name(names))
            if template is None:
                return None
        return self.existing_of(template)

    def existing_of(self, template: dict[str, Any], *, with_schedule: bool = True) -> Existing:
        """A template as read (with its CronWorkflow, which has the same name, unless told not to)."""
        name = template["metadata"]["name"]
        cron = None
        if with_schedule:
            with self.kube.errors(f"reading the CronWorkflow {name}"):
                cron = self.kube.get(CRONS, name)
        metadata = template.get("metadata") or {}
        annotations = metadata.get("annotations") or {}
        labels = metadata.get("labels") or {}
        record = decode_annotations(annotations, made_by_mfproj=labels.get(MANAGED_BY) == "mfproj")
        return Existing(
            backend=self.kube.name,
            name=name,
            identifier=name,
            definition=template.get("spec"),
            record=record,
            schedule=(cron.get("spec") or {}).get("schedule") if cron else None,
            details={"template": template, "cron": cron},
            schedule_paused=bool(cron and (cron.get("spec") or {}).get("suspend") is True),
        )

    def pause_schedule(self, existing: Existing, *, paused: bool) -> bool:
        cron = existing.details.get("cron")
        if cron is None or bool((cron.get("spec") or {}).get("suspend")) == paused:
            return False
        with self.kube.errors(f"{'suspending' if paused else 'resuming'} the CronWorkflow {existing.name}"):
            body = {**cron, "spec": {**(cron.get("spec") or {}), "suspend": paused}}
            self.kube.replace(CRONS, existing.name, body)  # with the resourceVersion read: compare-and-swap
        return True

    def changes(self, existing: Existing, desired: Desired) -> list[str]:
        found = []
        deployed = self._comparable(existing.details["template"])
        wanted = self._comparable(self.document(desired))
        if deployed.get("spec") != wanted.get("spec"):
            found.append("definition")
        if existing.record is None or existing.record.comparable() != desired.record.comparable():
            found.append("record")
        elif (deployed.get("metadata") or {}) != (wanted.get("metadata") or {}):
            found.append("metadata")
        cron = existing.details.get("cron")
        if desired.schedule is None:
            if cron is not None:
                found.append("schedule")
        else:
            current = self._comparable(cron)
            target = self._comparable(self._cron_document(desired, suspend=existing.schedule_paused))
            if (
                current is None
                or current.get("spec") != target.get("spec")
                or ((current.get("metadata") or {}).get("labels") != target["metadata"]["labels"])
            ):
                found.append("schedule")
        return found

    # --- writing: every write pushes how to put it back onto the run's undo log ------------------

    def apply(self, desired: Desired, existing: Existing | None, log: UndoLog, key: str) -> None:
        name = template_name(desired.names)
        with self.kube.errors(f"deploying the WorkflowTemplate {name}"):
            document = self.document(desired)
            log.check()
            if existing is None:
                self.kube.create(TEMPLATES, document)
                log.push(key, f"created the WorkflowTemplate {name}", lambda: self._undo_create(TEMPLATES, name))
            else:
                previous = existing.details["template"]
                # The resourceVersion read at authorization: a change made since then is a conflict.
                document["metadata"]["resourceVersion"] = previous["metadata"]["resourceVersion"]
                self.kube.replace(TEMPLATES, name, document)
                log.push(
                    key, f"replaced the WorkflowTemplate {name}", lambda: self._undo_replace(TEMPLATES, name, previous)
                )
            self.history.keep(desired, name, self._labels(desired), log, key)  # every write is a deploy
        cron_name = template_name(desired.names)
        with self.kube.errors(f"deploying the CronWorkflow {cron_name}"):
            cron = existing.details.get("cron") if existing else None
            if desired.schedule is not None:
                body = self._cron_document(desired, suspend=bool(existing and existing.schedule_paused))
                log.check()
                if cron is None:
                    self.kube.create(CRONS, body)
                    log.push(key, f"created the CronWorkflow {cron_name}", lambda: self._undo_create(CRONS, cron_name))
                else:
                    body["metadata"]["resourceVersion"] = cron["metadata"]["resourceVersion"]
                    self.kube.replace(CRONS, cron_name, body)
                    log.push(
                        key,
                        f"replaced the CronWorkflow {cron_name}",
                        lambda: self._undo_replace(CRONS, cron_name, cron),
                    )
            elif cron is not None:
                log.check()
                self.kube.delete(CRONS, cron_name, missing_ok=True)
                log.push(key, f"deleted the CronWorkflow {cron_name}", lambda: self._undo_delete(CRONS, cron))

    def _undo_create(self, plural: str, name: str) -> None:
        with self.kube.errors(f"deleting the {plural} {name} it had created"):
            self.kube.delete(plural, name, missing_ok=True)

    def _undo_replace(self, plural: str, name: str, previous: dict[str, Any]) -> None:
        with self.kube.errors(f"putting back the {plural} {name}"):
            current = self.kube.get(plural, name)
            restored = restorable(previous)
            if current is None:
                self.kube.create(plural, restored)
            else:
                restored["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                self.kube.replace(plural, name, restored)

    def _undo_delete(self, plural: str, previous: dict[str, Any]) -> None:
        with self.kube.errors(f"putting back the {plural} {previous['metadata']['name']}"):
            self.kube.create(plural, restorable(previous))

    def fingerprint(self, existing: Existing | None) -> Any:
        if existing is None:
            return None
        return {
            "template": self._comparable(existing.details.get("template")),
            "cron": self._comparable(existing.details.get("cron")),
        }

    def delete(self, existing: Existing) -> None:
        with self.kube.errors(f"deleting {existing.name}"):
            self.kube.delete(CRONS, existing.name, missing_ok=True)
            self.history.forget(existing.name)
            try:
                self.kube.delete(TEMPLATES, existing.name, missing_ok=False)
            except Exception as exc:
                if getattr(exc, "status", None) == 404:
                    raise NotFoundError(f"{existing.name} no longer exists on Argo Workflows") from None
                raise
