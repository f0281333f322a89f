"""Five-field cron expressions (minute hour day-of-month month day-of-week), UTC."""

from __future__ import annotations

import re

from mfproj.errors import ValidationError

_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
# (name, low, high, names mapped to numbers)
_FIELDS: list[tuple[str, int, int, dict[str, int]]] = [
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(_MONTHS)}),
    ("day of week", 0, 7, {d: i for i, d in enumerate(_DAYS)}),
]
_ITEM = re.compile(r"^(?P<range>\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(?P<step>\d+))?\Z")


def _value(text: str, field: str, low: int, high: int, names: dict[str, int]) -> int:
    number = names.get(text.upper()) if not text.isdigit() else int(text)
    if number is None:
        raise ValidationError(f"cron {field}: {text!r} is not a number or a known name")
    if not low <= number <= high:
        raise ValidationError(f"cron {field}: {number} is outside {low}-{high}")
    return number


def validate_cron(expression: str) -> str:
    """Checks a 5-field cron expression; returns it with white space normalized."""
    parts = expression.split()
    if len(parts) != 5:
        raise ValidationError(
            f"cron {expression!r} has {len(parts)} fields; expected 5 (minute hour day-of-month month day-of-week)"
        )
    for text, (field, low, high, names) in zip(parts, _FIELDS, strict=True):
        for item in text.split(","):
            match = _ITEM.match(item)
            if not match:
                raise ValidationError(f"cron {field}: {item!r} is not *, a value, a range or a step")
            if match.group("step") is not None and int(match.group("step")) == 0:
                raise ValidationError(f"cron {field}: a step must be at least 1")
            span = match.group("range")
            if span != "*":
                ends = [_value(v, field, low, high, names) for v in span.split("-")]
                if len(ends) == 2 and ends[0] > ends[1]:
                    raise ValidationError(f"cron {field}: range {span!r} runs backwards")
    return " ".join(parts)
