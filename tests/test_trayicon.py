"""The tray icons: rendered to PNG for every state and size, and checked for what a
person sees — exact size, a transparent surround, the state's colour, a white glyph,
contrast on light and dark panels, and states that never look alike."""

from __future__ import annotations

from collections import Counter

import pytest
from PIL import Image

from syncd.trayicon import SPECS, SYNC_FRAMES, frame_count, icon_spec, place, render

SIZES = (16, 22, 24, 32, 48, 64)
STATES = tuple(SPECS)


def luminance(rgb: tuple[int, ...]) -> float:
    def lin(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def png(tmp_path, state: str, size: int, frame: int = 0) -> Image.Image:
    path = tmp_path / f"{state.replace(' ', '-')}-{size}-{frame}.png"
    render(state, size, frame).save(path)
    return Image.open(path)


def opaque_colours(img: Image.Image) -> Counter:
    counts: Counter = Counter()
    for n, (*rgb, alpha) in img.getcolors(img.width * img.height):
        if alpha == 255:
            counts[tuple(rgb)] += n
    return counts


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("state", STATES)
def test_every_state_renders_crisp_at_every_size(tmp_path, state, size):
    img = png(tmp_path, state, size)
    assert img.mode == "RGBA" and img.size == (size, size)
    for corner in ((0, 0), (size - 1, 0), (0, size - 1), (size - 1, size - 1)):
        assert img.getpixel(corner)[3] == 0, "the corners are see-through"
    colours = opaque_colours(img)
    disk = SPECS[state].color
    assert colours[disk] >= size * size * 0.2, "the state's colour fills the disk"
    # the glyph: pixels that stand out from the disk as white does (anti-aliased at 16 px)
    glyph = sum(n for c, n in colours.items() if contrast(c, disk) >= 2.5 and min(c) > max(disk))
    assert glyph >= size * size * 0.04
    # most of the disk is opaque: it reads as a solid badge, not a smudge
    assert sum(colours.values()) >= size * size * 0.45


@pytest.mark.parametrize("state", STATES)
def test_legible_on_light_and_dark_panels(state):
    color = SPECS[state].color
    assert contrast(color, (255, 255, 255)) >= 3.0, "on a light panel"
    assert contrast(color, (0, 0, 0)) >= 3.0, "on a dark panel"
    assert contrast(color, (255, 255, 255)) >= 3.0, "the white glyph on the disk"
    for panel in ((245, 245, 245), (30, 30, 30)):
        shown = place(render(state, 24), Image.new("RGB", (24, 30), panel))
        assert shown.size == (24, 30) and shown.mode == "RGB"
        assert shown.getpixel((0, 0)) == panel, "transparent pixels show the panel"
        assert shown.getpixel((12, 3)) != panel


def test_states_never_look_alike(tmp_path):
    images = {s: png(tmp_path, s, 24).tobytes() for s in STATES}
    assert len(set(images.values())) == len(STATES)
    colours = [SPECS[s].color for s in STATES]
    for i, a in enumerate(colours):
        for b in colours[i + 1 :]:
            assert sum(abs(x - y) for x, y in zip(a, b, strict=False)) >= 40


def test_syncing_is_animated_and_the_rest_are_still(tmp_path):
    assert frame_count("syncing") == SYNC_FRAMES > 1
    frames = {png(tmp_path, "syncing", 32, f).tobytes() for f in range(SYNC_FRAMES)}
    assert len(frames) == SYNC_FRAMES
    assert all(frame_count(s) == 1 for s in STATES if s != "syncing")
    assert render("paused", 32, 5).tobytes() == render("paused", 32, 0).tobytes()


def test_unknown_states_look_like_errors_and_sizes_are_bounded():
    assert icon_spec("exploded") == SPECS["error"]
    with pytest.raises(ValueError):
        render("up to date", 4)
