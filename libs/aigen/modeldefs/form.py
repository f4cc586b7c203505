"""Form fields in the seed's shape (`ParameterField`), for the admin UI and the REST gateway.

They are plain dicts with the seed's camelCase keys, so they go to JSON as they are. Keys a field
does not use are left out rather than sent as null, as in the seed's optional properties. Two
keys go beyond the seed, because a form needs them to refuse what validation would refuse:
`integer` (only when true) and `maxLength`.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from aigen.modeldefs.formatting import plain_number
from aigen.modeldefs.schema import LANGUAGES, FieldDef, Language, ModelDef, Scalar


class FormOption(TypedDict):
    label: str
    value: Scalar


class FormField(TypedDict):
    key: str
    label: str
    type: str  # string | number | boolean | select | textarea
    required: bool
    defaultValue: NotRequired[Scalar]
    options: NotRequired[list[FormOption]]
    helperText: NotRequired[str]
    placeholder: NotRequired[str]
    min: NotRequired[int | float]
    max: NotRequired[int | float]
    step: NotRequired[int | float]
    integer: NotRequired[bool]
    maxLength: NotRequired[int]


def form_fields(model: ModelDef, language: Language = "en") -> list[FormField]:
    return [form_field(f, language) for f in model.fields]


def forms(model: ModelDef) -> dict[Language, list[FormField]]:
    """The form in every language we speak, keyed by language."""
    return {language: form_fields(model, language) for language in LANGUAGES}


def form_field(f: FieldDef, language: Language = "en") -> FormField:
    out = FormField(key=f.key, label=f.label.in_language(language), type=f.type.value, required=f.required)
    if f.default is not None:
        out["defaultValue"] = f.default
    if f.options:
        out["options"] = [FormOption(label=o.label.in_language(language), value=o.value) for o in f.options]
    if f.helper_text is not None:
        out["helperText"] = f.helper_text.in_language(language)
    if f.placeholder is not None:
        out["placeholder"] = f.placeholder
    if f.min is not None:
        out["min"] = plain_number(f.min)
    if f.max is not None:
        out["max"] = plain_number(f.max)
    if f.step is not None:
        out["step"] = plain_number(f.step)
    if f.integer:
        out["integer"] = True
    if f.max_length is not None:
        out["maxLength"] = f.max_length
    return out


def language_of(tag: str | None) -> Language:
    """The language to answer in for a tag or an Accept-Language header ("zh-CN,zh;q=0.9" → zh);
    English unless Chinese comes first among the languages we speak."""
    for part in (tag or "").split(","):
        code = part.split(";")[0].strip().lower()
        if code.startswith("zh"):
            return "zh"
        if code.startswith("en"):
            return "en"
    return "en"
