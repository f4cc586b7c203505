"""A generation request checked and priced against a model's definition, in the wire's terms.

The catalog answers ValidateParameters and QuotePrice with these; the dispatcher runs the same
check on every Generate, on the definition the catalog hands it with the model's dispatch config
(one definition, one validator — and no catalog round trip per submission).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aigen.errors import Violation
from aigen.modeldefs import pricing
from aigen.modeldefs.schema import ModelDef, ProviderDef
from aigen.modeldefs.validation import Invalid, validate_request
from aigen.v1 import common_pb2


@dataclass(frozen=True)
class Checked:
    parameters: dict[str, Any]  # defaults applied
    number_of_outputs: int
    violations: Sequence[Violation]


def check_request(
    model: ModelDef,
    parameters: dict[str, Any],
    *,
    prompt: str | None,
    number_of_outputs: int | None,
    input_images: list[str] | None,
) -> Checked:
    result = validate_request(
        model, parameters, prompt=prompt, number_of_outputs=number_of_outputs, input_images=input_images
    )
    if isinstance(result, Invalid):
        return Checked({}, 0, [Violation(v.field, v.reason) for v in result.violations])
    return Checked(result.parameters, result.number_of_outputs, [])


def price_quote(
    model: ModelDef,
    provider: ProviderDef,
    parameters: dict[str, Any],
    number_of_outputs: int,
    prompt: str,
    images: int,
) -> common_pb2.PriceQuote:
    q = pricing.quote(
        model,
        provider,
        parameters,
        number_of_outputs=number_of_outputs,
        prompt=prompt,
        input_image_count=images,
    )
    return common_pb2.PriceQuote(
        amount=str(q.amount), currency=q.currency, usd=str(q.usd), display=q.text("en")
    )
