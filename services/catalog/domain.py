"""Catalog rules without I/O: effective values, ids, masking, key resolution order.

A platform/provider/model row holds its definition (from the YAML files, rewritten at every start)
and the admin's overrides (kept forever). What the system uses is the override when there is
one, else the definition. Deployment settings in the environment win over both for endpoints, so
one catalog can point at different hosts per environment (and `aigen run --simulate` at fakes).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from aigen.modeldefs.schema import ModelDef, PlatformDef, ProviderDef

_NAMESPACE = uuid.UUID("8f0d6f0e-8d63-4a59-9a43-6c1f1d2b7a10")

PROVIDER_OVERRIDABLE = ("api_endpoint", "upload_to_s3", "s3_path_prefix", "active", "sort_order")
MODEL_OVERRIDABLE = ("active", "sort_order")


def stable_id(kind: str, slug: str) -> uuid.UUID:
    """The same slug always gets the same id, in every database (seeding is reproducible)."""
    return uuid.uuid5(_NAMESPACE, f"{kind}:{slug}")


def env_name(slug: str, what: str) -> str:
    """`AI_PROVIDER_<SLUG>_<WHAT>`: slug upper-cased, '-' → '_' (the seed's convention)."""
    return f"AI_PROVIDER_{slug.upper().replace('-', '_')}_{what}"


def endpoint_override_name(slug: str) -> str:
    return f"AIGEN_PROVIDER_{slug.upper().replace('-', '_')}_ENDPOINT"


def settings_override_name(slug: str) -> str:
    return f"AIGEN_PROVIDER_{slug.upper().replace('-', '_')}_SETTINGS"


@dataclass(frozen=True)
class PlatformRecord:
    id: uuid.UUID
    definition: PlatformDef

    @property
    def slug(self) -> str:
        return self.definition.slug


@dataclass(frozen=True)
class ProviderRecord:
    id: uuid.UUID
    definition: ProviderDef
    platform: PlatformRecord
    overrides: Mapping[str, Any] = field(default_factory=dict)
    api_key_sealed: bytes | None = None
    api_key_last4: str | None = None
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)

    @property
    def slug(self) -> str:
        return self.definition.slug

    def _value(self, name: str) -> Any:
        return self.overrides.get(name, getattr(self.definition, name))

    @property
    def api_endpoint(self) -> str:
        return str(self.env.get(endpoint_override_name(self.slug)) or self._value("api_endpoint"))

    @property
    def upload_to_s3(self) -> bool:
        return bool(self._value("upload_to_s3"))

    @property
    def s3_path_prefix(self) -> str:
        prefix = str(self._value("s3_path_prefix") or "ai-generation/")
        return prefix if prefix.endswith("/") else prefix + "/"

    @cached_property
    def definition_json(self) -> str:
        return self.definition.model_dump_json()

    @property
    def active(self) -> bool:
        return bool(self._value("active"))

    @property
    def sort_order(self) -> int:
        return int(self._value("sort_order"))

    @property
    def settings(self) -> dict[str, Any]:
        """Definition settings, with the deployment's AIGEN_PROVIDER_<SLUG>_SETTINGS (JSON) on top."""
        merged = dict(self.definition.settings)
        raw = self.env.get(settings_override_name(self.slug), "")
        if raw:
            try:
                extra = json.loads(raw)
            except ValueError:
                extra = None
            if isinstance(extra, dict):
                merged.update(extra)
        return merged

    @property
    def env_key(self) -> str:
        return self.env.get(env_name(self.slug, "API_KEY"), "")

    @property
    def key_source(self) -> str:
        """The seed's order: the stored key first, else the environment variable."""
        if self.definition.auth == "none":
            return "none"
        if self.api_key_sealed:
            return "stored"
        if self.env_key:
            return "environment"
        return "none"

    @property
    def masked_key(self) -> str:
        if self.key_source == "stored" and self.api_key_last4:
            return "••••" + self.api_key_last4
        if self.key_source == "environment":
            return "••••" + self.env_key[-4:] if len(self.env_key) >= 8 else "••••"
        return ""


@dataclass(frozen=True)
class ModelRecord:
    id: uuid.UUID
    definition: ModelDef
    provider: ProviderRecord
    overrides: Mapping[str, Any] = field(default_factory=dict)
    usage_count: int = 0
    missing_binaries: tuple[str, ...] = ()

    @property
    def slug(self) -> str:
        return self.definition.slug

    @cached_property
    def definition_json(self) -> str:
        return self.definition.model_dump_json()

    @property
    def active(self) -> bool:
        return bool(self.overrides.get("active", self.definition.active))

    @property
    def sort_order(self) -> int:
        return int(self.overrides.get("sort_order", self.definition.sort_order))

    @property
    def unavailable_reason(self) -> str | None:
        if not self.definition.available:
            return self.definition.unavailable_reason or "unavailable"
        if self.missing_binaries:
            return f"needs {', '.join(self.missing_binaries)} on the machine running the provider"
        return None

    @property
    def available(self) -> bool:
        return self.unavailable_reason is None

    @property
    def usable(self) -> bool:
        """May take new tasks: active, available, and its provider active."""
        return self.active and self.available and self.provider.active


def validate_prefix(prefix: str) -> str | None:
    """Why an S3 path prefix is unacceptable, or None."""
    if prefix.startswith("/"):
        return "must not start with '/'"
    if ".." in prefix.split("/"):
        return "must not contain '..'"
    if len(prefix) > 200:
        return "must be at most 200 characters"
    return None


def validate_endpoint(endpoint: str) -> str | None:
    if not endpoint.startswith(("http://", "https://")):
        return "must be an http(s) URL"
    return None
