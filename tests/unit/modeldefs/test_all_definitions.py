"""Every model in every file under `definitions/`, whichever files exist when the suite runs.

The bad values are derived from each definition itself, so a new file is covered with no test to
write: its defaults must validate and price, and its own limits must be enforced.
"""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

import pytest
from aigen.modeldefs.availability import availability
from aigen.modeldefs.form import forms
from aigen.modeldefs.loader import Catalog, packaged_catalog, packaged_sources
from aigen.modeldefs.pricing import quote
from aigen.modeldefs.schema import LANGUAGES, FieldDef, FieldType, ModelDef
from aigen.modeldefs.validation import Invalid, Valid, example_parameters, validate_request
from aigen.modeldefs.yamlfile import parse_yaml


def _slugs() -> list[str]:
    # Read straight from the files, so one broken file still lists its models (and their tests
    # fail with the loader's message) instead of hiding them all.
    slugs = []
    for _, text in packaged_sources():
        try:
            document = parse_yaml(text)
        except ValueError:
            continue
        for entry in (document or {}).get("models") or []:
            if isinstance(entry, dict) and isinstance(entry.get("slug"), str):
                slugs.append(entry["slug"])
    return slugs


SLUGS = _slugs()


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return packaged_catalog()


@pytest.fixture(params=SLUGS)
def model(request: pytest.FixtureRequest, catalog: Catalog) -> ModelDef:
    return catalog.model(request.param)


def _models_where(predicate: Any) -> list[str]:
    """The models a check applies to, chosen at collection (so no test is skipped for lack of a
    field kind); if the catalog cannot load, every model, so the failures show the loader's
    message."""
    try:
        loaded = packaged_catalog()
    except ValueError:
        return SLUGS
    return [slug for slug in SLUGS if predicate(loaded.model(slug))]


def _request(model: ModelDef, parameters: dict[str, Any]) -> Valid | Invalid:
    prompt = "a lighthouse at dusk"[: model.prompt.max_length or None]
    images = ["https://example.com/in.png"] * model.input_images.min
    return validate_request(
        model,
        parameters,
        prompt=prompt,
        number_of_outputs=model.outputs.default,
        input_images=images,
    )


def _reasons(result: Valid | Invalid, field: str) -> list[str]:
    assert isinstance(result, Invalid), f"expected {field} to be refused, got {result}"
    return [v.reason for v in result.violations if v.field == field]


def test_the_packaged_definitions_load() -> None:
    catalog = packaged_catalog()
    assert SLUGS, "no model definitions found"
    assert sorted(catalog.models) == sorted(SLUGS)


def test_defaults_validate_and_have_a_price(model: ModelDef, catalog: Catalog) -> None:
    result = _request(model, example_parameters(model))
    assert isinstance(result, Valid), result
    q = quote(
        model,
        catalog.provider_of(model),
        result.parameters,
        number_of_outputs=result.number_of_outputs,
        prompt="a lighthouse at dusk",
        input_image_count=model.input_images.min,
    )
    assert isinstance(q.usd, Decimal)
    assert q.usd >= 0
    assert q.display
    assert all(isinstance(v, str) for v in q.to_json().values())
    if q.currency == "credits":
        assert q.credits == q.amount


def test_defaults_are_applied_when_nothing_is_sent(model: ModelDef) -> None:
    example = example_parameters(model)
    given = {f.key: example[f.key] for f in model.fields if f.default is None and f.required}
    result = _request(model, given)
    assert isinstance(result, Valid), result
    for f in model.fields:
        if f.default is not None:
            assert result.parameters[f.key] == f.default


def _selects(model: ModelDef) -> list[FieldDef]:
    return [f for f in model.fields if f.type is FieldType.SELECT]


def _bounded_numbers(model: ModelDef) -> list[FieldDef]:
    return [
        f for f in model.fields if f.type is FieldType.NUMBER and (f.min is not None or f.max is not None)
    ]


def _not_an_option(f: FieldDef) -> Any:
    values = [o.value for o in f.options]
    if all(isinstance(v, str) for v in values):
        return "not-one-of-the-options"
    if all(isinstance(v, bool) for v in values):
        return "maybe"
    return max(v for v in values if isinstance(v, int | float)) + 1


@pytest.mark.parametrize("slug", _models_where(lambda m: _selects(m)))
def test_a_value_outside_the_options_is_refused(slug: str, catalog: Catalog) -> None:
    model = catalog.model(slug)
    for f in _selects(model):
        result = _request(model, {**example_parameters(model), f.key: _not_an_option(f)})
        reasons = _reasons(result, f"parameters.{f.key}")
        assert reasons, result
        assert reasons[0].startswith("must be one of "), reasons


