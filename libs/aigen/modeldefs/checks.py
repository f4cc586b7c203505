"""Rules a model definition must meet beyond its schema, checked once when definitions load.

Each check returns problems as (where in the model, reason) pairs; the loader adds the file and
the slug. The aim is that a definition which loads can always validate and price its requests:
expressions parse and name only what exists, the defaults pass the model's own validation, and
the price can be computed for every option the form offers.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Iterator
from typing import Any

from aigen.modeldefs.bindings import REQUEST_NAMES, allowed_names, bind
from aigen.modeldefs.expr import ExprError, compile_expr, evaluate, names_used
from aigen.modeldefs.formatting import value_text
from aigen.modeldefs.pricing import PricingError, price_amount
from aigen.modeldefs.schema import FieldType, ModelDef, ProviderDef
from aigen.modeldefs.validation import Invalid, example_parameters, validate_parameters

Problem = tuple[str | None, str]  # (location inside the model, e.g. "pricing.expr"; reason)

# Prompt length assumed when pricing a model's defaults; per-character prices must work for it.
EXAMPLE_PROMPT_CHARS = 100


def check_model(model: ModelDef, provider: ProviderDef | None) -> list[Problem]:
    problems = [*_reserved_keys(model), *_counts(model), *_expressions(model)]
    if provider is not None and model.pricing.currency == "credits" and provider.credit_usd is None:
        problems.append(
            ("pricing.currency", f"is credits, but provider {provider.slug} does not set credit_usd")
        )
    if problems:
        # Later checks evaluate the expressions; they would only repeat these problems.
        return problems
    problems += _defaults(model)
    if not problems:
        problems += _prices(model)
    return problems


def _reserved_keys(model: ModelDef) -> Iterator[Problem]:
    for f in model.fields:
        if f.key in REQUEST_NAMES:
            yield (
                f"fields[{f.key}]",
                f"key {f.key!r} is reserved in expressions for the request "
                "(n: number of outputs, prompt_chars, images); "
                "to send the output count to the provider, set outputs.parameter",
            )


def _counts(model: ModelDef) -> Iterator[Problem]:
    outputs = model.outputs
    if outputs.allowed is not None:
        if not outputs.allowed:
            yield ("outputs.allowed", "must list at least one count, or be left out")
        outside = [a for a in outputs.allowed if not outputs.min <= a <= outputs.max]
        if outside:
            yield ("outputs.allowed", f"{outside} lie outside min..max ({outputs.min}..{outputs.max})")
        if outputs.allowed and outputs.default not in outputs.allowed:
            yield ("outputs.default", f"{outputs.default} is not one of allowed {list(outputs.allowed)}")
    images = model.input_images
    if images.min > images.max:
        yield ("input_images", f"min {images.min} is above max {images.max}")


def _expressions(model: ModelDef) -> Iterator[Problem]:
    known = allowed_names(model)
    sources = [("pricing.expr", model.pricing.expr)]
    sources += [(f"constraints[{i}].rule", c.rule) for i, c in enumerate(model.constraints)]
    for where, source in sources:
        try:
            compile_expr(source)
        except ExprError as exc:
            yield (where, str(exc))
            continue
        for name in sorted(names_used(source) - known):
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            yield (
                where,
                f"uses {name!r}, which is neither a field key nor one of {', '.join(REQUEST_NAMES)}{hint}",
            )


def _defaults(model: ModelDef) -> list[Problem]:
    example = example_parameters(model)
    without_rules = model.model_copy(update={"constraints": ()})
    checked = validate_parameters(without_rules, example)
    if isinstance(checked, Invalid):
        return [
            (f"fields[{v.field.removeprefix('parameters.')}].default", f"the default {v.reason}")
            for v in checked.violations
        ]
    names = _names(model, checked.parameters, model.outputs.default, model.input_images.min)
    problems: list[Problem] = []
    for i, c in enumerate(model.constraints):
        if not _judged_on_defaults(model, c.rule):
            continue
        try:
            holds = bool(evaluate(c.rule, names))
        except ExprError as exc:
            problems.append((f"constraints[{i}].rule", f"cannot be evaluated on the defaults: {exc}"))
            continue
        if not holds:
            problems.append((f"constraints[{i}].rule", "is not met by the defaults"))
    return problems


def _prices(model: ModelDef) -> list[Problem]:
    """The price must compute for the defaults and for each choice the form offers, changed one
    at a time (choices the model's rules refuse are skipped)."""
    base = validate_parameters(model.model_copy(update={"constraints": ()}), example_parameters(model))
    assert not isinstance(base, Invalid)
    rules = [c.rule for c in model.constraints if _judged_on_defaults(model, c.rule)]
    for label, parameters, n, images in _variants(model, base.parameters):
        names = _names(model, parameters, n, images)
        if not all(_holds(rule, names) for rule in rules):
            continue
        try:
            price_amount(model, names)
        except PricingError as exc:
            reason = str(exc).removeprefix(f"model {model.slug}: ")
            return [("pricing.expr", f"{reason} (with {label})" if label else f"{reason} (on the defaults)")]
    return []


def _variants(model: ModelDef, base: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], int, int]]:
    n, images = model.outputs.default, model.input_images.min
    yield "", base, n, images
    for f in model.fields:
        choices: list[Any] = []
        if f.type is FieldType.SELECT:
            choices = [o.value for o in f.options]
        elif f.type is FieldType.BOOLEAN:
            choices = [False, True]
        elif f.type is FieldType.NUMBER:
            choices = [b for b in (f.min, f.max) if b is not None]
            choices = [int(b) if f.integer else b for b in choices]
        for value in choices:
            yield f"{f.key}={value_text(value)}", {**base, f.key: value}, n, images
    outputs = model.outputs
    counts = outputs.allowed if outputs.allowed is not None else range(outputs.min, outputs.max + 1)
    for count in itertools.islice(counts, 64):
        yield f"n={count}", base, count, images
    if model.input_images.max != images:
        yield f"images={model.input_images.max}", base, n, model.input_images.max


def _judged_on_defaults(model: ModelDef, rule: str) -> bool:
    """False for a rule over a required field that has no default: the example value standing in
    for it is made up, so the rule's verdict on it means nothing."""
    made_up = {f.key for f in model.fields if f.default is None and f.required}
    return not names_used(rule) & made_up


def _names(model: ModelDef, parameters: dict[str, Any], n: int, images: int) -> dict[str, Any]:
    return bind(model, parameters, n=n, prompt_chars=EXAMPLE_PROMPT_CHARS, images=images)


def _holds(rule: str, names: dict[str, Any]) -> bool:
    try:
        return bool(evaluate(rule, names))
    except ExprError:
        return False
