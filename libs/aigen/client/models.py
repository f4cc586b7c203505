"""Typed results of the external API: what the gateway's JSON documents say, as dataclasses.

Money stays a decimal string converted to `Decimal`, never a float. Fields the gateway adds later
are ignored, so an older client keeps working against a newer gateway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, cast

Status = Literal["PENDING", "PROCESSING", "SUCCESS", "FAILED", "CANCELLED"]
TERMINAL: frozenset[str] = frozenset({"SUCCESS", "FAILED", "CANCELLED"})


def _str(data: Mapping[str, Any], key: str, default: str = "") -> str:
    value = data.get(key, default)
    return value if isinstance(value, str) else default


def _int(data: Mapping[str, Any], key: str, default: int = 0) -> int:
    value = data.get(key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _float(data: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    value = data.get(key, default)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _decimal(value: object) -> Decimal | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _dict(value: object) -> dict[str, Any]:
    return dict(cast(Mapping[str, Any], value)) if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list) else []


@dataclass(frozen=True)
class TaskResult:
    type: str  # "image" | "video" | "audio"
    url: str
    original_url: str | None = None
    content_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    stored: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskResult:
        size = data.get("size")
        return cls(
            type=_str(data, "type"),
            url=_str(data, "url"),
            original_url=data.get("originalUrl") if isinstance(data.get("originalUrl"), str) else None,
            content_type=data.get("contentType") if isinstance(data.get("contentType"), str) else None,
            size=size if isinstance(size, int) else None,
            sha256=data.get("sha256") if isinstance(data.get("sha256"), str) else None,
            stored=bool(data.get("stored", False)),
        )


@dataclass(frozen=True)
class TaskError:
    code: str
    message: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskError:
        return cls(code=_str(data, "code"), message=_str(data, "message"))


@dataclass(frozen=True)
class Cost:
    quoted_usd: Decimal
    display: str
    charged_usd: Decimal | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Cost:
        return cls(
            quoted_usd=_decimal(data.get("quotedUsd")) or Decimal(0),
            display=_str(data, "display"),
            charged_usd=_decimal(data.get("chargedUsd")),
        )


@dataclass(frozen=True)
class Task:
    id: str
    status: Status
    results: tuple[TaskResult, ...] = ()
    error: TaskError | None = None
    progress: float = 0.0
    model: str = ""
    provider: str = ""
    output_type: str = ""
    prompt: str = ""
    number_of_outputs: int = 0
    parameters: dict[str, Any] = field(default_factory=dict)
    cost: Cost | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    completed_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCESS"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Task:
        status = _str(data, "status", "PENDING")
        error = data.get("error")
        cost = data.get("cost")
        return cls(
            id=_str(data, "taskId"),
            status=cast(Status, status if status in (*TERMINAL, "PENDING", "PROCESSING") else "PENDING"),
            results=tuple(TaskResult.from_json(_dict(r)) for r in _list(data.get("results"))),
            error=TaskError.from_json(_dict(error)) if isinstance(error, Mapping) else None,
            progress=_float(data, "progress"),
            model=_str(data, "model"),
            provider=_str(data, "provider"),
            output_type=_str(data, "outputType"),
            prompt=_str(data, "prompt"),
            number_of_outputs=_int(data, "numberOfOutputs"),
            parameters=_dict(data.get("parameters")),
            cost=Cost.from_json(_dict(cost)) if isinstance(cost, Mapping) else None,
            created_at=_time(data.get("createdAt")),
            updated_at=_time(data.get("updatedAt")),
            completed_at=_time(data.get("completedAt")),
            raw=dict(data),
        )


@dataclass(frozen=True)
class TaskPage:
    tasks: tuple[Task, ...]
    next_page_token: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskPage:
        token = data.get("nextPageToken")
        return cls(
            tasks=tuple(Task.from_json(_dict(t)) for t in _list(data.get("tasks"))),
            next_page_token=token if isinstance(token, str) and token else None,
        )


@dataclass(frozen=True)
class FieldOption:
    label: str
    value: Any


@dataclass(frozen=True)
class ModelField:
    key: str
    label: str
    type: str  # string | number | boolean | select | textarea
    required: bool = False
    default: Any = None
    options: tuple[FieldOption, ...] = ()
    helper_text: str | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelField:
        def number(key: str) -> float | None:
            value = data.get(key)
            return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

        return cls(
            key=_str(data, "key"),
            label=_str(data, "label"),
            type=_str(data, "type"),
            required=bool(data.get("required", False)),
            default=data.get("default"),
            options=tuple(
                FieldOption(_str(_dict(o), "label"), _dict(o).get("value"))
                for o in _list(data.get("options"))
            ),
            helper_text=data.get("helperText") if isinstance(data.get("helperText"), str) else None,
            min=number("min"),
            max=number("max"),
            step=number("step"),
        )


@dataclass(frozen=True)
class Model:
    slug: str
    name: str
    provider: str
    output_type: str
    price: str
    available: bool = True
    description: str = ""
    fields: tuple[ModelField, ...] = ()
    function_tags: tuple[str, ...] = ()
    unavailable_reason: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Model:
        reason = data.get("unavailableReason")
        return cls(
            slug=_str(data, "slug"),
            name=_str(data, "name"),
            provider=_str(data, "provider"),
            output_type=_str(data, "outputType"),
            price=_str(_dict(data.get("price")), "display"),
            available=bool(data.get("available", True)),
            description=_str(data, "description"),
            fields=tuple(ModelField.from_json(_dict(f)) for f in _list(data.get("fields"))),
            function_tags=tuple(str(t) for t in _list(data.get("functionTags"))),
            unavailable_reason=reason if isinstance(reason, str) else None,
            raw=dict(data),
        )


@dataclass(frozen=True)
class Quote:
    model: str
    usd: Decimal
    amount: Decimal
    currency: str
    display: str
    number_of_outputs: int
    parameters: dict[str, Any]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Quote:
        return cls(
            model=_str(data, "model"),
            usd=_decimal(data.get("usd")) or Decimal(0),
            amount=_decimal(data.get("amount")) or Decimal(0),
            currency=_str(data, "currency"),
            display=_str(data, "display"),
            number_of_outputs=_int(data, "numberOfOutputs"),
            parameters=_dict(data.get("parameters")),
        )


@dataclass(frozen=True)
class Usage:
    key_id: str
    owner: str
    budget_usd: Decimal | None
    budget_period: str
    period_charged_usd: Decimal
    open_usd: Decimal
    open_tasks: int
    remaining_usd: Decimal | None
    totals: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Usage:
        return cls(
            key_id=_str(data, "keyId"),
            owner=_str(data, "owner"),
            budget_usd=_decimal(data.get("budgetUsd")),
            budget_period=_str(data, "budgetPeriod"),
            period_charged_usd=_decimal(data.get("periodChargedUsd")) or Decimal(0),
            open_usd=_decimal(data.get("openUsd")) or Decimal(0),
            open_tasks=_int(data, "openTasks"),
            remaining_usd=_decimal(data.get("remainingUsd")),
            totals=tuple(_dict(t) for t in _list(data.get("totals"))),
        )
