"""Object keys: the one shape every backend accepts.

A key is a relative, `/`-separated path. Rejected: empty keys, a leading `/`, backslashes, empty,
`.` or `..` segments, segments starting with `.` (the local directory keeps its own bookkeeping in
dot-folders), control characters, and keys longer than S3 allows (1024 bytes).
"""

from __future__ import annotations

from aigen import errors

MAX_KEY_BYTES = 1024


class InvalidKey(errors.InvalidArgument):
    def __init__(self, key: str, why: str) -> None:
        super().__init__(
            f"object key {key!r} {why}", [errors.Violation("key", why)], reason="INVALID_OBJECT_KEY"
        )
        self.key = key


def validate_key(key: str) -> str:
    """The key itself when it is acceptable; raises InvalidKey naming the rule it breaks."""
    if not key:
        raise InvalidKey(key, "is empty")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidKey(key, f"is longer than {MAX_KEY_BYTES} bytes")
    if key.startswith("/"):
        raise InvalidKey(key, "starts with '/'")
    if "\\" in key:
        raise InvalidKey(key, "contains a backslash")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise InvalidKey(key, "contains a control character")
    for segment in key.split("/"):
        if segment == "":
            raise InvalidKey(key, "has an empty path segment")
        if segment in (".", ".."):
            raise InvalidKey(key, f"has a {segment!r} path segment")
        if segment.startswith("."):
            raise InvalidKey(key, "has a path segment starting with '.'")
    return key


def validate_prefix(prefix: str) -> str:
    """A key prefix ('' or a valid key ending in '/'), e.g. `ai-generation/`."""
    if prefix == "":
        return prefix
    if not prefix.endswith("/"):
        raise InvalidKey(prefix, "is a prefix that does not end with '/'")
    validate_key(prefix[:-1])
    return prefix
