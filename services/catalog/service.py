"""CatalogService: platforms, providers, models; validation, quotes, provider keys.

The catalog is small (tens of providers, hundreds of models) and read on every submission, so it
is served from an in-memory snapshot rebuilt from the tables whenever they change (LISTEN on
`catalog_changed`, plus a short TTL as a safety net for missed notifications).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
import psycopg
from aigen import errors
from aigen.db.pool import Database
from aigen.logs import register_secret
from aigen.modeldefs.adapter_settings import adapter_settings
from aigen.modeldefs.schema import ModelDef, PlatformDef, ProviderDef
from aigen.providers.base import make_http_client
from aigen.providers.registry import UnknownAdapterError, create_adapter
from aigen.providers.types import ModelConfig, ProviderConfig
from aigen.secrets import Sealer
from aigen.tasks.access import OUTPUT_TYPES as ADAPTER_OUTPUT_TYPES
from aigen.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2
from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct

from services.catalog import definitions
from services.catalog.domain import (
    ModelRecord,
    PlatformRecord,
    ProviderRecord,
    validate_endpoint,
    validate_prefix,
)
from services.catalog.repository import CHANGED_CHANNEL, CatalogRepository

log = logging.getLogger("aigen.catalog")

OUTPUT_TYPES = {"IMAGE": common_pb2.IMAGE, "VIDEO": common_pb2.VIDEO, "AUDIO": common_pb2.AUDIO}


@dataclass(frozen=True)
class Snapshot:
    platforms: dict[str, PlatformRecord]  # by slug
    providers: dict[str, ProviderRecord]  # by slug
    models: dict[str, ModelRecord]  # by slug
    loaded_at: float

    def platform(self, ref: str) -> PlatformRecord | None:
        return self.platforms.get(ref) or next((p for p in self.platforms.values() if str(p.id) == ref), None)

    def provider(self, ref: str) -> ProviderRecord | None:
        return self.providers.get(ref) or next((p for p in self.providers.values() if str(p.id) == ref), None)

    def model(self, ref: str) -> ModelRecord | None:
        return self.models.get(ref) or next((m for m in self.models.values() if str(m.id) == ref), None)


class CatalogStore:
    """The snapshot and how it is kept fresh."""

    def __init__(
        self,
        db: Database,
        *,
        env: Mapping[str, str] | None = None,
        which: Callable[[str], str | None] | None = None,
        ttl_s: float = 30.0,
    ) -> None:
        self.db = db
        self.repo = CatalogRepository(db)
        self.env = env
        self.which = which
        self.ttl_s = ttl_s
        self._snapshot: Snapshot | None = None
        self._lock = asyncio.Lock()
        self._listener: asyncio.Task[None] | None = None

    async def seed(self) -> None:
        catalog = definitions.load()
        await self.repo.seed(catalog.platforms.values(), catalog.providers.values(), catalog.models.values())
        self._snapshot = None

    async def snapshot(self) -> Snapshot:
        snap = self._snapshot
        if snap is not None and time.monotonic() - snap.loaded_at < self.ttl_s:
            return snap
        async with self._lock:
            if self._snapshot is None or time.monotonic() - self._snapshot.loaded_at >= self.ttl_s:
                self._snapshot = await self._load()
            return self._snapshot

    def invalidate(self) -> None:
        self._snapshot = None

    async def _load(self) -> Snapshot:
        rows = await self.repo.rows()
        import os

        env = self.env if self.env is not None else os.environ
        platforms: dict[uuid.UUID, PlatformRecord] = {
            pid: PlatformRecord(pid, PlatformDef.model_validate(definition))
            for pid, definition in rows.platforms
        }
        providers: dict[uuid.UUID, ProviderRecord] = {}
        for pid, platform_id, definition, overrides, sealed, last4 in rows.providers:
            providers[pid] = ProviderRecord(
                id=pid,
                definition=ProviderDef.model_validate(definition),
                platform=platforms[platform_id],
                overrides=overrides or {},
                api_key_sealed=sealed,
                api_key_last4=last4,
                env=env,
            )
        models: dict[str, ModelRecord] = {}
        for mid, provider_id, definition, overrides, usage in rows.models:
            model_def = ModelDef.model_validate(definition)
            provider = providers.get(provider_id)
            if provider is None:
                continue
            models[model_def.slug] = ModelRecord(
                id=mid,
                definition=model_def,
                provider=provider,
                overrides=overrides or {},
                usage_count=usage,
                missing_binaries=definitions.missing_binaries(model_def, self.which),
            )
        return Snapshot(
            platforms={p.slug: p for p in platforms.values()},
            providers={p.slug: p for p in providers.values()},
            models=models,
            loaded_at=time.monotonic(),
        )

    async def listen(self, stop: asyncio.Event) -> None:
        """Drop the snapshot whenever any replica changes the catalog."""
        channel = self.db.channel(CHANGED_CHANNEL)
        while not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(self.db.url, autocommit=True) as conn:
                    await conn.execute(f'LISTEN "{channel}"')
                    self.invalidate()
                    gen = conn.notifies()
                    while not stop.is_set():
                        try:
                            await asyncio.wait_for(anext(gen), 1.0)
                        except TimeoutError:
                            continue
                        self.invalidate()
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                log.warning("catalog listener: %s; retrying", type(exc).__name__)
                self.invalidate()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)


# --- messages ---------------------------------------------------------------------------------


def _text(value: object) -> catalog_pb2.Text:
    return catalog_pb2.Text(en=getattr(value, "en", ""), zh=getattr(value, "zh", ""))


def platform_message(p: PlatformRecord) -> catalog_pb2.Platform:
    d = p.definition
    return catalog_pb2.Platform(
        id=str(p.id), slug=d.slug, name=d.name, description=_text(d.description), website=d.website
    )


def provider_message(p: ProviderRecord, model_count: int = 0) -> catalog_pb2.Provider:
    d = p.definition
    return catalog_pb2.Provider(
        id=str(p.id),
        slug=d.slug,
        name=d.name,
        description=_text(d.description),
        platform_id=str(p.platform.id),
        platform_slug=p.platform.slug,
        api_endpoint=p.api_endpoint,
        has_api_key=p.key_source in ("stored", "environment"),
        api_key_masked=p.masked_key,
        api_key_source=p.key_source,
        upload_to_s3=p.upload_to_s3,
        s3_path_prefix=p.s3_path_prefix,
        active=p.active,
        sort_order=p.sort_order,
        auth_style=d.auth,
        model_count=model_count,
        credit_usd=str(d.credit_usd) if d.credit_usd is not None else "",
        status_per_second=d.rate_limits.status_per_second or 0.0,
        create_per_second=d.rate_limits.create_per_second or 0.0,
    )


def model_message(m: ModelRecord) -> catalog_pb2.Model:
    d = m.definition
    message = catalog_pb2.Model(
        id=str(m.id),
        slug=d.slug,
        name=d.name,
        description=_text(d.description),
        provider_id=str(m.provider.id),
        provider_slug=m.provider.slug,
        output_type=OUTPUT_TYPES[d.output_type],
        adapter_name=d.adapter,
        input_capabilities=list(d.input_capabilities),
        output_capabilities=list(d.output_capabilities),
        feature_tags=list(d.feature_tags),
        function_tags=list(d.function_tags),
        usage_count=m.usage_count,
        active=m.active,
        available=m.available,
        unavailable_reason=m.unavailable_reason or "",
        sort_order=m.sort_order,
        pricing_info=definitions.default_price_text(m),
        pricing_note=_text(d.pricing.unit_note) if d.pricing.unit_note else catalog_pb2.Text(),
        fields=definitions.form_fields(d),
        polling=common_pb2.PollingProfile(
            interval_s=d.polling.interval_s,
            max_attempts=d.polling.max_attempts,
            max_duration_s=d.polling.max_duration_s,
        ),
        outputs=catalog_pb2.OutputsSpec(
            default=d.outputs.default,
            min=d.outputs.min,
            max=d.outputs.max,
            allowed=list(d.outputs.allowed or ()),
        ),
        input_images=catalog_pb2.InputImagesSpec(
            min=d.input_images.min,
            max=d.input_images.max,
            max_bytes=d.input_images.max_bytes,
            mime_types=list(d.input_images.mime_types),
        ),
        prompt_required=d.prompt.required,
        alternatives=list(d.alternatives),
    )
    if d.prompt.max_length is not None:
        message.prompt_max_length = d.prompt.max_length
    message.adapter_settings.update(adapter_settings(d))
    return message


# --- the service ------------------------------------------------------------------------------


class CatalogService(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(
        self, store: CatalogStore, sealer: Sealer | None, *, http: httpx.AsyncClient | None = None
    ) -> None:
        self.store = store
        self.sealer = sealer
        self.http = http

    async def _provider(self, ref: str, field: str = "provider") -> ProviderRecord:
        if not ref:
            raise errors.InvalidArgument.field(field, "is required (an id or slug)")
        provider = (await self.store.snapshot()).provider(ref)
        if provider is None:
            raise errors.NotFound("provider", ref)
        return provider

    async def _model(self, ref: str, field: str = "model") -> ModelRecord:
        if not ref:
            raise errors.InvalidArgument.field(field, "is required (an id or slug)")
        model = (await self.store.snapshot()).model(ref)
        if model is None:
            raise errors.NotFound("model", ref)
        return model

    async def ListPlatforms(
        self, request: catalog_pb2.ListPlatformsRequest, context: object
    ) -> catalog_pb2.ListPlatformsResponse:
        snap = await self.store.snapshot()
        return catalog_pb2.ListPlatformsResponse(
            platforms=[platform_message(p) for p in sorted(snap.platforms.values(), key=lambda p: p.slug)]
        )

    async def GetPlatform(
        self, request: catalog_pb2.GetPlatformRequest, context: object
    ) -> catalog_pb2.Platform:
        if not request.id:
            raise errors.InvalidArgument.field("id", "is required (an id or slug)")
        platform = (await self.store.snapshot()).platform(request.id)
        if platform is None:
            raise errors.NotFound("platform", request.id)
        return platform_message(platform)

    async def ListProviders(
        self, request: catalog_pb2.ListProvidersRequest, context: object
    ) -> catalog_pb2.ListProvidersResponse:
        snap = await self.store.snapshot()
        providers = list(snap.providers.values())
        if request.platform:
            platform = snap.platform(request.platform)
            if platform is None:
                raise errors.InvalidArgument.field("platform", f"no platform {request.platform!r}")
            providers = [p for p in providers if p.platform.id == platform.id]
        if request.HasField("active"):
            providers = [p for p in providers if p.active == request.active]
        counts: dict[str, int] = {}
        for m in snap.models.values():
            counts[m.provider.slug] = counts.get(m.provider.slug, 0) + 1
        providers.sort(key=lambda p: (p.sort_order, p.slug))
        return catalog_pb2.ListProvidersResponse(
            providers=[provider_message(p, counts.get(p.slug, 0)) for p in providers]
        )

    async def _provider_reply(self, provider: ProviderRecord) -> catalog_pb2.Provider:
        snap = await self.store.snapshot()
        fresh = snap.providers.get(provider.slug, provider)
        return provider_message(
            fresh, sum(1 for m in snap.models.values() if m.provider.slug == provider.slug)
        )

    async def GetProvider(
        self, request: catalog_pb2.GetProviderRequest, context: object
    ) -> catalog_pb2.Provider:
        return await self._provider_reply(await self._provider(request.id, "id"))

    async def GetProviderBySlug(
        self, request: catalog_pb2.GetProviderBySlugRequest, context: object
    ) -> catalog_pb2.Provider:
        if not request.slug:
            raise errors.InvalidArgument.field("slug", "is required")
        provider = (await self.store.snapshot()).providers.get(request.slug)
        if provider is None:
            raise errors.NotFound("provider", request.slug)
        return await self._provider_reply(provider)

    async def ListModels(
        self, request: catalog_pb2.ListModelsRequest, context: object
    ) -> catalog_pb2.ListModelsResponse:
        snap = await self.store.snapshot()
        models = list(snap.models.values())
        if request.provider:
            provider = snap.provider(request.provider)
            if provider is None:
                raise errors.InvalidArgument.field("provider", f"no provider {request.provider!r}")
            models = [m for m in models if m.provider.slug == provider.slug]
        if request.output_type:
            names = {v: k for k, v in OUTPUT_TYPES.items()}
            if request.output_type not in names:
                raise errors.InvalidArgument.field(
                    "output_type", f"unknown output type {request.output_type}"
                )
            models = [m for m in models if m.definition.output_type == names[request.output_type]]
        if request.function_tag:
            known = {t for m in snap.models.values() for t in m.definition.function_tags}
            if request.function_tag not in known:
                raise errors.InvalidArgument.field(
                    "function_tag", f"unknown tag {request.function_tag!r}; known: {', '.join(sorted(known))}"
                )
            models = [m for m in models if request.function_tag in m.definition.function_tags]
        if request.HasField("active"):
            models = [m for m in models if m.active == request.active]
        if request.HasField("available"):
            models = [m for m in models if m.available == request.available]
        models.sort(key=lambda m: (m.provider.sort_order, m.sort_order, m.definition.name))
        return catalog_pb2.ListModelsResponse(models=[model_message(m) for m in models])

    async def GetModel(self, request: catalog_pb2.GetModelRequest, context: object) -> catalog_pb2.Model:
        return model_message(await self._model(request.id, "id"))

    async def GetModelBySlug(
        self, request: catalog_pb2.GetModelBySlugRequest, context: object
    ) -> catalog_pb2.Model:
        if not request.slug:
            raise errors.InvalidArgument.field("slug", "is required")
        model = (await self.store.snapshot()).models.get(request.slug)
        if model is None:
            raise errors.NotFound("model", request.slug)
        return model_message(model)

    async def UpdateProviderApiKey(
        self, request: catalog_pb2.UpdateProviderApiKeyRequest, context: object
    ) -> catalog_pb2.Provider:
        provider = await self._provider(request.provider)
        key = request.api_key.strip()
        if key:
            register_secret(key)
            if self.sealer is None:
                raise errors.FailedPrecondition(
                    "AIGEN_SECRET_KEY is not set: keys cannot be stored encrypted",
                    [errors.Violation("api_key", "no encryption key configured")],
                )
            if len(key) < 8 or any(c.isspace() for c in key):
                raise errors.InvalidArgument.field("api_key", "must be at least 8 characters without spaces")
            await self.store.repo.set_provider_key(provider.id, self.sealer.seal(key), key[-4:])
            log.info("stored a new API key for provider %s", provider.slug)
        else:
            await self.store.repo.set_provider_key(provider.id, None, None)
            log.info("cleared the stored API key of provider %s", provider.slug)
        self.store.invalidate()
        return await self._provider_reply(provider)

    async def UpdateProviderSettings(
        self, request: catalog_pb2.UpdateProviderSettingsRequest, context: object
    ) -> catalog_pb2.Provider:
        provider = await self._provider(request.provider)
        changes: dict[str, object] = {}
        violations: list[errors.Violation] = []
        if request.HasField("api_endpoint"):
            problem = validate_endpoint(request.api_endpoint)
            if problem:
                violations.append(errors.Violation("api_endpoint", problem))
            changes["api_endpoint"] = request.api_endpoint.rstrip("/")
        if request.HasField("upload_to_s3"):
            changes["upload_to_s3"] = request.upload_to_s3
        if request.HasField("s3_path_prefix"):
            problem = validate_prefix(request.s3_path_prefix)
            if problem:
                violations.append(errors.Violation("s3_path_prefix", problem))
            changes["s3_path_prefix"] = request.s3_path_prefix
        if request.HasField("active"):
            changes["active"] = request.active
        if request.HasField("sort_order"):
            changes["sort_order"] = request.sort_order
        if violations:
            raise errors.InvalidArgument("provider settings are invalid", violations)
        if changes:
            await self.store.repo.merge_overrides("catalog_providers", provider.id, changes)
            self.store.invalidate()
        return await self._provider_reply(provider)

    async def UpdateModelStatus(
        self, request: catalog_pb2.UpdateModelStatusRequest, context: object
    ) -> catalog_pb2.Model:
        model = await self._model(request.model)
        changes: dict[str, object] = {}
        if request.HasField("active"):
            changes["active"] = request.active
        if request.HasField("sort_order"):
            changes["sort_order"] = request.sort_order
        if changes:
            await self.store.repo.merge_overrides("catalog_models", model.id, changes)
            self.store.invalidate()
        return model_message((await self.store.snapshot()).models[model.slug])

    async def ValidateParameters(
        self, request: catalog_pb2.ValidateParametersRequest, context: object
    ) -> catalog_pb2.ValidateParametersResponse:
        model = await self._model(request.model)
        checked = definitions.validate(
            model.definition,
            MessageToDict(request.parameters),
            prompt=request.prompt,
            number_of_outputs=request.number_of_outputs or None,
            input_images=list(request.input_images),
        )
        if checked.violations:
            raise errors.InvalidArgument(
                f"{len(checked.violations)} invalid input(s) for {model.slug}: "
                + "; ".join(f"{v.field}: {v.description}" for v in checked.violations),
                checked.violations,
            )
        parameters = Struct()
        parameters.update(checked.parameters)
        quote = definitions.quote(
            model, checked.parameters, checked.number_of_outputs, request.prompt, len(request.input_images)
        )
        return catalog_pb2.ValidateParametersResponse(
            valid=True, parameters=parameters, number_of_outputs=checked.number_of_outputs, quote=quote
        )

    async def QuotePrice(
        self, request: catalog_pb2.QuotePriceRequest, context: object
    ) -> common_pb2.PriceQuote:
        model = await self._model(request.model)
        # A quote may be asked before there is a prompt or an image: stand-ins pass validation,
        # while the real prompt's length and image count (if any) still price the request.
        stand_in_images = ["-"] * max(request.input_image_count, model.definition.input_images.min)
        checked = definitions.validate(
            model.definition,
            MessageToDict(request.parameters),
            prompt=request.prompt or "-",
            number_of_outputs=request.number_of_outputs or None,
            input_images=stand_in_images[: model.definition.input_images.max] or None,
        )
        if checked.violations:
            raise errors.InvalidArgument(
                f"{len(checked.violations)} invalid parameter(s)", checked.violations
            )
        return definitions.quote(
            model, checked.parameters, checked.number_of_outputs, request.prompt, request.input_image_count
        )

    async def GetDispatchConfig(
        self, request: catalog_pb2.GetDispatchConfigRequest, context: object
    ) -> catalog_pb2.DispatchConfig:
        model = await self._model(request.model)
        config = self._dispatch_config(model)
        snap = await self.store.snapshot()
        for slug in model.definition.alternatives:
            alternative = snap.models.get(slug)
            if alternative is not None:
                config.alternatives.append(self._dispatch_config(alternative))
        return config

    def _dispatch_config(self, model: ModelRecord) -> catalog_pb2.DispatchConfig:
        settings = Struct()
        settings.update(model.provider.settings)
        return catalog_pb2.DispatchConfig(
            model=model_message(model),
            provider=provider_message(model.provider),
            sealed_api_key=model.provider.api_key_sealed or b"",
            provider_settings=settings,
            model_definition=model.definition_json,
            provider_definition=model.provider.definition_json,
        )

    async def CheckProviderHealth(
        self, request: catalog_pb2.CheckProviderHealthRequest, context: object
    ) -> catalog_pb2.ProviderHealth:
        """Ask the provider through one of its models' adapters, with the key a task would use."""
        provider = await self._provider(request.provider)
        snap = await self.store.snapshot()
        models = sorted(
            (m for m in snap.models.values() if m.provider.slug == provider.slug),
            key=lambda m: (not m.active, not m.available, m.sort_order, m.definition.slug),
        )
        if not models:
            raise errors.FailedPrecondition(
                f"provider {provider.slug} has no models to check it with",
                [errors.Violation("provider", "has no models")],
            )
        model = models[0]
        key = provider.env_key
        if provider.api_key_sealed and self.sealer is not None:
            key = self.sealer.unseal(provider.api_key_sealed)
        register_secret(key)
        config = ModelConfig(
            slug=model.slug,
            adapter_name=model.definition.adapter,
            output_type=ADAPTER_OUTPUT_TYPES[OUTPUT_TYPES[model.definition.output_type]],
            provider=ProviderConfig(
                slug=provider.slug,
                api_endpoint=provider.api_endpoint,
                api_key=key,
                settings=provider.settings,
            ),
            settings=adapter_settings(model.definition),
        )
        if self.http is None:
            self.http = make_http_client()
        reply = catalog_pb2.ProviderHealth(provider=provider.slug)
        reply.checked_at.GetCurrentTime()
        try:
            result = await create_adapter(config, self.http).health()
        except UnknownAdapterError as exc:
            reply.message = str(exc)
            return reply
        except Exception as exc:  # a health check reports trouble, it does not raise it
            reply.message = f"{type(exc).__name__}: {exc}"
            return reply
        reply.ok = result.ok
        reply.message = result.message
        reply.latency_ms = result.latency_ms
        if result.balance is not None:
            reply.balance = result.balance
            reply.balance_unit = result.balance_unit or ""
        return reply
