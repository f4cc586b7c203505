"""Settings shared by every process, read from the environment (12-factor).

Every variable is optional: with none set, `aigen run` starts embedded PostgreSQL and NATS under
AIGEN_HOME and wires the services to them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from aigen import eventloop

SERVICES = ("catalog", "dispatcher", "poller", "storage", "studio", "ops")
DEFAULT_PORTS = {
    "catalog": 50051,
    "dispatcher": 50052,
    "poller": 50053,
    "storage": 50054,
    "studio": 50055,
    "ops": 50056,
}
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class ConfigError(ValueError):
    """A setting is present but wrong; the message names the variable."""


def _standby(value: str | None) -> float:
    if not value:
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 3600:
        raise ConfigError(f"AIGEN_RELAY_STANDBY_S={value!r}: use a number of seconds from 0 to 3600")
    return seconds


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _event_loop(value: str | None) -> str:
    try:
        return eventloop.resolve(value)
    except eventloop.UnknownLoop as exc:
        raise ConfigError(f"AIGEN_EVENT_LOOP: {exc}") from None


@dataclass(frozen=True)
class Settings:
    home: Path = Path(".aigen")
    database_url: str | None = None
    db_schema: str = "aigen"
    nats_url: str | None = None
    # Prefix for stream names and subjects, so several deployments (or tests) share one server.
    nats_namespace: str = ""
    secret_key: str | None = None
    log_level: str = "INFO"
    log_format: str = "json"
    # gRPC listen address of this process (host:port) and where the others are.
    listen: str | None = None
    addresses: Mapping[str, str] = field(default_factory=dict)
    gateway_url: str = "http://127.0.0.1:8080"
    run_relay: bool = True
    # Seconds the relay's lead must stay vacant before this process takes it (0: at once).
    relay_standby_s: float = 0.0
    metrics_port: int | None = None
    # Where providers can reach our callback endpoint (the gateway), e.g. https://gw.example.com.
    # Unset: no callbacks are requested and tasks are polled only.
    callback_base_url: str | None = None
    # The event loop of the service processes (aigen.eventloop): uvloop where installed.
    event_loop: str = field(default_factory=lambda: eventloop.resolve(None))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        schema = env.get("AIGEN_DB_SCHEMA", "aigen")
        if not _SCHEMA_RE.match(schema):
            raise ConfigError(f"AIGEN_DB_SCHEMA={schema!r}: use lower-case letters, digits and _")
        namespace = env.get("AIGEN_NATS_NAMESPACE", "")
        if namespace and not re.match(r"^[A-Za-z0-9_-]+$", namespace):
            raise ConfigError(f"AIGEN_NATS_NAMESPACE={namespace!r}: use letters, digits, - and _")
        addresses = {
            svc: env.get(f"AIGEN_{svc.upper()}_ADDR", f"127.0.0.1:{DEFAULT_PORTS[svc]}") for svc in SERVICES
        }
        metrics = env.get("AIGEN_METRICS_PORT")
        return cls(
            home=Path(env.get("AIGEN_HOME", ".aigen")),
            database_url=env.get("AIGEN_DATABASE_URL") or None,
            db_schema=schema,
            nats_url=env.get("AIGEN_NATS_URL") or None,
            nats_namespace=namespace,
            secret_key=env.get("AIGEN_SECRET_KEY") or None,
            log_level=env.get("AIGEN_LOG_LEVEL", "INFO"),
            log_format=env.get("AIGEN_LOG_FORMAT", "json"),
            listen=env.get("AIGEN_LISTEN") or None,
            addresses=addresses,
            gateway_url=env.get("AIGEN_GATEWAY_URL", "http://127.0.0.1:8080"),
            run_relay=_bool(env.get("AIGEN_RUN_RELAY"), True),
            relay_standby_s=_standby(env.get("AIGEN_RELAY_STANDBY_S")),
            metrics_port=int(metrics) if metrics else None,
            callback_base_url=env.get("AIGEN_CALLBACK_BASE_URL") or None,
            event_loop=_event_loop(env.get("AIGEN_EVENT_LOOP")),
        )

    def address_of(self, service: str) -> str:
        return self.addresses.get(service) or f"127.0.0.1:{DEFAULT_PORTS[service]}"

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigError("AIGEN_DATABASE_URL is not set (aigen run sets it for the services it starts)")
        return self.database_url

    def require_nats_url(self) -> str:
        if not self.nats_url:
            raise ConfigError("AIGEN_NATS_URL is not set (aigen run sets it for the services it starts)")
        return self.nats_url


def redact_url(url: str) -> str:
    """A connection URL safe to print: the password replaced."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)
