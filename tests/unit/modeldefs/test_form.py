from __future__ import annotations

import pytest
from aigen.modeldefs.availability import availability
from aigen.modeldefs.form import form_field, form_fields, forms, language_of
from aigen.modeldefs.loader import packaged_catalog
from aigen.modeldefs.yamlfile import YamlError, parse_yaml

from tests.unit.modeldefs.snippets import field, single_model


def test_kie_4o_image_size_in_the_seeds_shape() -> None:
    size = form_fields(packaged_catalog().model("kie-4o-image"), "en")[0]
    assert size["key"] == "size"
    assert size["type"] == "select"
    assert size["defaultValue"] == "1:1"
    assert [o["value"] for o in size["options"]] == ["1:1", "3:2", "2:3"]
    zh = forms(packaged_catalog().model("kie-4o-image"))["zh"][0]
    assert zh["label"] == "图片比例"
    assert zh["options"][0]["label"] == "方形 1:1"


def test_unused_keys_are_left_out_and_whole_bounds_are_ints() -> None:
    definition = single_model(
        fields=[
            field("note", "textarea", placeholder="Anything else", max_length=200),
            field("cfg", "number", min=0.0, max=10.0, step=0.5),
        ],
        pricing={"currency": "usd", "expr": "0.01"},
    ).model("acme-image")
    note, cfg = form_fields(definition)
    assert note == {
        "key": "note",
        "label": "Note",
        "type": "textarea",
        "required": False,
        "placeholder": "Anything else",
        "maxLength": 200,
    }
    assert cfg == {
        "key": "cfg",
        "label": "Cfg",
        "type": "number",
        "required": False,
        "min": 0,
        "max": 10,
        "step": 0.5,
    }
    assert isinstance(cfg["max"], int)
    assert form_field(definition.fields[0], "zh")["label"] == "note"


@pytest.mark.parametrize(
    ("tag", "language"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-US,zh;q=0.5", "en"),
        ("fr-FR,zh-TW;q=0.8", "zh"),
        ("", "en"),
        (None, "en"),
        ("de", "en"),
    ],
)
def test_language_of_a_tag_or_header(tag: str | None, language: str) -> None:
    assert language_of(tag) == language


def test_an_unavailable_model_says_why() -> None:
    definition = single_model(available=False, unavailable_reason="retired by the provider").model(
        "acme-image"
    )
    state = availability(definition, which=lambda name: f"/usr/bin/{name}")
    assert (state.available, state.reason) == (False, "retired by the provider")


def test_yaml_scalars_follow_yaml_1_2() -> None:
    assert parse_yaml("[16:9, on, no, yes, true, 010, 7, 2.5, 1e3]") == [
        "16:9",
        "on",
        "no",
        "yes",
        True,
        "010",
        7,
        2.5,
        1000.0,
    ]
    with pytest.raises(YamlError, match="line 2: key 'a' appears twice"):
        parse_yaml("a: 1\na: 2\n")
