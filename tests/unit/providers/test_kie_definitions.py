"""kie.yaml against the seed's model list, Kie's families and the adapters' settings."""

from __future__ import annotations

from pathlib import Path

import aigen.modeldefs
import pytest
import yaml
from aigen.modeldefs import expr
from aigen.modeldefs.schema import DefinitionFile, ModelDef
from aigen.providers.kie import ADAPTERS
from aigen.providers.kie.adapter import KieAdapter
from aigen.providers.kie.settings import ImageRouting

KIE_YAML = Path(aigen.modeldefs.__file__).parent / "definitions" / "kie.yaml"

SEED_ADAPTERS = {
    "kie-4o-image": "KieImageAdapter",
    "kie-flux-kontext": "KieFluxKontextAdapter",
    "kie-midjourney": "KieMidjourneyAdapter",
    "kie-sora": "KieSoraAdapter",
    "kie-sora-2": "KieSora2Adapter",
    "kie-sora-2-image-to-video": "KieSora2ImageToVideoAdapter",
    "kie-sora-2-pro": "KieSora2ProAdapter",
    "kie-sora-2-pro-image-to-video": "KieSora2ProImageToVideoAdapter",
    "kie-veo-3": "KieVeo3Adapter",
    "kie-veo-3-1": "KieVeo31Adapter",
    "kie-veo-3-1-extend": "KieVeo31ExtendAdapter",
    "kie-nano-banana": "KieNanoBananaAdapter",
    "kie-nano-banana-edit": "KieNanoBananaEditAdapter",
    "kie-nano-banana-upscale": "KieNanoBananaUpscaleAdapter",
    "kie-seedream-v4": "KieSeedreamV4Adapter",
    "kie-seedream-v4-edit": "KieSeedreamV4EditAdapter",
    "kie-qwen-image-edit": "KieQwenImageEditAdapter",
    "kie-sora-watermark-remover": "KieSoraWatermarkRemoverAdapter",
    "kie-kling-v2-master-image-to-video": "KieKlingV2MasterImageToVideoAdapter",
    "kie-kling-v2-master-text-to-video": "KieKlingV2MasterTextToVideoAdapter",
    "kie-kling-v2-standard": "KieKlingV2StandardAdapter",
    "kie-kling-v2-pro": "KieKlingV2ProAdapter",
    "kie-kling-v2-5-turbo-pro": "KieKlingV25TurboProAdapter",
    "kie-kling-v2-5-turbo-text-to-video-pro": "KieKlingV25TurboTextToVideoProAdapter",
    "kie-wan-2-2-a14b-text-to-video-turbo": "KieWan22A14bTextToVideoTurboAdapter",
    "kie-wan-2-2-a14b-image-to-video-turbo": "KieWan22A14bImageToVideoTurboAdapter",
    "kie-wan-2-5-text-to-video": "KieWan25TextToVideoAdapter",
    "kie-wan-2-5-image-to-video": "KieWan25ImageToVideoAdapter",
    "kie-bytedance-v1-pro-text-to-video": "KieByteDanceV1ProTextToVideoAdapter",
    "kie-bytedance-v1-pro-image-to-video": "KieByteDanceV1ProImageToVideoAdapter",
    "kie-runway": "KieRunwayAdapter",
    "kie-runway-extend": "KieRunwayExtendAdapter",
}
# Prices the notes give as confirmed (two dated sources agree).
CONFIRMED = {
    "kie-4o-image",
    "kie-flux-kontext",
    "kie-nano-banana",
    "kie-nano-banana-edit",
    "kie-kling-v2-master-image-to-video",
    "kie-kling-v2-master-text-to-video",
    "kie-kling-v2-standard",
    "kie-kling-v2-pro",
    "kie-kling-v2-5-turbo-pro",
    "kie-kling-v2-5-turbo-text-to-video-pro",
    "kie-wan-2-5-text-to-video",
    "kie-wan-2-5-image-to-video",
    "kie-runway",
}

DEFINITIONS = DefinitionFile.model_validate(yaml.safe_load(KIE_YAML.read_text()))
MODELS = {m.slug: m for m in DEFINITIONS.models}


def test_one_definition_per_seed_model() -> None:
    assert {slug: m.adapter for slug, m in MODELS.items()} == SEED_ADAPTERS
    assert len(DEFINITIONS.models) == 32


def test_every_seed_adapter_name_resolves_to_a_family_class() -> None:
    assert set(ADAPTERS) == set(SEED_ADAPTERS.values())
    families = set(ADAPTERS.values())
    assert all(issubclass(cls, KieAdapter) for cls in families)
    assert len(families) < 12  # one class per API family, not per model


@pytest.mark.parametrize("slug", sorted(MODELS))
def test_adapter_settings_suit_the_family(slug: str) -> None:
    model = MODELS[slug]
    cls = ADAPTERS[model.adapter]
    assert issubclass(cls, KieAdapter)
    settings = {**model.adapter_settings, "input_images": model.input_images.model_dump()}
    assert cls.settings_problems(settings) == []


