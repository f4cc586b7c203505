from __future__ import annotations

from typing import Any

import pytest
from aigen.modeldefs.loader import packaged_catalog
from aigen.modeldefs.schema import ModelDef
from aigen.modeldefs.validation import FieldViolation, Invalid, Valid, Validation, validate_request
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.modeldefs.snippets import field, option, single_model

FIELDS = [
    field(
        "ratio", "select", default="1:1", required=True, options=[option("1:1"), option("3:2"), option("2:3")]
    ),
    field("count", "select", default="5", options=[option("5"), option("10"), option("2.5")]),
    field("duration", "select", default=5, options=[option(5), option(10)]),
    field("steps", "number", default=20, min=1, max=50, integer=True),
    field("length", "number", default=5, min=5, max=20, step=5),
    field("guidance", "number", default=3.5, min=0, max=10, step=0.1),
    field("enhance", "boolean", default=False),
    field("negative", "textarea", max_length=20),
    field("image_url", "string", required=True, placeholder="https://example.com/a.png"),
    # Keys that are also pydantic's own attribute names must still work as parameter names.
    field("json", "boolean", default=True),
    field("model_config", "string", default="x"),
]
RULE = {
    "field": "length",
    "rule": "not (length > 10 and ratio == '2:3')",
    "message": {"en": "Portrait clips are at most 10 seconds long.", "zh": "竖屏视频最长 10 秒。"},
}


@pytest.fixture(scope="module")
def definition() -> ModelDef:
    return single_model(
        fields=FIELDS,
        constraints=[RULE],
        pricing={"currency": "credits", "expr": "steps + length"},
        prompt={"required": True, "max_length": 30},
        outputs={"default": 1, "min": 1, "max": 4, "allowed": [1, 2, 4]},
        input_images={"min": 0, "max": 2},
    ).model("acme-image")


def check(definition: ModelDef, parameters: Any = None, **request: Any) -> Validation:
    request.setdefault("prompt", "a cat")
    base = {"image_url": "https://example.com/a.png"}
    if isinstance(parameters, dict):
        parameters = {**base, **parameters}
    elif parameters is None:
        parameters = base
    return validate_request(definition, parameters, **request)


def refused(result: Validation) -> list[tuple[str, str]]:
    assert isinstance(result, Invalid), f"expected a refusal, got {result}"
    return [(v.field, v.reason) for v in result.violations]


def accepted(result: Validation) -> dict[str, Any]:
    assert isinstance(result, Valid), f"expected acceptance, got {result}"
    return result.parameters


def test_defaults_are_applied_in_the_definition_order(definition: ModelDef) -> None:
    result = check(definition)
    assert isinstance(result, Valid)
    assert result.number_of_outputs == 1
    assert list(result.parameters.items()) == [
        ("ratio", "1:1"),
        ("count", "5"),
        ("duration", 5),
        ("steps", 20),
        ("length", 5),
        ("guidance", 3.5),
        ("enhance", False),
        ("image_url", "https://example.com/a.png"),
        ("json", True),
        ("model_config", "x"),
    ]


def test_messages_name_the_field_as_sent(definition: ModelDef) -> None:
    result = check(
        definition,
        {"ratio": "4:3", "steps": 51, "length": 0, "enhance": "yes", "negative": "n" * 21, "colour": "red"},
        prompt="",
        number_of_outputs=3,
        input_images=["a", "b", "c"],
    )
    assert refused(result) == [
        ("parameters.ratio", "must be one of 1:1, 3:2, 2:3"),
        ("parameters.steps", "must be at most 50"),
        ("parameters.length", "must be at least 5"),
        ("parameters.enhance", "must be true or false"),
        ("parameters.negative", "must be at most 20 characters (it has 21)"),
        ("parameters.colour", "unknown parameter"),
        ("prompt", "is required"),
        ("input_images", "must have at most 2 images (it has 3)"),
        ("number_of_outputs", "must be one of 1, 2, 4"),
    ]
    assert isinstance(result, Invalid)
    assert result.violations[0].to_json() == {
        "field": "parameters.ratio",
        "reason": "must be one of 1:1, 3:2, 2:3",
    }


