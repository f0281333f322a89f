"""The Argo record codec: a deployment record through the reference's annotations and back."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mfproj.backends.argo_workflows.labels import K8S_LABEL_VALUE_MAX, label_value
from mfproj.backends.argo_workflows.record import decode_annotations, record_annotations
from mfproj.backends.base import DeploymentRecord

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80)


@settings(max_examples=200, deadline=None)
@given(
    owner=text,
    token=st.from_regex(r"mfprj-[a-z2-7]{16}-\d{1,3}-[a-z0-9]{26}", fullmatch=True),
    branch=st.from_regex(r"(user\.[^\s]{1,20}|test\.[a-z0-9_]{1,20}|prod(\.[a-z0-9_]{1,20})?)", fullmatch=True),
    flow=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True),
    tags=st.lists(text, max_size=10, unique=True),
    principal=st.none() | text,
    schedule=st.none() | st.just("0 3 * * *"),
)
def test_records_round_trip_through_annotations(
    owner: str, token: str, branch: str, flow: str, tags: list[str], principal: str | None, schedule: str | None
) -> None:
    record = DeploymentRecord(
        owner=owner,
        production_token=token,
        project="myproj",
        branch=branch,
        flow=flow,
        project_flow_name=f"myproj.{branch}.{flow}",
        deployed_at="2026-11-30T00:00:00+00:00",
        mfproj_version="0.1.0",
        principal=principal,
        tags=tuple(tags),
    )
    annotations = record_annotations(record, flow=flow, schedule=schedule)
    assert all(isinstance(v, str) for v in annotations.values())
    assert decode_annotations(annotations, made_by_mfproj=True) == record
    # The reference reads exactly these two.
    assert (annotations["metaflow/owner"], annotations["metaflow/production_token"]) == (owner, token)
    assert decode_annotations(annotations, made_by_mfproj=False).managed_by == "metaflow"  # type: ignore[union-attr]


def test_a_template_without_owner_or_token_carries_no_record() -> None:
    assert decode_annotations({"workflows.argoproj.io/title": "x"}, made_by_mfproj=False) is None


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=200))
def test_label_values_are_always_valid_and_keep_distinct_texts_distinct(value: str) -> None:
    import re

    made = label_value(value)
    assert len(made) <= K8S_LABEL_VALUE_MAX
    assert re.fullmatch(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", made)
    assert made == value or made != label_value(value + "x")
