"""Object keys, signed file URLs and choosing a backend from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from aigen.objectstore import (
    InvalidKey,
    LocalDirStore,
    S3Store,
    StoreConfigError,
    UrlSigner,
    from_env,
    url_signer_from_env,
    validate_key,
    validate_prefix,
)


@pytest.mark.parametrize(
    "key", ["a.png", "ai-generation/t1/0.png", "studio/ep 1/board (final).pdf", "é/ü.png"]
)
def test_ordinary_keys_pass(key):
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("", "empty"),
        ("/etc/passwd", "starts with '/'"),
        ("../up", "'..'"),
        ("a/../../b", "'..'"),
        ("a/./b", "'.'"),
        ("a//b", "empty path segment"),
        ("a/", "empty path segment"),
        (".tmp/x", "starting with '.'"),
        ("a\\b", "backslash"),
        ("a\nb", "control character"),
        ("x" * 1025, "longer than 1024 bytes"),
    ],
)
def test_bad_keys_are_refused_naming_the_rule(key, why):
    with pytest.raises(InvalidKey, match=why):
        validate_key(key)


def test_prefixes_end_with_a_slash():
    assert validate_prefix("") == ""
    assert validate_prefix("ai-generation/") == "ai-generation/"
    with pytest.raises(InvalidKey, match="does not end with '/'"):
        validate_prefix("ai-generation")


def test_signed_urls_verify_only_for_their_key_expiry_and_secret():
    signer = UrlSigner("s3cr3t-key", "https://aigen.example.com/")
    url = signer.sign("r/t/0 final.png", 2_000_000_000)
    assert url.startswith("https://aigen.example.com/files/r/t/0%20final.png?exp=2000000000&sig=")
    sig = url.rsplit("sig=", 1)[1]
    assert signer.verify("r/t/0 final.png", 2_000_000_000, sig, now=1_900_000_000)
    assert signer.verify("r/t/0 final.png", "2000000000", sig, now=1_900_000_000)
    assert not signer.verify("r/t/0 final.png", 2_000_000_000, sig, now=2_000_000_001)  # expired
    assert not signer.verify("r/t/1.png", 2_000_000_000, sig, now=0)
    assert not signer.verify("r/t/0 final.png", "soon", sig, now=0)
    assert not UrlSigner("another-key", "https://x").verify("r/t/0 final.png", 2_000_000_000, sig, now=0)
    assert "s3cr3t-key" not in url
    with pytest.raises(ValueError, match="AIGEN_SECRET_KEY"):
        UrlSigner("", "https://x")


def test_from_env_picks_s3_when_a_bucket_is_named_else_the_local_directory(tmp_path: Path):
    local = from_env({"AIGEN_HOME": str(tmp_path), "AIGEN_SECRET_KEY": "k" * 16})
    assert isinstance(local, LocalDirStore)
    assert local.root == tmp_path / "objects"
    assert local.signer is not None
    assert local.signer.base_url == "http://127.0.0.1:8080"
    explicit = from_env({"AIGEN_STORAGE_DIR": str(tmp_path / "elsewhere")})
    assert isinstance(explicit, LocalDirStore)
    assert explicit.root == tmp_path / "elsewhere"
    assert explicit.signer is None
    s3 = from_env(
        {
            "AIGEN_S3_BUCKET": "results",
            "AIGEN_S3_ENDPOINT_URL": "http://minio:9000",
            "AIGEN_S3_SECRET_ACCESS_KEY": "do-not-print-me",
            "AIGEN_S3_CREATE_BUCKET": "1",
            "AIGEN_S3_PUBLIC_BASE_URL": "https://cdn.example.com/",
        }
    )
    assert isinstance(s3, S3Store)
    assert (s3.bucket, s3.endpoint_url, s3.create_bucket, s3.addressing_style, s3.public_base_url) == (
        "results",
        "http://minio:9000",
        True,
        "path",
        "https://cdn.example.com",
    )
    assert "do-not-print-me" not in repr(s3)
    aws = from_env({"AIGEN_S3_BUCKET": "results", "AIGEN_S3_REGION": "eu-west-1"})
    assert isinstance(aws, S3Store)
    assert (aws.addressing_style, aws.region, aws.create_bucket) == ("auto", "eu-west-1", False)


def test_bad_s3_settings_name_the_variable():
    with pytest.raises(StoreConfigError, match="AIGEN_S3_PART_SIZE_MB"):
        from_env({"AIGEN_S3_BUCKET": "b", "AIGEN_S3_PART_SIZE_MB": "lots"})
    with pytest.raises(StoreConfigError, match="at least"):
        from_env({"AIGEN_S3_BUCKET": "b", "AIGEN_S3_PART_SIZE_MB": "1"})
    with pytest.raises(StoreConfigError, match="AIGEN_S3_ADDRESSING_STYLE"):
        from_env({"AIGEN_S3_BUCKET": "b", "AIGEN_S3_ADDRESSING_STYLE": "sideways"})


def test_the_gateway_gets_the_same_signer_from_the_environment():
    env = {"AIGEN_SECRET_KEY": "k" * 16, "AIGEN_GATEWAY_URL": "https://gw.example.com"}
    signer = url_signer_from_env(env)
    assert signer is not None
    store = from_env(env)
    assert isinstance(store, LocalDirStore)
    assert store.signer is not None
    url = store.signer.sign("a/0.png", 2_000_000_000)
    assert signer.verify("a/0.png", 2_000_000_000, url.rsplit("sig=", 1)[1], now=0)
    assert url_signer_from_env({}) is None
