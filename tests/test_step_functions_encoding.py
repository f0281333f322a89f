"""The deployment record as Step Functions tags (within AWS limits) and cron as EventBridge schedules."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfproj.backends.base import DeploymentRecord
from mfproj.backends.step_functions.record import (
    MAX_TAG_VALUE,
    MAX_TAGS,
    TagLimitError,
    decode_record,
    encode_record,
    reference_record,
)
from mfproj.backends.step_functions.schedule import to_eventbridge
from mfproj.errors import ValidationError

# What AWS accepts in a tag (Step Functions): keys <= 128, values <= 256, letters, digits, spaces, _.:/=+-@
_AWS_TAG_CHARS = re.compile(r"^[\w .:/=+\-@]*$")


def _record(**changes: Any) -> DeploymentRecord:
    base = dict(
        owner="alice",
        production_token="mfprj-wirqh2gc3chugnvb-0-abcdefghijklmnopqrstuvwxyz",
        project="myproj",
        branch="prod",
        flow="HelloFlow",
        project_flow_name="myproj.prod.HelloFlow",
        deployed_at="2026-11-22T00:00:00+00:00",
        mfproj_version="0.1.0",
        principal="arn:aws:sts::123456789012:assumed-role/deployer/ci-session",
        tags=("team:ml",),
    )
    base.update(changes)
    return DeploymentRecord(**base)  # type: ignore[arg-type]


def _assert_aws_valid(tags: dict[str, str]) -> None:
    assert len(tags) <= MAX_TAGS
    for key, value in tags.items():
        assert len(key) <= 128 and _AWS_TAG_CHARS.match(key) and not key.lower().startswith("aws:")
        assert len(value) <= MAX_TAG_VALUE and _AWS_TAG_CHARS.match(value), (key, value)


tag_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(owner=st.text(min_size=1, max_size=300), tags=st.lists(tag_text, max_size=20, unique=True))
def test_records_round_trip_through_valid_aws_tags(owner: str, tags: list[str]) -> None:
    record = _record(owner=owner, tags=tuple(tags))
    encoded = encode_record(record)
    _assert_aws_valid(encoded)
    assert decode_record(encoded) == record


def test_the_largest_tag_set_metaflow_allows_does_not_fit_and_says_so() -> None:
    huge = tuple(f"{i:02d}" + "界" * 498 for i in range(50))  # 50 tags of 500 characters, as validate_tags allows
    with pytest.raises(TagLimitError, match="AWS allows 50 per state machine"):
        encode_record(_record(tags=huge))


def test_tags_near_the_limit_fit() -> None:
    tags = tuple(f"tag-{i}-" + "x" * 40 for i in range(50))  # 50 user tags, ~2.4 KB of text
    encoded = encode_record(_record(tags=tags))
    _assert_aws_valid(encoded)
    assert decode_record(encoded).tags == tags  # type: ignore[union-attr]


def test_tags_of_others_count_against_the_limit() -> None:
    encoded = encode_record(_record())
    with pytest.raises(TagLimitError, match="already used by others"):
        encode_record(_record(), foreign_tags=MAX_TAGS - len(encoded) + 1)


def test_values_that_look_encoded_are_encoded_too() -> None:
    for owner in ("b64:abc", "chunks:3"):
        assert decode_record(encode_record(_record(owner=owner))).owner == owner  # type: ignore[union-attr]


def test_round_trip_through_moto(sfn: Any) -> None:
    record = _record(owner="josé o'brien #1", tags=tuple(f"t{i}: {'ü' * 200}" for i in range(10)))
    tags = encode_record(record)
    arn = sfn.create_state_machine(
        name="x",
        definition='{"StartAt": "a", "States": {"a": {"Type": "Succeed"}}}',
        roleArn="arn:aws:iam::123456789012:role/r",
        tags=[{"key": k, "value": v} for k, v in tags.items()],
    )["stateMachineArn"]
    back = {t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=arn)["tags"]}
    assert decode_record(back) == record


def test_reference_definitions_are_recognised() -> None:
    definition = {
        "StartAt": "start",
        "States": {
            "start": {
                "Parameters": {"Parameters": {"metaflow.owner": "carol", "metaflow.production_token": "t-0-abcd"}}
            }
        },
    }
    record = reference_record(definition)
    assert record is not None and (record.owner, record.production_token, record.managed_by) == (
        "carol",
        "t-0-abcd",
        "metaflow",
    )
    assert reference_record({"StartAt": "a", "States": {"a": {"Type": "Succeed"}}}) is None
    none_owner = reference_record(
        {
            "StartAt": "start",
            "States": {
                "start": {"Parameters": {"Parameters": {"metaflow.owner": "None", "metaflow.production_token": "t"}}}
            },
        }
    )
    assert none_owner is not None and none_owner.owner is None
    # The reference reads the state named `start`, wherever the definition starts.
    elsewhere = {"StartAt": "s", "States": {"s": {"Parameters": {"Parameters": {"metaflow.owner": "x"}}}}}
    assert reference_record(elsewhere) is None


def _task(parameters: dict[str, str]) -> dict[str, object]:
    return {"StartAt": "start", "States": {"start": {"Type": "Task", "Parameters": {"Parameters": parameters}}}}


def test_mfproj_writes_its_owner_and_token_where_the_reference_reads_them() -> None:
    from mfproj.backends.step_functions.record import guard_for_reference

    guarded = guard_for_reference(_task({"keep": "me"}), owner="alice", token="t-0-abcd")
    assert guarded["States"]["start"]["Parameters"]["Parameters"] == {
        "keep": "me",
        "metaflow.owner": "alice",
        "metaflow.production_token": "t-0-abcd",
    }
    assert reference_record(guarded) is not None
    # No such place: the definition is left as it is (the tags carry the record).
    plain = {"StartAt": "start", "States": {"start": {"Type": "Pass", "End": True}}}
    assert guard_for_reference(json.loads(json.dumps(plain)), owner="a", token="t") == plain


def test_the_definition_wins_over_stale_tags() -> None:
    from mfproj.backends.base import DeploymentRecord
    from mfproj.backends.step_functions.record import merge_records

    tagged = DeploymentRecord(owner="alice", production_token="t-0-abcd", project="p", branch="prod", flow="F")
    same = _task({"metaflow.owner": "alice", "metaflow.production_token": "t-0-abcd"})
    assert merge_records(tagged, same) == tagged
    # Someone deployed with the reference since: its owner and token are in the definition only.
    redeployed = _task({"metaflow.owner": "bob", "metaflow.production_token": "t-1-wxyz"})
    merged = merge_records(tagged, redeployed)
    assert merged is not None
    assert (merged.owner, merged.production_token, merged.managed_by) == ("bob", "t-1-wxyz", "metaflow")
    assert merged.flow_key() == ("p", "prod", "F")
    # A definition without the reference's keys says nothing: the tags stand.
    assert merge_records(tagged, _task({})) == tagged
    assert merge_records(None, redeployed) is not None


@pytest.mark.parametrize(
    ("cron", "aws"),
    [
        ("0 * * * *", "cron(0 * * * ? *)"),
        ("0 3 * * *", "cron(0 3 * * ? *)"),
        ("*/15 8-18 * * MON-FRI", "cron(0/15 8-18 ? * MON,TUE,WED,THU,FRI *)"),
        ("0 0 1 * *", "cron(0 0 1 * ? *)"),
        ("30 6 * * 0", "cron(30 6 ? * SUN *)"),
        ("30 6 * * 7", "cron(30 6 ? * SUN *)"),
        ("30 6 * * 5-7", "cron(30 6 ? * SUN,FRI,SAT *)"),
        ("0 12 * JAN,JUL 1", "cron(0 12 ? JAN,JUL MON *)"),
        ("0 0 * * 0-6", "cron(0 0 * * ? *)"),
    ],
)
def test_cron_to_eventbridge(cron: str, aws: str) -> None:
    assert to_eventbridge(cron) == aws


def test_cron_with_both_days_cannot_be_expressed() -> None:
    with pytest.raises(ValidationError, match="both day of month and day of week"):
        to_eventbridge("0 0 1 * MON")


def test_a_value_with_a_newline_is_encoded_not_sent_as_is() -> None:
    tags = encode_record(_record(owner="alice\n"))
    assert tags["mfproj:owner"].startswith("b64:")
    assert decode_record(tags).owner == "alice\n"  # type: ignore[union-attr]
