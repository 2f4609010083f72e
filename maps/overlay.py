"""Everything drawn over the base map: markers, header with title and legend, scale, notes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from maps.mercator import Frame, nice_step
from maps.style import (
    COLOURS,
    FOCUS_RING,
    GRID_LINE,
    NOTE_BG,
    PANEL,
    PANEL_EDGE,
    RGB,
    TEXT,
    Category,
)

ATTRIBUTION = "© OpenStreetMap contributors"
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
WHITE: RGB = (255, 255, 255)
SUPERSAMPLE = 4  # marker sprites are drawn 4x and shrunk: Pillow's ellipses are not antialiased


@lru_cache(maxsize=32)
def font(size: int, bold: bool = False) -> Font:
    """DejaVu Sans when the system has it, else Pillow's bundled font, at a pixel size."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    try:
        return ImageFont.truetype(name, size)
    except OSError:
        return ImageFont.load_default(size)


def ui_scale(width: int, height: int) -> float:
    """Text and marker scale: 1.0 at 800x600; a phone shows 800 px at about half size."""
    return max(0.6, min(2.0, min(width / 800, height / 600)))


def text_width(text: str, f: Font) -> int:
    """Rendered width of text in pixels."""
    left, _, right, _ = f.getbbox(text)
    return int(right - left)


# --- markers ---------------------------------------------------------------------------------


def marker_radius(s: float) -> int:
    """Radius of a single-ONT marker."""
    return max(4, round(7 * s))


def cluster_font(s: float) -> Font:
    """Font of the count inside a cluster marker."""
    return font(max(9, round(13 * s)), bold=True)


def cluster_radius(count: int, s: float) -> int:
    """Radius of a cluster marker: grows with the count and always fits the number."""
    grow = marker_radius(s) + round((4 + 3 * math.log10(count)) * s)
    fits = text_width(str(count), cluster_font(s)) // 2 + round(5 * s)
    return max(grow, fits)


@lru_cache(maxsize=256)
def _sprite(colour: RGB, radius: int, ring: int) -> Image.Image:
    """An antialiased disc of colour with a white ring and a thin dark edge, centred."""
    pad = ring + 2
    size = 2 * (radius + pad) + 1
    k = SUPERSAMPLE
    big = Image.new("RGBA", (size * k, size * k), (0, 0, 0, 0))
    d = ImageDraw.Draw(big)
    c = size * k / 2
    outer = (radius + ring + 1) * k
    d.ellipse((c - outer, c - outer, c + outer, c + outer), fill=(40, 40, 40, 150))
    edge = (radius + ring) * k
    d.ellipse((c - edge, c - edge, c + edge, c + edge), fill=(*WHITE, 255))
    inner = radius * k
    d.ellipse((c - inner, c - inner, c + inner, c + inner), fill=(*colour, 255))
    return big.resize((size, size), Image.Resampling.LANCZOS)


@dataclass(frozen=True, slots=True)
class Mark:
    """A marker to draw at image pixel (x, y): one ONT (count 1) or a cluster."""

    x: int
    y: int
    category: Category
    count: int = 1


def draw_marks(img: Image.Image, marks: list[Mark], s: float) -> None:
    """Draw markers in the order given (callers sort offline last, so it lands on top)."""
    draw = ImageDraw.Draw(img)
    ring = max(1, round(2 * s))
    single = marker_radius(s)
    f = cluster_font(s)
    for m in marks:
        radius = single if m.count == 1 else cluster_radius(m.count, s)
        sprite = _sprite(COLOURS[m.category], radius, ring)
        half = sprite.width // 2
        img.paste(sprite, (m.x - half, m.y - half), sprite)
        if m.count > 1:
            draw.text((m.x, m.y), str(m.count), fill=WHITE, font=f, anchor="mm")


