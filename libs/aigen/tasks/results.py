"""An adapter's SUCCESS as a `TaskCompleted` event: URLs kept, bytes staged, charge in USD."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from aigen.eventstore.store import Conn
from aigen.providers.types import AdapterResult, ProviderCost
from aigen.tasks import blobs
from aigen.tasks.domain import TaskState
from aigen.v1 import events_pb2

DEFAULT_CONTENT_TYPES = {"image": "image/png", "video": "video/mp4", "audio": "audio/mpeg"}


def charge_of(cost: ProviderCost | None, credit_usd: str) -> events_pb2.ProviderCharge | None:
    """What the provider says it charged, with its USD value when it can be known."""
    if cost is None:
        return None
    amount = Decimal(str(cost.amount))
    usd = ""
    if cost.currency == "usd":
        usd = str(amount.quantize(Decimal("0.000001")))
    elif cost.currency == "credits" and credit_usd:
        try:
            usd = str((amount * Decimal(credit_usd)).quantize(Decimal("0.000001")))
        except InvalidOperation:
            usd = ""
    return events_pb2.ProviderCharge(amount=str(amount), currency=cost.currency, usd=usd)


async def completed_event(
    conn: Conn | None, state: TaskState, result: AdapterResult, *, source: str, late: bool = False
) -> events_pb2.TaskCompleted:
    """Build TaskCompleted; bytes results are written to `result_blobs` in the same transaction
    (`conn` may be None only when the result has no bytes)."""
    results: list[events_pb2.ProviderResult] = []
    for item in result.results:
        kind = item.type.value.lower()
        extra = {str(k): str(v) for k, v in item.extra.items()}
        if item.data is not None:
            if conn is None:
                raise ValueError("a result with bytes needs the transaction that stages them")
            content_type = item.content_type or DEFAULT_CONTENT_TYPES.get(kind, "application/octet-stream")
            blob_id = await blobs.put(conn, state.id, item.data, content_type)
            results.append(
                events_pb2.ProviderResult(
                    type=kind,
                    url=blobs.blob_url(blob_id),
                    blob_id=str(blob_id),
                    content_type=content_type,
                    extra=extra,
                )
            )
        elif item.url:
            results.append(
                events_pb2.ProviderResult(
                    type=kind, url=item.url, content_type=item.content_type or "", extra=extra
                )
            )
    event = events_pb2.TaskCompleted(task_id=state.id, results=results, source=source, late=late)
    charge = charge_of(result.cost, state.model.credit_usd if state.model else "")
    if charge is not None:
        event.charge.CopyFrom(charge)
    return event
