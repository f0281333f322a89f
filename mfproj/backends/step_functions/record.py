"""The deployment record of a state machine: mfproj's, in its tags (within AWS limits), and the
reference's, in its definition (`States.start.Parameters.Parameters`), which wins when they disagree."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from mfproj.backends.base import DeploymentRecord
from mfproj.errors import ValidationError
from mfproj.text import Unreadable as UnreadableRecord
from mfproj.text import bounded_json

# --- tags: the deployment record, within AWS limits ---------------------------------------------

TAG_PREFIX = "mfproj:"
MAX_TAGS = 50
MAX_TAG_VALUE = 256
_SAFE_TAG_VALUE = re.compile(r"^[\w .:/=+\-@]*\Z")
_RECORD_FIELDS = (
    "owner",
    "production_token",
    "project",
    "branch",
    "flow",
    "project_flow_name",
    "deployed_at",
    "mfproj_version",
    "principal",
    "commit",
    "git_branch",
    "ci_run",
    "promoted_from",
    "definition_digest",
    "deploy_id",
    "rolled_back_to",
)
# Limits for reading back what anyone with tag access may have written: AWS's own per resource.
MAX_CHUNKS = MAX_TAGS


class TagLimitError(ValidationError):
    """The deployment record does not fit in the tags AWS allows on one resource."""


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8")


def _put(tags: dict[str, str], field: str, text: str) -> None:
    """One value under `mfproj:<field>`: as is when AWS allows it, else base64url, split when long."""
    key = TAG_PREFIX + field
    if len(text) <= MAX_TAG_VALUE and _SAFE_TAG_VALUE.match(text) and not text.startswith(("b64:", "chunks:")):
        tags[key] = text
        return
    encoded = "b64:" + _b64(text)
    if len(encoded) <= MAX_TAG_VALUE:
        tags[key] = encoded
        return
    chunks = [encoded[i : i + MAX_TAG_VALUE] for i in range(0, len(encoded), MAX_TAG_VALUE)]
    tags[key] = f"chunks:{len(chunks)}"
    for index, chunk in enumerate(chunks):
        tags[f"{key}:{index}"] = chunk


def _get(tags: Mapping[str, str], field: str) -> str | None:
    """One field, decoded within limits: raises UnreadableRecord for a value mfproj never writes."""
    key = TAG_PREFIX + field
    value = tags.get(key)
    if value is None:
        return None
    if len(value) > MAX_TAG_VALUE:
        raise UnreadableRecord(f"{key} is longer than a tag value can be")
    if value.startswith("chunks:"):
        count = value[len("chunks:") :]
        if not (count.isdigit() and len(count) <= 2 and 1 <= int(count) <= MAX_CHUNKS):
            raise UnreadableRecord(f"{key} claims {count[:12]!r} chunks (at most {MAX_CHUNKS})")
        pieces = [tags.get(f"{key}:{i}") for i in range(int(count))]
        if any(piece is None or len(piece) > MAX_TAG_VALUE for piece in pieces):
            raise UnreadableRecord(f"{key} is missing chunks or has one too long")
        value = "".join(piece or "" for piece in pieces)
    if value.startswith("b64:"):
        try:
            return _unb64(value[len("b64:") :])
        except ValueError:
            raise UnreadableRecord(f"{key} is not base64 text") from None
    return value


def definition_digest(definition: Any) -> str:
    """What the record says it describes: a digest of the definition, however AWS spaces its text."""

    text = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def encode_record(record: DeploymentRecord, *, foreign_tags: int = 0) -> dict[str, str]:
    """The record as tags; raises TagLimitError (before any call) when it cannot fit."""
    tags: dict[str, str] = {TAG_PREFIX + "managed-by": "mfproj"}
    for field in _RECORD_FIELDS:
        value = getattr(record, field)
        if value is not None:
            _put(tags, field, str(value))
    if record.dirty is not None:
        tags[TAG_PREFIX + "dirty"] = "true" if record.dirty else "false"
    if record.tags:
        _put(tags, "tags", json.dumps(list(record.tags), ensure_ascii=False, separators=(",", ":")))
    if len(tags) + foreign_tags > MAX_TAGS:
        raise TagLimitError(
            f"the deployment record needs {len(tags)} tags (AWS allows {MAX_TAGS} per state machine"
            + (f", {foreign_tags} of them already used by others" if foreign_tags else "")
            + ")",
            hint="use fewer or shorter deployment tags (--tag and the manifest's tags)",
        )
    return tags


def decode_record(tags: Mapping[str, str]) -> DeploymentRecord | None:
    """The record in a state machine's tags; a field past the limits is left out and named in
    `unreadable` (the rest is read), never a crash or an unbounded read."""
    if TAG_PREFIX + "managed-by" not in tags:
        return None
    problems: list[str] = []

    def get(field: str) -> str | None:
        try:
            return _get(tags, field)
        except UnreadableRecord as exc:
            problems.append(str(exc))
            return None

    values = {field: get(field) for field in _RECORD_FIELDS}
    tag_list: tuple[str, ...] = ()
    raw_tags = get("tags")
    if raw_tags:
        try:
            parsed = bounded_json(raw_tags, where=TAG_PREFIX + "tags")
        except UnreadableRecord as exc:
            problems.append(str(exc))
            parsed = []
        tag_list = tuple(str(t) for t in parsed if isinstance(t, str)) if isinstance(parsed, list) else ()
    return DeploymentRecord(
        definition_digest=values["definition_digest"],
        unreadable="; ".join(problems) or None,
        owner=values["owner"],
        production_token=values["production_token"],
        project=values["project"],
        branch=values["branch"],
        flow=values["flow"],
        project_flow_name=values["project_flow_name"],
        deployed_at=values["deployed_at"],
        mfproj_version=values["mfproj_version"],
        principal=values["principal"],
        tags=tag_list,
        commit=values["commit"],
        dirty={"true": True, "false": False}.get(tags.get(TAG_PREFIX + "dirty", "")),
        git_branch=values["git_branch"],
        ci_run=values["ci_run"],
        promoted_from=values["promoted_from"],
        deploy_id=values["deploy_id"],
        rolled_back_to=values["rolled_back_to"],
    )


def definition_of(definition: Any) -> Any:
    """A described state machine's definition decoded: AWS returns text (moto sometimes an object);
    someone else's text that is not JSON is kept as text."""
    if isinstance(definition, str):
        with contextlib.suppress(ValueError, RecursionError):
            definition = json.loads(definition)
    return definition


