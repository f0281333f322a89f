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


# --- a Bloom filter of a run's tags, small enough for a Step Functions execution name --------------
#
# Step Functions lists executions without their input, where mfproj keeps a run's tags. The name is
# listed, so it carries a 200-bit Bloom filter of the tags: a run whose filter lacks a wanted tag is
# skipped without reading it; the others are read and checked exactly.

BLOOM_BITS = 200  # 40 base32 characters
_BLOOM_HASHES = 3
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


def _positions(tag: str) -> list[int]:
    import hashlib

    digest = hashlib.sha256(tag.encode("utf-8")).digest()
    return [int.from_bytes(digest[4 * i : 4 * i + 4], "big") % BLOOM_BITS for i in range(_BLOOM_HASHES)]


def tag_bloom(tags: Iterable[str]) -> str:
    bits = 0
    for tag in tags:
        for position in _positions(tag):
            bits |= 1 << position
    return "".join(_BASE32[(bits >> (5 * i)) & 31] for i in range(BLOOM_BITS // 5))


def bloom_may_contain(bloom: str, tag: str) -> bool:
    """False: the tag is certainly absent. True: it may be present (read the run to be sure)."""
    if len(bloom) != BLOOM_BITS // 5 or any(c not in _BASE32 for c in bloom):
        return True  # not a filter of ours: nothing can be ruled out
    bits = 0
    for i, char in enumerate(bloom):
        bits |= _BASE32.index(char) << (5 * i)
    return all(bits >> position & 1 for position in _positions(tag))
