"""A font for drawing prompts: a system font that covers Chinese when one is installed."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from PIL import ImageFont

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")

# Preferred first. CJK-capable faces lead because prompts are often Chinese; DejaVu covers the rest.
FONT_FILES = (
    "NotoSansCJK-Regular.ttc",
    "NotoSansCJKsc-Regular.otf",
    "NotoSansSC-Regular.otf",
    "wqy-microhei.ttc",
    "wqy-zenhei.ttc",
    "DroidSansFallbackFull.ttf",
    "DejaVuSans.ttf",
    "LiberationSans-Regular.ttf",
)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@cache
def font_file() -> Path | None:
    """The best installed font file, found once per process."""
    found: dict[str, Path] = {}
    for root in FONT_DIRS:
        for folder, _dirs, files in os.walk(root):
            for name in files:
                if name in FONT_FILES:
                    found.setdefault(name, Path(folder) / name)
    return next((found[name] for name in FONT_FILES if name in found), None)


@cache
def font(size: int) -> Font:
    path = font_file()
    if path is not None:
        try:
            return ImageFont.truetype(str(path), size)
        except OSError:
            pass
    # Pillow's built-in face scales too (with FreeType); it only lacks CJK glyphs.
    return ImageFont.load_default(size)
