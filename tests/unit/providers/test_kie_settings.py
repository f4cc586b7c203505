"""How adapter settings route images, parameters and output counts into Kie's payload."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from aigen.providers.kie.gpt4o import Kie4oImageAdapter
from aigen.providers.kie.settings import ImageRouting, SettingsError, check_settings, read_field_map
from aigen.providers.types import GenerationRequest, ModelConfig, OutputType, ProviderConfig


def routing(**settings: Any) -> ImageRouting:
    return ImageRouting.from_settings(lambda name, default: settings.get(name, default))


def test_array_single_and_slots() -> None:
    payload: dict[str, Any] = {}
    routing(images_to="image_urls[]", images_max=10).place(payload, ["a", "b"])
    assert payload == {"image_urls": ["a", "b"]}
    payload = {}
    routing(images_to="image").place(payload, ["a"])
    assert payload == {"image": "a"}
    payload = {}
    routing(images_to=["image_url", "tail_image_url"]).place(payload, ["a", "b"])
    assert payload == {"image_url": "a", "tail_image_url": "b"}
    payload = {}
    routing(images_to=["image_url", "tail_image_url"]).place(payload, ["a"])
    assert payload == {"image_url": "a"}


def test_limits_come_from_the_definition_and_tolerate_struct_floats() -> None:
    r = routing(images_to="image_urls[]", images_max=10.0, input_images={"min": 1.0, "max": 4.0})
    assert (r.min, r.max, r.capacity) == (1, 4, 10)
    assert routing(images_to="image_url").max == 1  # no limits given: what the field can carry
    assert routing().max == 0


@pytest.mark.parametrize(
    "settings",
    [
        {"images_to": "image_urls[]"},  # an array needs its capacity
        {"images_to": "image_url", "input_images": {"max": 2}},
        {"images_to": 5},
        {"images_to": ["image_urls[]"]},
        {"images_to": "image_url", "input_images": {"min": 2, "max": 1}},
        {"input_images": {"max": 1}},
        {"images_to": "image_urls[]", "images_max": 2.5},
    ],
)
def test_unusable_settings(settings: dict[str, Any]) -> None:
    with pytest.raises(SettingsError):
        routing(**settings)


def test_payload_places_prompt_images_parameters_and_count() -> None:
    model = ModelConfig(
        slug="kie-test",
        adapter_name="KieImageAdapter",
        output_type=OutputType.IMAGE,
        provider=ProviderConfig(slug="kie", api_endpoint="https://api.kie.ai", api_key="k"),
        settings={"field_map": {"quality": "options.quality"}},
    )
    adapter = Kie4oImageAdapter(model, httpx.AsyncClient())
    request = GenerationRequest(
        prompt="p",
        number_of_outputs=2,
        parameters={"size": "3:2", "seed": 42.0, "maskUrl": None, "quality": "hd"},
    )
    routing = ImageRouting.from_settings(adapter.conf)
    payload = adapter.payload(request, routing, ["https://x/a.png"], read_field_map(adapter.conf))
    assert payload == {
        "prompt": "p",
        "filesUrl": ["https://x/a.png"],
        "size": "3:2",
        "seed": 42,
        "options": {"quality": "hd"},
        "nVariants": 2,
    }
    assert isinstance(payload["seed"], int)


def test_field_map_shape() -> None:
    assert read_field_map(lambda name, default: default) == {}
    with pytest.raises(SettingsError):
        read_field_map(lambda name, default: {"a": 1} if name == "field_map" else default)


def test_check_settings() -> None:
    assert check_settings({"model": "google/nano-banana"}, requires_model=True) == []
    assert check_settings({}, requires_model=True) == [
        "model: Kie's model string is required for this family"
    ]
    assert check_settings({"unsupported": "gone"}, requires_model=True) == []
    assert check_settings({"modle": "x"}, requires_model=False) == ["unknown setting 'modle'"]
