"""The price of a request, from the model definition's pricing expression.

The expression gives the price of the whole request in the pricing currency (provider credits or
US dollars). Credits become dollars at the provider's `credit_usd`. Amounts are Decimal, rounded
to a millionth: the expression language computes in floats, and rounding there removes binary
noise (2.8 * 3 = 8.399999999999999 → 8.4) without touching any price a provider publishes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from aigen.modeldefs.bindings import bind
from aigen.modeldefs.expr import ExprError, evaluate
from aigen.modeldefs.formatting import decimal_text, tidy, to_decimal
from aigen.modeldefs.schema import Language, ModelDef, ProviderDef, Text
from aigen.modeldefs.validation import example_parameters

Currency = Literal["credits", "usd"]

_CREDITS_WORD = {"en": ("Credit", "Credits"), "zh": ("积分", "积分")}


class PricingError(ValueError):
    """The definition cannot price these (already validated) parameters: a definition bug."""


@dataclass(frozen=True)
class Quote:
    amount: Decimal  # in `currency`
    currency: Currency
    credits: Decimal | None  # the amount, when the price is in credits
    usd: Decimal
    display: str  # "6 Credits ≈ $0.030", "$0.040"
    unit_note: Text | None  # "per request", "per image" …
    confirmed: bool  # the price was checked against the provider's published prices

    def text(self, language: Language = "en") -> str:
        """The price with its unit note, in one language: "6 Credits ≈ $0.030 per request"."""
        core = _display(self.amount, self.currency, self.usd, language)
        note = self.unit_note.in_language(language).strip() if self.unit_note else ""
        if not note:
            return core
        # "per image" reads on from the price; a longer explanation goes in brackets.
        return f"{core} {note}" if note.startswith(("per ", "每")) else f"{core} ({note})"

    def to_json(self) -> dict[str, str]:
        """The PriceQuote message's shape: decimal strings, never floats."""
        return {
            "amount": str(self.amount),
            "currency": self.currency,
            "usd": str(self.usd),
            "display": self.display,
        }


@dataclass(frozen=True)
class Charge:
    """What a provider reported charging, with its value in dollars when it can be known."""

    amount: Decimal
    currency: str
    usd: Decimal | None

    def to_json(self) -> dict[str, str]:
        return {
            "amount": str(self.amount),
            "currency": self.currency,
            "usd": "" if self.usd is None else str(self.usd),
        }


def quote(
    model: ModelDef,
    provider: ProviderDef,
    parameters: Mapping[str, Any],
    *,
    number_of_outputs: int,
    prompt: str = "",
    input_image_count: int = 0,
) -> Quote:
    """Price of a request whose parameters have passed validation (defaults applied)."""
    names = bind(model, parameters, n=number_of_outputs, prompt_chars=len(prompt), images=input_image_count)
    amount = price_amount(model, names)
    currency: Currency = model.pricing.currency
    if currency == "credits":
        usd = credits_to_usd(provider, amount)
        credits: Decimal | None = amount
    else:
        usd, credits = amount, None
    return Quote(
        amount=amount,
        currency=currency,
        credits=credits,
        usd=usd,
        display=_display(amount, currency, usd, "en"),
        unit_note=model.pricing.unit_note,
        confirmed=model.pricing.confirmed,
    )


def quote_defaults(model: ModelDef, provider: ProviderDef, *, prompt: str = "") -> Quote:
    """The price a catalog lists for a model: its defaults, default output count, fewest images."""
    return quote(
        model,
        provider,
        example_parameters(model),
        number_of_outputs=model.outputs.default,
        prompt=prompt,
        input_image_count=model.input_images.min,
    )


def price_amount(model: ModelDef, names: Mapping[str, Any]) -> Decimal:
    """The pricing expression's value for bound names, checked to be a non-negative number."""
    try:
        value = evaluate(model.pricing.expr, names)
    except ExprError as exc:
        raise PricingError(f"model {model.slug}: price cannot be computed: {exc}") from None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise PricingError(f"model {model.slug}: price must be a number, got {value!r}")
    amount = tidy(to_decimal(value))
    if not amount.is_finite() or amount < 0:
        raise PricingError(f"model {model.slug}: price must be zero or more, got {value!r}")
    return amount


def credits_to_usd(provider: ProviderDef, credits: Decimal | float | int | str) -> Decimal:
    if provider.credit_usd is None:
        raise PricingError(f"provider {provider.slug} does not say what a credit costs (credit_usd)")
    return tidy(to_decimal(credits) * to_decimal(provider.credit_usd))


def charge(provider: ProviderDef, amount: Decimal | float | int | str, currency: str) -> Charge:
    """A provider-reported cost (e.g. Kie's `consumeCredits: 100`) in dollars, priced like quotes.

    Units we cannot convert (ElevenLabs characters, credits of a provider without `credit_usd`)
    keep `usd` None rather than guessing.
    """
    value = tidy(to_decimal(amount))
    unit = currency.lower()
    if unit == "usd":
        return Charge(value, unit, value)
    if unit == "credits" and provider.credit_usd is not None:
        return Charge(value, unit, credits_to_usd(provider, value))
    return Charge(value, unit, None)


def usd_text(usd: Decimal) -> str:
    """Dollars as the seed shows them: three decimals under a dollar ($0.030), two above ($1.25),
    more only when the amount has them ($0.0175)."""
    return "$" + decimal_text(usd, 3 if usd < 1 else 2)


def _display(amount: Decimal, currency: Currency, usd: Decimal, language: Language) -> str:
    if currency == "usd":
        return usd_text(usd)
    one, many = _CREDITS_WORD[language]
    word = one if amount == 1 else many
    return f"{decimal_text(amount)} {word} ≈ {usd_text(usd)}"
