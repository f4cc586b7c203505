"""How a scripted fake task looks at each status check, in the fakes' own terms.

Every status check advances a poll-scripted task by one: the first checks see it queued, later
ones running, and from `polls_to_finish` on it is done. A time-scripted task moves by the clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from typing import Literal

from aigen.simulator.base import FakeProvider, FakeTask

Stage = Literal["queued", "running", "done"]


def stage_of(task: FakeTask) -> Stage:
    if task.finished():
        return "done"
    if task.seconds_to_finish is None:
        return "queued" if task.polls <= 1 else "running"
    return "queued" if task.progress() < 0.2 else "running"


def advance(task: FakeTask) -> Stage:
    if task.seconds_to_finish is None and not task.finished():
        task.polls += 1
    return stage_of(task)


def take_low_balance(fake: FakeProvider) -> bool:
    """Consume a queued "low_balance" fault, if there is one."""
    for i, fault in enumerate(fake.faults.queued):
        if fault.kind == "low_balance":
            fake.faults.queued.pop(i)
            return True
    return False


def standard_signature_headers(secret: str, body: bytes, *, prefix: str = "webhook-") -> dict[str, str]:
    """Standard-Webhooks headers: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.

    A `whsec_` secret carries its key base64-encoded after the prefix; any other secret is the key.
    """
    key = base64.b64decode(secret.split("_", 1)[1]) if secret.startswith("whsec_") else secret.encode()
    msg_id = f"msg_{uuid.uuid4().hex}"
    stamp = str(int(time.time()))
    digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        f"{prefix}id": msg_id,
        f"{prefix}timestamp": stamp,
        f"{prefix}signature": "v1," + base64.b64encode(digest).decode(),
    }
