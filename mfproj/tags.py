"""Tag rules, as Metaflow's validate_tags: non-empty, at most 500 characters, at most 50 tags."""

from __future__ import annotations

from collections.abc import Iterable

from mfproj.errors import ValidationError

MAX_TAG_LENGTH = 500
MAX_USER_TAGS = 50


class TagError(ValidationError):
    """A tag breaks a rule; `key` names it (`tags[3]`), `rule` says what is wrong."""

    def __init__(self, key: str, rule: str) -> None:
        super().__init__(f"{key}: {rule}")
        self.key = key
        self.rule = rule


# Tags the system sets on runs. A user tag like these could put a run into another namespace
# (`--tag production:<token>`: the reference allows it), so mfproj refuses them as user tags.
RESERVED_PREFIXES = ("production:", "project:", "project_branch:", "runtime:", "user:")


def validate_tags(tags: Iterable[object], *, where: str = "tag", user_tags: bool = False) -> tuple[str, ...]:
    """Returns the tags in order without duplicates, or raises naming the first bad one.

    `user_tags`: the tags are put on runs (not used to filter), so system prefixes are refused.
    """
    unique: dict[str, None] = {}
    for index, tag in enumerate(tags):
        key = f"{where}[{index}]"
        if not isinstance(tag, str):
            raise TagError(key, f"must be a string, not {type(tag).__name__}")
        if not tag:
            raise TagError(key, "must not be empty")
        if len(tag) > MAX_TAG_LENGTH:
            raise TagError(key, f"is {len(tag)} characters long; at most {MAX_TAG_LENGTH} are allowed")
        try:
            tag.encode("utf-8")
        except UnicodeEncodeError:
            raise TagError(key, "is not valid Unicode text (lone surrogate)") from None
        if user_tags and tag.startswith(RESERVED_PREFIXES):
            raise TagError(
                key, f"{tag.split(':', 1)[0]}: tags are set by the system (a user tag could change a run's namespace)"
            )
        unique[tag] = None
    if len(unique) > MAX_USER_TAGS:
        raise TagError(where, f"{len(unique)} distinct tags; at most {MAX_USER_TAGS} are allowed")
    return tuple(unique)
