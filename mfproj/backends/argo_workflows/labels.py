"""Kubernetes labels for Argo objects: label-safe values, and one label per run tag so that runs can be
selected by tag on the server. Stdlib only."""

from __future__ import annotations

import base64
import hashlib
import re

K8S_LABEL_VALUE_MAX = 63
MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PROJECT, LABEL_BRANCH, LABEL_FLOW = "mfproj.io/project", "mfproj.io/branch", "mfproj.io/flow"
LABEL_TEMPLATE = "mfproj.io/template"

_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")
TAG_LABEL_PREFIX = "tags.mfproj.io/"


def label_value(text: str) -> str:
    """`text` as a valid label value (at most 63, [A-Za-z0-9._-], alphanumeric at both ends).

    Kept as is when already valid; otherwise made valid and suffixed with a hash of the original,
    so distinct texts stay distinct. The exact text always travels in an annotation beside it.
    """
    if len(text) <= K8S_LABEL_VALUE_MAX and _LABEL_VALUE_RE.match(text):
        return text
    sha1 = hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).digest()
    digest = base64.b32encode(sha1).decode("ascii").lower()[:10]
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:52].strip("._-")
    return f"{cleaned}-{digest}" if cleaned else f"h-{digest}"


def tag_label_key(tag: str) -> str:
    """A label key per run tag, for server-side selection: `tags.mfproj.io/<hash of the tag>`."""
    digest = base64.b32encode(hashlib.sha256(tag.encode("utf-8")).digest()).decode("ascii").lower()
    return TAG_LABEL_PREFIX + "t" + digest[:40]


def tag_labels(tags: list[str] | tuple[str, ...]) -> dict[str, str]:
    """One label per tag (key from the tag's hash), so runs can be selected by tag on the server.

    The value is the tag in label form, for people reading `kubectl get --show-labels`, except for
    the production tag: labels are shown widely, so they never carry the token.
    """
    return {
        tag_label_key(tag): "production" if tag.startswith("production:") else (label_value(tag) or "t") for tag in tags
    }
