"""Dispatcher rules without I/O: request fingerprints, retry schedule, what a model must be to run."""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from aigen.errors import FailedPrecondition, Violation
from aigen.v1 import catalog_pb2, generation_pb2
from google.protobuf.json_format import MessageToDict

MAX_ATTEMPTS_PER_MODEL = 3
MAX_RETRY_AFTER_S = 60.0


def new_task_id() -> str:
    return uuid.uuid4().hex


def fingerprint(request: generation_pb2.GenerateRequest) -> str:
    """What makes two requests "the same" for an idempotency key: everything but the key."""
    body = {
        "model": request.model,
        "prompt": request.prompt,
        "input_images": list(request.input_images),
        "number_of_outputs": request.number_of_outputs,
        "parameters": MessageToDict(request.parameters),
        "shot_id": request.shot_id,
        "webhook_url": request.webhook_url,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def idempotency_key(owner: str, request_id: str) -> str:
    """Keys are per owner: two clients may pick the same key without colliding."""
    return f"generate:{owner}:{request_id}"


def check_runnable(config: catalog_pb2.DispatchConfig) -> None:
    model, provider = config.model, config.provider
    if not model.available:
        raise FailedPrecondition(
            f"model {model.slug} is unavailable: {model.unavailable_reason}",
            [Violation("model", model.unavailable_reason or "unavailable")],
            reason="MODEL_UNAVAILABLE",
        )
    if not model.active:
        raise FailedPrecondition(
            f"model {model.slug} is deactivated", [Violation("model", "deactivated")], reason="MODEL_INACTIVE"
        )
    if not provider.active:
        raise FailedPrecondition(
            f"provider {provider.slug} of model {model.slug} is deactivated",
            [Violation("model", f"provider {provider.slug} is deactivated")],
            reason="PROVIDER_INACTIVE",
        )


def webhook_problem(url: str) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "must be an http(s) URL"
    if len(url) > 2000:
        return "must be at most 2000 characters"
    return None


@dataclass(frozen=True)
class RetryPlan:
    retry: bool
    delay_s: float


def plan_retry(
    model_attempts: int, retryable: bool, retry_after: float | None, rng: random.Random | None = None
) -> RetryPlan:
    """Retry the same model after a provider-side refusal, with backoff, up to a few attempts.

    A provider asking for a wait longer than we would hold a task for counts as "not now": the
    dispatcher fails over (or fails) instead of sleeping on it.
    """
    if not retryable or model_attempts >= MAX_ATTEMPTS_PER_MODEL:
        return RetryPlan(False, 0.0)
    if retry_after is not None:
        if retry_after > MAX_RETRY_AFTER_S:
            return RetryPlan(False, 0.0)
        return RetryPlan(True, retry_after)
    base = min(30.0, 1.0 * 2 ** (model_attempts - 1))
    return RetryPlan(True, (rng or random).uniform(base / 2, base))


def carry_parameters(parameters: dict[str, object], target: catalog_pb2.Model) -> dict[str, object]:
    """The request's parameters as an alternative model takes them: the ones it knows by name.

    Values it rejects are dropped later by validation (the alternative's defaults apply)."""
    known = {f.key for f in target.fields}
    return {k: v for k, v in parameters.items() if k in known}
