"""Standard-Webhooks and hex-body signature checks (no I/O)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from aigen.providers.webhooks import secret_keys, verify_hex_body, verify_standard

KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
BODY = b'{"id":"p1","status":"succeeded"}'
NOW = 1_700_000_000.0


def headers(
    key: bytes = KEY, *, msg_id: str = "msg_1", stamp: float = NOW, prefix: str = "webhook-"
) -> dict[str, str]:
    digest = hmac.new(key, f"{msg_id}.{int(stamp)}.".encode() + BODY, hashlib.sha256).digest()
    return {
        f"{prefix}id": msg_id,
        f"{prefix}timestamp": str(int(stamp)),
        f"{prefix}signature": "v1," + base64.b64encode(digest).decode(),
    }


def test_valid_signature_is_accepted_among_several_entries() -> None:
    signed = headers()
    signed["webhook-signature"] = "v1,AAAA " + signed["webhook-signature"]
    assert verify_standard(signed, BODY, SECRET, now=NOW)


def test_forged_altered_stale_or_missing_are_refused() -> None:
    assert not verify_standard(headers(b"another key"), BODY, SECRET, now=NOW)
    assert not verify_standard(headers(), BODY + b" ", SECRET, now=NOW)
    assert not verify_standard(headers(), BODY, SECRET, now=NOW + 3600)
    assert not verify_standard({}, BODY, SECRET, now=NOW)
    assert not verify_standard({**headers(), "webhook-timestamp": "soon"}, BODY, SECRET, now=NOW)


def test_plain_secrets_are_tried_as_given_and_base64_decoded() -> None:
    plain = "pollo-secret"
    assert secret_keys(plain) == [b"pollo-secret"]
    assert verify_standard(
        headers(b"pollo-secret", prefix="x-webhook-"), BODY, plain, prefix="x-webhook-", now=NOW
    )
    encoded = base64.b64encode(KEY).decode()
    assert verify_standard(headers(KEY), BODY, encoded, now=NOW)
    assert verify_standard(headers(encoded.encode()), BODY, encoded, now=NOW)


def test_bare_base64_signature_is_accepted() -> None:
    signed = headers()
    signed["webhook-signature"] = signed["webhook-signature"].removeprefix("v1,")
    assert verify_standard(signed, BODY, SECRET, now=NOW)


def test_hex_body_signature() -> None:
    good = hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    assert verify_hex_body(good, BODY, "s3cret")
    assert verify_hex_body("sha256=" + good.upper(), BODY, "s3cret")
    assert not verify_hex_body(good, BODY + b"x", "s3cret")
    assert not verify_hex_body("not hex", BODY, "s3cret")