def test_a_close_misspelling_is_pointed_out(definition: ModelDef) -> None:
    assert refused(check(definition, {"ration": "1:1"})) == [
        ("parameters.ration", "unknown parameter (did you mean ratio?)")
    ]


def test_a_required_field_must_be_sent(definition: ModelDef) -> None:
    assert refused(validate_request(definition, {}, prompt="a cat")) == [
        ("parameters.image_url", "is required")
    ]
    assert refused(check(definition, {"image_url": None})) == [("parameters.image_url", "is required")]
    assert refused(check(definition, {"image_url": "  "})) == [("parameters.image_url", "must not be empty")]


def test_null_means_not_given(definition: ModelDef) -> None:
    parameters = accepted(check(definition, {"steps": None, "negative": None}))
    assert parameters["steps"] == 20
    assert "negative" not in parameters


def test_a_string_option_accepts_the_same_number(definition: ModelDef) -> None:
    assert accepted(check(definition, {"count": 10}))["count"] == "10"
    assert accepted(check(definition, {"count": 10.0}))["count"] == "10"
    assert accepted(check(definition, {"count": 2.5}))["count"] == "2.5"
    assert refused(check(definition, {"count": 7})) == [("parameters.count", "must be one of 5, 10, 2.5")]
    assert refused(check(definition, {"count": True})) == [("parameters.count", "must be one of 5, 10, 2.5")]


def test_a_number_option_takes_numbers_only(definition: ModelDef) -> None:
    parameters = accepted(check(definition, {"duration": 10.0}))
    assert parameters["duration"] == 10
    assert isinstance(parameters["duration"], int)
    assert refused(check(definition, {"duration": "10"})) == [("parameters.duration", "must be one of 5, 10")]
    assert refused(check(definition, {"duration": True})) == [("parameters.duration", "must be one of 5, 10")]


def test_whole_numbers(definition: ModelDef) -> None:
    parameters = accepted(check(definition, {"steps": 30.0}))
    assert parameters["steps"] == 30
    assert isinstance(parameters["steps"], int)
    assert refused(check(definition, {"steps": 2.5})) == [("parameters.steps", "must be a whole number")]
    assert refused(check(definition, {"steps": "30"})) == [("parameters.steps", "must be a number")]
    assert refused(check(definition, {"steps": True})) == [("parameters.steps", "must be a number")]
    assert refused(check(definition, {"steps": float("nan")})) == [("parameters.steps", "must be a number")]


def test_a_whole_step_is_a_rule_and_a_fractional_one_is_not(definition: ModelDef) -> None:
    assert accepted(check(definition, {"length": 15}))["length"] == 15
    assert refused(check(definition, {"length": 7})) == [
        ("parameters.length", "must be 5 plus a multiple of 5")
    ]
    assert accepted(check(definition, {"guidance": 3.55}))["guidance"] == 3.55


def test_booleans_are_strict(definition: ModelDef) -> None:
    assert accepted(check(definition, {"enhance": True}))["enhance"] is True
    for value in ("yes", "true", 1, 0):
        assert refused(check(definition, {"enhance": value})) == [
            ("parameters.enhance", "must be true or false")
        ]


def test_text_must_be_text(definition: ModelDef) -> None:
    assert refused(check(definition, {"negative": 5})) == [("parameters.negative", "must be text")]


def test_pydantic_attribute_names_are_ordinary_keys(definition: ModelDef) -> None:
    parameters = accepted(check(definition, {"json": False, "model_config": "y"}))
    assert parameters["json"] is False
    assert parameters["model_config"] == "y"


def test_cross_field_rules_run_on_valid_fields(definition: ModelDef) -> None:
    assert refused(check(definition, {"length": 15, "ratio": "2:3"})) == [
        ("parameters.length", "Portrait clips are at most 10 seconds long.")
    ]
    # While a field itself is wrong, the rule is not judged (its inputs are unknown).
    assert refused(check(definition, {"length": 16, "ratio": "2:3"})) == [
        ("parameters.length", "must be 5 plus a multiple of 5")
    ]


