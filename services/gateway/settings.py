"""The gateway's own settings, from the environment (all optional), and its admin token.

The admin token comes from AIGEN_ADMIN_TOKEN; with none set, one is generated once under
AIGEN_HOME (`admin-token`, mode 0600) and its path is printed at start, never the token.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aigen.config import ConfigError
from aigen.logs import register_secret

from services.gateway.webhooks import DEFAULT_SCHEDULE, parse_schedule

ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105 - a file name, not a secret


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a number") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r}: expected at least {minimum:g}")
    return value


@dataclass(frozen=True)
class GatewaySettings:
    host: str = "127.0.0.1"
    port: int = 8080
    cors_origins: tuple[str, ...] = ()
    max_wait_s: float = 120.0
    max_body_bytes: int = 32 * 1024 * 1024
    max_callback_bytes: int = 4 * 1024 * 1024
    key_cache_s: float = 5.0
    file_url_ttl_s: int = 24 * 3600
    webhook_schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    webhook_timeout_s: float = 10.0
    webhook_concurrency: int = 32
    reservation_timeout_s: float = 600.0
    admin_token: str = field(default="", repr=False)
    admin_token_file: Path | None = None  # where a generated token was written

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, home: Path | None = None) -> GatewaySettings:
        env = os.environ if env is None else env
        port = int(_number(env, "AIGEN_GATEWAY_PORT", 8080, minimum=0))
        try:
            schedule = (
                parse_schedule(env["AIGEN_WEBHOOK_RETRY_SCHEDULE"])
                if env.get("AIGEN_WEBHOOK_RETRY_SCHEDULE")
                else DEFAULT_SCHEDULE
            )
        except ValueError as exc:
            raise ConfigError(f"AIGEN_WEBHOOK_RETRY_SCHEDULE: {exc}") from None
        origins = tuple(o.strip() for o in env.get("AIGEN_GATEWAY_CORS_ORIGINS", "").split(",") if o.strip())
        token, token_file = admin_token(env, home or Path(env.get("AIGEN_HOME") or ".aigen"))
        return cls(
            host=env.get("AIGEN_GATEWAY_HOST") or "127.0.0.1",
            port=port,
            cors_origins=origins,
            max_wait_s=_number(env, "AIGEN_GATEWAY_MAX_WAIT_S", cls.max_wait_s),
            max_body_bytes=int(
                _number(env, "AIGEN_GATEWAY_MAX_BODY_BYTES", cls.max_body_bytes, minimum=1024)
            ),
            key_cache_s=_number(env, "AIGEN_GATEWAY_KEY_CACHE_S", cls.key_cache_s),
            file_url_ttl_s=int(_number(env, "AIGEN_GATEWAY_FILE_URL_TTL_S", cls.file_url_ttl_s, minimum=60)),
            webhook_schedule=schedule,
            webhook_timeout_s=_number(env, "AIGEN_WEBHOOK_TIMEOUT_S", cls.webhook_timeout_s, minimum=0.1),
            webhook_concurrency=int(
                _number(env, "AIGEN_WEBHOOK_CONCURRENCY", cls.webhook_concurrency, minimum=1)
            ),
            reservation_timeout_s=_number(
                env, "AIGEN_GATEWAY_RESERVATION_TIMEOUT_S", cls.reservation_timeout_s, minimum=1
            ),
            admin_token=token,
            admin_token_file=token_file,
        )


def admin_token(env: Mapping[str, str], home: Path) -> tuple[str, Path | None]:
    """(token, the file it was read from or written to; None when it came from the environment)."""
    given = env.get("AIGEN_ADMIN_TOKEN", "").strip()
    if given:
        if len(given) < 16:
            raise ConfigError("AIGEN_ADMIN_TOKEN is too short: use at least 16 characters")
        register_secret(given)
        return given, None
    path = home / ADMIN_TOKEN_FILE
    if path.exists():
        token = path.read_text().strip()
    else:
        home.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another replica wrote it first
            token = path.read_text().strip()
        else:
            with os.fdopen(fd, "w") as f:
                f.write(token + "\n")
    register_secret(token)
    return token, path
