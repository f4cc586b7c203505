"""What a Kie model's `adapter_settings` may say, and how request data lands in Kie's payload.

Models of one family differ only in data, so these keys carry the difference:

- `model`: Kie's model string (market jobs; Flux/Veo take theirs from a field instead).
- `images_to`: where input image URLs go. `"image_urls[]"` puts all of them in one array field;
  `"image_url"` puts one URL in a string field; a list (`[image_url, tail_image_url]`) fills
  those string fields in order (first frame, end frame).
- `images_max`: how many URLs an array field takes at Kie.
- `outputs_parameter`: the field that carries `number_of_outputs` (4o `nVariants`).
- `send_prompt`: false for models that take no prompt (upscale, watermark removal).
- `unsupported`: a reason; the model is known but cannot be called.

Two keys come from the rest of the definition, as for every adapter: `input_images` (the limits
checked before any call; without it, what `images_to` can carry) and `field_map`
(`{parameter: "dotted.path"}` from the fields' `maps_to`). Settings travel as a protobuf Struct,
so whole numbers may arrive as floats.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from aigen.providers.images import InputImage, check_input_images

KNOWN_KEYS = frozenset(
    {
        "model",
        "images_to",
        "images_max",
        "outputs_parameter",
        "send_prompt",
        "unsupported",
        "input_images",
        "field_map",
    }
)

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MIME_TYPES = ("image/png", "image/jpeg", "image/webp")

Lookup = Callable[[str, Any], Any]


class SettingsError(ValueError):
    """The model definition's adapter settings do not make sense for this family."""


def _whole(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
        raise SettingsError(f"{what} must be a whole number")
    return int(value)


@dataclass(frozen=True)
class ImageRouting:
    slots: tuple[str, ...] = ()  # string fields, filled in order
    list_field: str | None = None  # one array field taking every image
    capacity: int = 0  # how many URLs the destination takes
    min: int = 0
    max: int = 0
    max_bytes: int = DEFAULT_MAX_BYTES
    mime_types: tuple[str, ...] = DEFAULT_MIME_TYPES

    @classmethod
    def from_settings(cls, get: Lookup) -> ImageRouting:
        target = get("images_to", None)
        slots: tuple[str, ...] = ()
        list_field: str | None = None
        if isinstance(target, str) and target.endswith("[]") and len(target) > 2:
            list_field = target[:-2]
        elif isinstance(target, str) and target:
            slots = (target,)
        elif isinstance(target, Sequence) and not isinstance(target, str) and target:
            if not all(isinstance(t, str) and t and not t.endswith("[]") for t in target):
                raise SettingsError("images_to: a list must name plain string fields")
            slots = tuple(target)
        elif target is not None:
            raise SettingsError(f"images_to: cannot read {target!r}")
        if list_field:
            declared = get("images_max", None)
            if declared is None:
                raise SettingsError("images_to names an array field: images_max is required")
            capacity = _whole(declared, "images_max")
        else:
            capacity = len(slots)

        limits = get("input_images", None) or {}
        if not isinstance(limits, Mapping):
            raise SettingsError("input_images must be a mapping")
        minimum = _whole(limits.get("min", 0), "input_images.min")
        maximum = _whole(limits.get("max", capacity), "input_images.max")
        if not 0 <= minimum <= maximum:
            raise SettingsError("input_images: min must not exceed max")
        if maximum > capacity:
            raise SettingsError(f"input_images.max {maximum} exceeds what images_to can carry ({capacity})")
        max_bytes = _whole(limits.get("max_bytes", DEFAULT_MAX_BYTES), "input_images.max_bytes")
        mime_types = tuple(limits.get("mime_types") or DEFAULT_MIME_TYPES)
        return cls(slots, list_field, capacity, minimum, maximum, max_bytes, mime_types)

    def check(self, images: Sequence[str]) -> list[InputImage]:
        """Raises `InputImageError` for an image refused before any call."""
        return check_input_images(
            images,
            min_count=self.min,
            max_count=self.max,
            max_bytes=self.max_bytes,
            mime_types=self.mime_types,
        )

    def place(self, payload: MutableMapping[str, Any], urls: Sequence[str]) -> None:
        if not urls:
            return
        if self.list_field:
            payload[self.list_field] = list(urls)
            return
        for name, url in zip(self.slots, urls, strict=False):
            payload[name] = url


def read_field_map(get: Lookup) -> Mapping[str, str]:
    value = get("field_map", None) or {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
    ):
        raise SettingsError("field_map must map parameter names to dotted paths")
    return value


def check_settings(settings: Mapping[str, Any], *, requires_model: bool) -> list[str]:
    """Problems with one model's adapter settings (empty when they are usable)."""
    problems = [f"unknown setting {key!r}" for key in settings if key not in KNOWN_KEYS]

    def get(name: str, default: Any) -> Any:
        return settings.get(name, default)

    try:
        ImageRouting.from_settings(get)
        read_field_map(get)
    except SettingsError as exc:
        problems.append(str(exc))
    model = settings.get("model")
    if requires_model and not settings.get("unsupported") and not (isinstance(model, str) and model):
        problems.append("model: Kie's model string is required for this family")
    output_parameter = settings.get("outputs_parameter")
    if output_parameter is not None and not (isinstance(output_parameter, str) and output_parameter):
        problems.append("outputs_parameter must name a field")
    return problems
