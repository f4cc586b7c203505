"""Per-task callback tokens: the unguessable part of `/callbacks/{provider}/{token}`.

The token names the task and carries an HMAC of it under a key derived from AIGEN_SECRET_KEY, so
the gateway can route a provider's POST to its task without a lookup table, and nobody can forge
a callback for a task whose token they were not given.
"""

from __future__ import annotations

import hashlib
import hmac

_CONTEXT = b"aigen callback token v1"


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _CONTEXT, hashlib.sha256).digest()


def token_for(secret: str, task_id: str) -> str:
    sig = hmac.new(_key(secret), task_id.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{task_id}.{sig}"


def task_of(secret: str, token: str) -> str | None:
    """The task id a token names, or None when the token is not ours."""
    task_id, _, sig = token.rpartition(".")
    if not task_id or not sig:
        return None
    expected = token_for(secret, task_id).rpartition(".")[2]
    # Bytes, not str: compare_digest refuses non-ASCII strings, and a token is whatever a caller
    # put in the URL.
    return task_id if hmac.compare_digest(expected.encode(), sig.encode()) else None


def callback_url(base_url: str, provider_slug: str, secret: str, task_id: str) -> str:
    return f"{base_url.rstrip('/')}/callbacks/{provider_slug}/{token_for(secret, task_id)}"
