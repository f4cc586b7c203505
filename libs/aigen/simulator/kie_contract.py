"""Kie.ai request contracts as the fake enforces them: per market model and per dedicated API.

Written from the provider notes (field names, types, enums, ranges, required fields), not from
the model definitions, so an adapter test that passes against the fake checks the definition too.
Enum values are type-exact: Kie's market wants "5", not 5.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["text", "url", "urls", "flag", "number", "choice"]


@dataclass(frozen=True)
class Rule:
    kind: Kind
    required: bool = False
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    integer: bool = False
    max_len: int | None = None  # characters of text, entries of a URL list


def text(*, required: bool = False, max_len: int | None = None) -> Rule:
    return Rule("text", required, max_len=max_len)


def url(*, required: bool = False) -> Rule:
    return Rule("url", required)


def urls(max_len: int, *, required: bool = False) -> Rule:
    return Rule("urls", required, max_len=max_len)


def flag() -> Rule:
    return Rule("flag")


def number(low: float, high: float, *, integer: bool = False, required: bool = False) -> Rule:
    return Rule("number", required, low=low, high=high, integer=integer)


def choice(*values: Any, required: bool = False) -> Rule:
    return Rule("choice", required, choices=values)


Rules = Mapping[str, Rule]


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _is_http(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def violation(where: str, rules: Rules, values: Mapping[str, Any]) -> str | None:
    """The first broken rule, as Kie-style message text; None when the values are acceptable."""
    for name, rule in rules.items():
        label = f"{where}{name}"
        if name not in values or values[name] is None:
            if rule.required:
                return f"{label} is required"
            continue
        value = values[name]
        if rule.kind == "text":
            if not isinstance(value, str) or (rule.required and not value.strip()):
                return f"{label} must be a non-empty string"
            if rule.max_len is not None and len(value) > rule.max_len:
                return f"{label} exceeds {rule.max_len} characters"
        elif rule.kind == "url":
            if not _is_http(value):
                return f"{label} must be an http(s) URL"
        elif rule.kind == "urls":
            if not isinstance(value, list) or not all(_is_http(v) for v in value):
                return f"{label} must be an array of http(s) URLs"
            if rule.required and not value:
                return f"{label} must not be empty"
            if rule.max_len is not None and len(value) > rule.max_len:
                return f"{label} takes at most {rule.max_len} URL(s)"
        elif rule.kind == "flag":
            if not isinstance(value, bool):
                return f"{label} must be a boolean"
        elif rule.kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"{label} must be a number"
            if rule.integer and not float(value).is_integer():
                return f"{label} must be an integer"
            if (rule.low is not None and value < rule.low) or (rule.high is not None and value > rule.high):
                return f"{label} must be between {rule.low:g} and {rule.high:g}"
        elif rule.kind == "choice" and not any(_same(value, c) for c in rule.choices):
            shown = ", ".join(repr(c) if not isinstance(c, str) else c for c in rule.choices)
            return f"{label} must be one of: {shown}"
    return None


def image_urls_in(rules: Rules, values: Mapping[str, Any]) -> list[str]:
    """Every URL the request asks Kie to fetch (for the 451 "cannot fetch" simulation)."""
    found: list[str] = []
    for name, rule in rules.items():
        value = values.get(name)
        if rule.kind == "url" and isinstance(value, str):
            found.append(value)
        elif rule.kind == "urls" and isinstance(value, list):
            found.extend(v for v in value if isinstance(v, str))
    return found


# --- market models --------------------------------------------------------------------------

ASPECT_NANO = ("1:1", "9:16", "16:9", "3:4", "4:3", "3:2", "2:3", "5:4", "4:5", "21:9", "auto")
SEEDREAM_SIZES = (
    "square",
    "square_hd",
    "portrait_4_3",
    "portrait_3_2",
    "portrait_16_9",
    "landscape_4_3",
    "landscape_3_2",
    "landscape_16_9",
    "landscape_21_9",
)
QWEN_SIZES = ("square", "square_hd", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9")
SECONDS = choice("5", "10")
KLING_RATIOS = choice("16:9", "9:16", "1:1")


@dataclass(frozen=True)
class MarketModel:
    rules: Rules
    output: Literal["png", "mp4"]
    credits: float
    count_field: str | None = None  # the input field asking for several outputs
    extra: Mapping[str, Any] = field(default_factory=dict)


_NANO = {
    "prompt": text(required=True, max_len=5000),
    "output_format": choice("png", "jpeg"),
    "aspect_ratio": choice(*ASPECT_NANO),
    "image_size": choice(*ASPECT_NANO),
}
_SEEDREAM = {
    "prompt": text(required=True, max_len=5000),
    "image_size": choice(*SEEDREAM_SIZES),
    "image_resolution": choice("1K", "2K", "4K"),
    "max_images": number(1, 6, integer=True),
    "seed": number(-1, 2147483647, integer=True),
    "nsfw_checker": flag(),
}
_SORA2 = {
    "prompt": text(required=True, max_len=10000),
    "aspect_ratio": choice("portrait", "landscape"),
    "n_frames": choice("10", "15"),
    "remove_watermark": flag(),
}
_SORA2_PRO = {**_SORA2, "size": choice("standard", "high")}
_KLING_I2V = {
    "prompt": text(required=True, max_len=5000),
    "image_url": url(required=True),
    "duration": SECONDS,
    "negative_prompt": text(max_len=500),
    "cfg_scale": number(0, 1),
}
_KLING_25 = {
    "prompt": text(required=True, max_len=2500),
    "duration": SECONDS,
    "negative_prompt": text(max_len=2500),
    "cfg_scale": number(0, 1),
}
_WAN22 = {
    "prompt": text(required=True, max_len=5000),
    "resolution": choice("480p", "580p", "720p"),
    "enable_prompt_expansion": flag(),
    "seed": number(0, 2147483647, integer=True),
    "acceleration": choice("none", "regular"),
    "nsfw_checker": flag(),
}
_WAN25 = {
    "prompt": text(required=True, max_len=800),
    "duration": choice("5", "10", required=True),
    "resolution": choice("720p", "1080p"),
    "negative_prompt": text(max_len=500),
    "enable_prompt_expansion": flag(),
    "seed": number(-1, 2147483647, integer=True),
}
_SEEDANCE = {
    "prompt": text(required=True, max_len=10000),
    "resolution": choice("480p", "720p", "1080p"),
    "duration": SECONDS,
    "camera_fixed": flag(),
    "seed": number(-1, 2147483647, integer=True),
    "enable_safety_checker": flag(),
    "nsfw_checker": flag(),
}

MARKET_MODELS: dict[str, MarketModel] = {
    "google/nano-banana": MarketModel(_NANO, "png", 4),
    "google/nano-banana-edit": MarketModel({**_NANO, "image_urls": urls(10, required=True)}, "png", 4),
    "nano-banana-upscale": MarketModel(
        {"image": url(required=True), "scale": number(1, 4, integer=True), "face_enhance": flag()}, "png", 1
    ),
    "bytedance/seedream-v4-text-to-image": MarketModel(_SEEDREAM, "png", 3.5, "max_images"),
    "bytedance/seedream-v4-edit": MarketModel(
        {**_SEEDREAM, "image_urls": urls(10, required=True)}, "png", 3.5, "max_images"
    ),
    "qwen/image-edit": MarketModel(
        {
            "prompt": text(required=True, max_len=2000),
            "image_url": url(required=True),
            "acceleration": choice("none", "regular", "high"),
            "image_size": choice(*QWEN_SIZES),
            "num_inference_steps": number(2, 49, integer=True),
            "seed": number(-1, 2147483647, integer=True),
            "guidance_scale": number(0, 20),
            "sync_mode": flag(),
            "num_images": choice("1", "2", "3", "4"),
            "enable_safety_checker": flag(),
            "output_format": choice("jpeg", "png"),
            "negative_prompt": text(max_len=500),
            "nsfw_checker": flag(),
        },
        "png",
        3.5,
        "num_images",
    ),
    "sora-2-text-to-video": MarketModel(_SORA2, "mp4", 30),
    "sora-2-image-to-video": MarketModel({**_SORA2, "image_urls": urls(1, required=True)}, "mp4", 30),
    "sora-2-pro-text-to-video": MarketModel(_SORA2_PRO, "mp4", 90),
    "sora-2-pro-image-to-video": MarketModel({**_SORA2_PRO, "image_urls": urls(1, required=True)}, "mp4", 90),
    "sora-watermark-remover": MarketModel({"video_url": url(required=True)}, "mp4", 10),
    "kling/v2-1-master-image-to-video": MarketModel(_KLING_I2V, "mp4", 160),
    "kling/v2-1-master-text-to-video": MarketModel(
        {
            "prompt": text(required=True, max_len=5000),
            "duration": SECONDS,
            "aspect_ratio": KLING_RATIOS,
            "negative_prompt": text(max_len=500),
            "cfg_scale": number(0, 1),
        },
        "mp4",
        160,
    ),
    "kling/v2-1-standard": MarketModel(_KLING_I2V, "mp4", 25),
    "kling/v2-1-pro": MarketModel({**_KLING_I2V, "tail_image_url": url()}, "mp4", 50),
    "kling/v2-5-turbo-image-to-video-pro": MarketModel(
        {**_KLING_25, "image_url": url(required=True), "tail_image_url": url()}, "mp4", 42
    ),
    "kling/v2-5-turbo-text-to-video-pro": MarketModel({**_KLING_25, "aspect_ratio": KLING_RATIOS}, "mp4", 42),
    "wan/2-2-a14b-text-to-video-turbo": MarketModel(
        {**_WAN22, "aspect_ratio": choice("16:9", "9:16")}, "mp4", 80
    ),
    "wan/2-2-a14b-image-to-video-turbo": MarketModel({**_WAN22, "image_url": url(required=True)}, "mp4", 80),
    "wan/2-5-text-to-video": MarketModel(
        {**_WAN25, "aspect_ratio": choice("16:9", "9:16", "1:1")}, "mp4", 60
    ),
    "wan/2-5-image-to-video": MarketModel(
        {**_WAN25, "image_url": url(required=True), "nsfw_checker": flag()}, "mp4", 60
    ),
    "bytedance/v1-pro-text-to-video": MarketModel(
        {**_SEEDANCE, "aspect_ratio": choice("21:9", "16:9", "4:3", "1:1", "3:4", "9:16")}, "mp4", 30
    ),
    "bytedance/v1-pro-image-to-video": MarketModel({**_SEEDANCE, "image_url": url(required=True)}, "mp4", 30),
}

# --- dedicated APIs --------------------------------------------------------------------------

GPT4O: Rules = {
    "size": choice("1:1", "3:2", "2:3", required=True),
    "prompt": text(),
    "filesUrl": urls(5),
    "fileUrl": url(),
    "maskUrl": url(),
    "nVariants": choice(1, 2, 4),
    "isEnhance": flag(),
    "uploadCn": flag(),
    "enableFallback": flag(),
    "fallbackModel": choice("GPT_IMAGE_1", "FLUX_MAX"),
    "callBackUrl": url(),
}

FLUX: Rules = {
    "prompt": text(required=True),
    "model": choice("flux-kontext-pro", "flux-kontext-max"),
    "inputImage": url(),
    "aspectRatio": choice("21:9", "16:9", "4:3", "1:1", "3:4", "9:16"),
    "outputFormat": choice("jpeg", "png"),
    "promptUpsampling": flag(),
    "safetyTolerance": number(0, 6, integer=True),
    "enableTranslation": flag(),
    "uploadCn": flag(),
    "watermark": text(),
    "callBackUrl": url(),
}

MJ_TASK_TYPES = (
    "mj_txt2img",
    "mj_img2img",
    "mj_style_reference",
    "mj_omni_reference",
    "mj_video",
    "mj_video_hd",
)
MIDJOURNEY: Rules = {
    "taskType": choice(*MJ_TASK_TYPES, required=True),
    "prompt": text(required=True, max_len=2000),
    "speed": choice("relaxed", "fast", "turbo"),
    "fileUrls": urls(5),
    "fileUrl": url(),
    "aspectRatio": choice("1:1", "16:9", "9:16", "2:3", "3:2", "4:3", "3:4", "1:2", "2:1", "5:6", "6:5"),
    "version": choice("7", "6.1", "6", "5.2", "5.1", "niji6", "niji7"),
    "variety": number(0, 100, integer=True),
    "stylization": number(0, 1000, integer=True),
    "weirdness": number(0, 3000, integer=True),
    "ow": number(1, 1000, integer=True),
    "waterMark": text(),
    "enableTranslation": flag(),
    "videoBatchSize": choice(1, 2, 4),
    "motion": choice("high", "low"),
    "callBackUrl": url(),
}

VEO: Rules = {
    "prompt": text(required=True),
    "model": choice("veo3", "veo3_fast", "veo3_lite"),
    "imageUrls": urls(3),
    "generationType": choice("TEXT_2_VIDEO", "FIRST_AND_LAST_FRAMES_2_VIDEO", "REFERENCE_2_VIDEO"),
    "aspectRatio": choice("16:9", "9:16", "Auto"),
    "seeds": number(10000, 99999, integer=True),
    "watermark": text(),
    "enableTranslation": flag(),
    "resolution": choice("720p", "1080p", "4k"),
    "duration": choice(4, 6, 8),
    "callBackUrl": url(),
}

VEO_EXTEND: Rules = {
    "taskId": text(required=True),
    "prompt": text(required=True),
    "seeds": number(10000, 99999, integer=True),
    "watermark": text(),
    "model": choice("fast", "quality", "lite"),
    "callBackUrl": url(),
}

RUNWAY: Rules = {
    "prompt": text(required=True, max_len=1800),
    "duration": choice(5, 10, required=True),
    "quality": choice("720p", "1080p", required=True),
    "aspectRatio": choice("16:9", "4:3", "1:1", "3:4", "9:16"),
    "imageUrl": url(),
    "waterMark": text(),
    "callBackUrl": url(),
}

RUNWAY_EXTEND: Rules = {
    "taskId": text(required=True),
    "prompt": text(required=True, max_len=1800),
    "quality": choice("720p", "1080p", required=True),
    "waterMark": text(),
    "callBackUrl": url(),
}
