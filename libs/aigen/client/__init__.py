"""Python SDK for the aigen gateway's external API.

    from aigen.client import AigenClient

    with AigenClient("http://127.0.0.1:8080", api_key="aigen_…") as client:
        task = client.generate("kie-4o-image", "a lighthouse at dusk", parameters={"size": "3:2"})
        task = client.wait_for(task)
        client.download_all(task, Path("out"))

`AsyncAigenClient` offers the same with `await`, and `watch(task)` streams progress.
`verify_webhook(secret, headers, body)` checks a webhook the gateway sent.
"""

from aigen.client.aio import AsyncAigenClient
from aigen.client.errors import (
    AigenError,
    AuthenticationFailed,
    BadRequest,
    BudgetExceeded,
    Conflict,
    ConnectionFailed,
    FieldError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    WaitTimedOut,
)
from aigen.client.models import Cost, Model, ModelField, Quote, Task, TaskError, TaskPage, TaskResult, Usage
from aigen.client.sync import AigenClient
from aigen.client.webhooks import WebhookEvent, WebhookVerificationError, verify_webhook

__all__ = [
    "AigenClient",
    "AigenError",
    "AsyncAigenClient",
    "AuthenticationFailed",
    "BadRequest",
    "BudgetExceeded",
    "Conflict",
    "ConnectionFailed",
    "Cost",
    "FieldError",
    "Model",
    "ModelField",
    "NotFound",
    "PermissionDenied",
    "Quote",
    "RateLimited",
    "ServiceUnavailable",
    "Task",
    "TaskError",
    "TaskPage",
    "TaskResult",
    "Usage",
    "WaitTimedOut",
    "WebhookEvent",
    "WebhookVerificationError",
    "verify_webhook",
]
