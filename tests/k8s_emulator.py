"""A stateful Kubernetes API emulator for Argo's custom resources, over HTTP on 127.0.0.1.

No kube-apiserver can be installed here, so the tests run against this. It is faithful where mfproj
and kubectl depend on it: discovery documents, create (201, 409 AlreadyExists), get (404 NotFound),
replace (422 without a resourceVersion, 409 Conflict on a stale one), JSON merge patch, delete, list
with label selectors and limit/continue pagination, 422 Invalid for bad names and labels, and
`Status` error bodies shaped as the real server's. `requests` logs every request for assertions.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime as _dt
import http.server
import json
import re
import secrets
import string
import threading
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.emulators import QuietServer

GROUP = "argoproj.io"
VERSION = "v1alpha1"
RESOURCES = {
    "workflowtemplates": ("WorkflowTemplate", "workflowtemplate", ["wftmpl"]),
    "cronworkflows": ("CronWorkflow", "cronworkflow", ["cwf", "cronwf"]),
    "workflows": ("Workflow", "workflow", ["wf"]),
}
# The core API's resources the emulator serves (under /api/v1): ConfigMaps, where mfproj keeps Argo history.
CORE_RESOURCES = {"configmaps": ("ConfigMap", "configmap", ["cm"])}
MAX_CONFIG_MAP = 1024 * 1024  # the API server refuses a ConfigMap whose data is larger
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def kubeconfig_for(
    server: str, *, namespace: str = "default", context: str = "emulator", token: str = "emulator-token"
) -> str:
    """A kubeconfig (JSON is YAML) for one server, user and context."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": {"server": server}}],
            "users": [{"name": "tester", "user": {"token": token}}],
            "contexts": [
                {"name": context, "context": {"cluster": "emulator", "user": "tester", "namespace": namespace}}
            ],
            "current-context": context,
        }
    )


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure" if code >= 400 else "Success",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


def _label_errors(labels: Any) -> list[str]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return ["metadata.labels: Invalid value: must be a map of strings"]
    errors = []
    for key, value in labels.items():
        prefix, slash, name = key.rpartition("/")
        if slash and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
            errors.append(f"metadata.labels: Invalid value: {key!r}: prefix part must be a DNS-1123 subdomain")
        if len(name) > 63 or not _LABEL_NAME.match(name):
            errors.append(
                f"metadata.labels: Invalid value: {key!r}: name part must consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character (at most 63)"
            )
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            errors.append(
                f"metadata.labels: Invalid value: {value!r}: a valid label must be an empty string or consist of "
                "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
                " (at most 63)"
            )
    return errors


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass
class Requirement:
    key: str
    operator: str  # =, !=, in, notin, exists, !exists
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "exists":
            return present
        if self.operator == "!exists":
            return not present
        if self.operator in ("=", "=="):
            return present and value == self.values[0]
        if self.operator == "!=":
            return not present or value != self.values[0]
        if self.operator == "in":
            return present and value in self.values
        if self.operator == "notin":
            return not present or value not in self.values
        return False


def parse_selector(text: str) -> list[Requirement]:
    """Label selectors as the apiserver parses them: `a=b,c!=d,e in (f,g),h notin (i),j,!k`."""
    requirements: list[Requirement] = []
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    for raw in parts:
        part = raw.strip()
        set_match = re.match(r"^(\S+)\s+(in|notin)\s+\(([^)]*)\)$", part)
        if set_match:
            values = tuple(v.strip() for v in set_match.group(3).split(",") if v.strip())
            requirements.append(Requirement(set_match.group(1), set_match.group(2), values))
        elif "!=" in part:
            key, value = part.split("!=", 1)
            requirements.append(Requirement(key.strip(), "!=", (value.strip(),)))
        elif "==" in part:
            key, value = part.split("==", 1)
            requirements.append(Requirement(key.strip(), "=", (value.strip(),)))
        elif "=" in part:
            key, value = part.split("=", 1)
            requirements.append(Requirement(key.strip(), "=", (value.strip(),)))
        elif part.startswith("!"):
            requirements.append(Requirement(part[1:].strip(), "!exists"))
        else:
            requirements.append(Requirement(part, "exists"))
    for requirement in requirements:
        prefix, _, name = requirement.key.rpartition("/")
        if not _LABEL_NAME.match(name or "") or (prefix and not _DNS1123_SUBDOMAIN.match(prefix)):
            raise ValueError(f"invalid label key {requirement.key!r}")
    return requirements


