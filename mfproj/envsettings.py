"""Settings read from the environment, each with its rule, checked when a command starts (before any
request), so a typo is an `error:` naming the variable and the rule (exit 2), not a failure later on."""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from mfproj.errors import ValidationError


@dataclass(frozen=True)
class Number:
    name: str
    default: float
    low: float
    high: float
    whole: bool = False
    unit: str = "seconds"

    def rule(self) -> str:
        kind = "a whole number" if self.whole else "a number of " + self.unit
        return f"{kind} from {self.low:g} to {self.high:g}"


NUMBERS = {
    number.name: number
    for number in (
        Number("MFPROJ_AWS_MAX_ATTEMPTS", 5, 1, 20, whole=True),
        Number("MFPROJ_AWS_CONNECT_TIMEOUT", 5, 0.1, 600),
        Number("MFPROJ_AWS_READ_TIMEOUT", 30, 0.1, 3600),
        Number("MFPROJ_K8S_CONNECT_TIMEOUT", 5, 0.1, 600),
        Number("MFPROJ_K8S_READ_TIMEOUT", 30, 0.1, 3600),
        Number("MFPROJ_LOCK_TIMEOUT", 120, 0, 86_400),
        Number("MFPROJ_THROTTLE_BUDGET", 600, 0, 86_400),
    )
}
ENDPOINTS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STEPFUNCTIONS", "AWS_ENDPOINT_URL_SFN", "AWS_ENDPOINT_URL_STS")


def number(env: Mapping[str, str], name: str) -> float:
    """The variable's value (its default when unset or blank); raises ValidationError when it breaks its rule."""
    spec = NUMBERS[name]
    text = env.get(name, "").strip()
    if not text:
        return spec.default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (spec.low <= value <= spec.high) or (spec.whole and not value.is_integer()):  # nan fails too
        raise ValidationError(
            f"{name}={text!r} is not {spec.rule()}",
            hint=f"for example {name}={spec.default:g}, or unset it for the default",
        )
    return value


def endpoint(env: Mapping[str, str], name: str) -> str | None:
    text = env.get(name, "").strip()
    if not text:
        return None
    parsed = urllib.parse.urlsplit(text)
    try:
        parsed.port  # noqa: B018  (raises ValueError for a port that is not one)
    except ValueError:
        parsed = urllib.parse.urlsplit("")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValidationError(
            f"{name}={text!r} is not an endpoint URL (http:// or https:// and a host)",
            hint=f"for example {name}=http://127.0.0.1:5000, or unset it for AWS's own endpoints",
        )
    return text


def check(env: Mapping[str, str]) -> None:
    """Every setting of the environment against its rule (the first that breaks one is raised)."""
    for name in NUMBERS:
        number(env, name)
    for name in ENDPOINTS:
        endpoint(env, name)
