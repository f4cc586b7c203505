"""Checking one generation request against its model definition.

The parameters go through a pydantic model built from the definition's fields (cached per set of
fields): unknown keys are refused, defaults applied, each value checked against its field. Then
the definition's cross-field rules run, and the request-level inputs (prompt, number of outputs,
input images) are checked against the definition's limits.

User input never raises: the answer is either `Valid` (parameters with defaults applied, ready for
the adapter and the price) or `Invalid` (every problem found, each naming the field exactly as the
client sent it: `parameters.size`, `prompt`, `number_of_outputs`, `input_images`).

Leniency, where it cannot change meaning:
- gRPC carries parameters in a `Struct`, where every number is a double; so a whole float is
  accepted wherever a whole number is expected, and becomes an int (5.0 → 5).
- A select whose option values are strings accepts the same number sent as a number
  (5 for "5", 2.5 for "2.5") and passes on the option's string.
- `null` for a field means "not given": the default applies, or the field is left out.
- `step` is enforced when it is whole (durations in steps of 5 seconds are a provider rule);
  a fractional step (0.1) only sets the granularity of a form's slider.
Nothing else is converted: "5" is not a number, "yes" is not a boolean.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, create_model
from pydantic_core import PydanticCustomError, PydanticUndefined

from aigen.modeldefs.bindings import bind
from aigen.modeldefs.expr import ExprError, evaluate
from aigen.modeldefs.formatting import to_decimal, value_text
from aigen.modeldefs.schema import FieldDef, FieldType, ModelDef, Scalar

_ERROR_TYPE = "parameter"


@dataclass(frozen=True)
class FieldViolation:
    field: str  # as the client named it: "parameters.size", "prompt", "input_images[2]"
    reason: str  # an English sentence fragment: "must be at most 10"

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}

    def __str__(self) -> str:
        return f"{self.field} {self.reason}"


@dataclass(frozen=True)
class Valid:
    parameters: dict[str, Any]  # field key → value, defaults applied, in the definition's order
    number_of_outputs: int

    @property
    def ok(self) -> bool:
        return True


@dataclass(frozen=True)
class Invalid:
    violations: tuple[FieldViolation, ...]

    @property
    def ok(self) -> bool:
        return False


Validation = Valid | Invalid


def validate_request(
    model: ModelDef,
    parameters: object,
    *,
    prompt: object = None,
    number_of_outputs: object = None,
    input_images: object = None,
) -> Validation:
    """`number_of_outputs` None or 0 means the model's default; `input_images` are the references
    the client sent (URLs or data URIs), checked here only for count and shape."""
    violations = [
        *_check_prompt(model, prompt),
        *_check_images(model, input_images),
    ]
    n, outputs_problem = _check_outputs(model, number_of_outputs)
    violations += outputs_problem
    prompt_chars = len(prompt) if isinstance(prompt, str) else 0
    images = len(input_images) if isinstance(input_images, list | tuple) else 0
    checked = validate_parameters(model, parameters, n=n, prompt_chars=prompt_chars, images=images)
    if isinstance(checked, Invalid):
        violations = list(checked.violations) + violations
    if violations:
        return Invalid(tuple(violations))
    assert isinstance(checked, Valid)
    return Valid(checked.parameters, n)


def validate_parameters(
    model: ModelDef, parameters: object, *, n: int | None = None, prompt_chars: int = 0, images: int = 0
) -> Validation:
    """The parameters alone: fields, then the cross-field rules (which may also use `n`,
    `prompt_chars` and `images`)."""
    n = model.outputs.default if n is None else n
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, Mapping) or not all(isinstance(k, str) for k in parameters):
        return Invalid((FieldViolation("parameters", "must be an object of parameter names to values"),))
    try:
        validated = _parameters_model(model.fields).model_validate(dict(parameters))
    except ValidationError as exc:
        return Invalid(tuple(_violation(model, e) for e in exc.errors()))
    values = validated.model_dump(by_alias=True, exclude_none=True)
    names = bind(model, values, n=n, prompt_chars=prompt_chars, images=images)
    broken = [
        FieldViolation(f"parameters.{c.field}", c.message.en)
        for c in model.constraints
        if not _holds(c.rule, names)
    ]
    if broken:
        return Invalid(tuple(broken))
    return Valid(values, n)


def example_parameters(model: ModelDef) -> dict[str, Any]:
    """Parameters a request could send as they are: the defaults, plus a plausible value for each
    required field that has none. Used to price a model's defaults and to check definitions."""
    example: dict[str, Any] = {}
    for f in model.fields:
        if f.default is not None:
            example[f.key] = f.default
        elif f.required:
            example[f.key] = _plausible(f)
    return example