def draw_focus(img: Image.Image, x: int, y: int, label: str, s: float) -> None:
    """Ring the ONT of an ONT view and write its label beside it."""
    draw = ImageDraw.Draw(img)
    r = marker_radius(s) + round(7 * s)
    w = max(2, round(3 * s))
    draw.ellipse((x - r, y - r, x + r, y + r), outline=FOCUS_RING, width=w)
    f = font(max(10, round(15 * s)), bold=True)
    tx, ty = x + r + round(4 * s), y
    box = draw.textbbox((tx, ty), label, font=f, anchor="lm")
    pad = round(3 * s)
    draw.rectangle(
        (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad), fill=PANEL, outline=FOCUS_RING
    )
    draw.text((tx, ty), label, fill=TEXT, font=f, anchor="lm")


# --- header: title and legend ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LegendEntry:
    """One legend item: a swatch (None = hollow, for ONTs without coordinates), label, count."""

    label: str
    count: int
    colour: RGB | None

    @property
    def text(self) -> str:
        """What the legend writes after the swatch."""
        return f"{self.label} {self.count:,}"


@dataclass(frozen=True, slots=True)
class HeaderLayout:
    """Where the header's parts go; computed before drawing so the map can leave room."""

    height: int
    title: str
    title_xy: tuple[int, int]
    items: tuple[tuple[int, int, LegendEntry], ...]  # swatch centre x, row centre y, entry


def _title_font(s: float) -> Font:
    return font(max(11, round(22 * s)), bold=True)


def _legend_font(s: float) -> Font:
    return font(max(10, round(18 * s)))


def _fit_text(text: str, f: Font, room: int) -> str:
    if text_width(text, f) <= room:
        return text
    while text and text_width(text + "…", f) > room:
        text = text[:-1]
    return text + "…"


def header_layout(width: int, title: str, legend: list[LegendEntry], s: float) -> HeaderLayout:
    """Lay out the title line and the legend rows (wrapping) across the image's width."""
    margin = round(10 * s)
    tf, lf = _title_font(s), _legend_font(s)
    title_h = round(tf.size * 1.25)
    row_h = round(lf.size * 1.5)
    swatch = round(lf.size * 0.45)
    gap = round(18 * s)
    y = margin + title_h // 2
    title_xy = (margin, y)
    fitted = _fit_text(title, tf, width - 2 * margin)
    items: list[tuple[int, int, LegendEntry]] = []
    x = margin
    row_y = margin + title_h + round(4 * s) + row_h // 2
    for entry in legend:
        w = 2 * swatch + round(6 * s) + text_width(entry.text, lf)
        if x > margin and x + w > width - margin:  # wrap
            x = margin
            row_y += row_h
        items.append((x + swatch, row_y, entry))
        x += w + gap
    height = row_y + row_h // 2 + margin if items else margin + title_h + margin
    return HeaderLayout(height, fitted, title_xy, tuple(items))


def draw_header(img: Image.Image, layout: HeaderLayout, s: float) -> None:
    """Draw the opaque header band: title on top, legend swatches and counts below."""
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, img.width, layout.height), fill=PANEL)
    draw.line((0, layout.height, img.width, layout.height), fill=PANEL_EDGE, width=1)
    draw.text(layout.title_xy, layout.title, fill=TEXT, font=_title_font(s), anchor="lm")
    lf = _legend_font(s)
    swatch = round(lf.size * 0.45)
    for cx, cy, entry in layout.items:
        box = (cx - swatch, cy - swatch, cx + swatch, cy + swatch)
        if entry.colour is None:
            draw.ellipse(box, outline=TEXT, width=max(1, round(2 * s)))
        else:
            draw.ellipse(box, fill=entry.colour, outline=WHITE)
        draw.text((cx + swatch + round(6 * s), cy), entry.text, fill=TEXT, font=lf, anchor="lm")


# --- footer: scale bar, attribution, notes ----------------------------------------------------


def footer_height(s: float) -> int:
    """Height kept free at the bottom for the scale bar and the attribution."""
    return round(26 * s)


def _format_distance(metres: float) -> str:
    if metres >= 1000:
        km = metres / 1000
        return f"{km:g} km"
    return f"{metres:g} m"


