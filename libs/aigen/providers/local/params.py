"""Declared parameters of the local models and their checking (pure: no I/O).

The local service checks what it is sent like any provider does. Every refusal names the field
(`parameters.duration`) so the error reaches a person unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class ParameterError(ValueError):
    """A request field with a value the service refuses."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class Choice:
    key: str
    choices: tuple[str, ...]
    default: str


@dataclass(frozen=True)
class Number:
    key: str
    minimum: float
    maximum: float
    default: float | None  # None: optional, no value unless sent
    integer: bool = False
    even: bool = False  # H.264 with 4:2:0 chroma needs even frame sizes


@dataclass(frozen=True)
class Flag:
    key: str
    default: bool


ParamSpec = Choice | Number | Flag


def _number(spec: Number, raw: Any, field: str) -> int | float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ParameterError(field, f"must be a number (got {raw!r})")
    value: int | float = raw
    if not math.isfinite(value):
        raise ParameterError(field, "must be a finite number")
    if spec.integer:
        if value != int(value):
            raise ParameterError(field, f"must be a whole number (got {value!r})")
        value = int(value)
    if not spec.minimum <= value <= spec.maximum:
        raise ParameterError(field, f"must be between {spec.minimum:g} and {spec.maximum:g} (got {value!r})")
    if spec.even and int(value) % 2:
        raise ParameterError(field, f"must be even (got {value!r})")
    return value


def _one(spec: ParamSpec, value: Any, field: str) -> Any:
    if isinstance(spec, Choice):
        if value not in spec.choices:
            raise ParameterError(field, f"must be one of {', '.join(spec.choices)} (got {value!r})")
        return value
    if isinstance(spec, Flag):
        if not isinstance(value, bool):
            raise ParameterError(field, f"must be true or false (got {value!r})")
        return value
    return _number(spec, value, field)


def parse_parameters(specs: Sequence[ParamSpec], raw: Mapping[str, Any]) -> dict[str, Any]:
    """Checked values with defaults applied; optional numbers left out are absent (None)."""
    known = {spec.key for spec in specs}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ParameterError(
            f"parameters.{unknown[0]}", f"unknown parameter (this model takes: {', '.join(sorted(known))})"
        )
    values: dict[str, Any] = {}
    for spec in specs:
        value = raw.get(spec.key)
        # A form may send null for a field left empty: that means "use the default".
        values[spec.key] = spec.default if value is None else _one(spec, value, f"parameters.{spec.key}")
    return values