@pytest.mark.parametrize("slug", _models_where(lambda m: _bounded_numbers(m)))
def test_a_number_outside_its_range_is_refused(slug: str, catalog: Catalog) -> None:
    model = catalog.model(slug)
    for f in _bounded_numbers(model):
        if f.max is not None:
            result = _request(model, {**example_parameters(model), f.key: f.max + max(f.step or 1, 1)})
            assert _reasons(result, f"parameters.{f.key}") == [f"must be at most {_n(f.max)}"]
        if f.min is not None:
            result = _request(model, {**example_parameters(model), f.key: f.min - max(f.step or 1, 1)})
            assert _reasons(result, f"parameters.{f.key}") == [f"must be at least {_n(f.min)}"]


_WRONG_TYPES = (FieldType.BOOLEAN, FieldType.NUMBER, FieldType.STRING, FieldType.TEXTAREA)


@pytest.mark.parametrize("slug", _models_where(lambda m: any(f.type in _WRONG_TYPES for f in m.fields)))
def test_wrong_types_are_refused(slug: str, catalog: Catalog) -> None:
    model = catalog.model(slug)
    wrong = {
        FieldType.BOOLEAN: ("yes", "must be true or false"),
        FieldType.NUMBER: ("5", "must be a number"),
        FieldType.STRING: (5, "must be text"),
        FieldType.TEXTAREA: (True, "must be text"),
    }
    checked = 0
    for f in model.fields:
        if f.type in wrong:
            value, reason = wrong[f.type]
            result = _request(model, {**example_parameters(model), f.key: value})
            assert _reasons(result, f"parameters.{f.key}") == [reason]
            checked += 1
    assert checked


def test_an_unknown_parameter_is_refused(model: ModelDef) -> None:
    result = _request(model, {**example_parameters(model), "no_such_parameter_zz": 1})
    assert _reasons(result, "parameters.no_such_parameter_zz") == ["unknown parameter"]


def test_output_counts_outside_the_definition_are_refused(model: ModelDef) -> None:
    too_many = model.outputs.max + 1
    result = validate_request(
        model,
        example_parameters(model),
        prompt="x",
        number_of_outputs=too_many,
        input_images=["https://example.com/in.png"] * model.input_images.min,
    )
    reasons = _reasons(result, "number_of_outputs")
    assert reasons, result
    assert reasons[0].startswith(("must be at most", "must be one of")), reasons


def test_too_many_input_images_are_refused(model: ModelDef) -> None:
    images = ["https://example.com/in.png"] * (model.input_images.max + 1)
    result = validate_request(model, example_parameters(model), prompt="x", input_images=images)
    assert _reasons(result, "input_images"), result


@pytest.mark.parametrize("slug", _models_where(lambda m: m.constraints))
def test_cross_field_rules_name_their_field(slug: str, catalog: Catalog) -> None:
    """Where changing one or two choices (and the output count) breaks a rule, the request is
    refused on the rule's field with the rule's message, and nothing else is reported. (Some
    rules can only be broken by values outside these choices; those models refuse nothing here.)"""
    model = catalog.model(slug)
    messages = {(f"parameters.{c.field}", c.message.en) for c in model.constraints}
    choices = []
    for f in model.fields:
        values: list[Any] = [o.value for o in f.options] if f.type is FieldType.SELECT else []
        values += [False, True] if f.type is FieldType.BOOLEAN else []
        choices += [[(f.key, v) for v in values]] if values else []
    changes = [dict([c]) for group in choices for c in group]
    changes += [dict(pair) for a, b in itertools.combinations(choices, 2) for pair in itertools.product(a, b)]
    for change in changes:
        for n in sorted({model.outputs.default, model.outputs.max}):
            result = validate_request(
                model,
                {**example_parameters(model), **change},
                prompt="a lighthouse at dusk",
                number_of_outputs=n,
                input_images=["https://example.com/in.png"] * model.input_images.min,
            )
            if isinstance(result, Invalid):
                assert {(v.field, v.reason) for v in result.violations} <= messages, (change, n, result)


def test_form_fields_round_trip_to_json_in_both_languages(model: ModelDef) -> None:
    by_language = forms(model)
    assert set(by_language) == set(LANGUAGES)
    assert json.loads(json.dumps(by_language, ensure_ascii=False)) == by_language
    for language, fields in by_language.items():
        assert [f["key"] for f in fields] == [f.key for f in model.fields]
        for form_field, f in zip(fields, model.fields, strict=True):
            assert form_field["label"] == f.label.in_language(language)
            assert form_field["type"] == f.type.value
            for o in form_field.get("options", []):
                assert o["label"]
            if "defaultValue" in form_field:
                result = _request(model, {**example_parameters(model), f.key: form_field["defaultValue"]})
                assert isinstance(result, Valid), result


def test_availability_follows_the_definition_and_the_machine(model: ModelDef) -> None:
    missing_everything = availability(model, which=lambda _: None)
    present_everywhere = availability(model, which=lambda name: f"/usr/bin/{name}")
    if not model.available:
        assert not missing_everything.available
        assert missing_everything.reason == model.unavailable_reason
    elif model.requires:
        assert not missing_everything.available
        assert missing_everything.missing == model.requires
        assert all(name in (missing_everything.reason or "") for name in model.requires)
        assert present_everywhere.available
    else:
        assert missing_everything.available
        assert present_everywhere.available


def _n(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