class KubernetesEmulator:
    def __init__(self, port: int = 0) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (plural, namespace, name)
        self.requests: list[tuple[str, str, str]] = []  # (method, path, query)
        self._revision = 1000
        self._lock = threading.RLock()
        emulator = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # keep-alive without a 40 ms delay per request

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                return json.loads(raw) if raw else None

            def _handle(self) -> None:
                parsed = urlparse(self.path)
                with emulator._lock:
                    emulator.requests.append((self.command, parsed.path, parsed.query))
                try:
                    body = self._body() if self.command in ("POST", "PUT", "PATCH") else None
                except ValueError:
                    self._send(400, status(400, "BadRequest", "the request body is not JSON"))
                    return
                if parsed.path == "/apis/authentication.k8s.io/v1/selfsubjectreviews" and self.command == "POST":
                    self._send(201, emulator.review(self.headers.get("Authorization", "")))
                    return
                code, answer = emulator.handle(
                    self.command, parsed.path, parse_qs(parsed.query), body, self.headers.get("Content-Type", "")
                )
                self._send(code, answer)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = QuietServer(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def handler_errors(self) -> list[str]:
        return self._server.errors

    def reset(self) -> None:
        with self._lock:
            self.objects.clear()
            self.requests.clear()
            self._server.errors.clear()

    def kubeconfig(self, namespace: str = "default", context: str = "emulator", token: str = "emulator-token") -> str:
        return kubeconfig_for(self.url, namespace=namespace, context=context, token=token)

    @staticmethod
    def review(authorization: str) -> dict[str, Any]:
        """A SelfSubjectReview: the bearer token `user:NAME` authenticates as NAME, the default one as tester."""
        token = authorization.removeprefix("Bearer ").strip()
        user = token[len("user:") :] if token.startswith("user:") else "tester"
        return {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "SelfSubjectReview",
            "metadata": {"creationTimestamp": None},
            "status": {"userInfo": {"username": user, "groups": ["system:authenticated"]}},
        }

    # --- request handling -----------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, content_type: str
    ) -> tuple[int, Any]:
        discovery = self._discovery(path)
        if discovery is not None:
            return (200, discovery) if method == "GET" else (405, status(405, "MethodNotAllowed", "not allowed"))
        match = re.match(
            rf"^/apis/{re.escape(GROUP)}/{VERSION}(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?$",
            path,
        ) or re.match(r"^/api/v1(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>configmaps)(?:/(?P<name>[^/]+))?$", path)
        if not match or match.group("plural") not in {**RESOURCES, **CORE_RESOURCES}:
            return 404, status(404, "NotFound", "the server could not find the requested resource")
        plural, namespace, name = match.group("plural"), match.group("ns"), match.group("name")
        with self._lock:
            if name is None:
                if method == "GET":
                    return self._list(plural, namespace, query)
                if method == "POST" and namespace:
                    return self._create(plural, namespace, body)
            elif namespace:
                if method == "GET":
                    return self._get(plural, namespace, name)
                if method == "PUT":
                    return self._replace(plural, namespace, name, body)
                if method == "PATCH":
                    return self._patch(plural, namespace, name, body, content_type)
                if method == "DELETE":
                    return self._delete(plural, namespace, name)
        return 405, status(405, "MethodNotAllowed", f"{method} is not supported here")

    def _discovery(self, path: str) -> Any:
        if path == "/version":
            return {"major": "1", "minor": "30", "gitVersion": "v1.30.0-mfproj-emulator", "platform": "linux/amd64"}
        if path == "/api":
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}],
            }
        if path == "/api/v1":
            return {
                "kind": "APIResourceList",
                "groupVersion": "v1",
                "resources": [
                    {
                        "name": "namespaces",
                        "singularName": "namespace",
                        "namespaced": False,
                        "kind": "Namespace",
                        "verbs": ["get", "list"],
                        "shortNames": ["ns"],
                    },
                    *(
                        {
                            "name": plural,
                            "singularName": singular,
                            "namespaced": True,
                            "kind": kind,
                            "verbs": _VERBS,
                            "shortNames": short,
                        }
                        for plural, (kind, singular, short) in CORE_RESOURCES.items()
                    ),
                ],
            }
        if path == "/apis":
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": GROUP,
                        "versions": [{"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}],
                        "preferredVersion": {"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION},
                    }
                ],
            }
        if path == f"/apis/{GROUP}/{VERSION}":
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{GROUP}/{VERSION}",
                "resources": [
                    {
                        "name": plural,
                        "singularName": singular,
                        "namespaced": True,
                        "kind": kind,
                        "verbs": _VERBS,
                        "shortNames": short,
                    }
                    for plural, (kind, singular, short) in RESOURCES.items()
                ],
            }
        if path == f"/apis/{GROUP}":
            return {
                "kind": "APIGroup",
                "apiVersion": "v1",
                "name": GROUP,
                "versions": [{"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}],
                "preferredVersion": {"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION},
            }
        return None

    def _next_revision(self) -> str:
        self._revision += 1
        return str(self._revision)

    def _details(self, plural: str, name: str | None) -> dict[str, Any]:
        return {"name": name, "group": "" if plural in CORE_RESOURCES else GROUP, "kind": plural}

    def _invalid(self, plural: str, name: str | None, causes: list[str]) -> tuple[int, Any]:
        kind = _kind(plural)
        message = f'{kind}{"" if plural in CORE_RESOURCES else "." + GROUP} "{name}" is invalid: ' + ", ".join(causes)
        details = self._details(plural, name)
        details["causes"] = [{"reason": "FieldValueInvalid", "message": c} for c in causes]
        return 422, status(422, "Invalid", message, details)

    def _validate(self, plural: str, obj: Any, *, name: str | None) -> list[str]:
        if not isinstance(obj, dict):
            return ["body: must be an object"]
        causes = []
        kind = _kind(plural)
        if obj.get("kind") not in (None, kind):
            causes.append(f"kind: Invalid value: {obj.get('kind')!r}: must be {kind}")
        if plural in CORE_RESOURCES:
            data = obj.get("data") or {}
            if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
                causes.append("data: Invalid value: must be a map of strings")
            elif sum(len(k) + len(v.encode()) for k, v in data.items()) > MAX_CONFIG_MAP:
                causes.append(f"data: Too long: must have at most {MAX_CONFIG_MAP} bytes")
        elif obj.get("apiVersion") not in (None, f"{GROUP}/{VERSION}"):
            causes.append(f"apiVersion: Invalid value: {obj.get('apiVersion')!r}")
        if name is not None and (len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name)):
            causes.append(
                f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 subdomain must consist of lower case "
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            )
        metadata = obj.get("metadata") or {}
        causes += _label_errors(metadata.get("labels"))
        annotations = metadata.get("annotations")
        if annotations is not None and (
            not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values())
        ):
            causes.append("metadata.annotations: Invalid value: must be a map of strings")
        elif annotations and sum(len(k) + len(v) for k, v in annotations.items()) > 256 * 1024:
            causes.append("metadata.annotations: Too long: must have at most 262144 bytes")
        return causes

    def _create(self, plural: str, namespace: str, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            return 400, status(400, "BadRequest", "the body of the request was in an unknown format")
        obj = copy.deepcopy(body)
        metadata = obj.setdefault("metadata", {})
        name = metadata.get("name")
        if not name and metadata.get("generateName"):
            suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
            name = metadata["generateName"] + suffix
        if not name:
            return self._invalid(plural, None, ["metadata.name: Required value: name or generateName is required"])
        causes = self._validate(plural, obj, name=name)
        if metadata.get("namespace") not in (None, namespace):
            causes.append("metadata.namespace: Invalid value: does not match the namespace of the request")
        if causes:
            return self._invalid(plural, name, causes)
        key = (plural, namespace, name)
        if key in self.objects:
            return 409, status(
                409, "AlreadyExists", f'{plural}.{GROUP} "{name}" already exists', self._details(plural, name)
            )
        metadata.update(
            name=name,
            namespace=namespace,
            uid=str(uuid.uuid4()),
            resourceVersion=self._next_revision(),
            creationTimestamp=_now(),
            generation=1,
        )
        obj.setdefault("apiVersion", "v1" if plural in CORE_RESOURCES else f"{GROUP}/{VERSION}")
        obj.setdefault("kind", _kind(plural))
        self.objects[key] = obj
        return 201, copy.deepcopy(obj)

    def _not_found(self, plural: str, name: str) -> tuple[int, Any]:
        return 404, status(404, "NotFound", f'{plural}.{GROUP} "{name}" not found', self._details(plural, name))

    def _get(self, plural: str, namespace: str, name: str) -> tuple[int, Any]:
        obj = self.objects.get((plural, namespace, name))
        return (200, copy.deepcopy(obj)) if obj else self._not_found(plural, name)

    def _store_update(self, key: tuple[str, str, str], current: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        metadata = new.setdefault("metadata", {})
        for field in ("uid", "creationTimestamp", "name", "namespace"):
            metadata[field] = current["metadata"][field]
        metadata["generation"] = current["metadata"].get("generation", 1) + (
            1 if new.get("spec") != current.get("spec") else 0
        )
        metadata["resourceVersion"] = self._next_revision()
        new.setdefault("apiVersion", current.get("apiVersion"))
        new.setdefault("kind", current.get("kind"))
        self.objects[key] = new
        return copy.deepcopy(new)

    def _replace(self, plural: str, namespace: str, name: str, body: Any) -> tuple[int, Any]:
        key = (plural, namespace, name)
        current = self.objects.get(key)
        if current is None:
            return self._not_found(plural, name)
        if not isinstance(body, dict):
            return 400, status(400, "BadRequest", "the body of the request was in an unknown format")
        version = (body.get("metadata") or {}).get("resourceVersion")
        if not version:
            return self._invalid(
                plural, name, ["metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"]
            )
        if (body.get("metadata") or {}).get("name") not in (None, name):
            return 400, status(400, "BadRequest", "the name of the object does not match the name in the URL")
        causes = self._validate(plural, body, name=name)
        if causes:
            return self._invalid(plural, name, causes)
        if version != current["metadata"]["resourceVersion"]:
            return 409, status(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {plural}.{GROUP} "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again",
                self._details(plural, name),
            )
        return 200, self._store_update(key, current, copy.deepcopy(body))

    def _patch(self, plural: str, namespace: str, name: str, body: Any, content_type: str) -> tuple[int, Any]:
        key = (plural, namespace, name)
        current = self.objects.get(key)
        if current is None:
            return self._not_found(plural, name)
        if "merge-patch+json" not in content_type:
            return 415, status(415, "UnsupportedMediaType", f"the content type {content_type!r} is not supported")
        patched = merge_patch(current, body)
        version = (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
        if version and version != current["metadata"]["resourceVersion"]:
            return 409, status(409, "Conflict", f'Operation cannot be fulfilled on {plural}.{GROUP} "{name}"')
        causes = self._validate(plural, patched, name=name)
        if causes:
            return self._invalid(plural, name, causes)
        return 200, self._store_update(key, current, patched)

    def _delete(self, plural: str, namespace: str, name: str) -> tuple[int, Any]:
        obj = self.objects.pop((plural, namespace, name), None)
        if obj is None:
            return self._not_found(plural, name)
        answer = status(200, "", "", self._details(plural, name))
        answer["status"] = "Success"
        answer.pop("reason")
        answer.pop("message")
        return 200, answer

    def _list(self, plural: str, namespace: str | None, query: dict[str, list[str]]) -> tuple[int, Any]:
        try:
            requirements = parse_selector(query.get("labelSelector", [""])[0])
        except ValueError as exc:
            return 400, status(400, "BadRequest", f"unable to parse requirement: {exc}")
        items = [
            obj
            for (kind, ns, _), obj in sorted(self.objects.items())
            if kind == plural
            and (namespace is None or ns == namespace)
            and all(r.matches(obj["metadata"].get("labels") or {}) for r in requirements)
        ]
        start = 0
        token = query.get("continue", [""])[0]
        if token:
            try:
                start = int(json.loads(base64.urlsafe_b64decode(token.encode()))["start"])
            except (ValueError, KeyError):
                return 400, status(400, "BadRequest", "continue key is not valid")
        limit = int(query.get("limit", ["0"])[0] or 0)
        page = items[start : start + limit] if limit > 0 else items[start:]
        metadata: dict[str, Any] = {"resourceVersion": str(self._revision)}
        if limit > 0 and start + limit < len(items):
            metadata["continue"] = base64.urlsafe_b64encode(json.dumps({"start": start + limit}).encode()).decode()
            metadata["remainingItemCount"] = len(items) - start - limit
        return 200, {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": _kind(plural) + "List",
            "metadata": metadata,
            "items": copy.deepcopy(page),
        }

    # --- helpers for tests ----------------------------------------------------------------------

    def set_phase(self, namespace: str, name: str, phase: str) -> None:
        """What Argo's controller would do: record a Workflow's phase (and its label)."""
        with self._lock:
            obj = self.objects[("workflows", namespace, name)]
            obj.setdefault("status", {})["phase"] = phase
            # The controller starts a workflow moments after it is created.
            obj["status"]["startedAt"] = obj["status"].get("startedAt") or obj["metadata"]["creationTimestamp"]
            if phase in ("Succeeded", "Failed", "Error"):
                obj["status"]["finishedAt"] = _now()
            obj["metadata"].setdefault("labels", {})["workflows.argoproj.io/phase"] = phase
            obj["metadata"]["resourceVersion"] = self._next_revision()


def _kind(plural: str) -> str:
    return {**RESOURCES, **CORE_RESOURCES}[plural][0]


class WorkflowController:
    """What Argo's controller does, for trying mfproj locally (never for the tests of mfproj's own
    logic, which set phases themselves): each Workflow goes Pending, then Running after `start` seconds,
    then Succeeded after `run` more, or Failed once `spec.shutdown` asks it to stop (as Argo records a
    terminated workflow). Polls every 0.1 s in a daemon thread until `stop`."""

    def __init__(self, emulator: KubernetesEmulator, *, start: float = 0.3, run: float = 1.5) -> None:
        self.emulator, self.start_after, self.run_for = emulator, start, run
        self._seen: dict[tuple[str, str], float] = {}  # (namespace, name) -> when first seen
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> WorkflowController:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        import time

        while not self._stopped.wait(0.1):
            with self.emulator._lock:
                workflows = [
                    (key[1], key[2], obj) for key, obj in self.emulator.objects.items() if key[0] == "workflows"
                ]
            for namespace, name, workflow in workflows:
                first = self._seen.setdefault((namespace, name), time.monotonic())
                self._advance(namespace, name, workflow, time.monotonic() - first)

    def _advance(self, namespace: str, name: str, workflow: dict[str, Any], age: float) -> None:
        phase = (workflow.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed", "Error"):
            return
        with contextlib.suppress(KeyError):  # deleted meanwhile
            if (workflow.get("spec") or {}).get("shutdown"):
                self.emulator.set_phase(namespace, name, "Failed")
                workflow["status"]["message"] = f"Stopped with strategy '{workflow['spec']['shutdown']}'"
            elif age >= self.start_after + self.run_for:
                self.emulator.set_phase(namespace, name, "Succeeded")
            elif age >= self.start_after and phase != "Running":
                self.emulator.set_phase(namespace, name, "Running")
            elif phase is None:
                self.emulator.set_phase(namespace, name, "Pending")


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.k8s_emulator [--port N] [--kubeconfig PATH]`: the emulator with its controller, as a
    dev server for trying Argo Workflows locally (a real cluster is what mfproj deploys to)."""
    import argparse
    import os
    import tempfile

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=0, help="the port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--kubeconfig", help="where to write the kubeconfig (default: a temporary file)")
    options = parser.parse_args(argv)
    emulator = KubernetesEmulator(options.port)
    controller = WorkflowController(emulator).start()
    path = options.kubeconfig or os.path.join(tempfile.mkdtemp(prefix="mfproj-k8s-"), "kubeconfig")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(emulator.kubeconfig())
    print(f"Kubernetes API emulator (Argo Workflows resources) on {emulator.url}", flush=True)
    print(f"export KUBECONFIG={path}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
