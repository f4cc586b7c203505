"""Where the CLI finds the gateway and its credentials.

In order: the command's options, the environment (AIGEN_GATEWAY_URL, AIGEN_API_KEY,
AIGEN_ADMIN_TOKEN), the config file (`$AIGEN_CONFIG`, else `$XDG_CONFIG_HOME/aigen/config.toml`,
else `~/.config/aigen/config.toml`) with `gateway_url`, `api_key` and `admin_token`. For a gateway
on this machine, the admin token `aigen run` generated under AIGEN_HOME is used last; it is never
sent to another host.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_URL = "http://127.0.0.1:8080"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ConfigProblem(ValueError):
    """The CLI's configuration is missing or wrong; the message says what to set."""


@dataclass(frozen=True)
class Target:
    url: str
    api_key: str | None
    admin_token: str | None

    def require_key(self) -> str:
        if not self.api_key:
            raise ConfigProblem(
                "no API key: pass --api-key, set AIGEN_API_KEY, or put api_key in " + str(config_path())
            )
        return self.api_key

    def require_admin(self) -> str:
        if not self.admin_token:
            raise ConfigProblem(
                "no admin token: pass --admin-token, set AIGEN_ADMIN_TOKEN, or put admin_token in "
                + str(config_path())
            )
        return self.admin_token


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("AIGEN_CONFIG"):
        return Path(env["AIGEN_CONFIG"])
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "aigen" / "config.toml"


def read_config(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        document = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigProblem(f"{path}: cannot be read as TOML ({exc})") from None
    return {k: str(v) for k, v in document.items() if k in ("gateway_url", "api_key", "admin_token")}


def local_admin_token(url: str, env: Mapping[str, str]) -> str | None:
    if urlsplit(url).hostname not in LOOPBACK:
        return None
    path = Path(env.get("AIGEN_HOME") or ".aigen") / "admin-token"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def resolve(
    url: str | None, api_key: str | None, admin_token: str | None, env: Mapping[str, str] | None = None
) -> Target:
    """Options win; typer already filled them from the environment when they were not given."""
    env = os.environ if env is None else env
    file = read_config(config_path(env))
    final_url = (url or file.get("gateway_url") or DEFAULT_URL).rstrip("/")
    if urlsplit(final_url).scheme not in ("http", "https"):
        raise ConfigProblem(f"the gateway URL {final_url!r} must start with http:// or https://")
    return Target(
        url=final_url,
        api_key=api_key or file.get("api_key") or None,
        admin_token=admin_token or file.get("admin_token") or local_admin_token(final_url, env),
    )
