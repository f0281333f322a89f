"""The Kubernetes client for Argo's custom resources: connection, errors and the object calls."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from mfproj import envsettings, pacing, retries
from mfproj.backends.argo_workflows.settings import ArgoWorkflowsSettings
from mfproj.errors import BackendError, ConflictError, MfprojError, UsageError, ValidationError
from mfproj.text import Unreadable, bounded_json

GROUP, VERSION = "argoproj.io", "v1alpha1"
TEMPLATES, CRONS, WORKFLOWS = "workflowtemplates", "cronworkflows", "workflows"
_VOLATILE_METADATA = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "selfLink")


class KubeClient:
    """One API client per backend, reads retried on 429/5xx, writes never; errors as mfproj errors."""

    name = "argo_workflows"

    def __init__(
        self, settings: ArgoWorkflowsSettings, *, profile: str | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        self.settings = settings
        self.env = os.environ if env is None else env
        self.namespace = settings.namespace
        self._lock = threading.Lock()
        self._api: Any = None
        self._server = "the Kubernetes API"
        self._user: str | None = None
        self._principal: str | None = None
        self._principal_known = False

    # --- connection and errors ------------------------------------------------------------------

    def endpoint(self) -> str:
        return self._server

    def api(self) -> Any:
        with self._lock:
            if self._api is None:
                self._api = self._connect()
            return self._api

    def _connect(self) -> Any:
        import yaml
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        first = self.kubeconfig_path()
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
        except (OSError, ValueError, TypeError, KeyError, AttributeError, yaml.YAMLError) as exc:
            # How the client fails on a file that is not a kubeconfig.
            what = exc.strerror if isinstance(exc, OSError) else " ".join(str(exc).split())
            raise UsageError(
                f"{first} is not a kubeconfig (a YAML mapping of clusters, contexts and users): {what}",
                hint="point KUBECONFIG (or [argo_workflows] kubeconfig) at the file 'kubectl config view' reads",
            ) from None
        configuration.connection_pool_maxsize = 64  # as many as deploy threads: no connection discarded
        configuration.retries = _counted_retry_class()(
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
    def errors(self, doing: str) -> Iterator[None]:
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
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # An answer that is not the API server's (a proxy's HTML page, a cut-off body, missing fields).
            raise BackendError(
                f"the Kubernetes API at {self._server} answered with something that is not a Kubernetes object "
                f"while {doing} ({type(exc).__name__})",
                hint="check the kubeconfig's server and any proxy in between; then run the command again",
            ) from None

    def timeout(self) -> tuple[float, float]:
        return (
            envsettings.number(self.env, "MFPROJ_K8S_CONNECT_TIMEOUT"),
            envsettings.number(self.env, "MFPROJ_K8S_READ_TIMEOUT"),
        )

    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            result = self.api().get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name, _request_timeout=self.timeout()
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(result)

    def paged(self, plural: str, selector: str, *, page_size: int, max_pages: int) -> Iterator[dict[str, Any]]:
        """Objects matching a label selector, one page at a time (limit/continue), bounded."""
        token = None
        for _ in range(max_pages):
            page = self.api().list_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                plural,
                label_selector=selector,
                limit=page_size,
                _continue=token,
                _request_timeout=self.timeout(),
            )
            yield from page.get("items", [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return

    def create(self, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        result = self.api().create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, body, _request_timeout=self.timeout()
        )
        return dict(result) if result else body  # the v37 client answers None for HTTP 200

    def replace(self, plural: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        result = self.api().replace_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, name, body, _request_timeout=self.timeout()
        )
        return dict(result) if result else body

    def delete(self, plural: str, name: str, *, missing_ok: bool) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.api().delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name, _request_timeout=self.timeout()
            )
        except ApiException as exc:
            if exc.status == 404 and missing_ok:
                return
            raise

    # ConfigMaps (the core API): where mfproj keeps the history of a WorkflowTemplate

    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api().api_client)

    def get_config_map(self, name: str, *, limit: int) -> dict[str, Any] | None:
        """The ConfigMap as a dict, read raw and refused past `limit` bytes (someone else may write it)."""
        from kubernetes.client.exceptions import ApiException

        try:
            answer = self.core().read_namespaced_config_map(
                name, self.namespace, _preload_content=False, _request_timeout=self.timeout()
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        raw = answer.read(limit + 1)
        if len(raw) > limit:
            raise Unreadable(f"the ConfigMap {name} is larger than {limit} bytes")
        found = bounded_json(raw.decode("utf-8", errors="replace"), where=f"the ConfigMap {name}")
        return found if isinstance(found, dict) else None

    def put_config_map(self, body: dict[str, Any], *, resource_version: str | None) -> None:
        """Creates the ConfigMap, or replaces it at `resource_version` (a change since is a conflict)."""
        if resource_version is None:
            self.core().create_namespaced_config_map(self.namespace, body, _request_timeout=self.timeout())
            return
        body = {**body, "metadata": {**body["metadata"], "resourceVersion": resource_version}}
        self.core().replace_namespaced_config_map(
            body["metadata"]["name"], self.namespace, body, _request_timeout=self.timeout()
        )

    def delete_config_map(self, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.core().delete_namespaced_config_map(name, self.namespace, _request_timeout=self.timeout())
        except ApiException as exc:
            if exc.status != 404:
                raise

    def principal(self) -> str | None:
        """Who the API server says the caller's credentials are (a SelfSubjectReview: the name RBAC sees,
        not the kubeconfig's label for it), asked once; None where the server cannot say (before 1.28)."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        with self._lock:
            if self._principal_known:
                return self._principal
        review = client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview")
        with self.errors("asking the API server who you are"):
            try:
                answer = client.AuthenticationV1Api(self.api().api_client).create_self_subject_review(
                    review, _request_timeout=self.timeout()
                )
                user = getattr(getattr(answer, "status", None), "user_info", None)
                name = getattr(user, "username", None)
                found = str(name)[:256] if name else None
            except ApiException as exc:
                if exc.status not in (403, 404, 405):
                    raise
                found = None  # an older server, or no permission to ask: the owner is then a name only
        with self._lock:
            self._principal, self._principal_known = found, True
        return found

    def kubeconfig_path(self) -> str:
        path = self.settings.kubeconfig or self.env.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        return str(path).split(os.pathsep)[0]

    def whereabouts(self) -> dict[str, str | None]:
        """The kubeconfig's context, server and user as the client would read them (a local file)."""
        path = self.kubeconfig_path()
        found: dict[str, str | None] = {
            "context": None,
            "namespace": self.namespace,
            "server": None,
            "user": None,
            "kubeconfig": path,
        }
        if not os.path.exists(path):
            in_cluster = bool(self.env.get("KUBERNETES_SERVICE_HOST"))
            return {**found, "kubeconfig": None, "context": "in-cluster" if in_cluster else None}
        try:
            self.api()  # reads the kubeconfig only: the client makes no request until asked
        except MfprojError as exc:
            return {**found, "problem": exc.message}
        from kubernetes import config

        contexts, active = config.list_kube_config_contexts(config_file=path)
        chosen = next((c for c in contexts if c.get("name") == self.settings.context), active) or {}
        return {**found, "context": chosen.get("name"), "server": self._server, "user": self._user}

    def check(self) -> dict[str, str | None]:
        with self.errors(f"listing WorkflowTemplates in {self.namespace}"):
            next(self.paged(TEMPLATES, "", page_size=1, max_pages=1), None)
        return {"as": self.principal() or self._user}