def routing(model: ModelDef) -> ImageRouting:
    cls = ADAPTERS[model.adapter]
    assert issubclass(cls, KieAdapter)
    merged = {**cls.family_defaults, **model.adapter_settings}
    return ImageRouting.from_settings(lambda name, default: merged.get(name, default))


@pytest.mark.parametrize("slug", sorted(MODELS))
def test_image_limits_fit_where_the_images_go(slug: str) -> None:
    model = MODELS[slug]
    assert model.input_images.max <= routing(model).capacity
    if model.input_images.max:
        assert "image-input" in model.input_capabilities
    else:
        assert "image-input" not in model.input_capabilities


@pytest.mark.parametrize("slug", sorted(MODELS))
def test_outputs_parameter_matches_the_adapter(slug: str) -> None:
    model = MODELS[slug]
    cls = ADAPTERS[model.adapter]
    assert issubclass(cls, KieAdapter)
    merged = {**cls.family_defaults, **model.adapter_settings}
    assert merged.get("outputs_parameter") == model.outputs.parameter
    if model.outputs.max > 1:
        assert model.outputs.parameter


def names_for(model: ModelDef) -> dict[str, object]:
    names: dict[str, object] = {f.key: f.default for f in model.fields}
    names.update(taskId="t", video_url="https://sora.chatgpt.com/p/s_1")
    names.update(n=model.outputs.default, prompt_chars=20, images=model.input_images.min)
    return names


@pytest.mark.parametrize("slug", sorted(MODELS))
def test_pricing_evaluates_over_every_option(slug: str) -> None:
    model = MODELS[slug]
    base = names_for(model)
    prices = [expr.evaluate(model.pricing.expr, base)]
    for f in model.fields:
        for option in f.options:
            names = {**base, f.key: option.value}
            if all(expr.evaluate(c.rule, names) for c in model.constraints):
                prices.append(expr.evaluate(model.pricing.expr, names))
    for n in model.outputs.allowed or range(model.outputs.min, model.outputs.max + 1):
        prices.append(expr.evaluate(model.pricing.expr, {**base, "n": n}))
    assert all(isinstance(p, int | float) and p >= 0 for p in prices)
    assert model.pricing.confirmed is (slug in CONFIRMED)
    assert model.pricing.source


@pytest.mark.parametrize(
    ("slug", "names", "price"),
    [
        ("kie-4o-image", {"n": 4}, 8),
        ("kie-flux-kontext", {"model": "flux-kontext-max"}, 10),
        ("kie-kling-v2-master-text-to-video", {"duration": "10"}, 320),
        ("kie-wan-2-5-image-to-video", {"duration": "10", "resolution": "1080p"}, 200),
        ("kie-runway", {"duration": 10, "quality": "720p"}, 30),
        ("kie-sora-2-pro", {"size": "high", "n_frames": "15"}, 400),
        ("kie-midjourney", {"taskType": "mj_video_hd", "videoBatchSize": 2}, 90),
        ("kie-veo-3-1", {"model": "veo3", "resolution": "4k"}, 1.85),
    ],
)
def test_prices_follow_the_notes(slug: str, names: dict[str, object], price: float) -> None:
    model = MODELS[slug]
    assert expr.evaluate(model.pricing.expr, {**names_for(model), **names}) == pytest.approx(price)


def test_runway_10s_cannot_be_1080p() -> None:
    rule = MODELS["kie-runway"].constraints[0].rule
    assert not expr.evaluate(rule, {"duration": 10, "quality": "1080p"})
    assert expr.evaluate(rule, {"duration": 5, "quality": "1080p"})


def test_plain_sora_is_defined_but_unavailable() -> None:
    sora = MODELS["kie-sora"]
    assert not sora.available
    assert sora.unavailable_reason
    assert sora.adapter_settings.get("unsupported")


def test_sora_2_family_stays_available_with_a_warning() -> None:
    for slug in (
        "kie-sora-2",
        "kie-sora-2-image-to-video",
        "kie-sora-2-pro",
        "kie-sora-2-pro-image-to-video",
    ):
        assert MODELS[slug].available
        assert "retired" in MODELS[slug].description.en


def test_alternatives_point_at_the_same_models_elsewhere() -> None:
    for slug, model in MODELS.items():
        if "kling" in slug:
            assert model.alternatives == ("tuzi-kling", "pollo-kling")
    assert MODELS["kie-veo-3"].alternatives == ("pollo-veo-3",)
    assert MODELS["kie-midjourney"].alternatives == ("tuzi-midjourney",)


def test_every_model_has_labels_tags_and_polling() -> None:
    for model in DEFINITIONS.models:
        assert model.description.en
        assert model.description.zh
        assert model.function_tags
        assert model.output_capabilities
        for f in model.fields:
            assert f.label.en
            assert f.label.zh
    assert MODELS["kie-midjourney"].polling.interval_s >= 20
    assert all(
        MODELS[s].polling.interval_s <= 3 for s in ("kie-nano-banana", "kie-4o-image", "kie-flux-kontext")
    )
