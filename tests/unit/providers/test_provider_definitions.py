"""The Replicate, OpenAI, ElevenLabs, Pollo and TuZi definitions: valid, wired to adapters, priced."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import aigen.modeldefs
import pytest
from aigen.modeldefs.expr import evaluate, names_used
from aigen.modeldefs.schema import DefinitionFile, ModelDef
from aigen.modeldefs.yamlfile import parse_yaml

FILES = ("replicate", "openai", "elevenlabs", "pollo", "tuzi")
SEED_NAMES = {
    "TuziKlingAdapter",
    "TuziMidjourneyAdapter",
    "ReplicateFluxAdapter",
    "ReplicateMinimaxAdapter",
    "OpenAIDalleAdapter",
    "PolloVeo3Adapter",
    "PolloKlingAdapter",
    "ElevenLabsTTSAdapter",
}
SLUGS = {
    "replicate-flux",
    "replicate-minimax",
    "openai-dall-e",
    "elevenlabs-tts",
    "pollo-veo-3",
    "pollo-kling",
    "tuzi-kling",
    "tuzi-midjourney",
}


def load(name: str) -> DefinitionFile:
    path = Path(aigen.modeldefs.__file__).parent / "definitions" / f"{name}.yaml"
    return DefinitionFile.model_validate(parse_yaml(path.read_text()))


MODELS = {m.slug: m for name in FILES for m in load(name).models}


def names(
    definition: ModelDef, /, n: int = 1, prompt: str = "x", images: int = 0, **params: Any
) -> dict[str, Any]:
    values: dict[str, Any] = {f.key: f.default for f in definition.fields}
    values.update(params)
    return {**values, "n": n, "prompt_chars": len(prompt), "images": images}


def test_every_model_is_defined_once_and_its_adapter_resolves() -> None:
    assert set(MODELS) == SLUGS
    found = {}
    for name in FILES:
        found.update(importlib.import_module(f"aigen.providers.{name}").ADAPTERS)
    assert set(found) == SEED_NAMES
    for model in MODELS.values():
        assert model.adapter in found
        assert model.pricing.expr
        assert model.description.zh
        assert model.description.en


def test_the_registry_resolves_every_seed_name() -> None:
    registry = pytest.importorskip("aigen.providers.registry")
    try:
        known = set(registry.adapter_names())
    except ImportError as exc:  # another provider's module is not importable here
        pytest.skip(str(exc))
    assert known >= SEED_NAMES


def test_expressions_only_use_known_names() -> None:
    for model in MODELS.values():
        allowed = {f.key for f in model.fields} | {"n", "prompt_chars", "images"}
        for source in (model.pricing.expr, *(c.rule for c in model.constraints)):
            assert names_used(source) <= allowed, (model.slug, source)


def test_defaults_satisfy_every_constraint_and_price() -> None:
    for model in MODELS.values():
        env = names(model)
        for c in model.constraints:
            assert evaluate(c.rule, env), (model.slug, c.rule)
        assert float(evaluate(model.pricing.expr, env)) > 0


@pytest.mark.parametrize(
    ("slug", "params", "price"),
    [
        ("openai-dall-e", {"model": "dall-e-3", "size": "1792x1024", "quality": "hd"}, 0.12),
        ("openai-dall-e", {"model": "dall-e-3", "size": "1024x1024", "quality": "standard"}, 0.04),
        ("openai-dall-e", {"model": "dall-e-2", "size": "256x256", "n": 3}, 0.048),
        ("openai-dall-e", {"model": "gpt-image-1", "size": "1536x1024", "quality": "medium"}, 0.063),
        ("replicate-flux", {"variant": "flux-dev", "n": 2}, 0.05),
        ("replicate-flux", {}, 0.003),
        ("replicate-minimax", {}, 0.5),
        ("elevenlabs-tts", {"model_id": "eleven_flash_v2_5", "prompt": "x" * 100}, 50),
        ("elevenlabs-tts", {"prompt": "x" * 100}, 100),
        ("tuzi-kling", {"duration": "10"}, 1.6),
        ("pollo-kling", {"length": 10}, 1.6),
    ],
)
def test_prices(slug: str, params: dict[str, Any], price: float) -> None:
    model = MODELS[slug]
    params = dict(params)
    n = params.pop("n", 1)
    prompt = params.pop("prompt", "x")
    assert evaluate(model.pricing.expr, names(model, n=n, prompt=prompt, **params)) == pytest.approx(price)


@pytest.mark.parametrize(
    ("slug", "params", "field"),
    [
        ("openai-dall-e", {"model": "dall-e-3", "n": 2}, "model"),
        ("openai-dall-e", {"model": "dall-e-2", "size": "1792x1024"}, "size"),
        ("openai-dall-e", {"model": "gpt-image-1", "quality": "hd"}, "quality"),
        ("openai-dall-e", {"model": "dall-e-3", "images": 1}, "model"),
        ("openai-dall-e", {"model": "dall-e-2", "prompt": "x" * 1001}, "model"),
        ("replicate-flux", {"variant": "flux-1.1-pro", "n": 2}, "variant"),
        ("replicate-flux", {"variant": "flux-schnell", "images": 1}, "variant"),
        ("elevenlabs-tts", {"prompt": "x" * 10_001}, "model_id"),
        ("replicate-flux", {"variant": "flux-schnell", "num_inference_steps": 28}, "num_inference_steps"),
        ("replicate-flux", {"variant": "flux-schnell", "guidance": 3.5}, "guidance"),
        ("replicate-flux", {"variant": "flux-dev", "safety_tolerance": 2}, "safety_tolerance"),
        ("openai-dall-e", {"model": "dall-e-2", "style": "vivid"}, "style"),
        (
            "openai-dall-e",
            {"model": "gpt-image-1", "background": "transparent", "output_format": "jpeg"},
            "background",
        ),
    ],
)
def test_constraints_refuse_what_the_provider_refuses(slug: str, params: dict[str, Any], field: str) -> None:
    model = MODELS[slug]
    params = dict(params)
    n = params.pop("n", 1)
    images = params.pop("images", 0)
    prompt = params.pop("prompt", "x")
    env = names(model, n=n, images=images, prompt=prompt, **params)
    broken = [c.field for c in model.constraints if not evaluate(c.rule, env)]
    assert field in broken


def test_alternatives_and_field_destinations() -> None:
    assert MODELS["pollo-veo-3"].alternatives == ("kie-veo-3",)
    assert MODELS["tuzi-midjourney"].alternatives == ("kie-midjourney",)
    assert set(MODELS["pollo-kling"].alternatives) == {"tuzi-kling", "kie-kling-v2-master-text-to-video"}
    assert set(MODELS["tuzi-kling"].alternatives) == {"pollo-kling", "kie-kling-v2-master-text-to-video"}
    voice = {f.key: f.maps_to for f in MODELS["elevenlabs-tts"].fields if f.maps_to}
    assert voice["stability"] == "voice_settings.stability"
    assert not any(m.pricing.confirmed for m in MODELS.values())
