"""Domain errors ⇄ gRPC status with rich details (google.rpc.Status in `grpc-status-details-bin`).

Servers raise `aigen.errors.*`; the server interceptor turns them into a status carrying
BadRequest (one field violation per bad field), ResourceInfo, PreconditionFailure, RetryInfo and
ErrorInfo (a stable `reason`). Clients turn an RpcError back into the same domain error, so the
gateway can answer REST problem JSON without knowing gRPC.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from aigen import errors

DOMAIN = "aigen"

_CODES: dict[type[errors.DomainError], int] = {
    errors.InvalidArgument: code_pb2.INVALID_ARGUMENT,
    errors.NotFound: code_pb2.NOT_FOUND,
    errors.AlreadyExists: code_pb2.ALREADY_EXISTS,
    errors.FailedPrecondition: code_pb2.FAILED_PRECONDITION,
    errors.Conflict: code_pb2.ABORTED,
    errors.Unauthenticated: code_pb2.UNAUTHENTICATED,
    errors.PermissionDenied: code_pb2.PERMISSION_DENIED,
    errors.ResourceExhausted: code_pb2.RESOURCE_EXHAUSTED,
    errors.Unavailable: code_pb2.UNAVAILABLE,
}


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def _code_of(exc: errors.DomainError) -> int:
    for cls in type(exc).__mro__:
        code = _CODES.get(cls)
        if code is not None:
            return int(code)
    return int(code_pb2.UNKNOWN)


def to_status(exc: errors.DomainError) -> status_pb2.Status:
    details = [_pack(error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN))]
    if isinstance(exc, errors.InvalidArgument) and exc.violations:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                        for v in exc.violations
                    ]
                )
            )
        )
    if isinstance(exc, errors.FailedPrecondition) and exc.violations:
        details.append(
            _pack(
                error_details_pb2.PreconditionFailure(
                    violations=[
                        error_details_pb2.PreconditionFailure.Violation(
                            type=exc.reason, subject=v.field, description=v.description
                        )
                        for v in exc.violations
                    ]
                )
            )
        )
    if isinstance(exc, errors.NotFound | errors.AlreadyExists):
        details.append(
            _pack(error_details_pb2.ResourceInfo(resource_type=exc.resource_type, resource_name=exc.name))
        )
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(retry_after * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(code=_code_of(exc), message=exc.message, details=details)


def to_grpc_status(exc: errors.DomainError) -> grpc.Status:
    return rpc_status.to_status(to_status(exc))


def from_rpc_error(exc: grpc.RpcError) -> errors.DomainError | None:
    """The domain error an RpcError carries, or None for transport failures and bugs."""
    status = rpc_status.from_call(exc)
    code = exc.code() if hasattr(exc, "code") else None
    message = exc.details() if hasattr(exc, "details") else str(exc)
    info = error_details_pb2.ErrorInfo()
    bad = error_details_pb2.BadRequest()
    pre = error_details_pb2.PreconditionFailure()
    resource = error_details_pb2.ResourceInfo()
    retry = error_details_pb2.RetryInfo()
    found: set[str] = set()
    if status is not None:
        message = status.message
        for detail in status.details:
            for name, target in (
                ("info", info),
                ("bad", bad),
                ("pre", pre),
                ("resource", resource),
                ("retry", retry),
            ):
                if detail.Is(target.DESCRIPTOR):
                    detail.Unpack(target)
                    found.add(name)
    reason = info.reason if "info" in found else None
    retry_after = retry.retry_delay.ToNanoseconds() / 1e9 if "retry" in found else None
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return errors.InvalidArgument(
            message,
            [errors.Violation(v.field, v.description) for v in bad.field_violations],
            reason=reason,
        )
    if code == grpc.StatusCode.NOT_FOUND:
        return errors.NotFound(resource.resource_type or "resource", resource.resource_name, message)
    if code == grpc.StatusCode.ALREADY_EXISTS:
        return errors.AlreadyExists(resource.resource_type or "resource", resource.resource_name, message)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return errors.FailedPrecondition(
            message, [errors.Violation(v.subject, v.description) for v in pre.violations], reason=reason
        )
    if code == grpc.StatusCode.ABORTED:
        return errors.Conflict(message, reason=reason)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return errors.Unauthenticated(message, reason=reason)
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return errors.PermissionDenied(message, reason=reason)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return errors.ResourceExhausted(message, retry_after=retry_after, reason=reason)
    if code == grpc.StatusCode.UNAVAILABLE and reason is not None:
        return errors.Unavailable(message, retry_after=retry_after, reason=reason)
    return None
