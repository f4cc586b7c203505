"""The shape of a model definition file: one YAML file per provider under `definitions/`.

A model is defined once. From that one definition the catalog derives the form fields the UI
renders, the validator that guards every request, and the price quote. Nothing about a model's
parameters or price lives anywhere else.
"""

from __future__ import annotations

import enum
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
FIELD_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Scalar = str | int | float | bool


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Language = Literal["en", "zh"]
LANGUAGES: tuple[Language, ...] = ("en", "zh")


class Text(Strict):
    """A label in English and Chinese (the seed's UI is Chinese; ours speaks both)."""

    en: str
    zh: str

    def in_language(self, language: Language) -> str:
        return self.zh if language == "zh" else self.en


class FieldType(enum.StrEnum):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    SELECT = "select"
    TEXTAREA = "textarea"


class Option(Strict):
    value: Scalar
    label: Text


class FieldDef(Strict):
    """One parameter of a model, in the provider's own name and type."""

    key: str
    type: FieldType
    label: Text
    default: Scalar | None = None
    required: bool = False
    options: tuple[Option, ...] = ()
    helper_text: Text | None = None
    placeholder: str | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    integer: bool = False  # a NUMBER that must be whole
    max_length: int | None = None  # STRING / TEXTAREA
    # Where the value goes in the provider's request when that differs from `key`
    # (dotted path for nesting, e.g. "voice_settings.stability"). Adapters read it.
    maps_to: str | None = None

    @field_validator("key")
    @classmethod
    def _key_shape(cls, v: str) -> str:
        if not FIELD_KEY_RE.match(v):
            raise ValueError(f"field key {v!r} must be an identifier")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> FieldDef:
        if self.type is FieldType.SELECT and not self.options:
            raise ValueError(f"select field {self.key!r} needs options")
        if self.type is not FieldType.SELECT and self.options:
            raise ValueError(f"only select fields take options ({self.key!r})")
        values = [o.value for o in self.options]
        if len({(_kind(v), v) for v in values}) != len(values):
            raise ValueError(f"select field {self.key!r} lists an option value twice")
        kinds = {_kind(v) for v in values}
        if len(kinds) > 1:
            # Mixed kinds are nearly always a YAML slip (an unquoted 16:9 next to quoted ones), and
            # validation converts a client's value to the options' one kind.
            raise ValueError(
                f"options of {self.key!r} mix {' and '.join(sorted(kinds))} values: quote them alike"
            )
        if self.default is not None:
            if self.type is FieldType.SELECT and self.default not in [o.value for o in self.options]:
                raise ValueError(f"default of {self.key!r} is not one of its options")
            if self.type is FieldType.NUMBER:
                if isinstance(self.default, bool) or not isinstance(self.default, int | float):
                    raise ValueError(f"default of number field {self.key!r} must be a number")
                if self.min is not None and self.default < self.min:
                    raise ValueError(f"default of {self.key!r} is below its min")
                if self.max is not None and self.default > self.max:
                    raise ValueError(f"default of {self.key!r} is above its max")
            if self.type is FieldType.BOOLEAN and not isinstance(self.default, bool):
                raise ValueError(f"default of boolean field {self.key!r} must be true or false")
        return self


def _kind(value: Scalar) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, int | float) else "string"


class Constraint(Strict):
    """A rule across fields, e.g. Runway: a 10-second clip cannot be 1080p."""

    field: str  # the field the error is reported on
    rule: str  # expression (see expr.py) that must be true for valid parameters
    message: Text


class PollingProfile(Strict):
    interval_s: float = 5.0
    max_attempts: int = 180
    max_duration_s: float = 1800.0


class OutputsSpec(Strict):
    """How many outputs a request may ask for (`number_of_outputs`)."""

    default: int = 1
    min: int = 1
    max: int = 1
    allowed: tuple[int, ...] | None = None  # when only some counts are valid (4o Image: 1, 2, 4)
    # The parameter that carries the count to the provider, if any (e.g. "nVariants", "n").
    parameter: str | None = None


class ImagesSpec(Strict):
    """Input images the model accepts."""

    min: int = 0
    max: int = 0
    max_bytes: int = 10 * 1024 * 1024
    mime_types: tuple[str, ...] = ("image/png", "image/jpeg", "image/webp")


