"""The manifest's [step_functions] table. Stdlib only: `names` reads it without boto3."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_ROLE_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}\Z")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+\Z")

Fail = Callable[[str, str], Exception]  # (key, message) -> the manifest error to raise


@dataclass(frozen=True)
class StepFunctionsSettings:
    region: str | None = None
    role_arn: str | None = None
    state_machine_prefix: str | None = None

    KEYS = ("region", "role_arn", "state_machine_prefix")

    @classmethod
    def parse(cls, table: Mapping[str, Any], *, base: Path, fail: Fail) -> StepFunctionsSettings:
        region, role_arn = table.get("region"), table.get("role_arn")
        if region is not None and not _REGION.match(region):
            raise fail("region", f"{region!r} is not an AWS region name such as 'us-east-1'")
        if role_arn is not None and not _ROLE_ARN.match(role_arn):
            raise fail("role_arn", f"{role_arn!r} is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)")
        return cls(region=region, role_arn=role_arn, state_machine_prefix=table.get("state_machine_prefix") or None)

    def problems(self) -> list[tuple[str, str, str]]:
        """(key, rule, hint) for what deploying needs and the table lacks; found without a request."""
        if self.role_arn:
            return []
        return [
            (
                "role_arn",
                "is required to deploy to Step Functions (the IAM role its executions run as)",
                'set [step_functions] role_arn = "arn:aws:iam::<account>:role/<name>" in the manifest',
            )
        ]

    @staticmethod
    def schedule_problem(expression: str) -> str | None:
        """Why EventBridge cannot run this (valid) cron expression, or None: its cron needs one of day of
        month and day of week to be `?`, so both cannot be restricted at once."""
        _, _, day_of_month, _, day_of_week = expression.split()
        if day_of_month != "*" and day_of_week != "*":
            return (
                "restricts both day of month and day of week, which EventBridge (Step Functions schedules) "
                "cannot express: it needs one of them to be '*'"
            )
        return None

    def name_prefix(self, env: Mapping[str, str] | None = None) -> str | None:
        """The state machine prefix: METAFLOW_SFN_STATE_MACHINE_PREFIX overrides the manifest, as in Metaflow."""
        env = os.environ if env is None else env
        return env.get("METAFLOW_SFN_STATE_MACHINE_PREFIX") or self.state_machine_prefix or None
