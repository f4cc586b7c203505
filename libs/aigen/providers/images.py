"""Input images: checked before any provider call, decoded or fetched when a provider wants bytes."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from aigen.providers.types import AdapterError, ErrorCode

DATA_URL_RE = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[\w-]+=[^;,]*)*)(?P<b64>;base64)?,"
)

# Magic numbers → MIME type, for data we were handed without a trustworthy type.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
)


def sniff_image_type(data: bytes) -> str | None:
    for magic, offset, mime in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            if mime == "image/webp" and data[:4] != b"RIFF":
                continue
            return mime
    return None


class InputImageError(ValueError):
    """An input image refused before any provider call; names the image by its position."""

    def __init__(self, index: int, reason: str) -> None:
        self.index = index
        self.reason = reason
        super().__init__(f"input_images[{index}]: {reason}")

    def to_adapter_error(self) -> AdapterError:
        return AdapterError(ErrorCode.INVALID_INPUT_IMAGE, str(self), retryable=False)


@dataclass(frozen=True)
class InputImage:
    index: int
    url: str | None  # http(s) URL as given
    data: bytes | None  # decoded bytes of a data URL
    mime_type: str | None

    @property
    def is_data(self) -> bool:
        return self.data is not None

    def data_url(self) -> str:
        assert self.data is not None
        return f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode()}"


def parse_input_image(
    index: int,
    value: str,
    *,
    max_bytes: int = 10 * 1024 * 1024,
    mime_types: Sequence[str] = ("image/png", "image/jpeg", "image/webp"),
) -> InputImage:
    value = value.strip()
    if value.startswith("data:"):
        match = DATA_URL_RE.match(value)
        if not match or not match.group("b64"):
            raise InputImageError(index, "data URLs must be base64 encoded (data:<type>;base64,...)")
        payload = value[match.end() :]
        # Cheap bound before decoding: base64 inflates by 4/3.
        if len(payload) * 3 // 4 > max_bytes + 3:
            raise InputImageError(index, f"image is larger than {max_bytes} bytes")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise InputImageError(index, "data URL is not valid base64") from None
        if len(data) > max_bytes:
            raise InputImageError(index, f"image is {len(data)} bytes, more than {max_bytes}")
        sniffed = sniff_image_type(data)
        if sniffed is None:
            raise InputImageError(index, "data is not a PNG, JPEG, GIF or WebP image")
        if sniffed not in mime_types:
            raise InputImageError(index, f"{sniffed} is not accepted (accepted: {', '.join(mime_types)})")
        return InputImage(index, None, data, sniffed)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputImageError(index, "must be an http(s) URL or a data: URL")
    return InputImage(index, value, None, None)


def check_input_images(
    images: Sequence[str],
    *,
    min_count: int = 0,
    max_count: int = 0,
    max_bytes: int = 10 * 1024 * 1024,
    mime_types: Sequence[str] = ("image/png", "image/jpeg", "image/webp"),
) -> list[InputImage]:
    if len(images) < min_count:
        raise InputImageError(len(images), f"this model needs at least {min_count} input image(s)")
    if len(images) > max_count:
        raise InputImageError(max_count, f"this model takes at most {max_count} input image(s)")
    return [parse_input_image(i, v, max_bytes=max_bytes, mime_types=mime_types) for i, v in enumerate(images)]


async def fetch_image_bytes(
    http: httpx.AsyncClient, image: InputImage, *, max_bytes: int = 10 * 1024 * 1024
) -> tuple[bytes, str]:
    """Bytes and MIME type of an input image, downloading URLs with a size cap."""
    if image.data is not None:
        return image.data, image.mime_type or "application/octet-stream"
    assert image.url is not None
    try:
        async with http.stream("GET", image.url) as response:
            if response.status_code != 200:
                raise InputImageError(image.index, f"download answered HTTP {response.status_code}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise InputImageError(image.index, f"image is larger than {max_bytes} bytes")
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise InputImageError(image.index, f"download failed ({type(exc).__name__})") from None
    data = b"".join(chunks)
    mime = sniff_image_type(data)
    if mime is None:
        raise InputImageError(image.index, "downloaded data is not a PNG, JPEG, GIF or WebP image")
    return data, mime
