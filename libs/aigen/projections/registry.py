"""Every projection of the system by name, for `aigen projections status|rebuild|resume`.

Projections live with the service that owns their read model; this list names where.
"""

from __future__ import annotations

import importlib

from aigen.projections.runner import Projection

# name → "module:factory" (a callable returning the projection)
KNOWN: dict[str, str] = {
    "tasks": "services.dispatcher.projection:TaskProjection",
    "model-usage": "services.catalog.usage:ModelUsageProjection",
    "ledger": "services.gateway.projection:LedgerProjection",
    "ops-tasks": "services.ops.projections:OpsTaskProjection",
    "error-log": "services.ops.projections:ErrorLogProjection",
    "provider-health": "services.ops.projections:ProviderHealthProjection",
    "alerts": "services.ops.projections:AlertProjection",
}


def names() -> list[str]:
    return sorted(KNOWN)


def create(name: str) -> Projection:
    try:
        target = KNOWN[name]
    except KeyError:
        raise KeyError(f"unknown projection {name!r}; known: {', '.join(names())}") from None
    module_name, _, attr = target.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    projection: Projection = factory()
    return projection


def available() -> list[str]:
    """Names whose module can be imported in this installation."""
    found = []
    for name, target in KNOWN.items():
        try:
            importlib.import_module(target.partition(":")[0])
        except ImportError:
            continue
        found.append(name)
    return sorted(found)
