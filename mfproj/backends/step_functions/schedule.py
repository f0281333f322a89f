"""Five-field cron (UTC) in EventBridge's form, for the rule that starts a scheduled flow."""

from __future__ import annotations

from mfproj import cron
from mfproj.errors import ValidationError

_DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


def _expand_days(field: str) -> list[int]:
    days: set[int] = set()
    names = {name: index for index, name in enumerate(_DAY_NAMES)}
    for item in field.split(","):
        span, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            low, high = 0, 6
        else:
            ends = [names[v.upper()] if not v.isdigit() else int(v) for v in span.split("-")]
            low, high = ends[0], ends[-1]
            if step_text and len(ends) == 1:
                high = 6
        days.update(d % 7 for d in range(low, high + 1, step))
    return sorted(days)


def to_eventbridge(expression: str) -> str:
    """A 5-field cron (UTC) as an EventBridge schedule: `cron(min hour dom month dow year)`."""
    minute, hour, dom, month, dow = cron.validate_cron(expression).split()

    def every(field: str, start: str) -> str:
        return start + field[1:] if field.startswith("*/") else field

    minute, hour = every(minute, "0"), every(hour, "0")
    dom, month = every(dom, "1"), every(month, "1")
    if dow == "*":
        dow = "?"
    elif dom == "*":
        dom = "?"
        days = _expand_days(dow)
        dow = "*" if len(days) == 7 else ",".join(_DAY_NAMES[d] for d in days)
        if dow == "*":
            dom, dow = "*", "?"
    else:
        raise ValidationError(
            f"schedule {expression!r} restricts both day of month and day of week, "
            "which EventBridge cannot express (it needs one of them to be ?)",
            hint="use '*' for one of the two fields",
        )
    return f"cron({minute} {hour} {dom} {month} {dow} *)"
