"""Parameter mapping: validated parameters (keyed by the provider's field names) → request body.

A field definition may say `maps_to` when its value belongs somewhere else in the provider's
request (`voice_settings.stability`). The catalog hands those destinations to the adapter as the
`field_map` setting; a parameter key that is already a dotted path is nested the same way, so
the mapping holds whichever side applies it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def wire_value(value: Any) -> Any:
    """Whole floats become ints: parameters may have crossed a protobuf Struct, which keeps every
    number as a double, and providers refuse `2.0` where their schema says integer."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [wire_value(v) for v in value]
    if isinstance(value, dict):
        return {k: wire_value(v) for k, v in value.items()}
    return value


def set_path(body: dict[str, Any], path: str, value: Any) -> None:
    """Put `value` at a dotted path, creating the objects on the way."""
    *parents, leaf = path.split(".")
    node = body
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[leaf] = value


def map_parameters(
    parameters: Mapping[str, Any],
    field_map: Mapping[str, str] | None = None,
    *,
    skip: Iterable[str] = (),
) -> dict[str, Any]:
    """Build a request object from parameters; `None` values and `skip` keys are left out."""
    skipped = set(skip)
    destinations = dict(field_map or {})
    body: dict[str, Any] = {}
    for key, value in parameters.items():
        if key in skipped or value is None:
            continue
        set_path(body, destinations.get(key, key), wire_value(value))
    return body
