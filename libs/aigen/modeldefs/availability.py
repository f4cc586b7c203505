"""Whether a model can run here: its definition may say it cannot, or a program it needs is missing."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass

from aigen.modeldefs.schema import ModelDef

Which = Callable[[str], str | None]


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str | None  # why not, in a sentence an operator can act on
    missing: tuple[str, ...] = ()  # programs from `requires` not found on the PATH


def availability(model: ModelDef, which: Which = shutil.which) -> Availability:
    """`which` finds a program (shutil.which by default); tests hand in their own."""
    if not model.available:
        return Availability(False, model.unavailable_reason or "unavailable")
    missing = tuple(program for program in model.requires if not which(program))
    if missing:
        return Availability(False, f"needs {', '.join(missing)} on the machine running the provider", missing)
    return Availability(True, None)