def restorable(previous: Mapping[str, Any]) -> dict[str, Any]:
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


def _retry_after(response: Any) -> float | None:
    """The server's Retry-After in seconds (a number; priority and fairness sends one), bounded."""
    value = (getattr(response, "headers", None) or {}).get("Retry-After")
    try:
        return min(max(float(value), 0.0), 60.0) if value is not None else None
    except ValueError:
        return None


def _counted_retry_class() -> Any:
    import urllib3

    class CountedRetry(urllib3.Retry):  # type: ignore[misc]
        """urllib3's retry, counting each retry it makes (for the live view). A 429 (priority and fairness:
        the server did not take the request) is retried for writes too, after its Retry-After, until the
        command's throttling budget is spent; other statuses keep their small fixed count."""

        def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
            if status_code == 429:
                return True
            return bool(super().is_retry(method, status_code, has_retry_after))

        def increment(self, *args: Any, **kwargs: Any) -> Any:
            method = kwargs.get("method", args[0] if args else None)
            response = kwargs.get("response", args[2] if len(args) > 2 else None)
            throttled = response is not None and getattr(response, "status", None) == 429
            if throttled:
                server_says = _retry_after(response)
                if pacing.current().retry_after(f"kubernetes.{method}", server_says=server_says) is None:
                    throttled = False  # the budget is spent: counted as any other failure from here
            following = super().increment(*args, **kwargs)  # raises when none is left
            if throttled:
                following.status = self.status  # a throttle does not use up the retries of failures
                following.total = self.total
            retries.note()
            return following

    return CountedRetry
