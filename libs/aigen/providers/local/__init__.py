"""The local provider: real images, speech and video made on this machine, with no account.

`local-image` draws with Pillow, `local-tts` speaks with espeak-ng, `local-video` moves over
images with ffmpeg. The engines run behind an HTTP service (`python -m aigen.providers.local`)
so the adapter talks to it like to any other provider.
"""

from __future__ import annotations

from aigen.providers.local.adapter import ADAPTERS, LocalAdapter
from aigen.providers.local.tools import availability

__all__ = ["ADAPTERS", "LocalAdapter", "availability"]
