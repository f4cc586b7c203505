"""TuZi (tu-zi.com): a relay gateway serving Kling in its official format and Midjourney through
the midjourney-proxy protocol, both with one Bearer key. TuZi does not forward callbacks: poll."""

from __future__ import annotations

from aigen.providers.base import BaseAdapter
from aigen.providers.tuzi.kling import TuziKlingAdapter
from aigen.providers.tuzi.midjourney import TuziMidjourneyAdapter

ADAPTERS: dict[str, type[BaseAdapter]] = {
    "TuziKlingAdapter": TuziKlingAdapter,
    "TuziMidjourneyAdapter": TuziMidjourneyAdapter,
}

__all__ = ["ADAPTERS", "TuziKlingAdapter", "TuziMidjourneyAdapter"]
