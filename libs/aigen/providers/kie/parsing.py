"""Lenient readers for the loosely typed fields Kie returns.

The same fact arrives in different shapes across families and doc versions: a JSON object or a
JSON *string* of one, a URL list or a string `"[url]"`, a number or a numeric string.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class Malformed(ValueError):
    """A field is present but cannot be read as what it should be."""


def as_mapping(value: Any, what: str) -> Mapping[str, Any]:
    """An object, or a JSON string holding one; empty / null → empty mapping."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise Malformed(f"{what} is not valid JSON") from None
    if not isinstance(value, Mapping):
        raise Malformed(f"{what} is not an object")
    return value


def url_list(value: Any, what: str) -> list[str]:
    """URLs from a list, a JSON-encoded list, a bare `[a, b]` string or a single URL string."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                decoded = json.loads(text)
            except ValueError:
                decoded = [part.strip().strip("'\"") for part in text.strip("[]").split(",")]
            return url_list(decoded, what)
        return [text]
    if isinstance(value, list):
        urls: list[str] = []
        for item in value:
            if isinstance(item, str) and item.strip():
                urls.append(item.strip())
            elif isinstance(item, Mapping) and isinstance(item.get("resultUrl"), str):
                urls.append(item["resultUrl"])  # Midjourney wraps each URL in an object
            elif item not in (None, ""):
                raise Malformed(f"{what} holds a non-URL entry")
        return urls
    raise Malformed(f"{what} is not a URL list")


def as_float(value: Any) -> float | None:
    """A number or numeric string ("0.48"), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def as_int(value: Any) -> int | None:
    number = as_float(value)
    return int(number) if number is not None and number.is_integer() else None


def text_of(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ("" if value is None else str(value))
