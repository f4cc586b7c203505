"""Adapter name → implementation. The seed's names (`KieSora2Adapter` …) all resolve here.

Each provider module declares `ADAPTERS: dict[str, type[BaseAdapter]]`; a name maps to the class
of its API family, so many names share one class.
"""

from __future__ import annotations

import importlib
from functools import cache

import httpx

from aigen.providers.base import BaseAdapter
from aigen.providers.types import ModelConfig

PROVIDER_MODULES = ("kie", "replicate", "openai", "elevenlabs", "pollo", "tuzi", "local")


class UnknownAdapterError(LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"Unknown adapter: {name}. Available adapters: {', '.join(known)}")


@cache
def _registry() -> dict[str, type[BaseAdapter]]:
    found: dict[str, type[BaseAdapter]] = {}
    for module_name in PROVIDER_MODULES:
        module = importlib.import_module(f"aigen.providers.{module_name}")
        adapters: dict[str, type[BaseAdapter]] = module.ADAPTERS
        for name, cls in adapters.items():
            if name in found and found[name] is not cls:
                raise RuntimeError(f"adapter name {name!r} registered twice")
            found[name] = cls
    return found


def adapter_names() -> list[str]:
    return sorted(_registry())


def adapter_class(name: str) -> type[BaseAdapter]:
    try:
        return _registry()[name]
    except KeyError:
        raise UnknownAdapterError(name, adapter_names()) from None


def create_adapter(model: ModelConfig, http: httpx.AsyncClient) -> BaseAdapter:
    return adapter_class(model.adapter_name)(model, http)
