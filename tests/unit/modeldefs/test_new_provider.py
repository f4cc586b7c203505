"""A provider and its model added from one definition file, with no code: the recipe in
docs/adding-a-provider.md, step "add the definition file"."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from aigen.modeldefs.availability import availability
from aigen.modeldefs.form import form_fields
from aigen.modeldefs.loader import load_catalog
from aigen.modeldefs.pricing import quote
from aigen.modeldefs.validation import Invalid, Valid, validate_request

from tests.unit.modeldefs.snippets import write

NEW_PROVIDER = """\
platform:
  slug: lumen
  name: Lumen Labs
  website: https://lumen.example
  description: {en: "Video models.", zh: "视频模型。"}

providers:
  - slug: lumen
    name: Lumen Labs
    platform: lumen
    description: {en: "Lumen API.", zh: "Lumen 接口。"}
    api_endpoint: https://api.lumen.example
    auth: x-api-key
    credit_usd: 0.01

models:
  - slug: lumen-motion
    name: Lumen Motion
    description: {en: "Text or image to video.", zh: "文字或图片生成视频。"}
    provider: lumen
    output_type: VIDEO
    adapter: LumenVideoAdapter
    input_capabilities: [text-input, image-input]
    output_capabilities: [video-output]
    function_tags: [text-to-video, image-to-video]
    input_images: {min: 0, max: 1}
    prompt: {required: true, max_length: 2000}
    fields:
      - key: aspect_ratio
        type: select
        label: {en: Aspect ratio, zh: 画面比例}
        default: 16:9
        options:
          - {value: 16:9, label: {en: Landscape, zh: 横屏}}
          - {value: 9:16, label: {en: Portrait, zh: 竖屏}}
      - key: duration
        type: number
        label: {en: Duration (s), zh: 时长·秒}
        helper_text: {en: "5 to 10 seconds.", zh: "5 到 10 秒。"}
        default: 5
        min: 5
        max: 10
        step: 5
        integer: true
    constraints:
      - field: duration
        rule: "not (duration == 10 and aspect_ratio == '9:16')"
        message: {en: "Portrait videos are at most 5 seconds.", zh: "竖屏视频最长 5 秒。"}
    pricing:
      currency: credits
      expr: "20 * duration / 5"
      unit_note: {en: per video, zh: 每个视频}
"""

MORE_FOR_KIE = """\
models:
  - slug: kie-extra-image
    name: Extra Image
    description: {en: "A Kie model an operator added.", zh: "运维添加的 Kie 模型。"}
    provider: kie
    output_type: IMAGE
    adapter: KieMarketAdapter
    adapter_settings: {model: extra/image}
    requires: [extra-tool]
    pricing: {currency: credits, expr: "3 * n"}
    outputs: {default: 1, max: 2}
"""


def test_a_new_provider_and_model_from_a_file_alone(tmp_path: Path) -> None:
    write(tmp_path, "lumen.yaml", NEW_PROVIDER)
    catalog = load_catalog([tmp_path])

    motion = catalog.model("lumen-motion")
    provider = catalog.provider_of(motion)
    assert (provider.slug, provider.auth, catalog.platform_of(provider).name) == (
        "lumen",
        "x-api-key",
        "Lumen Labs",
    )

    en, zh = form_fields(motion, "en"), form_fields(motion, "zh")
    assert en[0] == {
        "key": "aspect_ratio",
        "label": "Aspect ratio",
        "type": "select",
        "required": False,
        "defaultValue": "16:9",
        "options": [{"label": "Landscape", "value": "16:9"}, {"label": "Portrait", "value": "9:16"}],
    }
    assert en[1] == {
        "key": "duration",
        "label": "Duration (s)",
        "type": "number",
        "required": False,
        "defaultValue": 5,
        "helperText": "5 to 10 seconds.",
        "min": 5,
        "max": 10,
        "step": 5,
        "integer": True,
    }
    assert [f["label"] for f in zh] == ["画面比例", "时长·秒"]
    assert json.loads(json.dumps(zh, ensure_ascii=False)) == zh

    checked = validate_request(motion, {"duration": 10.0}, prompt="waves", number_of_outputs=None)
    assert isinstance(checked, Valid)
    assert checked.parameters == {"aspect_ratio": "16:9", "duration": 10}
    price = quote(motion, provider, checked.parameters, number_of_outputs=checked.number_of_outputs)
    assert (price.amount, price.usd, price.text()) == (
        Decimal(40),
        Decimal("0.4"),
        "40 Credits ≈ $0.400 per video",
    )

    refused = validate_request(motion, {"duration": 10, "aspect_ratio": "9:16", "fps": 24}, prompt="waves")
    assert isinstance(refused, Invalid)
    assert [v.to_json() for v in refused.violations] == [
        {"field": "parameters.fps", "reason": "unknown parameter"}
    ]
    refused = validate_request(motion, {"duration": 10, "aspect_ratio": "9:16"}, prompt="waves")
    assert isinstance(refused, Invalid)
    assert [v.to_json() for v in refused.violations] == [
        {"field": "parameters.duration", "reason": "Portrait videos are at most 5 seconds."}
    ]

    assert availability(motion).available


def test_an_extra_file_may_add_models_to_a_packaged_provider(tmp_path: Path) -> None:
    write(tmp_path, "kie-extra.yaml", MORE_FOR_KIE)
    catalog = load_catalog([tmp_path])
    extra = catalog.model("kie-extra-image")
    assert catalog.provider_of(extra).slug == "kie"
    assert form_fields(extra) == []
    checked = validate_request(extra, None, prompt="a fox", number_of_outputs=2)
    assert isinstance(checked, Valid)
    price = quote(extra, catalog.provider_of(extra), checked.parameters, number_of_outputs=2)
    assert price.display == "6 Credits ≈ $0.030"

    missing = availability(extra, which=lambda _: None)
    assert (missing.available, missing.missing) == (False, ("extra-tool",))
    assert missing.reason == "needs extra-tool on the machine running the provider"
    assert availability(extra, which=lambda name: f"/opt/bin/{name}").available
