from __future__ import annotations

from decimal import Decimal

import pytest
from aigen.modeldefs.loader import packaged_catalog
from aigen.modeldefs.pricing import PricingError, charge, credits_to_usd, quote, quote_defaults, usd_text
from aigen.modeldefs.validation import Valid, validate_request

from tests.unit.modeldefs.snippets import PROVIDER, catalog_of, document, field, model, option


@pytest.mark.parametrize(
    ("outputs", "credits", "usd", "display"),
    [
        (1, "6", "0.030", "6 Credits ≈ $0.030"),
        (2, "7", "0.035", "7 Credits ≈ $0.035"),
        (4, "8", "0.040", "8 Credits ≈ $0.040"),
    ],
)
def test_kie_4o_image_costs_what_the_seed_says(outputs: int, credits: str, usd: str, display: str) -> None:
    catalog = packaged_catalog()
    m = catalog.model("kie-4o-image")
    checked = validate_request(m, {}, prompt="a cat", number_of_outputs=outputs)
    assert isinstance(checked, Valid)
    q = quote(m, catalog.provider_of(m), checked.parameters, number_of_outputs=checked.number_of_outputs)
    assert q.currency == "credits"
    assert q.amount == q.credits == Decimal(credits)
    assert q.usd == Decimal(usd)
    assert q.display == display
    assert q.text("en") == f"{display} per request"
    assert q.text("zh") == f"{credits} 积分 ≈ ${usd} 每次请求"
    assert q.to_json() == {
        "amount": credits,
        "currency": "credits",
        "usd": str(Decimal(usd).normalize()),
        "display": display,
    }


def test_a_kie_credit_is_half_a_cent() -> None:
    kie = packaged_catalog().providers["kie"]
    assert credits_to_usd(kie, 1) == Decimal("0.005")
    assert credits_to_usd(kie, 200) == Decimal("1")


def test_a_reported_charge_is_converted_like_a_quote() -> None:
    kie = packaged_catalog().providers["kie"]
    reported = charge(kie, 100, "credits")
    assert reported.amount == Decimal(100)
    assert reported.usd == Decimal("0.5")
    assert reported.to_json() == {"amount": "100", "currency": "credits", "usd": "0.5"}
    assert charge(kie, 0.12, "usd").usd == Decimal("0.12")
    # A unit we cannot price stays unpriced rather than guessed.
    assert charge(kie, 1200, "characters").usd is None


def test_credits_of_a_provider_without_a_credit_price_are_not_guessed() -> None:
    catalog = catalog_of(
        acme=document(
            model(pricing={"currency": "usd", "expr": "0.02"}), providers=[{**PROVIDER, "credit_usd": None}]
        )
    )
    provider = catalog.providers["acme"]
    assert charge(provider, 10, "credits").usd is None
    with pytest.raises(PricingError, match="credit_usd"):
        credits_to_usd(provider, 10)


def test_float_noise_never_reaches_the_amount() -> None:
    # 2.8 * 3 is 8.399999999999999 in floating point; a credit price is never that.
    catalog = catalog_of(
        acme=document(
            model(pricing={"currency": "credits", "expr": "2.8 * n"}, outputs={"default": 3, "max": 4})
        )
    )
    m = catalog.model("acme-image")
    q = quote(m, catalog.providers["acme"], {"size": "1:1"}, number_of_outputs=3)
    assert q.amount == Decimal("8.4")
    assert str(q.amount) == "8.4"
    assert q.usd == Decimal("0.084")
    assert q.display == "8.4 Credits ≈ $0.084"


def test_a_dollar_price_and_its_note() -> None:
    m = model(
        pricing={"currency": "usd", "expr": "0.04 * n", "unit_note": {"en": "per image", "zh": "每张"}},
        outputs={"default": 1, "max": 4},
    )
    catalog = catalog_of(acme=document(m))
    q = quote(catalog.model("acme-image"), catalog.providers["acme"], {"size": "1:1"}, number_of_outputs=1)
    assert (q.currency, q.credits, q.usd) == ("usd", None, Decimal("0.04"))
    assert q.display == "$0.040"
    assert q.text() == "$0.040 per image"
    assert q.text("zh") == "$0.040 每张"


def test_a_longer_note_goes_in_brackets() -> None:
    note = {"en": "estimate; the provider reports the charge", "zh": "估算"}
    catalog = catalog_of(acme=document(model(pricing={"currency": "usd", "expr": "1.25", "unit_note": note})))
    q = quote(catalog.model("acme-image"), catalog.providers["acme"], {"size": "1:1"}, number_of_outputs=1)
    assert q.text() == "$1.25 (estimate; the provider reports the charge)"


def test_the_price_may_use_the_prompt_length_and_image_count() -> None:
    m = model(
        pricing={"currency": "credits", "expr": "prompt_chars + 10 * images"},
        input_images={"min": 0, "max": 3},
        fields=[field("seed", "number", integer=True)],
    )
    catalog = catalog_of(acme=document(m))
    q = quote(
        catalog.model("acme-image"),
        catalog.providers["acme"],
        {},
        number_of_outputs=1,
        prompt="hello",
        input_image_count=2,
    )
    assert q.amount == Decimal(25)
    assert q.display == "25 Credits ≈ $0.250"


def test_one_credit_is_singular() -> None:
    catalog = catalog_of(acme=document(model(pricing={"currency": "credits", "expr": "1"})))
    q = quote(catalog.model("acme-image"), catalog.providers["acme"], {"size": "1:1"}, number_of_outputs=1)
    assert q.display == "1 Credit ≈ $0.010"


def test_an_option_value_keeps_its_type_in_the_price() -> None:
    # Numeric options given as 10.0 (as a protobuf Struct sends them) still price as 10.
    m = model(
        fields=[field("duration", "select", default=5, options=[option(5), option(10)])],
        pricing={"currency": "credits", "expr": "{5: 25, 10: 50}[duration]"},
    )
    catalog = catalog_of(acme=document(m))
    definition = catalog.model("acme-image")
    checked = validate_request(definition, {"duration": 10.0}, prompt="x")
    assert isinstance(checked, Valid)
    assert checked.parameters == {"duration": 10}
    q = quote(definition, catalog.providers["acme"], checked.parameters, number_of_outputs=1)
    assert q.amount == 50


@pytest.mark.parametrize(
    ("usd", "text"),
    [
        ("0.03", "$0.030"),
        ("0.0175", "$0.0175"),
        ("0", "$0.000"),
        ("1.25", "$1.25"),
        ("12", "$12.00"),
        ("0.0000004", "$0.000"),
    ],
)
def test_dollars_read_as_in_the_seed(usd: str, text: str) -> None:
    assert usd_text(Decimal(usd)) == text


def test_the_listed_price_is_the_price_of_the_defaults() -> None:
    catalog = packaged_catalog()
    m = catalog.model("kie-4o-image")
    assert quote_defaults(m, catalog.provider_of(m)).display == "6 Credits ≈ $0.030"
