"""`python -m services.gateway`: the HTTP face of the system."""

from __future__ import annotations

import logging
import sys

from aigen import eventloop, logs, tracing
from aigen.config import ConfigError, Settings
from aigen.db.pool import StartupError

from services.gateway.server import serve
from services.gateway.settings import GatewaySettings

log = logging.getLogger("aigen.gateway")


def main() -> None:
    try:
        settings = Settings.from_env()
        gw_settings = GatewaySettings.from_env(home=settings.home)
    except ConfigError as exc:
        print(f"aigen-gateway: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logs.setup_logging("gateway", settings.log_level, settings.log_format)
    tracing.setup_tracing("gateway")
    try:
        eventloop.run(serve(settings, gw_settings), settings.event_loop)
    except (StartupError, ConfigError) as exc:
        log.error("%s", exc)
        print(f"aigen-gateway: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        pass


main()
