"""Verification of signed provider callbacks.

Replicate (and Pollo, per its docs) sign the Standard-Webhooks way: HMAC-SHA256 over
`"{id}.{timestamp}.{raw body}"`, sent base64-encoded as space-separated `v1,<signature>` entries.
The Replicate secret reads `whsec_<base64 key>`; for Pollo it is unclear whether the key is used
as given or base64-decoded, so every plausible key is tried.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import time
from collections.abc import Mapping


def secret_keys(secret: str) -> list[bytes]:
    """Candidate HMAC keys for a configured secret, most specific first."""
    keys: list[bytes] = []
    raw = secret.strip()
    body = raw.split("_", 1)[1] if raw.startswith("whsec_") else raw
    with contextlib.suppress(binascii.Error, ValueError):
        keys.append(base64.b64decode(body, validate=True))
    if not raw.startswith("whsec_"):
        keys.append(raw.encode())
    return [k for k in keys if k]


def _signatures(header: str) -> list[bytes]:
    """Decoded signatures from `v1,<b64> v1,<b64>`; a bare base64 value is accepted too."""
    found: list[bytes] = []
    for entry in header.replace(",", " , ").split():
        if entry in (",", "v1"):
            continue
        try:
            found.append(base64.b64decode(entry, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def verify_standard(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    prefix: str = "webhook-",
    tolerance_s: float | None = 300.0,
    now: float | None = None,
) -> bool:
    """Check `<prefix>id`, `<prefix>timestamp`, `<prefix>signature` (header names lower-cased)."""
    msg_id = headers.get(f"{prefix}id")
    stamp = headers.get(f"{prefix}timestamp")
    signature = headers.get(f"{prefix}signature")
    if not (msg_id and stamp and signature):
        return False
    if tolerance_s is not None:
        try:
            # A replayed old delivery is refused even with a valid signature.
            if abs((time.time() if now is None else now) - float(stamp)) > tolerance_s:
                return False
        except ValueError:
            return False
    signed = msg_id.encode() + b"." + stamp.encode() + b"." + body
    candidates = _signatures(signature)
    for key in secret_keys(secret):
        expected = hmac.new(key, signed, hashlib.sha256).digest()
        if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
            return True
    return False


def verify_hex_body(signature: str, body: bytes, secret: str) -> bool:
    """A single hex HMAC-SHA256 of the raw body (the other scheme Pollo's material describes)."""
    given = signature.strip().lower().removeprefix("sha256=")
    for key in [secret.encode(), *secret_keys(secret)]:
        expected = hmac.new(key, body, hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, given):
            return True
    return False
