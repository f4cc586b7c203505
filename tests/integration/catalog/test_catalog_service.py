"""CatalogService over gRPC on real PostgreSQL: queries, admin changes, keys, bad input."""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal

import psycopg
import pytest
from aigen import errors
from aigen.config import Settings
from aigen.grpcx.client import call
from aigen.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2
from google.protobuf.struct_pb2 import Struct

from services.catalog.service import CatalogStore
from tests.support.stack import running_stack

SECRET = "catalog-test-secret-0123456789abcdef"


@pytest.fixture
async def catalog(pg_url, nats_url):
    schema = f"c_{uuid.uuid4().hex[:12]}"
    settings = Settings(
        database_url=pg_url,
        db_schema=schema,
        nats_url=nats_url,
        nats_namespace=f"c{uuid.uuid4().hex[:12]}",
        secret_key=SECRET,
    )
    try:
        async with running_stack(settings, ("catalog",)) as stack:
            yield catalog_pb2_grpc.CatalogServiceStub(stack.channel("catalog")), stack
    finally:
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def struct(**values) -> Struct:
    s = Struct()
    s.update(values)
    return s


async def test_platforms_providers_and_models_from_the_definitions(catalog):
    stub, _ = catalog
    platforms = await call(stub.ListPlatforms, catalog_pb2.ListPlatformsRequest())
    assert {"kie", "replicate", "openai", "elevenlabs", "pollo", "tuzi", "local"} <= {
        p.slug for p in platforms.platforms
    }
    kie = await call(stub.GetProviderBySlug, catalog_pb2.GetProviderBySlugRequest(slug="kie"))
    assert kie.api_endpoint == "https://api.kie.ai" and kie.credit_usd == "0.005" and kie.model_count == 32
    assert (await call(stub.GetProvider, catalog_pb2.GetProviderRequest(id=kie.id))).slug == "kie"
    models = await call(
        stub.ListModels, catalog_pb2.ListModelsRequest(provider="kie", output_type=common_pb2.VIDEO)
    )
    assert models.models and all(
        m.output_type == common_pb2.VIDEO and m.provider_slug == "kie" for m in models.models
    )
    orders = [m.sort_order for m in models.models]
    assert orders == sorted(orders)
    edits = await call(stub.ListModels, catalog_pb2.ListModelsRequest(function_tag="image-editing"))
    assert "kie-nano-banana-edit" in {m.slug for m in edits.models}
    image = await call(stub.GetModelBySlug, catalog_pb2.GetModelBySlugRequest(slug="kie-4o-image"))
    assert image.pricing_info.startswith("6 Credits ≈ $0.030")
    assert [f.key for f in image.fields][:2] == ["size", "isEnhance"] and image.fields[0].label.zh
    assert image.adapter_settings["outputs_parameter"] == "nVariants"
    assert (await call(stub.GetModel, catalog_pb2.GetModelRequest(id=image.id))).slug == "kie-4o-image"
    sora = await call(stub.GetModelBySlug, catalog_pb2.GetModelBySlugRequest(slug="kie-sora"))
    assert not sora.available and sora.unavailable_reason


async def test_validation_and_quotes(catalog):
    stub, _ = catalog
    ok = await call(
        stub.ValidateParameters,
        catalog_pb2.ValidateParametersRequest(model="kie-4o-image", prompt="a fox", number_of_outputs=4),
    )
    assert ok.valid and ok.quote.amount == "8" and Decimal(ok.quote.usd) == Decimal("0.040")
    assert ok.parameters["size"] == "1:1"
    quote = await call(
        stub.QuotePrice, catalog_pb2.QuotePriceRequest(model="kie-4o-image", number_of_outputs=2)
    )
    assert (quote.amount, quote.currency, Decimal(quote.usd)) == ("7", "credits", Decimal("0.035"))
    # A model that needs an input image still quotes before the image is chosen.
    needs_image = await call(
        stub.QuotePrice, catalog_pb2.QuotePriceRequest(model="kie-sora-2-image-to-video")
    )
    assert needs_image.currency == "credits" and Decimal(needs_image.amount) > 0
    with pytest.raises(errors.InvalidArgument) as bad:
        await call(
            stub.ValidateParameters,
            catalog_pb2.ValidateParametersRequest(
                model="kie-4o-image",
                prompt="a fox",
                number_of_outputs=3,
                parameters=struct(size="9:9", nope=1),
            ),
        )
    assert {v.field for v in bad.value.violations} == {
        "number_of_outputs",
        "parameters.size",
        "parameters.nope",
    }


