"""The storyboard: one card per shot (number, chosen picture, title, description, duration) as a
self-contained HTML page (pictures embedded, so the file outlives any signed URL) and as a PDF
contact sheet drawn with Pillow (A4 landscape, six shots a page)."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aigen.providers.local.fonts import Font, font
from PIL import Image, ImageDraw

from services.studio.domain import Cut, MediaType
from services.studio.export import tools

THUMB_WIDTH = 640


@dataclass(frozen=True)
class Card:
    shot_number: int
    title: str
    description: str
    action: str
    camera: str
    duration: float
    still: Path
    has_audio: bool


@dataclass(frozen=True)
class Board:
    title: str  # "Project — Episode 2: The Harbour"
    subtitle: str  # "6 shots · 42.5 s"
    cards: Sequence[Card]


async def still_of(cut: Cut, picture: Path, folder: Path) -> Path:
    """A still of the chosen picture: the image itself, or the middle of the clip as shown."""
    if cut.picture.media_type is not MediaType.VIDEO:
        return picture
    shown = min(cut.duration, cut.clip_seconds or cut.duration)
    out = folder / f"{cut.picture.id}-still.png"
    await tools.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-ss", f"{shown / 2:.3f}",
         "-i", str(picture), "-frames:v", "1", str(out)],
        limit_s=120.0,
    )  # fmt: skip
    return out


def _thumbnail(path: Path, width: int) -> Image.Image:
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    if image.width > width:
        height = max(1, round(image.height * width / image.width))
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    return image


def _data_uri(path: Path) -> str:
    buffer = io.BytesIO()
    _thumbnail(path, THUMB_WIDTH).save(buffer, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def seconds_text(value: float) -> str:
    return f"{value:.1f} s" if value % 1 else f"{value:.0f} s"


_STYLE = """
body{font-family:system-ui,"Segoe UI","Noto Sans","Noto Sans CJK SC",sans-serif;margin:2rem;color:#1b1b1b}
h1{font-size:1.5rem;margin:0 0 .25rem}p.sub{color:#666;margin:0 0 1.5rem}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:1.25rem}
.card{border:1px solid #ddd;border-radius:6px;overflow:hidden;background:#fff}
.card img{display:block;width:100%;aspect-ratio:16/9;object-fit:contain;background:#111}
.meta{padding:.6rem .8rem}.head{display:flex;justify-content:space-between;font-weight:600}
.desc{margin:.4rem 0 0;white-space:pre-wrap}.small{color:#666;font-size:.85rem;margin:.3rem 0 0}
"""


def storyboard_html(board: Board) -> str:
    cards = []
    for card in board.cards:
        camera = f"Camera: {card.camera}" if card.camera else ""
        notes = (camera, card.action, "with sound" if card.has_audio else "")
        extra = " · ".join(part for part in notes if part)
        cards.append(
            '<article class="card">'
            f'<img src="{_data_uri(card.still)}" alt="Shot {card.shot_number}">'
            '<div class="meta">'
            f'<div class="head"><span>Shot {card.shot_number}'
            f"{': ' + html.escape(card.title) if card.title else ''}</span>"
            f"<span>{seconds_text(card.duration)}</span></div>"
            f'<p class="desc">{html.escape(card.description)}</p>'
            + (f'<p class="small">{html.escape(extra)}</p>' if extra else "")
            + "</div></article>"
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(board.title)}</title><style>{_STYLE}</style></head><body>"
        f'<h1>{html.escape(board.title)}</h1><p class="sub">{html.escape(board.subtitle)}</p>'
        f'<main class="grid">{"".join(cards)}</main></body></html>\n'
    )


def write_html(board: Board, out: Path) -> Path:
    out.write_text(storyboard_html(board), encoding="utf-8")
    return out


# --- PDF contact sheet ---------------------------------------------------------------------------

PAGE = (1754, 1240)  # A4 landscape at 150 dpi
MARGIN = 70
COLUMNS, ROWS = 3, 2
GAP = 40
HEADER = 90


def wrap(text: str, face: Font, width: int, max_lines: int) -> list[str]:
    """Lines that fit `width`: broken at spaces where there are any, anywhere in CJK text; the
    last kept line ends with an ellipsis when text was cut."""
    lines: list[str] = []
    for paragraph in text.splitlines():
        line = ""
        for char in paragraph:
            if face.getlength(line + char) <= width:
                line += char
                continue
            cut = line.rfind(" ")
            if char != " " and cut > 0:
                lines.append(line[:cut])
                line = line[cut + 1 :] + char
            else:
                lines.append(line)
                line = "" if char == " " else char
        lines.append(line)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        while last and face.getlength(last + "…") > width:
            last = last[:-1]
        lines[-1] = last + "…"
    return lines


def _page(board: Board, cards: Sequence[Card], number: int, pages: int) -> Image.Image:
    page = Image.new("RGB", PAGE, "white")
    draw = ImageDraw.Draw(page)
    title_face, head_face, body_face, small_face = font(34), font(26), font(21), font(18)
    draw.text((MARGIN, MARGIN - 20), board.title, fill="#111", font=title_face)
    right = f"{board.subtitle} · page {number}/{pages}"
    right_x = PAGE[0] - MARGIN - small_face.getlength(right)
    draw.text((right_x, MARGIN - 6), right, fill="#666", font=small_face)
    cell_w = (PAGE[0] - 2 * MARGIN - (COLUMNS - 1) * GAP) // COLUMNS
    cell_h = (PAGE[1] - 2 * MARGIN - HEADER - (ROWS - 1) * GAP) // ROWS
    thumb_h = cell_w * 9 // 16
    for i, card in enumerate(cards):
        x = MARGIN + (i % COLUMNS) * (cell_w + GAP)
        y = MARGIN + HEADER + (i // COLUMNS) * (cell_h + GAP)
        draw.rectangle((x, y, x + cell_w, y + thumb_h), fill="#111")
        thumb = _thumbnail(card.still, cell_w)
        thumb.thumbnail((cell_w, thumb_h))
        page.paste(thumb, (x + (cell_w - thumb.width) // 2, y + (thumb_h - thumb.height) // 2))
        ty = y + thumb_h + 12
        head = f"Shot {card.shot_number}" + (f": {card.title}" if card.title else "")
        duration = seconds_text(card.duration)
        head = wrap(head, head_face, int(cell_w - head_face.getlength(duration) - 20), 1)[0]
        draw.text((x, ty), head, fill="#111", font=head_face)
        draw.text((x + cell_w - head_face.getlength(duration), ty), duration, fill="#111", font=head_face)
        ty += 38
        room = max(1, (y + cell_h - ty) // 27)
        for line in wrap(card.description, body_face, cell_w, room):
            draw.text((x, ty), line, fill="#333", font=body_face)
            ty += 27
    return page


def write_pdf(board: Board, out: Path) -> Path:
    per_page = COLUMNS * ROWS
    chunks = [board.cards[i : i + per_page] for i in range(0, len(board.cards), per_page)] or [[]]
    pages = [_page(board, chunk, n + 1, len(chunks)) for n, chunk in enumerate(chunks)]
    pages[0].save(out, "PDF", save_all=True, append_images=pages[1:], resolution=150.0, title=board.title)
    return out
