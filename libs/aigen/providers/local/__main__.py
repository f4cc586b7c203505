"""`python -m aigen.providers.local --host 127.0.0.1 --port 7800 --data-dir DIR`.

uvicorn handles SIGTERM and SIGINT: it stops accepting requests, lets open ones finish, and the
app's shutdown stops running jobs, which stay queued on disk for the next start. Afterwards it
re-raises the signal to the handler that was installed before it; ours ends the process with
status 0, because being asked to stop is how this service normally ends.
"""

from __future__ import annotations

import argparse
import logging
import signal
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import uvicorn

from aigen.providers.local.service import create_app, default_concurrency


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m aigen.providers.local",
        description="Serve the local provider (images, speech and video made on this machine).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7800)
    parser.add_argument("--data-dir", type=Path, default=Path(".aigen/local-provider"))
    parser.add_argument("--concurrency", type=int, default=default_concurrency(), help="jobs run at once")
    parser.add_argument("--job-timeout", type=float, default=600.0, help="seconds one program may run")
    parser.add_argument("--retention-hours", type=float, default=168.0, help="keep finished jobs this long")
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def _stop(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _stop)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(
        args.data_dir.resolve(),
        concurrency=args.concurrency,
        job_timeout=args.job_timeout,
        retention=args.retention_hours * 3600,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