def _holds(rule: str, names: Mapping[str, Any]) -> bool:
    try:
        return bool(evaluate(rule, names))
    except ExprError:
        # A rule that cannot be judged for these values does not let them through.
        return False


def _plausible(f: FieldDef) -> Scalar:
    if f.type is FieldType.SELECT:
        return f.options[0].value
    if f.type is FieldType.BOOLEAN:
        return False
    if f.type is FieldType.NUMBER:
        value = f.min if f.min is not None else f.max if f.max is not None and f.max < 0 else 0.0
        return int(value) if f.integer or float(value).is_integer() else value
    text = f.placeholder or "example"
    return text[: f.max_length] if f.max_length else text


# -- request-level inputs ----------------------------------------------------------------------


def _check_prompt(model: ModelDef, prompt: object) -> list[FieldViolation]:
    if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
        return [FieldViolation("prompt", "is required")] if model.prompt.required else []
    if not isinstance(prompt, str):
        return [FieldViolation("prompt", "must be text")]
    limit = model.prompt.max_length
    if limit is not None and len(prompt) > limit:
        return [FieldViolation("prompt", f"must be at most {limit} characters (it has {len(prompt)})")]
    return []


def _check_outputs(model: ModelDef, value: object) -> tuple[int, list[FieldViolation]]:
    spec = model.outputs
    if value is None or (_is_number(value) and value == 0):
        return spec.default, []
    if not _is_whole(value):
        return spec.default, [FieldViolation("number_of_outputs", "must be a whole number")]
    assert isinstance(value, int | float)
    n = int(value)
    if spec.allowed is not None and n not in spec.allowed:
        allowed = ", ".join(str(a) for a in spec.allowed)
        return spec.default, [FieldViolation("number_of_outputs", f"must be one of {allowed}")]
    if n < spec.min:
        return spec.default, [FieldViolation("number_of_outputs", f"must be at least {spec.min}")]
    if n > spec.max:
        return spec.default, [FieldViolation("number_of_outputs", f"must be at most {spec.max}")]
    return n, []


def _check_images(model: ModelDef, images: object) -> list[FieldViolation]:
    if images is None:
        images = []
    if not isinstance(images, list | tuple):
        return [FieldViolation("input_images", "must be a list of image URLs or data URIs")]
    spec = model.input_images
    count = len(images)
    if spec.max == 0 and count:
        return [FieldViolation("input_images", "must be empty: this model takes no input images")]
    if count > spec.max:
        return [FieldViolation("input_images", f"must have at most {_images(spec.max)} (it has {count})")]
    if count < spec.min:
        return [FieldViolation("input_images", f"must have at least {_images(spec.min)}")]
    return [
        FieldViolation(f"input_images[{i}]", "must be an image URL or data URI")
        for i, image in enumerate(images)
        if not isinstance(image, str) or not image.strip()
    ]


def _images(count: int) -> str:
    return f"{count} image" if count == 1 else f"{count} images"


