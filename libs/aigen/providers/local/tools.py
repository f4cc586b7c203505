"""The external programs the local engines run, and which models they make available.

Programs are looked up once, with `shutil.which`, on a search path that tests can replace (an
empty path simulates a machine without them). A missing program makes the models that need it
unavailable, with a reason a person can act on; it never stops the service from starting.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass

FFMPEG = "ffmpeg"
ESPEAK = "espeak-ng"

# Which programs each model needs. Pillow renders images in-process, so local-image needs none.
MODEL_REQUIREMENTS: Mapping[str, tuple[str, ...]] = {
    "local-image": (),
    "local-tts": (ESPEAK, FFMPEG),
    "local-video": (FFMPEG,),
}

INSTALL_HINTS: Mapping[str, str] = {
    FFMPEG: "install ffmpeg (e.g. `apt-get install ffmpeg`)",
    ESPEAK: "install espeak-ng (e.g. `apt-get install espeak-ng`)",
}


@dataclass(frozen=True)
class Toolbox:
    """Absolute paths of the programs found; `None` for a program that is missing."""

    paths: Mapping[str, str | None]
    search_path: str | None = None

    @classmethod
    def find(cls, search_path: str | None = None) -> Toolbox:
        """Look every program up on `search_path` (the process PATH when `None`)."""
        programs = sorted({p for needs in MODEL_REQUIREMENTS.values() for p in needs})
        return cls({p: shutil.which(p, path=search_path) for p in programs}, search_path)

    def path(self, program: str) -> str:
        found = self.paths.get(program)
        if found is None:
            raise LookupError(f"{program} is not installed")
        return found

    def unavailable_reason(self, model: str) -> str | None:
        """Why `model` cannot run here, or `None` when it can."""
        needs = MODEL_REQUIREMENTS.get(model)
        if needs is None:
            return f"unknown local model {model!r}"
        missing = [p for p in needs if self.paths.get(p) is None]
        if not missing:
            return None
        where = "PATH" if self.search_path is None else f"search path {self.search_path!r}"
        hints = "; ".join(INSTALL_HINTS[p] for p in missing)
        return f"{', '.join(missing)} not found on {where}: {hints}"

    def availability(self) -> dict[str, str | None]:
        return {model: self.unavailable_reason(model) for model in MODEL_REQUIREMENTS}


def availability(search_path: str | None = None) -> dict[str, str | None]:
    """Model slug → why it is unavailable on this machine (`None`: available)."""
    return Toolbox.find(search_path).availability()
