"""Every fake provider behind one port, and the settings that point aigen at them.

`aigen simulate` (and `aigen run --simulate`) serves the fakes under `/<provider slug>/…`, each
believing it is the provider's own host. `simulator_env` returns the environment that makes the
catalog route each provider to its fake with the fake's key, so every model can be tried end to
end with no account.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aigen.simulator.base import FakeProvider, Script
from aigen.simulator.elevenlabs import ElevenLabsFake
from aigen.simulator.kie import KieFake
from aigen.simulator.openai import OpenAIFake
from aigen.simulator.pollo import PolloFake
from aigen.simulator.replicate import ReplicateFake
from aigen.simulator.tuzi import TuziFake

FAKES: dict[str, type[FakeProvider]] = {
    "kie": KieFake,
    "replicate": ReplicateFake,
    "openai": OpenAIFake,
    "elevenlabs": ElevenLabsFake,
    "pollo": PolloFake,
    "tuzi": TuziFake,
}


def api_key_of(slug: str) -> str:
    return f"sim-{slug}-key-0001"


def webhook_secret_of(slug: str) -> str:
    if slug == "replicate":
        return "whsec_c2ltdWxhdG9yLXJlcGxpY2F0ZS1zZWNyZXQ="  # Standard Webhooks: whsec_ + base64
    return f"sim-{slug}-webhook-secret"


def make_fakes(seconds_to_finish: float | None = 4.0) -> dict[str, FakeProvider]:
    """One fake per provider, finishing tasks after a few seconds of wall time (a demo pace)."""
    return {
        slug: cls(
            api_key=api_key_of(slug),
            callback_secret=webhook_secret_of(slug),
            script=Script(seconds_to_finish=seconds_to_finish),
        )
        for slug, cls in FAKES.items()
    }


def simulator_env(base_url: str) -> dict[str, str]:
    """Environment for aigen's services: each provider → its fake, with the fake's credentials."""
    env: dict[str, str] = {}
    for slug in FAKES:
        upper = slug.upper().replace("-", "_")
        env[f"AIGEN_PROVIDER_{upper}_ENDPOINT"] = f"{base_url}/{slug}"
        env[f"AI_PROVIDER_{upper}_API_KEY"] = api_key_of(slug)
        env[f"AI_PROVIDER_{upper}_WEBHOOK_SECRET"] = webhook_secret_of(slug)
    env["AIGEN_PROVIDER_KIE_SETTINGS"] = json.dumps({"upload_endpoint": f"{base_url}/kie"})
    env.setdefault("AIGEN_NETGUARD_ALLOW", "127.0.0.1")
    return env


class SimulatorApp:
    """Routes `/<slug>/rest` to that fake as `/rest`, with the fake's base URL kept right."""

    def __init__(self, fakes: Mapping[str, FakeProvider], base_url: str = "") -> None:
        self.fakes = dict(fakes)
        self.set_base_url(base_url)

    def set_base_url(self, base_url: str) -> None:
        for slug, fake in self.fakes.items():
            fake.base_url = f"{base_url}/{slug}"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path: str = scope.get("path", "/")
        if path in ("/healthz", "/"):
            body = json.dumps({"status": "ok", "providers": sorted(self.fakes)}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        slug, _, rest = path.lstrip("/").partition("/")
        fake = self.fakes.get(slug)
        if fake is None:
            await send(
                {"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]}
            )
            await send({"type": "http.response.body", "body": f"no fake provider {slug!r}".encode()})
            return
        inner = dict(scope)
        inner["path"] = "/" + rest
        inner["raw_path"] = inner["path"].encode()
        await fake(inner, receive, send)