# -- parameters --------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _parameters_model(fields: tuple[FieldDef, ...]) -> type[BaseModel]:
    # Attribute names are positional and the field keys are aliases, so a provider parameter
    # may be called `json`, `copy` or `model_name` without clashing with pydantic's own names.
    definitions: dict[str, Any] = {}
    for i, f in enumerate(fields):
        if f.default is not None:
            default: Any = f.default
        elif f.required:
            default = PydanticUndefined
        else:
            default = None
        definitions[f"f{i}"] = (Annotated[Any, PlainValidator(_checker(f))], Field(default, alias=f.key))
    config = ConfigDict(extra="forbid", validate_default=True, populate_by_name=False)
    return create_model("Parameters", __config__=config, **definitions)


def _violation(model: ModelDef, error: Any) -> FieldViolation:
    key = str(error["loc"][0]) if error["loc"] else ""
    field = f"parameters.{key}" if key else "parameters"
    kind = error["type"]
    if kind == "missing":
        return FieldViolation(field, "is required")
    if kind == "extra_forbidden":
        known = [f.key for f in model.fields]
        close = difflib.get_close_matches(key, known, n=1)
        if close:
            return FieldViolation(field, f"unknown parameter (did you mean {close[0]}?)")
        return FieldViolation(field, "unknown parameter")
    return FieldViolation(field, str(error["msg"]))


def _fail(reason: str) -> PydanticCustomError:
    return PydanticCustomError(_ERROR_TYPE, "{reason}", {"reason": reason})


def _checker(f: FieldDef) -> Callable[[Any], Any]:
    check = {
        FieldType.SELECT: _select_check,
        FieldType.NUMBER: _number_check,
        FieldType.BOOLEAN: _boolean_check,
        FieldType.STRING: _text_check,
        FieldType.TEXTAREA: _text_check,
    }[f.type](f)

    def checked(value: Any) -> Any:
        if value is None:
            if f.default is not None:
                return f.default
            if f.required:
                raise _fail("is required")
            return None
        return check(value)

    return checked


def _select_check(f: FieldDef) -> Callable[[Any], Any]:
    values = [o.value for o in f.options]
    listing = ", ".join(value_text(v) for v in values)

    def check(value: Any) -> Any:
        for option in values:
            if _same_option(option, value):
                return option
        raise _fail(f"must be one of {listing}")

    return check


def _same_option(option: Scalar, value: Any) -> bool:
    if isinstance(option, bool) or isinstance(value, bool):
        return value is option
    if isinstance(option, str):
        if isinstance(value, str):
            return value == option
        return _is_number(value) and math.isfinite(value) and value_text(value) == option
    return _is_number(value) and value == option


def _number_check(f: FieldDef) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not _is_number(value) or not math.isfinite(value):
            raise _fail("must be a number")
        if f.integer and not _is_whole(value):
            raise _fail("must be a whole number")
        if f.min is not None and value < f.min:
            raise _fail(f"must be at least {value_text(f.min)}")
        if f.max is not None and value > f.max:
            raise _fail(f"must be at most {value_text(f.max)}")
        if f.step is not None and f.step > 0 and float(f.step).is_integer():
            base = f.min if f.min is not None else 0
            if (to_decimal(value) - to_decimal(base)) % to_decimal(f.step) != Decimal(0):
                if base == 0:
                    raise _fail(f"must be a multiple of {value_text(f.step)}")
                raise _fail(f"must be {value_text(base)} plus a multiple of {value_text(f.step)}")
        return int(value) if f.integer else value

    return check


def _boolean_check(f: FieldDef) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, bool):
            raise _fail("must be true or false")
        return value

    return check


def _text_check(f: FieldDef) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise _fail("must be text")
        if f.required and not value.strip():
            raise _fail("must not be empty")
        if f.max_length is not None and len(value) > f.max_length:
            raise _fail(f"must be at most {f.max_length} characters (it has {len(value)})")
        return value

    return check


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_whole(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and value.is_integer()
