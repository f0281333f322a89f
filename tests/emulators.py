"""Emulators and a fault-injecting proxy for the tests, all on 127.0.0.1 and free ports."""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import re
import socket
import socketserver
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_STRICT = threading.Lock()


class QuietServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """A threaded test server that keeps what a handler failed on in `errors`: socketserver would print it
    on sys.stderr, where an in-process command under test is writing (its first line then is no `error:`)."""

    daemon_threads = True
    request_queue_size = 128  # a burst of concurrent clients, as a real API takes (the default is 5)

    def __init__(self, address: tuple[str, int], handler: type[socketserver.BaseRequestHandler]) -> None:
        super().__init__(address, handler)
        self.errors: list[str] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        import traceback

        self.errors.append(traceback.format_exc(limit=8))


def make_moto_strict() -> None:
    """Makes moto's CreateStateMachine behave as AWS's: atomic, and an existing name with another
    definition or role is `StateMachineAlreadyExists` naming the ARN in quotes (the reference parses it),
    instead of silently answering with the existing machine."""
    from moto.core.exceptions import AWSError
    from moto.stepfunctions import models
    from moto.stepfunctions.exceptions import StateMachineDoesNotExist

    if getattr(models.StepFunctionBackend.create_state_machine, "strict", False):
        return
    original = models.StepFunctionBackend.create_state_machine

    class StateMachineAlreadyExists(AWSError):
        TYPE = "StateMachineAlreadyExists"
        STATUS = 400

    def create_state_machine(self: Any, name: str, definition: str, roleArn: str, *args: Any, **kwargs: Any) -> Any:
        with _STRICT:
            arn = f"arn:aws:states:{self.region_name}:{self.account_id}:stateMachine:{name}"
            try:
                existing = self.describe_state_machine(arn)
            except StateMachineDoesNotExist:
                return original(self, name, definition, roleArn, *args, **kwargs)
            if existing.definition != definition or existing.roleArn != roleArn:
                raise StateMachineAlreadyExists(f"State Machine Already Exists: '{arn}'")
            return existing

    create_state_machine.strict = True  # type: ignore[attr-defined]
    models.StepFunctionBackend.create_state_machine = create_state_machine
    _add_moto_versions()


def _add_moto_versions() -> None:
    """moto publishes versions (`publish=True`) but answers ListStateMachineVersions and
    DeleteStateMachineVersion with 500: both added, as AWS documents them (newest first, paged)."""
    from moto.core.responses import ActionResult, EmptyResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def list_state_machine_versions(self: Any) -> Any:
        machine = self.stepfunction_backend.describe_state_machine(self._get_param("stateMachineArn"))
        start = int(self._get_param("nextToken") or 0)
        size = self._get_int_param("maxResults") or 100
        numbers = sorted(machine.versions, reverse=True)
        page = [
            {"stateMachineVersionArn": machine.versions[n].arn, "creationDate": machine.versions[n].creation_date}
            for n in numbers[start : start + size]
        ]
        answer: dict[str, Any] = {"stateMachineVersions": page}
        if start + size < len(numbers):
            answer["nextToken"] = str(start + size)
        return ActionResult(answer)

    def delete_state_machine_version(self: Any) -> Any:
        source, _, number = str(self._get_param("stateMachineVersionArn")).rpartition(":")
        with contextlib.suppress(Exception):  # AWS: deleting a version that is gone succeeds
            self.stepfunction_backend.describe_state_machine(source).versions.pop(int(number), None)
        return EmptyResult()

    StepFunctionResponse.list_state_machine_versions = list_state_machine_versions  # type: ignore[attr-defined]
    StepFunctionResponse.delete_state_machine_version = delete_state_machine_version  # type: ignore[attr-defined]


class MotoServer:
    """moto's server (Step Functions, EventBridge, STS, S3, Batch …) in a thread, with its state-machine
    interpreter on, and CreateStateMachine as strict as AWS's."""

    def __init__(self) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        make_moto_strict()

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        self.configure()

    def _post(self, path: str, body: dict[str, Any] | None = None) -> None:
        data = json.dumps(body or {}).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    def configure(self) -> None:
        self._post("/moto-api/config", {"stepfunctions": {"execute_state_machine": True}})

    def reset(self) -> None:
        self._post("/moto-api/reset")
        self.configure()

    def stop(self) -> None:
        self._server.stop()


@dataclass
class Fault:
    """What to do to matching requests, `times` times.

    A request matches when `action` is the end of its X-Amz-Target (AWS JSON protocol), its query
    `Action` (STS), or a regular expression that matches "METHOD /path" (Kubernetes).
    kind: "status" answers `status` with `body`; "slow" waits `delay` seconds, then forwards;
    "drop" closes the connection without an answer; "hang" waits `delay` seconds, then drops
    (the request never reaches the emulator, as when a server stalls); "lost" forwards, then drops the
    answer (the emulator took the request; the client never hears so).
    """

    action: str
    status: int = 400
    body: dict[str, Any] = field(
        default_factory=lambda: {"__type": "LimitExceededException", "message": "injected by the test proxy"}
    )
    times: int = 1_000_000
    kind: str = "status"
    delay: float = 0.0
    after: str | None = None  # armed only once a fault for this action has fired (e.g. cut a rollback off)
    raw: bytes | None = None  # sent as the body instead of `body` (garbage: HTML, a cut-off document)

    def matches(self, action: str, request_line: str) -> bool:
        if action and action.endswith(self.action):
            return True
        return re.fullmatch(self.action, request_line) is not None


