"""Choosing and configuring the object store from the environment.

`AIGEN_S3_BUCKET` set → S3 (`AIGEN_S3_ENDPOINT_URL`, `AIGEN_S3_REGION`, `AIGEN_S3_ACCESS_KEY_ID` /
`AIGEN_S3_SECRET_ACCESS_KEY` or boto3's standard credential chain, `AIGEN_S3_PUBLIC_BASE_URL`,
`AIGEN_S3_CREATE_BUCKET=1`, `AIGEN_S3_ADDRESSING_STYLE`, `AIGEN_S3_PART_SIZE_MB`,
`AIGEN_S3_PARTS_IN_FLIGHT`); otherwise a local directory (`AIGEN_STORAGE_DIR`, default
`$AIGEN_HOME/objects`) whose files the gateway serves at `AIGEN_GATEWAY_URL/files/<key>` behind
URLs signed with a key derived from `AIGEN_SECRET_KEY`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from aigen.logs import register_secret
from aigen.objectstore.base import ObjectStore
from aigen.objectstore.local import LocalDirStore
from aigen.objectstore.s3 import AddressingStyle, S3Store
from aigen.objectstore.signing import UrlSigner

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8080"
STYLES: dict[str, AddressingStyle] = {"auto": "auto", "path": "path", "virtual": "virtual"}


class StoreConfigError(ValueError):
    """An object store setting is present but wrong; the message names the variable."""


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _whole(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name) or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise StoreConfigError(f"{name}={raw!r}: expected a whole number") from None
    if value < 1:
        raise StoreConfigError(f"{name}={raw!r}: expected at least 1")
    return value


def local_root(env: Mapping[str, str]) -> Path:
    explicit = env.get("AIGEN_STORAGE_DIR")
    if explicit:
        return Path(explicit)
    return Path(env.get("AIGEN_HOME") or ".aigen") / "objects"


def url_signer_from_env(env: Mapping[str, str] | None = None) -> UrlSigner | None:
    """The signer of local file URLs (the gateway verifies with it); None without a secret key."""
    env = os.environ if env is None else env
    secret = env.get("AIGEN_SECRET_KEY") or ""
    if not secret:
        return None
    return UrlSigner(secret, env.get("AIGEN_GATEWAY_URL") or DEFAULT_GATEWAY_URL)


def s3_from_env(env: Mapping[str, str]) -> S3Store:
    secret = env.get("AIGEN_S3_SECRET_ACCESS_KEY") or None
    if secret:
        register_secret(secret)
    part_size = _whole(env, "AIGEN_S3_PART_SIZE_MB", 8) * 1024 * 1024
    in_flight = _whole(env, "AIGEN_S3_PARTS_IN_FLIGHT", 4)
    style = env.get("AIGEN_S3_ADDRESSING_STYLE") or None
    if style is not None and style not in STYLES:
        raise StoreConfigError(f"AIGEN_S3_ADDRESSING_STYLE={style!r}: use auto, path or virtual")
    try:
        return S3Store(
            env["AIGEN_S3_BUCKET"],
            endpoint_url=env.get("AIGEN_S3_ENDPOINT_URL") or None,
            region=env.get("AIGEN_S3_REGION") or None,
            access_key_id=env.get("AIGEN_S3_ACCESS_KEY_ID") or None,
            secret_access_key=secret,
            public_base_url=env.get("AIGEN_S3_PUBLIC_BASE_URL") or None,
            create_bucket=_flag(env.get("AIGEN_S3_CREATE_BUCKET")),
            addressing_style=STYLES[style] if style else None,
            part_size=part_size,
            max_parts_in_flight=in_flight,
        )
    except ValueError as exc:
        raise StoreConfigError(f"AIGEN_S3_*: {exc}") from None


def from_env(env: Mapping[str, str] | None = None) -> ObjectStore:
    """S3 when AIGEN_S3_BUCKET is set, else the local directory."""
    env = os.environ if env is None else env
    if env.get("AIGEN_S3_BUCKET"):
        return s3_from_env(env)
    return LocalDirStore(local_root(env), signer=url_signer_from_env(env))