def draw_scale_bar(img: Image.Image, frame: Frame, s: float) -> None:
    """Bottom-left scale bar of a round length, at most about 120 px (scaled) long."""
    draw = ImageDraw.Draw(img)
    mpp = frame.metres_per_px()
    metres = nice_step(mpp * 120 * s)
    length = round(metres / mpp)
    f = font(max(9, round(12 * s)))
    label = _format_distance(metres)
    pad = round(4 * s)
    x0 = round(8 * s)
    y1 = img.height - round(6 * s)
    tw = text_width(label, f)
    draw.rectangle(
        (x0 - pad, y1 - f.size - 3 * pad, x0 + max(length, tw) + pad, y1 + pad // 2),
        fill=(*PANEL,),
    )
    bar_y = y1 - pad
    w = max(2, round(3 * s))
    draw.line((x0, bar_y, x0 + length, bar_y), fill=TEXT, width=w)
    for tick in (x0, x0 + length):
        draw.line((tick, bar_y - 2 * pad, tick, bar_y), fill=TEXT, width=max(1, w // 2))
    draw.text((x0 + length / 2, bar_y - pad), label, fill=TEXT, font=f, anchor="mb")


def draw_attribution(img: Image.Image, s: float) -> None:
    """Bottom-right '© OpenStreetMap contributors', which OSM's tile policy requires."""
    draw = ImageDraw.Draw(img)
    f = font(max(9, round(12 * s)))
    pad = round(4 * s)
    x1, y1 = img.width - pad, img.height - pad
    box = draw.textbbox((x1, y1), ATTRIBUTION, font=f, anchor="rd")
    draw.rectangle((box[0] - pad, box[1] - pad, img.width, img.height), fill=PANEL)
    draw.text((x1, y1), ATTRIBUTION, fill=TEXT, font=f, anchor="rd")


def draw_note(img: Image.Image, text: str, top: int, s: float) -> int:
    """A small boxed note centred under the header; returns the y below it."""
    draw = ImageDraw.Draw(img)
    f = font(max(10, round(15 * s)))
    pad = round(5 * s)
    cx, y = img.width // 2, top + round(8 * s)
    box = draw.textbbox((cx, y), text, font=f, anchor="mt")
    draw.rectangle(
        (box[0] - 2 * pad, box[1] - pad, box[2] + 2 * pad, box[3] + pad),
        fill=NOTE_BG,
        outline=PANEL_EDGE,
    )
    draw.text((cx, y), text, fill=TEXT, font=f, anchor="mt")
    return box[3] + pad


# --- fallback background ---------------------------------------------------------------------


def _format_deg(value: float, pos: str, neg: str, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{abs(value):.{decimals}f}°{pos if value >= 0 else neg}"


def draw_grid(img: Image.Image, frame: Frame, s: float) -> None:
    """A labelled longitude/latitude grid, so a map without tiles still reads as a map."""
    draw = ImageDraw.Draw(img)
    f = font(max(9, round(11 * s)))
    lon0, lat0 = frame.px_to_lonlat(0, img.height)
    lon1, lat1 = frame.px_to_lonlat(img.width, 0)
    step = nice_step(max(lon1 - lon0, 1e-9) / 4)
    k = math.ceil(lon0 / step)
    for _ in range(64):  # bounded: about 4-10 lines fit by construction
        lon = k * step
        if lon > lon1:
            break
        x, _ = frame.lonlat_to_px(lon, lat0)
        draw.line((x, 0, x, img.height), fill=GRID_LINE, width=1)
        draw.text((x + 3, img.height // 2), _format_deg(lon, "E", "W", step), fill=TEXT, font=f)
        k += 1
    k = math.ceil(lat0 / step)
    for _ in range(64):
        lat = k * step
        if lat > lat1:
            break
        _, y = frame.lonlat_to_px(lon0, lat)
        draw.line((0, y, img.width, y), fill=GRID_LINE, width=1)
        draw.text((img.width // 2 + 3, y + 2), _format_deg(lat, "N", "S", step), fill=TEXT, font=f)
        k += 1
