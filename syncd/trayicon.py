"""The tray icon's pictures, drawn in code (Pillow): one per state, crisp from 16 to 64 px.

Each state is a coloured disk with a white glyph: up to date (green, a tick), syncing
(blue, two turning arrows: `SYNC_FRAMES` frames), paused (amber, two bars), offline
(grey, a cloud), error (red, "!"), not running (slate, a power sign). The disk colours
sit at a luminance where both a white glyph and a light or dark panel contrast with
them (at least 3:1, checked by the tests), and a faint dark rim marks the edge on light
panels. Shapes are drawn at 4x and scaled down, so edges are anti-aliased at any size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image, ImageDraw

SUPERSAMPLE = 4
SYNC_FRAMES = 8  # the arrows turn 180° over this many frames (the glyph repeats after)
WHITE = (255, 255, 255)


@dataclass(frozen=True)
class IconSpec:
    state: str
    color: tuple[int, int, int]  # the disk
    glyph: str


SPECS: dict[str, IconSpec] = {
    s.state: s
    for s in (
        IconSpec("up to date", (0x23, 0x84, 0x47), "check"),
        IconSpec("syncing", (0x1F, 0x6C, 0xCF), "arrows"),
        IconSpec("paused", (0x9E, 0x65, 0x10), "pause"),
        IconSpec("offline", (0x6B, 0x72, 0x80), "cloud"),
        IconSpec("error", (0xC6, 0x2F, 0x2F), "bang"),
        IconSpec("not running", (0x58, 0x62, 0x70), "power"),
    )
}


def icon_spec(state: str) -> IconSpec:
    """The picture for a daemon state (unknown states look like errors)."""
    return SPECS.get(state, SPECS["error"])


def frame_count(state: str) -> int:
    return SYNC_FRAMES if icon_spec(state).glyph == "arrows" else 1


def render(state: str, size: int, frame: int = 0) -> Image.Image:
    """The icon for `state` as a `size`x`size` RGBA image (transparent outside the disk)."""
    if not 8 <= size <= 1024:
        raise ValueError(f"icon size {size} is outside 8..1024")
    spec = icon_spec(state)
    big = size * SUPERSAMPLE
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    px = big / size  # one output pixel, in supersampled units
    margin = 0.5 * px
    draw.ellipse((margin, margin, big - margin, big - margin), fill=(0, 0, 0, 90))
    rim = margin + px
    draw.ellipse((rim, rim, big - rim, big - rim), fill=(*spec.color, 255))
    stroke = max(1.6 * px, big * 0.10)
    _GLYPHS[spec.glyph](draw, big, stroke, frame % max(1, frame_count(state)), spec.color)
    return img.reduce(SUPERSAMPLE)  # box average: smooth edges, no ringing in the fill


def place(icon: Image.Image, background: Image.Image) -> Image.Image:
    """`icon` centred over `background` (what the panel shows there), as RGB: for trays
    that cannot show transparency, the icon's see-through pixels show the panel."""
    out = background.convert("RGB")
    x, y = (out.width - icon.width) // 2, (out.height - icon.height) // 2
    rgba = icon.convert("RGBA")
    out.paste(rgba, (x, y), rgba)
    return out


# -- glyphs (coordinates as fractions of the icon) ----------------------------------------
def _pt(big: int, x: float, y: float) -> tuple[float, float]:
    return (x * big, y * big)


def _check(draw: ImageDraw.ImageDraw, big: int, w: float, _f: int, _c: tuple) -> None:
    pts = [_pt(big, 0.29, 0.52), _pt(big, 0.44, 0.67), _pt(big, 0.72, 0.37)]
    draw.line(pts, fill=WHITE, width=round(w), joint="curve")
    for x, y in (pts[0], pts[2]):
        draw.ellipse((x - w / 2, y - w / 2, x + w / 2, y + w / 2), fill=WHITE)


def _pause(draw: ImageDraw.ImageDraw, big: int, w: float, _f: int, _c: tuple) -> None:
    bar = max(w, big * 0.11)
    for cx in (0.40, 0.60):
        x = cx * big
        draw.rounded_rectangle(
            (x - bar / 2, 0.30 * big, x + bar / 2, 0.70 * big), radius=bar / 3, fill=WHITE
        )


def _bang(draw: ImageDraw.ImageDraw, big: int, w: float, _f: int, _c: tuple) -> None:
    bar = max(w, big * 0.12)
    x = big / 2
    draw.rounded_rectangle(
        (x - bar / 2, 0.24 * big, x + bar / 2, 0.58 * big), radius=bar / 2, fill=WHITE
    )
    y = 0.71 * big
    draw.ellipse((x - bar * 0.6, y - bar * 0.6, x + bar * 0.6, y + bar * 0.6), fill=WHITE)


def _cloud(draw: ImageDraw.ImageDraw, big: int, _w: float, _f: int, _c: tuple) -> None:
    for cx, cy, r in ((0.38, 0.55, 0.13), (0.52, 0.45, 0.17), (0.65, 0.56, 0.12)):
        draw.ellipse(((cx - r) * big, (cy - r) * big, (cx + r) * big, (cy + r) * big), fill=WHITE)
    draw.rounded_rectangle(
        (0.25 * big, 0.53 * big, 0.77 * big, 0.68 * big), radius=0.07 * big, fill=WHITE
    )


def _power(draw: ImageDraw.ImageDraw, big: int, w: float, _f: int, _c: tuple) -> None:
    r = 0.22 * big
    c = big / 2
    draw.arc(
        (c - r, c - r + 0.03 * big, c + r, c + r + 0.03 * big), 300, 240, fill=WHITE, width=round(w)
    )
    draw.line([_pt(big, 0.5, 0.24), _pt(big, 0.5, 0.50)], fill=WHITE, width=round(w))


def _arrows(draw: ImageDraw.ImageDraw, big: int, w: float, frame: int, _c: tuple) -> None:
    """Two arcs chasing each other round the centre, each with an arrowhead."""
    turn = 180.0 * frame / SYNC_FRAMES
    c, r = big / 2, 0.23 * big
    box = (c - r, c - r, c + r, c + r)
    head = max(w * 1.35, big * 0.13)
    for start in (turn + 20, turn + 200):
        end = start + 125
        draw.arc(box, start, end, fill=WHITE, width=round(w))
        a = math.radians(end)
        tip = (c + r * math.cos(a), c + r * math.sin(a))
        tangent = a + math.pi / 2  # the arc runs clockwise on screen (y points down)
        normal = a
        pts = [
            (tip[0] + head * math.cos(tangent) * 0.9, tip[1] + head * math.sin(tangent) * 0.9),
            (tip[0] + head * 0.75 * math.cos(normal), tip[1] + head * 0.75 * math.sin(normal)),
            (tip[0] - head * 0.75 * math.cos(normal), tip[1] - head * 0.75 * math.sin(normal)),
        ]
        draw.polygon(pts, fill=WHITE)


_GLYPHS = {
    "check": _check,
    "pause": _pause,
    "bang": _bang,
    "cloud": _cloud,
    "power": _power,
    "arrows": _arrows,
}