def test_parameters_must_be_an_object(definition: ModelDef) -> None:
    assert refused(check(definition, ["ratio"])) == [
        ("parameters", "must be an object of parameter names to values")
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 1), (0, 1), (2, 2), (4.0, 4)],
)
def test_number_of_outputs_defaults_and_converts(definition: ModelDef, value: Any, expected: int) -> None:
    result = check(definition, number_of_outputs=value)
    assert isinstance(result, Valid)
    assert result.number_of_outputs == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (3, "must be one of 1, 2, 4"),
        (1.5, "must be a whole number"),
        ("2", "must be a whole number"),
        (True, "must be a whole number"),
    ],
)
def test_number_of_outputs_is_checked(definition: ModelDef, value: Any, reason: str) -> None:
    assert refused(check(definition, number_of_outputs=value)) == [("number_of_outputs", reason)]


def test_outputs_without_a_list_use_min_and_max() -> None:
    ranged = single_model(outputs={"default": 1, "min": 1, "max": 3}).model("acme-image")
    assert refused(validate_request(ranged, {}, prompt="x", number_of_outputs=4)) == [
        ("number_of_outputs", "must be at most 3")
    ]
    assert refused(validate_request(ranged, {}, prompt="x", number_of_outputs=-1)) == [
        ("number_of_outputs", "must be at least 1")
    ]


def test_prompt_rules(definition: ModelDef) -> None:
    assert refused(check(definition, prompt=None)) == [("prompt", "is required")]
    assert refused(check(definition, prompt="   ")) == [("prompt", "is required")]
    assert refused(check(definition, prompt=42)) == [("prompt", "must be text")]
    assert refused(check(definition, prompt="x" * 31)) == [
        ("prompt", "must be at most 30 characters (it has 31)")
    ]
    optional = single_model(prompt={"required": False}).model("acme-image")
    assert accepted(validate_request(optional, {}, prompt=None)) == {"size": "1:1"}


def test_input_image_rules(definition: ModelDef) -> None:
    assert accepted(
        check(definition, input_images=["https://example.com/a.png", "data:image/png;base64,AAAA"])
    )
    assert refused(check(definition, input_images=["ok", ""])) == [
        ("input_images[1]", "must be an image URL or data URI")
    ]
    assert refused(check(definition, input_images="https://example.com/a.png")) == [
        ("input_images", "must be a list of image URLs or data URIs")
    ]
    none_taken = single_model().model("acme-image")
    assert refused(validate_request(none_taken, {}, prompt="x", input_images=["a"])) == [
        ("input_images", "must be empty: this model takes no input images")
    ]
    needs_one = single_model(input_images={"min": 1, "max": 1}).model("acme-image")
    assert refused(validate_request(needs_one, {}, prompt="x")) == [
        ("input_images", "must have at least 1 image")
    ]


def test_the_validator_is_built_once_per_definition(definition: ModelDef) -> None:
    from aigen.modeldefs.validation import _parameters_model

    assert _parameters_model(definition.fields) is _parameters_model(definition.fields)


def test_a_violation_reads_as_a_sentence() -> None:
    assert (
        str(FieldViolation("parameters.size", "must be at most 10")) == "parameters.size must be at most 10"
    )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    slug=st.sampled_from(sorted(packaged_catalog().models)),
    parameters=JSON,
    extra=st.dictionaries(st.text(max_size=12), JSON, max_size=4),
    prompt=JSON,
    outputs=JSON,
    images=JSON,
)
def test_no_request_makes_validation_raise(
    slug: str, parameters: Any, extra: dict[str, Any], prompt: Any, outputs: Any, images: Any
) -> None:
    definition = packaged_catalog().model(slug)
    # Mix real keys in, so values reach every field's checks and not only "unknown parameter".
    keys = [f.key for f in definition.fields]
    mixed = {keys[i % len(keys)]: v for i, v in enumerate(extra.values())} if keys else extra
    for sent in (parameters, mixed):
        result = validate_request(
            definition, sent, prompt=prompt, number_of_outputs=outputs, input_images=images
        )
        assert isinstance(result, Valid | Invalid)
        if isinstance(result, Invalid):
            assert result.violations
            assert all(v.field and v.reason for v in result.violations)
