"""Each kind of bad definition stops loading with its file, its entry, the place and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from aigen.modeldefs.loader import (
    DefinitionError,
    DefinitionProblem,
    UnknownModelError,
    extra_dirs_from_env,
    load_catalog,
    packaged_catalog,
)

from tests.unit.modeldefs.snippets import (
    MODEL,
    PLATFORM,
    PROVIDER,
    catalog_of,
    document,
    field,
    model,
    option,
    problems_of,
    write,
)


def only(problems: tuple[DefinitionProblem, ...]) -> DefinitionProblem:
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


def bad_model(**changes: object) -> DefinitionProblem:
    return only(problems_of(acme=document(model(**changes))))


def test_a_good_snippet_loads() -> None:
    catalog = catalog_of(acme=document())
    assert list(catalog.models) == ["acme-image"]
    assert catalog.provider_of("acme-image").slug == "acme"
    assert catalog.platform_of("acme").website == "https://acme.example"
    assert catalog.models_of("acme") == [catalog.model("acme-image")]
    assert catalog.source_of("model", "acme-image") == "acme.yaml"


def test_an_unknown_slug_suggests_a_close_one() -> None:
    with pytest.raises(
        UnknownModelError, match=r"no model 'acme-imag' is defined \(did you mean acme-image\?\)"
    ):
        catalog_of(acme=document()).model("acme-imag")


def test_a_schema_violation_names_the_field_by_its_key() -> None:
    problem = bad_model(fields=[field("size", "slider", default="1:1")])
    assert (problem.file, problem.kind, problem.slug, problem.model) == (
        "acme.yaml",
        "model",
        "acme-image",
        "acme-image",
    )
    assert problem.field == "fields[size].type"
    assert "'string', 'number', 'boolean', 'select' or 'textarea'" in problem.reason
    assert str(problem).startswith("acme.yaml: model acme-image: fields[size].type: Input should be")


def test_an_unknown_setting_is_reported_where_it_is() -> None:
    problem = bad_model(fields=[{**MODEL["fields"][0], "defualt": "1:1"}])
    assert (problem.field, problem.reason) == ("fields[size].defualt", "is not a known setting")


def test_a_missing_setting_is_reported() -> None:
    bare = model()
    del bare["pricing"]
    problem = only(problems_of(acme=document(bare)))
    assert (problem.slug, problem.field, problem.reason) == ("acme-image", "pricing", "is required")


def test_a_rule_of_the_schema_is_reported_with_its_reason() -> None:
    problem = bad_model(fields=[field("size", "select", default="4:3", options=[option("1:1")])])
    assert problem.field == "fields[size]"
    assert problem.reason == "default of 'size' is not one of its options"


def test_an_unquoted_ratio_is_a_string_not_base_sixty() -> None:
    text = document().replace("value: '16:9'", "value: 16:9")
    assert "value: 16:9" in text
    catalog = catalog_of(acme=text)
    assert [o.value for o in catalog.model("acme-image").fields[0].options] == ["1:1", "16:9"]


def test_options_of_mixed_kinds_are_refused() -> None:
    problem = bad_model(fields=[field("duration", "select", default=5, options=[option(5), option("10")])])
    assert problem.reason == "options of 'duration' mix number and string values: quote them alike"


def test_unparseable_yaml_gives_the_line() -> None:
    problem = only(problems_of(acme="platform:\n  slug: [acme\nproviders: []\n"))
    assert problem.file == "acme.yaml"
    assert problem.kind is None
    assert problem.reason.startswith("is not valid YAML: line 3:")


def test_a_key_written_twice_is_refused() -> None:
    text = document().replace("  name: Acme Image\n", "  name: Acme Image\n  name: Acme Picture\n")
    problem = only(problems_of(acme=text))
    assert problem.reason.startswith("is not valid YAML: line ")
    assert "key 'name' appears twice in the same mapping" in problem.reason


def test_a_file_must_be_a_mapping_with_known_keys() -> None:
    assert (
        only(problems_of(acme="- a\n- b\n")).reason
        == "must be a mapping with keys platform, providers and models"
    )
    problem = only(problems_of(acme=document() + "extras: 1\n"))
    assert problem.reason == "unknown top-level key 'extras' (expected platform, providers, models)"


def test_a_model_defined_twice_names_both_files() -> None:
    problem = only(problems_of(acme=document(), more=document(platform=None, providers=[])))
    assert (problem.file, problem.slug, problem.field) == ("more.yaml", "acme-image", "slug")
    assert problem.reason == "is already defined in acme.yaml"


def test_a_provider_defined_twice_is_refused() -> None:
    other = document(model(slug="acme-other"), platform=None)
    problem = only(problems_of(acme=document(), more=other))
    assert (problem.file, problem.kind, problem.slug) == ("more.yaml", "provider", "acme")
    assert problem.reason == "is already defined in acme.yaml"


def test_an_unknown_provider_is_refused_with_a_suggestion() -> None:
    problem = bad_model(provider="acmee")
    assert (problem.slug, problem.field) == ("acme-image", "provider")
    assert problem.reason == "names provider 'acmee', which is not defined (did you mean acme?)"


def test_an_unknown_platform_is_refused() -> None:
    problem = only(problems_of(acme=document(providers=[{**PROVIDER, "platform": "nowhere"}])))
    assert (problem.kind, problem.slug, problem.field) == ("provider", "acme", "platform")
    assert problem.reason == "names platform 'nowhere', which is not defined"


def test_an_unknown_alternative_is_refused() -> None:
    problem = bad_model(alternatives=["acme-imagine"])
    assert problem.field == "alternatives[0]"
    assert problem.reason == "names model 'acme-imagine', which is not defined (did you mean acme-image?)"


def test_an_alternative_must_be_another_model_of_the_same_output() -> None:
    assert bad_model(alternatives=["acme-image"]).reason == "names the model itself"
    video = model(slug="acme-video", output_type="VIDEO")
    problem = only(problems_of(acme=document(model(alternatives=["acme-video"]), video)))
    assert (problem.slug, problem.reason) == ("acme-image", "acme-video makes VIDEO, not IMAGE")


def test_an_alternative_in_another_file_resolves() -> None:
    other = document(
        model(slug="other-image"),
        platform={**PLATFORM, "slug": "other"},
        providers=[{**PROVIDER, "slug": "other", "platform": "other"}],
    )
    catalog = catalog_of(
        acme=document(model(alternatives=["other-image"])),
        other=other.replace("provider: acme\n", "provider: other\n"),
    )
    assert catalog.model("acme-image").alternatives == ("other-image",)


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("{'1:1': 4", "cannot parse"),
        ("size.__class__", "Attribute is not allowed"),
        ("open('x')", "may be called"),
        ("[x for x in (1, 2)]", "ListComp is not allowed"),
    ],
)
def test_a_price_that_does_not_parse_is_refused(expr: str, reason: str) -> None:
    problem = bad_model(pricing={"currency": "credits", "expr": expr})
    assert problem.field == "pricing.expr"
    assert reason in problem.reason


def test_a_price_may_only_use_fields_and_request_names() -> None:
    problem = bad_model(pricing={"currency": "credits", "expr": "4 * sizes"})
    assert problem.field == "pricing.expr"
    assert problem.reason == (
        "uses 'sizes', which is neither a field key nor one of n, prompt_chars, images (did you mean size?)"
    )


def test_a_rule_may_only_use_fields_and_request_names() -> None:
    rule = {"field": "size", "rule": "duration < 10", "message": {"en": "No.", "zh": "不行。"}}
    problem = bad_model(constraints=[rule])
    assert problem.field == "constraints[0].rule"
    assert problem.reason.startswith("uses 'duration', which is neither a field key")


def test_a_rule_on_an_unknown_field_is_refused() -> None:
    rule = {"field": "colour", "rule": "True", "message": {"en": "No.", "zh": "不行。"}}
    assert "constraint names unknown field 'colour'" in bad_model(constraints=[rule]).reason


def test_a_price_that_fails_on_the_defaults_is_refused() -> None:
    problem = bad_model(pricing={"currency": "credits", "expr": "{'16:9': 6}[size]"})
    assert problem.field == "pricing.expr"
    assert problem.reason.startswith("price cannot be computed:")
    assert problem.reason.endswith("(on the defaults)")


def test_a_price_that_fails_for_one_option_is_refused() -> None:
    problem = bad_model(pricing={"currency": "credits", "expr": "{'1:1': 4}[size]"})
    assert problem.field == "pricing.expr"
    assert problem.reason.endswith("(with size=16:9)")


def test_a_price_that_fails_for_an_output_count_is_refused() -> None:
    problem = bad_model(
        pricing={"currency": "credits", "expr": "{1: 6, 2: 7}[n]"},
        outputs={"default": 1, "max": 4, "allowed": [1, 2, 4]},
    )
    assert problem.reason.endswith("(with n=4)")


def test_a_choice_the_rules_forbid_need_not_have_a_price() -> None:
    rule = {"field": "size", "rule": "size != '16:9'", "message": {"en": "Not yet.", "zh": "暂不支持。"}}
    catalog = catalog_of(
        acme=document(model(pricing={"currency": "credits", "expr": "{'1:1': 4}[size]"}, constraints=[rule]))
    )
    assert "acme-image" in catalog.models


@pytest.mark.parametrize(
    ("expr", "reason"), [("'four'", "price must be a number"), ("-1", "price must be zero or more")]
)
def test_a_price_must_be_a_non_negative_number(expr: str, reason: str) -> None:
    assert reason in bad_model(pricing={"currency": "usd", "expr": expr}).reason


def test_credits_need_the_providers_credit_price() -> None:
    problem = only(problems_of(acme=document(providers=[{**PROVIDER, "credit_usd": None}])))
    assert (problem.field, problem.reason) == (
        "pricing.currency",
        "is credits, but provider acme does not set credit_usd",
    )


def test_a_default_that_validation_would_refuse_is_refused() -> None:
    problem = bad_model(fields=[*MODEL["fields"], field("steps", "number", default=2.5, integer=True)])
    assert (problem.field, problem.reason) == ("fields[steps].default", "the default must be a whole number")


def test_defaults_that_break_a_rule_are_refused() -> None:
    rule = {"field": "size", "rule": "size == '16:9'", "message": {"en": "Wide only.", "zh": "仅宽屏。"}}
    problem = bad_model(constraints=[rule])
    assert (problem.field, problem.reason) == ("constraints[0].rule", "is not met by the defaults")


def test_a_field_may_not_take_a_request_name() -> None:
    problem = bad_model(fields=[*MODEL["fields"], field("n", "number", default=1)])
    assert problem.field == "fields[n]"
    assert "reserved" in problem.reason
    assert "outputs.parameter" in problem.reason


def test_allowed_output_counts_must_fit_min_and_max() -> None:
    problem = bad_model(outputs={"default": 1, "max": 2, "allowed": [1, 4]})
    assert (problem.field, problem.reason) == ("outputs.allowed", "[4] lie outside min..max (1..2)")


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(DefinitionError) as caught:
        catalog_of(
            acme=document(
                model(provider="nobody"), model(slug="acme-two", pricing={"currency": "usd", "expr": "x"})
            ),
            broken="platform: [",
        )
    message = str(caught.value)
    assert message.startswith("3 problems in model definitions:\n")
    assert "  acme.yaml: model acme-image: provider: names provider 'nobody'" in message
    assert "  acme.yaml: model acme-two: pricing.expr: uses 'x'" in message
    assert "  broken.yaml: is not valid YAML" in message


def test_extra_directories_add_to_the_packaged_definitions(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", document())
    write(tmp_path, "notes.txt", "not a definition")
    catalog = load_catalog([tmp_path])
    assert "acme-image" in catalog.models
    assert set(packaged_catalog().models) < set(catalog.models)
    assert catalog.source_of("model", "acme-image") == str(tmp_path / "acme.yaml")


def test_a_bad_extra_file_names_its_path(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", document(model(provider="nobody")))
    with pytest.raises(DefinitionError) as caught:
        load_catalog([tmp_path])
    assert only(caught.value.problems).file == str(tmp_path / "acme.yaml")


def test_a_missing_extra_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="is not a directory of definition files"):
        load_catalog([tmp_path / "absent"])


def test_extra_directories_from_the_environment(tmp_path: Path) -> None:
    value = f"{tmp_path / 'a'}:{tmp_path / 'b'}:"
    assert extra_dirs_from_env({"AIGEN_MODEL_DEFINITIONS": value}) == [tmp_path / "a", tmp_path / "b"]
    assert extra_dirs_from_env({}) == []


def test_the_packaged_catalog_is_loaded_once() -> None:
    assert packaged_catalog() is packaged_catalog()
    assert load_catalog() is packaged_catalog()


def test_the_catalog_cannot_be_changed() -> None:
    with pytest.raises(TypeError):
        packaged_catalog().models["x"] = packaged_catalog().model("kie-4o-image")  # type: ignore[index]
