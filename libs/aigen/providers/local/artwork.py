"""Pictures drawn from a prompt: a deterministic composition with the prompt written on it.

Everything random comes from one generator seeded by a hash of (prompt, style, seed), and every
position is relative to the canvas, so the same request gives byte-identical PNGs and the same
prompt at another size gives the same picture, rescaled.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import math
import random
import unicodedata
from collections.abc import Callable, Sequence

from PIL import Image, ImageDraw, ImageFilter

from aigen.providers.local.fonts import Font, font
from aigen.providers.local.models import ImageSettings

RGB = tuple[int, int, int]

# Shapes with hard edges are drawn this many times larger and scaled down: ImageDraw does not
# anti-alias. Above about a megapixel the edges are fine enough without it.
SUPERSAMPLE = 2
SUPERSAMPLE_MAX_PIXELS = 1_100_000


def generator(prompt: str, style: str, seed: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x00{style}\x00{prompt}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(1.0, max(0.0, s)), min(1.0, max(0.0, v)))
    return round(r * 255), round(g * 255), round(b * 255)


def palette(rng: random.Random, *, dark: bool = False) -> list[RGB]:
    """Five colours in one harmony (analogous, complementary or triadic) around a random hue."""
    base = rng.random()
    offsets = rng.choice(((0.0, 0.06, -0.06, 0.12), (0.0, 0.5, 0.04, 0.46), (0.0, 1 / 3, 2 / 3, 0.05)))
    value = (0.18, 0.32) if dark else (0.55, 0.95)
    return [
        hsv(base + offsets[i % len(offsets)], rng.uniform(0.45, 0.85), rng.uniform(*value)) for i in range(5)
    ]


def luminance(c: RGB) -> float:
    return (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255


def gradient(size: tuple[int, int], stops: Sequence[RGB], angle: float) -> Image.Image:
    """A linear gradient through `stops` at `angle` degrees, drawn small then enlarged (it is smooth)."""
    w, h = size
    small = (max(16, w // 8), max(16, h // 8))
    side = math.ceil(math.hypot(*small)) + 2
    ramp = Image.linear_gradient("L").resize((side, side), Image.Resampling.BILINEAR)
    ramp = ramp.rotate(angle, resample=Image.Resampling.BICUBIC)
    left, top = (side - small[0]) // 2, (side - small[1]) // 2
    mask = ramp.crop((left, top, left + small[0], top + small[1])).resize(size, Image.Resampling.BICUBIC)

    def channel(i: int) -> list[int]:
        lut = []
        for level in range(256):
            pos = level / 255 * (len(stops) - 1)
            k = min(int(pos), len(stops) - 2)
            t = pos - k
            lut.append(round(stops[k][i] * (1 - t) + stops[k + 1][i] * t))
        return lut

    return Image.merge("RGB", [mask.point(channel(i)) for i in range(3)])


def vignette(image: Image.Image, strength: float) -> Image.Image:
    edge = Image.radial_gradient("L").resize(image.size, Image.Resampling.BICUBIC)
    edge = edge.point(lambda v: round(min(255, max(0, (v - 90) * 1.6)) * strength))
    return Image.composite(Image.new("RGB", image.size, (0, 0, 0)), image, edge)


# --- styles: each draws on an RGBA layer the size of the picture --------------------------------


def _aurora(rng: random.Random, size: tuple[int, int], colours: list[RGB]) -> Image.Image:
    # Soft light is cheap to draw small: blur at a quarter size, then enlarge.
    w, h = max(8, size[0] // 4), max(8, size[1] // 4)
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for _ in range(rng.randint(5, 8)):
        cx, cy = rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h
        rx, ry = rng.uniform(0.2, 0.55) * w, rng.uniform(0.08, 0.3) * h
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=(*rng.choice(colours), rng.randint(90, 170)))
    layer = layer.filter(ImageFilter.GaussianBlur(min(w, h) / 7))
    return layer.resize(size, Image.Resampling.BICUBIC)


def _bokeh(rng: random.Random, size: tuple[int, int], colours: list[RGB]) -> Image.Image:
    w, h = size
    far = Image.new("RGBA", size, (0, 0, 0, 0))
    near = Image.new("RGBA", size, (0, 0, 0, 0))
    unit = min(w, h)
    for layer, count, radius, alpha in (
        (far, 26, (0.06, 0.16), (40, 90)),
        (near, 18, (0.02, 0.07), (90, 170)),
    ):
        draw = ImageDraw.Draw(layer)
        for _ in range(count):
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(*radius) * unit
            light = tuple(min(255, c + 60) for c in rng.choice(colours))
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(*light, rng.randint(*alpha)))
    far = far.filter(ImageFilter.GaussianBlur(unit / 40))
    near = near.filter(ImageFilter.GaussianBlur(unit / 300 + 0.5))
    return Image.alpha_composite(far, near)


def _geometric(rng: random.Random, size: tuple[int, int], colours: list[RGB]) -> Image.Image:
    w, h = size
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    unit = min(w, h)
    for _ in range(rng.randint(7, 12)):
        cx, cy = rng.uniform(0.05, 0.95) * w, rng.uniform(0.05, 0.95) * h
        r = rng.uniform(0.08, 0.28) * unit
        fill = (*rng.choice(colours), rng.randint(110, 200))
        shape = rng.choice(("circle", "square", "triangle", "ring"))
        if shape == "circle":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        elif shape == "ring":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=fill, width=max(2, round(r / 5)))
        else:
            sides = 4 if shape == "square" else 3
            draw.regular_polygon((cx, cy, r), sides, rotation=rng.uniform(0, 360), fill=fill)
    return layer


def _waves(rng: random.Random, size: tuple[int, int], colours: list[RGB]) -> Image.Image:
    w, h = size
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    bands = rng.randint(4, 6)
    hue = rng.choice(colours)
    for i in range(bands):
        depth = (i + 1) / bands  # far bands are light and high, near ones dark and low
        base = h * (0.35 + 0.5 * depth)
        waves = [(rng.uniform(0.5, 3.0), rng.uniform(0, math.tau), rng.uniform(0.02, 0.07)) for _ in range(3)]
        points = [
            (x, base + h * sum(a * math.sin(f * math.tau * x / w + p) for f, p, a in waves))
            for x in (w * k / 96 for k in range(97))
        ]
        shade = 1.15 - 0.7 * depth
        colour = tuple(min(255, round(c * shade)) for c in hue)
        draw.polygon([*points, (w, h), (0, h)], fill=(*colour, 215))
    return layer


STYLE_PAINTERS: dict[str, Callable[[random.Random, tuple[int, int], list[RGB]], Image.Image]] = {
    "aurora": _aurora,
    "bokeh": _bokeh,
    "geometric": _geometric,
    "waves": _waves,
}


# --- the prompt, written legibly ----------------------------------------------------------------


def clean_text(prompt: str) -> str:
    printable = "".join(" " if unicodedata.category(ch).startswith(("C", "Z")) else ch for ch in prompt)
    return " ".join(printable.split())


def wrap(text: str, face: Font, width: float) -> list[str]:
    """Lines no wider than `width`; words too long for a line (or unspaced CJK) break anywhere."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if face.getlength(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
            line = ""
        for ch in word:
            if face.getlength(line + ch) > width and line:
                lines.append(line)
                line = ""
            line += ch
    if line:
        lines.append(line)
    return lines


