"""What the REST API shows: tasks and models as JSON documents, from the services' messages.

The task document is the seed's `{taskId, status, results: [{type, url}], error?}` with extra
fields beside them (never instead of them). Statuses are the seed's PENDING | PROCESSING |
SUCCESS | FAILED, plus CANCELLED.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aigen.v1 import catalog_pb2, common_pb2, generation_pb2
from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Value
from google.protobuf.timestamp_pb2 import Timestamp

STATUS = {
    generation_pb2.PENDING: "PENDING",
    generation_pb2.PROCESSING: "PROCESSING",
    generation_pb2.SUCCESS: "SUCCESS",
    generation_pb2.FAILED: "FAILED",
    generation_pb2.CANCELLED: "CANCELLED",
}
STATUS_CODES = {name: code for code, name in STATUS.items()}
TERMINAL = frozenset({"SUCCESS", "FAILED", "CANCELLED"})
OUTPUT_TYPES = {common_pb2.IMAGE: "IMAGE", common_pb2.VIDEO: "VIDEO", common_pb2.AUDIO: "AUDIO"}


def iso(ts: Timestamp) -> str:
    return ts.ToDatetime().isoformat(timespec="milliseconds") + "Z"


def is_terminal(task: generation_pb2.Task) -> bool:
    return STATUS.get(task.status) in TERMINAL


def task_document(
    task: generation_pb2.Task, urls: Sequence[str] | None = None, *, admin: bool = False
) -> dict[str, Any]:
    """The task as the REST API shows it; `urls` replaces result URLs (freshly signed ones)."""
    results = []
    for index, result in enumerate(task.results):
        item: dict[str, Any] = {"type": result.type, "url": urls[index] if urls is not None else result.url}
        if result.original_url:
            item["originalUrl"] = result.original_url
        if result.content_type:
            item["contentType"] = result.content_type
        if result.size:
            item["size"] = result.size
        if result.sha256:
            item["sha256"] = result.sha256
        item["stored"] = result.stored
        results.append(item)
    document: dict[str, Any] = {
        "taskId": task.id,
        "status": STATUS.get(task.status, "PENDING"),
        "results": results,
        "progress": round(task.progress, 4),
        "model": task.model_slug,
        "provider": task.provider_slug,
        "outputType": OUTPUT_TYPES.get(task.output_type, "IMAGE"),
        "prompt": task.prompt,
        "numberOfOutputs": task.number_of_outputs,
        "parameters": MessageToDict(task.parameters),
        "cost": cost_document(task),
    }
    if task.HasField("error") and (task.error.code or task.error.message):
        document["error"] = {"code": task.error.code or "FAILED", "message": task.error.message}
    if task.HasField("created_at"):
        document["createdAt"] = iso(task.created_at)
    if task.HasField("updated_at"):
        document["updatedAt"] = iso(task.updated_at)
    if task.HasField("completed_at"):
        document["completedAt"] = iso(task.completed_at)
    if task.shot_id:
        document["shotId"] = task.shot_id
    if admin:
        document["owner"] = task.owner
        document["providerTaskId"] = task.provider_task_id
        if task.HasField("deleted_at"):
            document["deletedAt"] = iso(task.deleted_at)
    return document


def cost_document(task: generation_pb2.Task) -> dict[str, Any]:
    cost: dict[str, Any] = {"quotedUsd": task.quote.usd or "0", "display": task.quote.display}
    if task.HasField("charge") and task.charge.usd:
        cost["chargedUsd"] = task.charge.usd
    return cost


def _value(value: Value, integer: bool = False) -> Any:
    plain = MessageToDict(value)
    if isinstance(plain, float) and (integer or plain.is_integer()) and plain.is_integer():
        return int(plain)
    return plain


def field_document(field: catalog_pb2.FormField) -> dict[str, Any]:
    document: dict[str, Any] = {
        "key": field.key,
        "label": field.label.en or field.key,
        "type": field.type,
        "required": field.required,
    }
    if field.label.zh:
        document["labelZh"] = field.label.zh
    if field.HasField("default_value"):
        document["default"] = _value(field.default_value, field.integer)
    if field.options:
        document["options"] = [
            {"label": option.label.en or str(_value(option.value)), "value": _value(option.value)}
            for option in field.options
        ]
    if field.helper_text.en:
        document["helperText"] = field.helper_text.en
    if field.placeholder:
        document["placeholder"] = field.placeholder
    for name in ("min", "max", "step"):
        if field.HasField(name):
            number = getattr(field, name)
            document[name] = int(number) if float(number).is_integer() else number
    if field.integer:
        document["integer"] = True
    if field.HasField("max_length"):
        document["maxLength"] = field.max_length
    return document


def model_document(model: catalog_pb2.Model, *, admin: bool = False) -> dict[str, Any]:
    document: dict[str, Any] = {
        "slug": model.slug,
        "name": model.name,
        "description": model.description.en,
        "provider": model.provider_slug,
        "outputType": OUTPUT_TYPES.get(model.output_type, "IMAGE"),
        "functionTags": list(model.function_tags),
        "inputCapabilities": list(model.input_capabilities),
        "active": model.active,
        "available": model.available,
        "price": {"display": model.pricing_info, "note": model.pricing_note.en},
        "fields": [field_document(f) for f in model.fields],
        "outputs": {"default": model.outputs.default, "min": model.outputs.min, "max": model.outputs.max},
        "inputImages": {"min": model.input_images.min, "max": model.input_images.max},
        "promptRequired": model.prompt_required,
    }
    if model.outputs.allowed:
        document["outputs"]["allowed"] = list(model.outputs.allowed)
    if model.unavailable_reason:
        document["unavailableReason"] = model.unavailable_reason
    if model.HasField("prompt_max_length"):
        document["promptMaxLength"] = model.prompt_max_length
    if admin:
        document["id"] = model.id
        document["adapter"] = model.adapter_name
        document["usageCount"] = model.usage_count
        document["sortOrder"] = model.sort_order
        document["alternatives"] = list(model.alternatives)
    return document


def provider_document(provider: catalog_pb2.Provider) -> dict[str, Any]:
    """A provider for the admin API: the key only as a mask and where it comes from."""
    return {
        "slug": provider.slug,
        "name": provider.name,
        "description": provider.description.en,
        "platform": provider.platform_slug,
        "apiEndpoint": provider.api_endpoint,
        "hasApiKey": provider.has_api_key,
        "apiKeyMasked": provider.api_key_masked,
        "apiKeySource": provider.api_key_source,
        "uploadToS3": provider.upload_to_s3,
        "s3PathPrefix": provider.s3_path_prefix,
        "active": provider.active,
        "sortOrder": provider.sort_order,
        "modelCount": provider.model_count,
        "creditUsd": provider.credit_usd or None,
    }