class PromptSpec(Strict):
    required: bool = True
    max_length: int | None = None


class Pricing(Strict):
    """Price of one request as an expression over the validated parameters.

    Names available to `expr`: every field key (value after defaults), `n` (number of outputs),
    `prompt_chars`, `images` (number of input images). `currency` says what the result counts:
    provider credits (converted with the provider's `credit_usd`) or US dollars.
    """

    currency: Literal["credits", "usd"]
    expr: str
    unit_note: Text | None = None  # "per image", "per second" … shown beside the price
    confirmed: bool = False  # the provider facts mark this price as confirmed
    source: str | None = None


class ModelDef(Strict):
    slug: str
    name: str
    description: Text
    provider: str  # provider slug
    output_type: Literal["IMAGE", "VIDEO", "AUDIO"]
    adapter: str  # adapter name, as the seed names it (e.g. KieSora2Adapter)
    adapter_settings: dict[str, Any] = Field(default_factory=dict)
    input_capabilities: tuple[str, ...] = ("text-input",)
    output_capabilities: tuple[str, ...] = ()
    feature_tags: tuple[str, ...] = ()
    function_tags: tuple[str, ...] = ()
    sort_order: int = 0
    active: bool = True
    available: bool = True
    unavailable_reason: str | None = None
    # Executables the model needs on this machine (local provider); missing → unavailable.
    requires: tuple[str, ...] = ()
    polling: PollingProfile = PollingProfile()
    prompt: PromptSpec = PromptSpec()
    outputs: OutputsSpec = OutputsSpec()
    input_images: ImagesSpec = ImagesSpec()
    fields: tuple[FieldDef, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    pricing: Pricing
    # Slugs of the same model served by other providers, in preferred failover order.
    alternatives: tuple[str, ...] = ()

    @field_validator("slug")
    @classmethod
    def _slug_shape(cls, v: str) -> str:
        if not SLUG_RE.match(v):
            raise ValueError(f"slug {v!r} must be lower-case words joined by '-'")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ModelDef:
        keys = [f.key for f in self.fields]
        dupes = {k for k in keys if keys.count(k) > 1}
        if dupes:
            raise ValueError(f"model {self.slug}: duplicate field keys {sorted(dupes)}")
        for c in self.constraints:
            if c.field not in keys:
                raise ValueError(f"model {self.slug}: constraint names unknown field {c.field!r}")
        if not self.available and not self.unavailable_reason:
            raise ValueError(f"model {self.slug}: unavailable models must say why")
        if self.outputs.min > self.outputs.max or not (
            self.outputs.min <= self.outputs.default <= self.outputs.max
        ):
            raise ValueError(f"model {self.slug}: outputs default must lie within min..max")
        return self


class RateLimits(Strict):
    """Documented provider limits the poller and dispatcher stay under (per API key)."""

    create_per_second: float | None = None
    status_per_second: float | None = None
    max_concurrent: int | None = None


class ProviderDef(Strict):
    slug: str
    name: str
    description: Text
    platform: str  # platform slug
    api_endpoint: str
    auth: Literal["bearer", "x-api-key", "xi-api-key", "none"] = "bearer"
    upload_to_s3: bool = True
    s3_path_prefix: str = "ai-generation/"
    active: bool = True
    sort_order: int = 0
    credit_usd: float | None = None  # USD per provider credit, when the provider sells credits
    rate_limits: RateLimits = RateLimits()
    settings: dict[str, Any] = Field(default_factory=dict)  # e.g. upload_endpoint

    @field_validator("slug")
    @classmethod
    def _slug_shape(cls, v: str) -> str:
        if not SLUG_RE.match(v):
            raise ValueError(f"slug {v!r} must be lower-case words joined by '-'")
        return v


class PlatformDef(Strict):
    slug: str
    name: str
    description: Text
    website: str


class DefinitionFile(Strict):
    """One provider's file: its platform, providers and models.

    Platform and providers may be left out, so that an operator's extra file can add models to
    a provider defined elsewhere; every slug must still resolve once all files are loaded.
    """

    platform: PlatformDef | None = None
    providers: tuple[ProviderDef, ...] = ()
    models: tuple[ModelDef, ...] = ()
