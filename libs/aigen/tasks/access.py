"""What an adapter needs to talk to a provider, from the catalog: endpoint, key, settings.

The catalog hands out the provider key sealed; it is opened here, in the process that calls the
provider, and registered with the log scrubber. Resolution order is the seed's: the stored key,
else `AI_PROVIDER_<SLUG>_API_KEY`. Webhook secrets come from `AI_PROVIDER_<SLUG>_WEBHOOK_SECRET`.
Configs are cached for a few seconds: a key change reaches every process within that time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from google.protobuf.json_format import MessageToDict

from aigen.grpcx.client import call
from aigen.logs import register_secret
from aigen.modeldefs.schema import ModelDef, ProviderDef
from aigen.providers.types import ModelConfig, OutputType, ProviderConfig
from aigen.secrets import Sealer
from aigen.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2, events_pb2

OUTPUT_TYPES = {
    common_pb2.IMAGE: OutputType.IMAGE,
    common_pb2.VIDEO: OutputType.VIDEO,
    common_pb2.AUDIO: OutputType.AUDIO,
}


def env_key(slug: str, what: str) -> str:
    return f"AI_PROVIDER_{slug.upper().replace('-', '_')}_{what}"


class ProviderAccess:
    def __init__(
        self,
        catalog: catalog_pb2_grpc.CatalogServiceStub,
        sealer: Sealer | None,
        *,
        env: Mapping[str, str] | None = None,
        ttl_s: float = 5.0,
    ) -> None:
        self.catalog = catalog
        self.sealer = sealer
        self.env = os.environ if env is None else env
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, catalog_pb2.DispatchConfig]] = {}
        self._definitions: dict[tuple[str, int, int], tuple[ModelDef, ProviderDef]] = {}
        self._keys: dict[bytes, str] = {}

    async def dispatch_config(self, model: str) -> catalog_pb2.DispatchConfig:
        now = time.monotonic()
        hit = self._cache.get(model)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        config: catalog_pb2.DispatchConfig = await call(
            self.catalog.GetDispatchConfig, catalog_pb2.GetDispatchConfigRequest(model=model)
        )
        self._cache[model] = (now, config)
        self._cache[config.model.slug] = (now, config)
        self._cache[config.model.id] = (now, config)
        return config

    def definitions(self, config: catalog_pb2.DispatchConfig) -> tuple[ModelDef, ProviderDef]:
        """The model's and provider's definitions from the config, parsed once per version."""
        key = (config.model.slug, hash(config.model_definition), hash(config.provider_definition))
        parsed = self._definitions.get(key)
        if parsed is None:
            parsed = (
                ModelDef.model_validate_json(config.model_definition),
                ProviderDef.model_validate_json(config.provider_definition),
            )
            self._definitions = {k: v for k, v in self._definitions.items() if k[0] != key[0]}
            self._definitions[key] = parsed
        return parsed

    def api_key(self, config: catalog_pb2.DispatchConfig) -> str:
        if config.sealed_api_key and self.sealer is not None:
            # Opening a sealed key costs a decryption: once per distinct sealed value.
            key = self._keys.get(config.sealed_api_key) or ""
            if not key:
                key = self.sealer.unseal(config.sealed_api_key)
                self._keys[config.sealed_api_key] = key
        else:
            key = self.env.get(env_key(config.provider.slug, "API_KEY"), "")
        register_secret(key)
        return key

    def provider_settings(self, config: catalog_pb2.DispatchConfig) -> dict[str, Any]:
        settings: dict[str, Any] = MessageToDict(config.provider_settings)
        secret = self.env.get(env_key(config.provider.slug, "WEBHOOK_SECRET"), "")
        if secret:
            register_secret(secret)
            settings.setdefault("webhook_secret", secret)
            settings.setdefault("webhook_hmac_key", secret)
        return settings

    def model_config(
        self, config: catalog_pb2.DispatchConfig, snapshot: events_pb2.ModelSnapshot | None = None
    ) -> ModelConfig:
        """The adapter's config: adapter name and settings as captured on the task (so a running
        task keeps the contract it started with), endpoint and key as the catalog says now."""
        adapter_name = snapshot.adapter_name if snapshot is not None else config.model.adapter_name
        adapter_settings = (
            snapshot.adapter_settings if snapshot is not None else config.model.adapter_settings
        )
        output_type = snapshot.output_type if snapshot is not None else config.model.output_type
        return ModelConfig(
            slug=config.model.slug,
            adapter_name=adapter_name,
            output_type=OUTPUT_TYPES.get(output_type, OutputType.IMAGE),
            provider=ProviderConfig(
                slug=config.provider.slug,
                api_endpoint=config.provider.api_endpoint,
                api_key=self.api_key(config),
                settings=self.provider_settings(config),
            ),
            settings=MessageToDict(adapter_settings),
        )


def snapshot_of(config: catalog_pb2.DispatchConfig) -> events_pb2.ModelSnapshot:
    """What a task records about its model at creation (or failover)."""
    model, provider = config.model, config.provider
    return events_pb2.ModelSnapshot(
        model_id=model.id,
        model_slug=model.slug,
        model_name=model.name,
        provider_id=provider.id,
        provider_slug=provider.slug,
        adapter_name=model.adapter_name,
        output_type=model.output_type,
        adapter_settings=model.adapter_settings,
        polling=model.polling,
        alternatives=list(model.alternatives),
        upload_to_s3=provider.upload_to_s3,
        s3_path_prefix=provider.s3_path_prefix,
        credit_usd=provider.credit_usd,
    )
