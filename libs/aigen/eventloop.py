"""The event loop the service processes run on.

uvloop (libuv underneath) by default where it is installed: the services spend much of their CPU
in the loop itself — thousands of small socket reads and writes a second to PostgreSQL, NATS, the
providers and the callers — and uvloop does that work in C (docs/decisions.md, "The services run
on uvloop, the gateway parses HTTP with httptools").
`AIGEN_EVENT_LOOP=asyncio` selects the standard loop, e.g. for asyncio's debug mode.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

CHOICES = ("uvloop", "asyncio")


class UnknownLoop(ValueError):
    """The setting names no loop this platform has; the message says which ones it has."""


def available() -> tuple[str, ...]:
    """The loops this platform has, preferred first."""
    return CHOICES if importlib.util.find_spec("uvloop") is not None else ("asyncio",)


def resolve(choice: str | None) -> str:
    """The loop `choice` names; unset or empty: the preferred one available."""
    if not choice:
        return available()[0]
    name = choice.strip().lower()
    if name not in CHOICES:
        raise UnknownLoop(f"{choice!r} is not an event loop: use one of {', '.join(CHOICES)}")
    if name not in available():
        raise UnknownLoop(f"{choice!r} is not installed here: use asyncio")
    return name


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], loop: str) -> T:
    """`asyncio.run(main)` on the loop named (a value of `resolve`)."""
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        return runner.run(main)