async def test_bad_input_names_what_is_wrong(catalog):
    stub, _ = catalog
    with pytest.raises(errors.NotFound) as missing:
        await call(stub.GetModelBySlug, catalog_pb2.GetModelBySlugRequest(slug="kie-nope"))
    assert missing.value.name == "kie-nope" and "kie-nope" in str(missing.value)
    with pytest.raises(errors.NotFound):
        await call(stub.GetProviderBySlug, catalog_pb2.GetProviderBySlugRequest(slug="acme"))
    with pytest.raises(errors.InvalidArgument) as filt:
        await call(stub.ListModels, catalog_pb2.ListModelsRequest(provider="acme"))
    assert filt.value.violations[0].field == "provider"
    with pytest.raises(errors.InvalidArgument) as tag:
        await call(stub.ListModels, catalog_pb2.ListModelsRequest(function_tag="teleportation"))
    assert tag.value.violations[0].field == "function_tag"
    with pytest.raises(errors.InvalidArgument) as settings:
        await call(
            stub.UpdateProviderSettings,
            catalog_pb2.UpdateProviderSettingsRequest(
                provider="kie", api_endpoint="ftp://x", s3_path_prefix="/abs"
            ),
        )
    assert {v.field for v in settings.value.violations} == {"api_endpoint", "s3_path_prefix"}


async def test_a_provider_key_is_never_shown_stored_in_clear_or_logged(catalog, pg_url, caplog):
    stub, stack = catalog
    key = "kie-live-key-7f3a9c2e81d04b6a"
    caplog.set_level(logging.DEBUG)
    reply = await call(
        stub.UpdateProviderApiKey, catalog_pb2.UpdateProviderApiKeyRequest(provider="kie", api_key=key)
    )
    assert reply.api_key_masked == "••••" + key[-4:] and reply.api_key_source == "stored"
    responses = [
        reply,
        await call(stub.GetProviderBySlug, catalog_pb2.GetProviderBySlugRequest(slug="kie")),
        await call(stub.ListProviders, catalog_pb2.ListProvidersRequest()),
        await call(stub.GetDispatchConfig, catalog_pb2.GetDispatchConfigRequest(model="kie-nano-banana")),
    ]
    for message in responses:
        assert key.encode() not in message.SerializeToString()
    config = responses[-1]
    assert config.sealed_api_key and key.encode() not in config.sealed_api_key
    from aigen.secrets import Sealer

    assert Sealer(SECRET).unseal(config.sealed_api_key) == key  # sealed, not lost
    schema = stack.settings.db_schema
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        for table in ("catalog_providers", "catalog_models", "catalog_platforms"):
            dump = await (await conn.execute(f'SELECT t::text FROM "{schema}".{table} t')).fetchall()
            assert not any(key in row[0] for row in dump), table
    assert key not in caplog.text
    cleared = await call(
        stub.UpdateProviderApiKey, catalog_pb2.UpdateProviderApiKeyRequest(provider="kie", api_key="")
    )
    assert cleared.api_key_source in ("none", "environment") and not cleared.api_key_masked.endswith(key[-4:])


async def test_admin_changes_survive_a_reseed(catalog):
    stub, stack = catalog
    await call(
        stub.UpdateProviderSettings,
        catalog_pb2.UpdateProviderSettingsRequest(
            provider="replicate",
            api_endpoint="https://replicate.internal",
            upload_to_s3=False,
            s3_path_prefix="media/",
        ),
    )
    await call(
        stub.UpdateModelStatus,
        catalog_pb2.UpdateModelStatusRequest(model="kie-nano-banana", active=False, sort_order=99),
    )
    await call(
        stub.UpdateProviderApiKey,
        catalog_pb2.UpdateProviderApiKeyRequest(provider="pollo", api_key="pollo_abcdef123456"),
    )
    store: CatalogStore = stack.extra("catalog", "store")
    await store.seed()  # what every start does
    await store.seed()
    replicate = await call(stub.GetProviderBySlug, catalog_pb2.GetProviderBySlugRequest(slug="replicate"))
    assert (replicate.api_endpoint, replicate.upload_to_s3, replicate.s3_path_prefix) == (
        "https://replicate.internal",
        False,
        "media/",
    )
    banana = await call(stub.GetModelBySlug, catalog_pb2.GetModelBySlugRequest(slug="kie-nano-banana"))
    assert (banana.active, banana.sort_order) == (False, 99)
    pollo = await call(stub.GetProviderBySlug, catalog_pb2.GetProviderBySlugRequest(slug="pollo"))
    assert pollo.api_key_source == "stored" and pollo.api_key_masked.endswith("3456")
    inactive = await call(stub.ListModels, catalog_pb2.ListModelsRequest(provider="kie", active=False))
    assert "kie-nano-banana" in {m.slug for m in inactive.models}
    active = await call(stub.ListModels, catalog_pb2.ListModelsRequest(provider="kie", active=True))
    assert "kie-nano-banana" not in {m.slug for m in active.models}
