"""The names a pricing expression or a cross-field rule may use, and their values for a request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aigen.modeldefs.schema import ModelDef

# Beside the field keys: number of outputs, prompt length in characters, number of input images.
REQUEST_NAMES = ("n", "prompt_chars", "images")


def allowed_names(model: ModelDef) -> set[str]:
    return {f.key for f in model.fields} | set(REQUEST_NAMES)


def bind(
    model: ModelDef, parameters: Mapping[str, Any], *, n: int, prompt_chars: int, images: int
) -> dict[str, Any]:
    """Every field key is bound, to None when the request left an optional field out, so a rule
    can test `seed == None` instead of failing on an unknown name."""
    names: dict[str, Any] = {f.key: parameters.get(f.key) for f in model.fields}
    names.update(n=n, prompt_chars=prompt_chars, images=images)
    return names
