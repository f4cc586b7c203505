"""API key material: the format, the stored hash, the webhook signing secret. No I/O.

A key reads `aigen_<id>_<secret>`: `id` (12 hex digits) names the row and is safe to show;
`secret` is 32 random bytes, URL-safe base64. Only an HMAC-SHA256 of the whole key is stored,
under a key derived from AIGEN_SECRET_KEY with a purpose label: the keys carry 256 bits of
entropy, so a slow password hash would add latency to every request and no safety. A database
dump alone cannot be turned back into working keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "aigen"
_KEY_RE = re.compile(r"^aigen_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_HASH_PURPOSE = b"aigen api key hashing v1"
_DEPLOYMENT_WEBHOOK_PURPOSE = b"aigen deployment webhook secret v1"


@dataclass(frozen=True)
class NewKey:
    id: str
    key: str  # shown once, never stored

    @property
    def prefix(self) -> str:
        return display_prefix(self.id)


def display_prefix(key_id: str) -> str:
    """What lists show of a key."""
    return f"{PREFIX}_{key_id}"


def generate() -> NewKey:
    key_id = secrets.token_hex(6)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return NewKey(key_id, f"{PREFIX}_{key_id}_{secret}")


def parse(key: str) -> str | None:
    """The id a well-formed key names, or None."""
    match = _KEY_RE.match(key.strip())
    return match.group(1) if match else None


class KeyHasher:
    def __init__(self, server_secret: str) -> None:
        if not server_secret:
            raise ValueError("AIGEN_SECRET_KEY is needed to hash API keys")
        self._key = hmac.new(server_secret.encode(), _HASH_PURPOSE, hashlib.sha256).digest()

    def hash(self, key: str) -> bytes:
        return hmac.new(self._key, key.strip().encode(), hashlib.sha256).digest()

    def matches(self, key: str, stored: bytes) -> bool:
        return hmac.compare_digest(self.hash(key), stored)


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and the base64 of the HMAC key."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def deployment_webhook_secret(server_secret: str) -> str:
    """Signs webhooks of tasks submitted without an API key (internal gRPC callers)."""
    raw = hmac.new(server_secret.encode(), _DEPLOYMENT_WEBHOOK_PURPOSE, hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(raw).decode()
