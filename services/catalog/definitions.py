"""The catalog's use of the model-definition engine (aigen.modeldefs), in its wire types."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Any

from aigen.modeldefs import form as forms
from aigen.modeldefs import pricing
from aigen.modeldefs.availability import availability
from aigen.modeldefs.loader import Catalog, extra_dirs_from_env, load_catalog
from aigen.modeldefs.requests import Checked, check_request, price_quote
from aigen.modeldefs.schema import FieldDef, ModelDef
from aigen.v1 import catalog_pb2, common_pb2
from google.protobuf.struct_pb2 import NULL_VALUE, Value

from services.catalog.domain import ModelRecord


def load() -> Catalog:
    """Packaged definitions plus the operator's directories (AIGEN_MODEL_DEFINITIONS)."""
    return load_catalog(extra_dirs_from_env(os.environ))


def missing_binaries(model: ModelDef, which: Callable[[str], str | None] | None) -> tuple[str, ...]:
    return availability(model, which or shutil.which).missing


def _value(v: Any) -> Value:
    value = Value()
    if isinstance(v, bool):
        value.bool_value = v
    elif isinstance(v, int | float):
        value.number_value = float(v)
    elif isinstance(v, str):
        value.string_value = v
    else:
        value.null_value = NULL_VALUE
    return value


def _text(en: str, zh: str) -> catalog_pb2.Text:
    return catalog_pb2.Text(en=en, zh=zh)


def form_field(f: FieldDef) -> catalog_pb2.FormField:
    """One field in both languages (the seed's shape, labels as {en, zh})."""
    message = catalog_pb2.FormField(
        key=f.key,
        label=_text(f.label.en, f.label.zh),
        type=f.type.value,
        options=[
            catalog_pb2.FieldOption(value=_value(o.value), label=_text(o.label.en, o.label.zh))
            for o in f.options
        ],
        helper_text=_text(f.helper_text.en, f.helper_text.zh) if f.helper_text else catalog_pb2.Text(),
        placeholder=f.placeholder or "",
        required=f.required,
        integer=f.integer,
    )
    if f.default is not None:
        message.default_value.CopyFrom(_value(f.default))
    for name in ("min", "max", "step"):
        bound = getattr(f, name)
        if bound is not None:
            setattr(message, name, float(bound))
    if f.max_length is not None:
        message.max_length = f.max_length
    return message


def form_fields(model: ModelDef) -> list[catalog_pb2.FormField]:
    return [form_field(f) for f in model.fields]


def seed_form(model: ModelDef, language: str = "en") -> list[dict[str, Any]]:
    """The seed's plain-dict form (for REST and the web UI)."""
    return [dict(f) for f in forms.form_fields(model, "zh" if language == "zh" else "en")]


def validate(
    model: ModelDef,
    parameters: dict[str, Any],
    *,
    prompt: str | None,
    number_of_outputs: int | None,
    input_images: list[str] | None,
) -> Checked:
    return check_request(
        model, parameters, prompt=prompt, number_of_outputs=number_of_outputs, input_images=input_images
    )


def quote(
    model: ModelRecord, parameters: dict[str, Any], number_of_outputs: int, prompt: str, images: int
) -> common_pb2.PriceQuote:
    return price_quote(
        model.definition, model.provider.definition, parameters, number_of_outputs, prompt, images
    )


def default_price_text(model: ModelRecord) -> str:
    return pricing.quote_defaults(model.definition, model.provider.definition).text("en")
