"""The storage service's own settings, from the environment (all optional)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from aigen.config import ConfigError

from services.storage.transfer import CopyPolicy


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a number") from None
    if value <= 0:
        raise ConfigError(f"{name}={raw!r}: expected a positive number")
    return value


@dataclass(frozen=True)
class StorageSettings:
    max_bytes: int = 4 * 1024**3  # per result; a provider's longest videos stay well below
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    concurrency: int = 4  # TaskCompleted events handled at once
    # An upload a crash left unfinished is removed after this long; the longest legitimate one
    # (4 GB on a slow link) takes minutes, so hours leave a wide margin.
    abandoned_after_s: float = 6 * 3600
    sweep_every_s: float = 3600
    policy: CopyPolicy = field(default_factory=CopyPolicy)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StorageSettings:
        env = os.environ if env is None else env
        defaults = CopyPolicy()
        return cls(
            max_bytes=int(_number(env, "AIGEN_STORAGE_MAX_BYTES", cls.max_bytes)),
            connect_timeout_s=_number(env, "AIGEN_STORAGE_CONNECT_TIMEOUT_S", cls.connect_timeout_s),
            read_timeout_s=_number(env, "AIGEN_STORAGE_READ_TIMEOUT_S", cls.read_timeout_s),
            concurrency=int(_number(env, "AIGEN_STORAGE_CONCURRENCY", cls.concurrency)),
            abandoned_after_s=_number(env, "AIGEN_STORAGE_ABANDONED_AFTER_S", cls.abandoned_after_s),
            sweep_every_s=_number(env, "AIGEN_STORAGE_SWEEP_EVERY_S", cls.sweep_every_s),
            policy=CopyPolicy(
                attempts=int(_number(env, "AIGEN_STORAGE_ATTEMPTS", defaults.attempts)),
                url_ttl_s=int(_number(env, "AIGEN_STORAGE_RESULT_URL_TTL_S", defaults.url_ttl_s)),
            ),
        )