THROTTLED = {"__type": "ThrottlingException", "message": "Rate exceeded (injected)"}
# AWS Step Functions' control-plane quotas (service quotas, per account and region): (bucket, refill a second).
AWS_BUCKETS = {
    "CreateStateMachine": (100, 1.0),
    "UpdateStateMachine": (100, 1.0),
    "DeleteStateMachine": (100, 1.0),
    "PublishStateMachineVersion": (100, 1.0),
    "TagResource": (200, 1.0),
    "UntagResource": (200, 1.0),
    "ListTagsForResource": (100, 1.0),
    "DescribeStateMachine": (200, 20.0),
    "ListStateMachines": (100, 5.0),
    "ListExecutions": (100, 2.0),
    "DescribeExecution": (250, 10.0),
    "StartExecution": (800, 150.0),
    "StopExecution": (500, 25.0),
}


class TokenBuckets:
    """AWS's throttling as token buckets, one per operation: each starts at `fill` of its size (the rest
    spent by other teams of the account) and refills `speed` times faster than AWS (a faster clock)."""

    def __init__(self, buckets: dict[str, tuple[int, float]], *, fill: float, speed: float) -> None:
        self._sizes = dict(buckets)
        self._speed = speed
        self._tokens = {op: size * fill for op, (size, _) in buckets.items()}
        self._at = {op: time.monotonic() for op in buckets}
        self.throttled: dict[str, int] = {}

    def available(self, operation: str) -> float:
        """The tokens `operation`'s bucket holds now (refilled up to now)."""
        if operation not in self._sizes:
            return float("inf")
        size, refill = self._sizes[operation]
        return min(size, self._tokens[operation] + (time.monotonic() - self._at[operation]) * refill * self._speed)

    def take(self, operation: str) -> bool:
        """Whether a call of `operation` may go through now (False: throttled). Called under the proxy's lock."""
        if operation not in self._sizes:
            return True
        size, refill = self._sizes[operation]
        now = time.monotonic()
        self._tokens[operation] = min(
            size, self._tokens[operation] + (now - self._at[operation]) * refill * self._speed
        )
        self._at[operation] = now
        if self._tokens[operation] < 1:
            self.throttled[operation] = self.throttled.get(operation, 0) + 1
            return False
        self._tokens[operation] -= 1
        return True


SERVER_ERROR = {"__type": "InternalServerError", "message": "injected failure"}


class FaultProxy:
    """A forwarding HTTP proxy in front of an emulator that fails chosen requests.

    Requests are matched by their X-Amz-Target header (the AWS JSON protocol's action name).
    `log` records every action seen, so tests can assert what reached the emulator.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.removeprefix("http://")
        self.faults: list[Fault] = []
        self._fired: set[str] = set()
        self.log: list[str] = []
        self.bodies: list[tuple[str, bytes]] = []  # (action or "METHOD /path", body) of every request
        self._lock = threading.Lock()
        self.buckets: TokenBuckets | None = None  # AWS's throttling, when a test sets it
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                action = self.headers.get("X-Amz-Target", "") or _query_action(body)
                request_line = f"{self.command} {self.path.split('?')[0]}"
                with proxy._lock:
                    proxy.bodies.append((action or request_line, body))
                fault = proxy._take_fault(action, request_line)
                if fault is not None and fault.kind == "hang":
                    time.sleep(fault.delay)
                if fault is not None and fault.kind in ("drop", "hang"):
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault is not None and fault.kind == "slow":
                    time.sleep(fault.delay)
                    fault = None
                if fault is not None and fault.kind != "lost":
                    payload = fault.raw if fault.raw is not None else json.dumps(fault.body).encode()
                    self.send_response(fault.status)
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                connection = http.client.HTTPConnection(proxy.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
                if fault is not None and fault.kind == "lost":
                    connection.close()
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                connection.close()

            do_GET = do_POST = do_PUT = do_DELETE = _forward

        self._server = QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _take_fault(self, action: str, request_line: str) -> Fault | None:
        with self._lock:
            self.log.append(action or request_line)
            if self.buckets is not None and not self.buckets.take(action.rsplit(".", 1)[-1]):
                return Fault(action, status=400, body=THROTTLED)
            for fault in self.faults:
                armed = fault.after is None or fault.after in self._fired
                if armed and fault.times > 0 and fault.matches(action, request_line):
                    fault.times -= 1
                    self._fired.add(fault.action)
                    return fault
        return None

    @property
    def handler_errors(self) -> list[str]:
        return self._server.errors

    def count(self, action: str) -> int:
        with self._lock:
            return sum(1 for entry in self.log if entry.endswith(action) or re.fullmatch(action, entry))

    def throttle(
        self, buckets: dict[str, tuple[int, float]], *, fill: float = 0.1, speed: float = 10.0
    ) -> TokenBuckets:
        """From now on, calls beyond the buckets are throttled (HTTP 400 ThrottlingException)."""
        with self._lock:
            self.buckets = TokenBuckets(buckets, fill=fill, speed=speed)
            return self.buckets

    def fail(self, action: str, **kwargs: Any) -> Fault:
        fault = Fault(action, **kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self._fired.clear()
            self.log.clear()
            self.bodies.clear()
            self._server.errors.clear()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _query_action(body: bytes) -> str:
    """The Action of a query-protocol request (STS), for the log."""
    for part in body.decode("latin-1").split("&"):
        if part.startswith("Action="):
            return part[len("Action=") :]
    return ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Call = Callable[..., Any]