def _start_parameters(definition: Any) -> dict[str, Any] | None:
    """`States.start.Parameters.Parameters`: where the reference keeps a deployment's owner and token."""
    if not isinstance(definition, dict):
        return None
    states = definition.get("States")
    start = states.get("start") if isinstance(states, dict) else None
    parameters = start.get("Parameters") if isinstance(start, dict) else None
    inner = parameters.get("Parameters") if isinstance(parameters, dict) else None
    return inner if isinstance(inner, dict) else None


def guard_for_reference(definition: Any, *, owner: str, token: str) -> Any:
    """Writes the owner and token where the reference reads them, when the definition has that place
    (a `start` state with a `Parameters.Parameters` map): then Metaflow guards mfproj's deployment."""
    inner = _start_parameters(definition)
    if inner is not None:
        inner["metaflow.owner"] = owner
        inner["metaflow.production_token"] = token
    return definition


def reference_flow(definition: Any) -> str | None:
    """The flow a reference-made definition runs: `metaflow.flow_name` of its start step's parameters, or
    the `METAFLOW_FLOW_NAME` of its container environment; None when it says neither (or not as a name)."""
    inner = _start_parameters(definition) or {}
    flow = inner.get("metaflow.flow_name")
    if flow is None and isinstance(definition, dict):
        state = (definition.get("States") or {}).get("start")
        overrides = (
            ((state or {}).get("Parameters") or {}).get("ContainerOverrides") if isinstance(state, dict) else None
        )
        environment = overrides.get("Environment") if isinstance(overrides, dict) else None
        if isinstance(environment, list):
            flow = next(
                (e.get("Value") for e in environment if isinstance(e, dict) and e.get("Name") == "METAFLOW_FLOW_NAME"),
                None,
            )
    text = str(flow) if flow is not None else ""
    return text if text.isidentifier() and len(text) <= 255 else None  # someone else's text: a name, or nothing


def reference_record(definition: Any) -> DeploymentRecord | None:
    """Owner and token as the reference reads them: from `States.start.Parameters.Parameters`, or (for
    its older definitions) from the start task's container environment."""
    inner = _start_parameters(definition) or {}
    owner, token = inner.get("metaflow.owner"), inner.get("metaflow.production_token")
    if owner is None and token is None and isinstance(definition, dict):
        state = (definition.get("States") or {}).get("start")
        parameters = state.get("Parameters") if isinstance(state, dict) else None
        overrides = parameters.get("ContainerOverrides") if isinstance(parameters, dict) else None
        environment = overrides.get("Environment") if isinstance(overrides, dict) else None
        if isinstance(environment, list):
            env = {e.get("Name"): e.get("Value") for e in environment if isinstance(e, dict)}
            owner, token = env.get("METAFLOW_OWNER"), env.get("METAFLOW_PRODUCTION_TOKEN")
    if owner is None and token is None:
        return None
    return DeploymentRecord(
        owner=str(owner) if owner not in (None, "None") else None,
        production_token=str(token) if token not in (None, "None") else None,
        managed_by="metaflow",
    )


def merge_records(tagged: DeploymentRecord | None, definition: Any) -> DeploymentRecord | None:
    """mfproj's tags, unless the definition says otherwise: the reference writes only the definition, so
    when its owner or token differ from the tags, someone deployed with Metaflow since, and it wins."""
    found = reference_record(definition)
    if tagged is None:
        return found
    if tagged.definition_digest and tagged.definition_digest != definition_digest(definition):
        tagged = replace(tagged, stale=True)  # written for another definition: a deploy cut between writes
    inner = _start_parameters(definition)
    if found is None or inner is None or not ({"metaflow.owner", "metaflow.production_token"} & inner.keys()):
        return tagged
    if (found.owner, found.production_token) == (tagged.owner, tagged.production_token):
        return tagged
    return replace(tagged, owner=found.owner, production_token=found.production_token, managed_by="metaflow")
