"""Domain errors: raised inside services, turned into gRPC status with details at the edge.

Each carries what a client needs to act: which field was wrong and why, which resource was not
found, how long to wait. The gateway maps the same errors to REST problem JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    field: str
    description: str


class DomainError(Exception):
    """Base of errors that are the caller's to handle, not bugs."""

    reason: str = "ERROR"  # stable machine-readable code (ErrorInfo.reason, problem `code`)

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason


class InvalidArgument(DomainError):
    reason = "INVALID_ARGUMENT"

    def __init__(self, message: str, violations: Sequence[Violation] = (), *, reason: str | None = None):
        super().__init__(message, reason=reason)
        self.violations = tuple(violations)

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        return cls(f"{field}: {description}", [Violation(field, description)])


class NotFound(DomainError):
    reason = "NOT_FOUND"

    def __init__(self, resource_type: str, name: str, message: str | None = None):
        super().__init__(message or f"{resource_type} {name!r} not found")
        self.resource_type = resource_type
        self.name = name


class AlreadyExists(DomainError):
    reason = "ALREADY_EXISTS"

    def __init__(self, resource_type: str, name: str, message: str | None = None):
        super().__init__(message or f"{resource_type} {name!r} already exists")
        self.resource_type = resource_type
        self.name = name


class FailedPrecondition(DomainError):
    reason = "FAILED_PRECONDITION"

    def __init__(self, message: str, violations: Sequence[Violation] = (), *, reason: str | None = None):
        super().__init__(message, reason=reason)
        self.violations = tuple(violations)


class Conflict(DomainError):
    """A concurrent change won; retrying the whole command is safe."""

    reason = "ABORTED"


class Unauthenticated(DomainError):
    reason = "UNAUTHENTICATED"


class PermissionDenied(DomainError):
    reason = "PERMISSION_DENIED"


class ResourceExhausted(DomainError):
    reason = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, *, retry_after: float | None = None, reason: str | None = None):
        super().__init__(message, reason=reason)
        self.retry_after = retry_after


class Unavailable(DomainError):
    reason = "UNAVAILABLE"

    def __init__(self, message: str, *, retry_after: float | None = None, reason: str | None = None):
        super().__init__(message, reason=reason)
        self.retry_after = retry_after
