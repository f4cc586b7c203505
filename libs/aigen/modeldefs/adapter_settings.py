"""The settings an adapter receives for a model, all from its one definition.

`adapter_settings` as written, plus what the rest of the definition says the adapter must know:
the input image limits (`input_images`), where renamed or nested fields go (`field_map`, from
each field's `maps_to`) and which provider field carries the number of outputs
(`outputs_parameter`). Keys written in `adapter_settings` win.
"""

from __future__ import annotations

from typing import Any

from aigen.modeldefs.schema import ModelDef


def adapter_settings(model: ModelDef) -> dict[str, Any]:
    derived: dict[str, Any] = {
        "input_images": {
            "min": model.input_images.min,
            "max": model.input_images.max,
            "max_bytes": model.input_images.max_bytes,
            "mime_types": list(model.input_images.mime_types),
        }
    }
    field_map = {f.key: f.maps_to for f in model.fields if f.maps_to}
    if field_map:
        derived["field_map"] = field_map
    if model.outputs.parameter:
        derived["outputs_parameter"] = model.outputs.parameter
    return {**derived, **model.adapter_settings}
