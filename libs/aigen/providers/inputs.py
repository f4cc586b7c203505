"""Input-image limits as a model states them, and the check every adapter runs before calling out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aigen.providers.images import InputImage, InputImageError, check_input_images
from aigen.providers.types import AdapterError


@dataclass(frozen=True)
class ImageLimits:
    min: int = 0
    max: int = 0
    max_bytes: int = 10 * 1024 * 1024
    mime_types: tuple[str, ...] = ("image/png", "image/jpeg", "image/webp")

    @classmethod
    def from_setting(cls, value: Any, default: ImageLimits) -> ImageLimits:
        """The definition's `input_images` block (passed as the `input_images` setting), else `default`."""
        if not isinstance(value, Mapping):
            return default
        return cls(
            min=int(value.get("min", default.min)),
            max=int(value.get("max", default.max)),
            max_bytes=int(value.get("max_bytes", default.max_bytes)),
            mime_types=tuple(value.get("mime_types", default.mime_types)),
        )


def checked_images(images: Sequence[str], limits: ImageLimits) -> list[InputImage] | AdapterError:
    try:
        return check_input_images(
            images,
            min_count=limits.min,
            max_count=limits.max,
            max_bytes=limits.max_bytes,
            mime_types=limits.mime_types,
        )
    except InputImageError as exc:
        return exc.to_adapter_error()
