"""Argo Workflows: WorkflowTemplates, CronWorkflows and Workflows through the Kubernetes API.

Deployments carry the reference's annotations (`metaflow/owner`, `metaflow/production_token`, …), so
Metaflow's own CLI recognises and guards them, plus labels for selection on the server. A template is
replaced with the resourceVersion read when it was authorized, so a change made by someone else in
between fails with a conflict (exit 6) instead of being overwritten.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from mfproj import naming
from mfproj.backends.base import (
    Backend,
    DeploymentRecord,
    Desired,
    Existing,
    Run,
    RunDetails,
    RunFilter,
    newest_first,
)
from mfproj.errors import BackendError, ConflictError, NotFoundError, UsageError, ValidationError
from mfproj.manifest import ArgoWorkflowsSettings
from mfproj.naming import FlowNames
from mfproj.render import Context, TemplateError, read_template, render
from mfproj.transaction import UndoLog

GROUP, VERSION = "argoproj.io", "v1alpha1"
TEMPLATES, CRONS, WORKFLOWS = "workflowtemplates", "cronworkflows", "workflows"
MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PROJECT, LABEL_BRANCH, LABEL_FLOW = "mfproj.io/project", "mfproj.io/branch", "mfproj.io/flow"
LABEL_TEMPLATE = "mfproj.io/template"
ANNOTATION_RUN_TAGS = "mfproj.io/run-tags"
ANNOTATION_VERSION = "mfproj.io/version"
ANNOTATION_PRINCIPAL = "mfproj.io/principal"
ANNOTATION_TIMESTAMP = "metaflow/deployment_timestamp"
_VOLATILE_METADATA = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "selfLink")
_PHASES = {"Pending": "PENDING", "Running": "RUNNING", "Succeeded": "SUCCEEDED", "Failed": "FAILED", "Error": "FAILED"}


def tag_labels(tags: list[str] | tuple[str, ...]) -> dict[str, str]:
    """One label per tag (key from the tag's hash), so runs can be selected by tag on the server.

    The value is the tag in label form, for people reading `kubectl get --show-labels`, except for
    the production tag: labels are shown widely, so they never carry the token.
    """
    return {
        naming.tag_label_key(tag): "production" if tag.startswith("production:") else (naming.label_value(tag) or "t")
        for tag in tags
    }


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


class ArgoWorkflowsBackend(Backend):
    name = "argo_workflows"
    label = "Argo Workflows"
    runtime = "argo-workflows"

    def __init__(self, settings: ArgoWorkflowsSettings, *, env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.env = os.environ if env is None else env
        self.namespace = settings.namespace
        self._lock = threading.Lock()
        self._api: Any = None
        self._server = "the Kubernetes API"
        self._user: str | None = None

    # --- connection and errors ------------------------------------------------------------------

    def endpoint(self) -> str:
        return self._server

    def api(self) -> Any:
        with self._lock:
            if self._api is None:
                self._api = self._connect()
            return self._api

    def _connect(self) -> Any:
        import urllib3
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        path = self.settings.kubeconfig or self.env.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        first = str(path).split(os.pathsep)[0]
        configuration = client.Configuration()
        try:
            if os.path.exists(first):
                config.load_kube_config(
                    config_file=first, context=self.settings.context, client_configuration=configuration
                )
                contexts, active = config.list_kube_config_contexts(config_file=first)
                chosen = next((c for c in contexts if c.get("name") == self.settings.context), active) or {}
                self._user = (chosen.get("context") or {}).get("user")
            elif self.env.get("KUBERNETES_SERVICE_HOST"):
                config.load_incluster_config(client_configuration=configuration)
                self._user = "in-cluster service account"
            else:
                raise UsageError(
                    f"no kubeconfig at {first} and not running inside a cluster",
                    hint="set KUBECONFIG, or [argo_workflows] kubeconfig in the manifest",
                )
        except ConfigException as exc:
            raise UsageError(f"cannot use the kubeconfig {first}: {exc}", hint="check its context and users") from None
        configuration.retries = urllib3.Retry(
            total=3,
            connect=3,
            read=0,
            status=3,
            backoff_factor=0.2,
            status_forcelist=(429, 502, 503, 504),
            allowed_methods=frozenset({"GET", "HEAD"}),
            raise_on_status=False,
        )
        self._server = configuration.host
        return client.CustomObjectsApi(client.ApiClient(configuration))

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        try:
            yield
        except ApiException as exc:
            reason, message = _status_of(exc)
            if exc.status == 409:
                raise ConflictError(
                    f"{doing}: {message or reason}",
                    hint="someone changed it since mfproj read it; run the command again to see the new state",
                ) from None
            if exc.status == 422:
                raise ValidationError(f"the Kubernetes API at {self._server} rejected {doing}: {message}") from None
            if exc.status in (401, 403):
                raise BackendError(
                    f"the Kubernetes API at {self._server} refused {doing}: {message or reason}",
                    hint="check the kubeconfig's credentials and your RBAC permissions for argoproj.io",
                ) from None
            raise BackendError(
                f"the Kubernetes API at {self._server} failed {doing}: {exc.status} {message or reason}",
                hint="wait and run the command again" if (exc.status or 0) >= 500 or exc.status == 429 else None,
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BackendError(
                f"cannot reach the Kubernetes API at {self._server} while {doing}: {type(exc).__name__}",
                hint="check the network, the kubeconfig context and KUBECONFIG; then run the command again",
            ) from None

    def _timeout(self) -> tuple[float, float]:
        return (
            float(self.env.get("MFPROJ_K8S_CONNECT_TIMEOUT", "5")),
            float(self.env.get("MFPROJ_K8S_READ_TIMEOUT", "30")),
        )

    def _get(self, plural: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            result = self.api().get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name, _request_timeout=self._timeout()
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(result)

    def _create(self, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        result = self.api().create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, body, _request_timeout=self._timeout()
        )
        return dict(result) if result else body  # the v37 client answers None for HTTP 200

    def _replace(self, plural: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        result = self.api().replace_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, name, body, _request_timeout=self._timeout()
        )
        return dict(result) if result else body

    def _delete(self, plural: str, name: str, *, missing_ok: bool) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.api().delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name, _request_timeout=self._timeout()
            )
        except ApiException as exc:
            if exc.status == 404 and missing_ok:
                return
            raise

    def principal(self) -> str | None:
        self.api()
        return self._user

    # --- documents ------------------------------------------------------------------------------

    def deployed_name(self, names: FlowNames) -> str:
        return names.workflow_template

    def render(self, template: Path, context: Context) -> Any:
        return render(load_template(template), context, source=template)

    def _annotations(self, desired: Desired) -> dict[str, str]:
        record = desired.record
        annotations = {
            "metaflow/owner": record.owner or "",
            "metaflow/production_token": record.production_token or "",
            "metaflow/user": "argo-workflows",
            "metaflow/flow_name": desired.flow,
            "metaflow/project_name": record.project or "",
            "metaflow/branch_name": record.branch or "",
            "metaflow/project_flow_name": record.project_flow_name or "",
            ANNOTATION_TIMESTAMP: record.deployed_at or "",
            "metaflow/tags": json.dumps(list(record.tags)),
            ANNOTATION_VERSION: record.mfproj_version or "",
        }
        if record.principal:
            annotations[ANNOTATION_PRINCIPAL] = record.principal
        if desired.schedule:
            annotations["metaflow/cron"] = json.dumps({"schedule": desired.schedule, "tz": "UTC"})
        return annotations

    def _labels(self, desired: Desired) -> dict[str, str]:
        record = desired.record
        return {
            MANAGED_BY: "mfproj",
            "app.kubernetes.io/part-of": "metaflow",
            LABEL_PROJECT: naming.label_value(record.project or ""),
            LABEL_BRANCH: naming.label_value(record.branch or ""),
            LABEL_FLOW: naming.label_value(desired.flow),
            LABEL_TEMPLATE: naming.label_value(desired.names.workflow_template),
        }

    def _run_metadata(self, desired: Desired, base: dict[str, Any] | None) -> dict[str, Any]:
        """spec.workflowMetadata: what every Workflow started from the template carries."""
        run_tags = list(desired.run_metadata.get("tags", []))
        metadata = copy.deepcopy(base) if isinstance(base, dict) else {}
        labels = dict(metadata.get("labels") or {})
        labels.update(self._labels(desired))
        labels["app.kubernetes.io/name"] = "metaflow-run"
        labels.update(tag_labels(run_tags))
        annotations = dict(metadata.get("annotations") or {})
        annotations.update(self._annotations(desired))
        annotations.pop(ANNOTATION_TIMESTAMP, None)  # the template's own; runs need not change with it
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
                "name": desired.names.workflow_template,
                "namespace": self.namespace,
                "labels": labels,
                "annotations": annotations,
            },
            "spec": spec,
        }

    def _cron_document(self, desired: Desired) -> dict[str, Any]:
        metadata = self._run_metadata(desired, None)
        metadata["annotations"]["metaflow/triggered_by"] = json.dumps({"type": "schedule"})
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "CronWorkflow",
            "metadata": {
                "name": desired.names.cron_workflow,
                "namespace": self.namespace,
                "labels": self._labels(desired),
            },
            "spec": {
                "schedule": desired.schedule,
                "timezone": "Etc/UTC",
                "concurrencyPolicy": "Allow",
                "workflowMetadata": metadata,
                "workflowSpec": {"workflowTemplateRef": {"name": desired.names.workflow_template}},
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
        (metadata.get("annotations") or {}).pop(ANNOTATION_TIMESTAMP, None)
        (metadata.get("annotations") or {}).pop(ANNOTATION_PRINCIPAL, None)
        (metadata.get("annotations") or {}).pop(ANNOTATION_VERSION, None)
        return clean

    def deployed_document(self, existing: Existing) -> Any:
        return self._comparable(existing.details.get("template"))

    # --- reading --------------------------------------------------------------------------------

    def read(self, names: FlowNames) -> Existing | None:
        with self._errors(f"reading the WorkflowTemplate {names.workflow_template}"):
            template = self._get(TEMPLATES, names.workflow_template)
            if template is None:
                return None
            cron = self._get(CRONS, names.cron_workflow)
        metadata = template.get("metadata") or {}
        annotations = metadata.get("annotations") or {}
        labels = metadata.get("labels") or {}
        record = None
        if "metaflow/owner" in annotations or "metaflow/production_token" in annotations:
            try:
                tags = tuple(str(t) for t in json.loads(annotations.get("metaflow/tags") or "[]"))
            except ValueError:
                tags = ()
            record = DeploymentRecord(
                owner=annotations.get("metaflow/owner") or None,
                production_token=annotations.get("metaflow/production_token") or None,
                project=annotations.get("metaflow/project_name") or None,
                branch=annotations.get("metaflow/branch_name") or None,
                flow=annotations.get("metaflow/flow_name") or None,
                project_flow_name=annotations.get("metaflow/project_flow_name") or None,
                deployed_at=annotations.get(ANNOTATION_TIMESTAMP) or None,
                mfproj_version=annotations.get(ANNOTATION_VERSION) or None,
                principal=annotations.get(ANNOTATION_PRINCIPAL) or None,
                tags=tags,
                managed_by="mfproj" if labels.get(MANAGED_BY) == "mfproj" else "metaflow",
            )
        return Existing(
            backend=self.name,
            name=names.workflow_template,
            identifier=names.workflow_template,
            definition=template.get("spec"),
            record=record,
            schedule=(cron.get("spec") or {}).get("schedule") if cron else None,
            details={"template": template, "cron": cron},
        )

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
            target = self._comparable(self._cron_document(desired))
            if (
                current is None
                or current.get("spec") != target.get("spec")
                or ((current.get("metadata") or {}).get("labels") != target["metadata"]["labels"])
            ):
                found.append("schedule")
        return found

    # --- writing: every write pushes how to put it back onto the run's undo log ------------------

    def apply(self, desired: Desired, existing: Existing | None, log: UndoLog, key: str) -> None:
        name = desired.names.workflow_template
        with self._errors(f"deploying the WorkflowTemplate {name}"):
            document = self.document(desired)
            log.check()
            if existing is None:
                self._create(TEMPLATES, document)
                log.push(key, f"created the WorkflowTemplate {name}", lambda: self._undo_create(TEMPLATES, name))
            else:
                previous = existing.details["template"]
                # The resourceVersion read at authorization: a change made since then is a conflict.
                document["metadata"]["resourceVersion"] = previous["metadata"]["resourceVersion"]
                self._replace(TEMPLATES, name, document)
                log.push(
                    key, f"replaced the WorkflowTemplate {name}", lambda: self._undo_replace(TEMPLATES, name, previous)
                )
        cron_name = desired.names.cron_workflow
        with self._errors(f"deploying the CronWorkflow {cron_name}"):
            cron = existing.details.get("cron") if existing else None
            if desired.schedule is not None:
                body = self._cron_document(desired)
                log.check()
                if cron is None:
                    self._create(CRONS, body)
                    log.push(key, f"created the CronWorkflow {cron_name}", lambda: self._undo_create(CRONS, cron_name))
                else:
                    body["metadata"]["resourceVersion"] = cron["metadata"]["resourceVersion"]
                    self._replace(CRONS, cron_name, body)
                    log.push(
                        key,
                        f"replaced the CronWorkflow {cron_name}",
                        lambda: self._undo_replace(CRONS, cron_name, cron),
                    )
            elif cron is not None:
                log.check()
                self._delete(CRONS, cron_name, missing_ok=True)
                log.push(key, f"deleted the CronWorkflow {cron_name}", lambda: self._undo_delete(CRONS, cron))

    def _undo_create(self, plural: str, name: str) -> None:
        with self._errors(f"deleting the {plural} {name} it had created"):
            self._delete(plural, name, missing_ok=True)

    def _undo_replace(self, plural: str, name: str, previous: dict[str, Any]) -> None:
        with self._errors(f"putting back the {plural} {name}"):
            current = self._get(plural, name)
            restored = _restorable(previous)
            if current is None:
                self._create(plural, restored)
            else:
                restored["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                self._replace(plural, name, restored)

    def _undo_delete(self, plural: str, previous: dict[str, Any]) -> None:
        with self._errors(f"putting back the {plural} {previous['metadata']['name']}"):
            self._create(plural, _restorable(previous))

    def fingerprint(self, existing: Existing | None) -> Any:
        if existing is None:
            return None
        return {
            "template": self._comparable(existing.details.get("template")),
            "cron": self._comparable(existing.details.get("cron")),
        }

    def delete(self, existing: Existing) -> None:
        with self._errors(f"deleting {existing.name}"):
            self._delete(CRONS, existing.name, missing_ok=True)
            try:
                self._delete(TEMPLATES, existing.name, missing_ok=False)
            except Exception as exc:
                if getattr(exc, "status", None) == 404:
                    raise NotFoundError(f"{existing.name} no longer exists on Argo Workflows") from None
                raise

    # --- runs -----------------------------------------------------------------------------------

    def running(self, existing: Existing, *, limit: int = 1000) -> int:
        selector = f"{LABEL_TEMPLATE}={naming.label_value(existing.name)},workflows.argoproj.io/completed!=true"
        count = 0
        with self._errors(f"counting the running workflows of {existing.name}"):
            for item in self._workflows(selector, page_size=100, max_pages=limit // 100 + 1):
                if (item.get("status") or {}).get("phase") not in ("Succeeded", "Failed", "Error"):
                    count += 1
                    if count >= limit:
                        break
        return min(count, limit)

    def start(self, existing: Existing, payload: dict[str, Any], run_tags: list[str]) -> Run:
        metadata = payload.get("mfproj", {})
        parameters = json.loads(payload.get("Parameters") or "{}")
        for key, value in payload.items():
            if key not in ("Parameters", "mfproj"):
                parameters[key] = value
        template_meta = existing.details["template"].get("metadata") or {}
        labels = {k: v for k, v in (template_meta.get("labels") or {}).items() if k.startswith("mfproj.io/")}
        labels.update({MANAGED_BY: "mfproj", "app.kubernetes.io/name": "metaflow-run"})
        labels.update(tag_labels(run_tags))
        triggered = metadata.get("triggered_by", {})
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Workflow",
            "metadata": {
                "generateName": f"{existing.name}-",
                "namespace": self.namespace,
                "labels": labels,
                "annotations": {
                    "metaflow/triggered_by_user": json.dumps(
                        {"type": triggered.get("type", "user"), "name": triggered.get("name")}
                    ),
                    "metaflow/flow_name": metadata.get("flow", ""),
                    "metaflow/project_name": metadata.get("project", ""),
                    "metaflow/branch_name": metadata.get("branch", ""),
                    ANNOTATION_RUN_TAGS: json.dumps(run_tags, ensure_ascii=False),
                },
            },
            "spec": {
                "workflowTemplateRef": {"name": existing.name},
                "arguments": {
                    "parameters": [
                        {"name": key, "value": value if isinstance(value, str) else json.dumps(value)}
                        for key, value in parameters.items()
                    ]
                },
            },
        }
        with self._errors(f"starting {existing.name}"):
            created = self._create(WORKFLOWS, body)
        name = created["metadata"]["name"]
        return Run(
            run_id=f"argo-{name}",
            status="PENDING",
            identifier=name,
            started_at=created["metadata"].get("creationTimestamp"),
        )

    def list_runs(self, existing: Existing, query: RunFilter) -> Iterator[RunDetails]:
        """Selected on the server by labels (template and one label per wanted tag), page by page; the
        newest `limit` are kept in a bounded heap, since the API lists by name, not by time."""
        selector = ",".join(
            [f"{LABEL_TEMPLATE}={naming.label_value(existing.name)}"]
            + [naming.tag_label_key(tag) for tag in query.required_tags()]
        )
        with self._errors(f"listing the runs of {existing.name}"):
            matching = (
                details
                for details in (
                    _workflow_details(item, existing.name)
                    for item in self._workflows(selector, page_size=200, max_pages=100_000)  # 20 million at most
                )
                if query.matches(details)
            )
            newest = newest_first(matching, query.limit, lambda details: details.started_at)
        yield from newest

    def _workflows(self, selector: str, *, page_size: int, max_pages: int) -> Iterator[dict[str, Any]]:
        """Workflows matching a label selector, one page at a time (limit/continue), bounded."""
        token = None
        for _ in range(max_pages):
            page = self.api().list_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                WORKFLOWS,
                label_selector=selector,
                limit=page_size,
                _continue=token,
                _request_timeout=self._timeout(),
            )
            yield from page.get("items", [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return

    def find_run(self, existing: Existing, run_id: str) -> RunDetails | None:
        if not run_id.startswith("argo-"):
            return None
        with self._errors(f"reading the run {run_id}"):
            workflow = self._get(WORKFLOWS, run_id[len("argo-") :])
        if workflow is None or (workflow.get("spec") or {}).get("workflowTemplateRef", {}).get("name") != existing.name:
            return None
        return _workflow_details(workflow, existing.name)

    def run(self, existing: Existing, run_id: str) -> Run:
        if not run_id.startswith("argo-"):
            raise ValidationError(f"{run_id!r} is not an Argo Workflows run id (they start with argo-)")
        name = run_id[len("argo-") :]
        with self._errors(f"reading the run {run_id}"):
            workflow = self._get(WORKFLOWS, name)
        if workflow is None:
            raise NotFoundError(f"no run {run_id} of {existing.name}")
        state = workflow.get("status") or {}
        return Run(
            run_id=run_id,
            status=_PHASES.get(state.get("phase") or "Pending", "RUNNING"),
            identifier=name,
            started_at=state.get("startedAt") or workflow["metadata"].get("creationTimestamp"),
            finished_at=state.get("finishedAt"),
            details={"error": state.get("message")},
        )


def _timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    return None


def _workflow_details(workflow: Mapping[str, Any], deployment: str) -> RunDetails:
    metadata = workflow.get("metadata") or {}
    state = workflow.get("status") or {}
    try:
        tags = json.loads((metadata.get("annotations") or {}).get(ANNOTATION_RUN_TAGS) or "[]")
    except ValueError:
        tags = []
    parameters: dict[str, Any] = {
        str(p.get("name")): p.get("value")
        for p in ((workflow.get("spec") or {}).get("arguments") or {}).get("parameters") or []
        if isinstance(p, dict)
    }
    return RunDetails(
        run_id=f"argo-{metadata.get('name')}",
        status=_PHASES.get(state.get("phase") or "Pending", "RUNNING"),
        started_at=_timestamp(state.get("startedAt")) or _timestamp(metadata.get("creationTimestamp")),
        finished_at=_timestamp(state.get("finishedAt")),
        tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
        parameters=parameters,
        deployment=deployment,
    )


def _restorable(previous: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an object as read, fit to be written again (no status, no server-set metadata)."""
    restored = copy.deepcopy(dict(previous))
    restored.pop("status", None)
    metadata = restored.setdefault("metadata", {})
    for key in _VOLATILE_METADATA:
        metadata.pop(key, None)
    return restored


def _status_of(exc: Any) -> tuple[str, str]:
    """(reason, message) from an ApiException's Status body."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return str(exc.reason or ""), ""
    return str(body.get("reason") or exc.reason or ""), str(body.get("message") or "")