def fit_lines(text: str, size: tuple[int, int], width: float, max_lines: int = 4) -> tuple[Font, list[str]]:
    w, h = size
    px = max(10, round(min(w, h) / 13))
    lines: list[str] = []
    for _ in range(4):
        face = font(px)
        lines = wrap(text, face, width)
        if len(lines) <= max_lines or px <= 10:
            break
        px = max(10, round(px * 0.8))
    face = font(px)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        while last and face.getlength(last + "…") > width:
            last = last[:-1]
        lines[-1] = last + "…"
    return face, lines


def draw_caption(image: Image.Image, text: str, safe_margin: float = 0.0) -> Image.Image:
    """The text on a translucent panel near the bottom, inside `safe_margin` (fraction per side)."""
    text = clean_text(text)
    if not text:
        return image
    w, h = image.size
    face, lines = fit_lines(text, image.size, w * (1 - 2 * safe_margin) * 0.82)
    line_h = round(face.getbbox("Hgjy")[3] * 1.25)
    pad = max(6, line_h // 2)
    block_w = max(round(face.getlength(line)) for line in lines)
    block_h = line_h * len(lines)
    left = (w - block_w) // 2
    top = h - block_h - pad - max(8, round(h * (0.06 + safe_margin)))
    panel = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(panel)
    draw.rounded_rectangle(
        (left - pad, top - pad, left + block_w + pad, top + block_h + pad),
        radius=pad,
        fill=(12, 12, 20, 130),
    )
    shadow = max(1, line_h // 24)
    for i, line in enumerate(lines):
        x = (w - round(face.getlength(line))) // 2
        y = top + i * line_h
        draw.text((x + shadow, y + shadow), line, font=face, fill=(0, 0, 0, 160))
        draw.text((x, y), line, font=face, fill=(250, 250, 245, 255))
    return Image.alpha_composite(image.convert("RGBA"), panel).convert("RGB")


# --- the whole picture --------------------------------------------------------------------------


def render(prompt: str, settings: ImageSettings) -> Image.Image:
    rng = generator(prompt, settings.style, settings.seed)
    final = (settings.width, settings.height)
    scale = SUPERSAMPLE if settings.width * settings.height <= SUPERSAMPLE_MAX_PIXELS else 1
    size = (settings.width * scale, settings.height * scale)
    dark = settings.style == "bokeh"
    colours = palette(rng, dark=dark)
    stops = sorted(colours[:3], key=luminance, reverse=not dark)
    canvas = gradient(size, stops, rng.uniform(0, 360)).convert("RGBA")
    accents = palette(rng) if dark else colours
    canvas = Image.alpha_composite(canvas, STYLE_PAINTERS[settings.style](rng, size, accents))
    picture = canvas.convert("RGB")
    if scale != 1:
        picture = picture.resize(final, Image.Resampling.LANCZOS)
    picture = vignette(picture, 0.45)
    if settings.show_text:
        picture = draw_caption(picture, prompt, settings.safe_margin)
    return picture


def png_bytes(image: Image.Image) -> bytes:
    # No metadata chunks (no time stamps): the bytes depend on the pixels alone.
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def render_png(prompt: str, settings: ImageSettings) -> bytes:
    return png_bytes(render(prompt, settings))
