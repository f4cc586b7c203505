"""Signed file URLs for the local directory backend: `<gateway>/files/<key>?exp=<unix>&sig=<hmac>`.

The signing key is derived from AIGEN_SECRET_KEY (HMAC with a fixed purpose label), so the secret
itself never signs anything directly and a leaked URL reveals nothing about it. The gateway
checks a URL with `verify` before it serves the file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote, urlencode

_PURPOSE = b"aigen objectstore file-url signing v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class UrlSigner:
    def __init__(self, secret: str, base_url: str) -> None:
        if not secret:
            raise ValueError("AIGEN_SECRET_KEY is needed to sign file URLs")
        self._key = hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()
        self.base_url = base_url.rstrip("/")

    def signature(self, key: str, exp: int) -> str:
        return _b64(hmac.new(self._key, f"{key}\n{exp}".encode(), hashlib.sha256).digest())

    def sign(self, key: str, exp: int) -> str:
        query = urlencode({"exp": str(exp), "sig": self.signature(key, exp)})
        return f"{self.base_url}/files/{quote(key, safe='/')}?{query}"

    def verify(self, key: str, exp: int | str, sig: str, *, now: float | None = None) -> bool:
        """True when `sig` was made for this key and expiry, and the expiry has not passed."""
        try:
            expires = int(exp)
        except (TypeError, ValueError):
            return False
        if expires < (time.time() if now is None else now):
            return False
        return hmac.compare_digest(self.signature(key, expires), sig)
