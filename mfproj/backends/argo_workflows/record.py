"""The deployment record of a WorkflowTemplate, in the reference's annotations (`metaflow/owner`,
`metaflow/production_token`, …) so that Metaflow's own CLI recognises and guards mfproj's deployments
and mfproj guards Metaflow's; plus a few of mfproj's own (`mfproj.io/…`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mfproj.backends.base import DeploymentRecord
from mfproj.text import Unreadable, bounded_json

ANNOTATION_RUN_TAGS = "mfproj.io/run-tags"
ANNOTATION_VERSION = "mfproj.io/version"
ANNOTATION_PRINCIPAL = "mfproj.io/principal"
ANNOTATION_TIMESTAMP = "metaflow/deployment_timestamp"
MAX_ANNOTATION = 64 * 1024  # what mfproj writes in one annotation is far smaller
ANNOTATION_LINEAGE = "mfproj.io/lineage"  # {"commit", "dirty", "git_branch", "ci_run"}


def record_annotations(record: DeploymentRecord, *, flow: str, schedule: str | None) -> dict[str, str]:
    annotations = {
        "metaflow/owner": record.owner or "",
        "metaflow/production_token": record.production_token or "",
        "metaflow/user": "argo-workflows",
        "metaflow/flow_name": flow,
        "metaflow/project_name": record.project or "",
        "metaflow/branch_name": record.branch or "",
        "metaflow/project_flow_name": record.project_flow_name or "",
        ANNOTATION_TIMESTAMP: record.deployed_at or "",
        "metaflow/tags": json.dumps(list(record.tags)),
        ANNOTATION_VERSION: record.mfproj_version or "",
    }
    if record.principal:
        annotations[ANNOTATION_PRINCIPAL] = record.principal
    lineage = {
        "commit": record.commit,
        "dirty": record.dirty,
        "git_branch": record.git_branch,
        "ci_run": record.ci_run,
        "promoted_from": record.promoted_from,
        "deploy_id": record.deploy_id,
        "rolled_back_to": record.rolled_back_to,
    }
    if any(value is not None for value in lineage.values()):
        annotations[ANNOTATION_LINEAGE] = json.dumps(lineage, sort_keys=True)
    if schedule:
        annotations["metaflow/cron"] = json.dumps({"schedule": schedule, "tz": "UTC"})
    return annotations


def decode_annotations(annotations: Mapping[str, str], *, made_by_mfproj: bool) -> DeploymentRecord | None:
    """The record in a template's annotations; None when it carries no owner and no token (not ours,
    nor the reference's)."""
    if "metaflow/owner" not in annotations and "metaflow/production_token" not in annotations:
        return None
    problems: list[str] = []

    def parsed(key: str, default: str) -> Any:
        value = annotations.get(key) or default
        if len(value) > MAX_ANNOTATION:
            problems.append(f"{key} is longer than mfproj writes ({MAX_ANNOTATION} characters at most)")
            return json.loads(default)
        try:
            return bounded_json(value, where=key)
        except Unreadable as exc:
            problems.append(str(exc))
            return json.loads(default)

    found_tags = parsed("metaflow/tags", "[]")
    tags = tuple(str(t) for t in found_tags if isinstance(t, str)) if isinstance(found_tags, list) else ()
    lineage = parsed(ANNOTATION_LINEAGE, "{}")
    lineage = lineage if isinstance(lineage, dict) else {}
    return DeploymentRecord(
        unreadable="; ".join(problems) or None,
        commit=_text(lineage.get("commit")),
        dirty=lineage.get("dirty") if isinstance(lineage.get("dirty"), bool) else None,
        git_branch=_text(lineage.get("git_branch")),
        ci_run=_text(lineage.get("ci_run")),
        promoted_from=_text(lineage.get("promoted_from")),
        deploy_id=_text(lineage.get("deploy_id")),
        rolled_back_to=_text(lineage.get("rolled_back_to")),
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
        managed_by="mfproj" if made_by_mfproj else "metaflow",
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
