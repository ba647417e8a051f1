"""Made-up writers whose digits the shipped model misreads, for the teaching benchmark.

Each writer has one hand (a style and its fixed traits) and draws any digit many times, each
picture a little different: black ink on white paper, "L" mode. Four styles:

- "seven-segment": a display's digits, slanted bars with gaps between them;
- "hollow": outlined digits, a bold face drawn as its outline only ("bubble" digits);
- "dotted": a dot-matrix printer's 5x7 digits, one round dot per cell;
- "8x8-scan": MNIST training digits scanned at 8x8 with 17 grey levels (as the UCI
  optdigits set was made), then blown up with nearest-neighbour pixels: blocky and blurred.

`variation` says how much the pictures vary: "taught" pictures are drawn as a person would
collect them (much the same size and place, clean paper), "other" pictures, never taught,
at other sizes (the digit 30-90% of pictures 80-400 px), other positions and tilts, with
noise and blur. Everything comes from the Generator passed in: fixed seeds give the same
pictures on every machine (the fonts are Matplotlib's own).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from mnist_cnn.synthetic import font_dir

STYLES = ("seven-segment", "hollow", "dotted", "8x8-scan")
VARIATIONS = ("taught", "other")
LAYER = 128  # pixels: the height each digit is drawn at before it is placed on its paper

# Segments of a seven-segment display, named as on data sheets: a top, b top right,
# c bottom right, d bottom, e bottom left, f top left, g middle.
SEGMENTS = {
    0: "abcdef",
    1: "bc",
    2: "abged",
    3: "abgcd",
    4: "fgbc",
    5: "afgcd",
    6: "afgedc",
    7: "abc",
    8: "abcdefg",
    9: "abcdfg",
}
# A dot-matrix printer's 5x7 digits, top row first ("#" a dot).
DOT_MATRIX = {
    0: (" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "),
    1: ("  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "),
    2: (" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"),
    3: ("#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "),
    4: ("   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "),
    5: ("#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "),
    6: ("  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "),
    7: ("#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "),
    8: (" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "),
    9: (" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "),
}
SCAN_SIZE = 8
SCAN_LEVELS = 16  # optdigits: 0-16 ink pixels in each 4x4 block of a 32x32 bitmap


@dataclass(frozen=True)
class Spread:
    """How much the pictures of one variation differ: canvas side (px), the digit's height as
    a share of it, tilt (degrees), Gaussian noise (grey levels) and blur radius (px)."""

    canvas: tuple[int, int]
    height: tuple[float, float]
    tilt: float
    noise: tuple[float, float]
    blur: tuple[float, float]


SPREADS = {
    "taught": Spread((140, 200), (0.6, 0.75), 3.0, (0.0, 4.0), (0.0, 0.0)),
    "other": Spread((80, 400), (0.3, 0.9), 8.0, (0.0, 14.0), (0.0, 1.2)),
}


def seven_segment(digit: int, rng: np.random.Generator) -> Image.Image:
    """A display digit as light ink on black, LAYER px high: slanted bars with gaps."""
    width, height = 0.55 * LAYER, LAYER
    bar = LAYER * rng.uniform(0.11, 0.13)  # the writer's thick bars, a little uneven
    gap = bar * 0.35
    half = height / 2
    layer = Image.new("L", (int(width + 2 * bar), int(height + 2 * bar)), 0)
    draw = ImageDraw.Draw(layer)
    x0, y0 = bar, bar

    def horizontal(y: float) -> list[tuple[float, float]]:
        left, right = x0 + gap, x0 + width - gap
        up, down = y - bar / 2, y + bar / 2
        return [(left, y), (left + bar / 2, up), (right - bar / 2, up),
                (right, y), (right - bar / 2, down), (left + bar / 2, down)]  # fmt: skip

    def vertical(x: float, top: float, bottom: float) -> list[tuple[float, float]]:
        top, bottom = top + gap, bottom - gap
        left, right = x - bar / 2, x + bar / 2
        return [(x, top), (right, top + bar / 2), (right, bottom - bar / 2),
                (x, bottom), (left, bottom - bar / 2), (left, top + bar / 2)]  # fmt: skip

    shapes = {
        "a": horizontal(y0),
        "g": horizontal(y0 + half),
        "d": horizontal(y0 + height),
        "f": vertical(x0, y0, y0 + half),
        "b": vertical(x0 + width, y0, y0 + half),
        "e": vertical(x0, y0 + half, y0 + height),
        "c": vertical(x0 + width, y0 + half, y0 + height),
    }
    for segment in SEGMENTS[digit]:
        draw.polygon(shapes[segment], fill=255)
    slant = np.tan(np.radians(rng.uniform(8, 12)))  # displays lean forward
    return layer.transform(
        (layer.width + int(slant * layer.height), layer.height),
        Image.Transform.AFFINE,
        (1, slant, -slant * layer.height, 0, 1, 0),
        Image.Resampling.BICUBIC,
    )


def hollow(digit: int, rng: np.random.Generator) -> Image.Image:
    """An outlined digit as light ink on black, about LAYER px high: a bold face drawn as its
    outline only."""
    font = ImageFont.truetype(str(font_dir() / "DejaVuSans-Bold.ttf"), LAYER)
    side = int(LAYER * 1.4)
    layer = Image.new("L", (side, side), 0)
    stroke = max(2, round(LAYER * rng.uniform(0.035, 0.05)))
    ImageDraw.Draw(layer).text(
        (side / 2, side / 2), str(digit), font=font, anchor="mm", fill=0,
        stroke_width=stroke, stroke_fill=255,
    )  # fmt: skip
    return layer.crop(layer.getbbox())


def dotted(digit: int, rng: np.random.Generator) -> Image.Image:
    """A 5x7 dot-matrix digit as light ink on black, LAYER px high: one round dot per cell."""
    cell = LAYER / 7
    radius = cell * rng.uniform(0.3, 0.36)
    layer = Image.new("L", (int(5 * cell), LAYER), 0)
    draw = ImageDraw.Draw(layer)
    for row, line in enumerate(DOT_MATRIX[digit]):
        for col, mark in enumerate(line):
            if mark == "#":
                x, y = (col + 0.5) * cell, (row + 0.5) * cell
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return layer


def scan_8x8(source: np.ndarray) -> Image.Image:
    """An MNIST digit uint8 (28, 28) scanned at 8x8 in 17 grey levels, then blown up to
    LAYER px with square pixels: light ink on black."""
    ink = Image.fromarray(source).crop(Image.fromarray(source).getbbox() or (0, 0, 28, 28))
    side = max(ink.size)
    square = Image.new("L", (side, side), 0)
    square.paste(ink, ((side - ink.width) // 2, (side - ink.height) // 2))
    small = np.asarray(square.resize((SCAN_SIZE, SCAN_SIZE), Image.Resampling.BOX), np.float32)
    levels = np.round(small / 255 * SCAN_LEVELS) / SCAN_LEVELS * 255
    return Image.fromarray(levels.astype(np.uint8)).resize((LAYER, LAYER), Image.Resampling.NEAREST)


def place(layer: Image.Image, spread: Spread, rng: np.random.Generator) -> Image.Image:
    """A light-ink layer put on white paper as a picture of the `spread`: scaled to its
    height, tilted, placed anywhere it fits, with noise and blur. "L", black ink on white."""
    canvas = int(rng.integers(spread.canvas[0], spread.canvas[1] + 1))
    height = max(8, int(canvas * rng.uniform(*spread.height)))
    width = max(4, round(layer.width * height / layer.height))
    ink = layer.resize((width, height), Image.Resampling.LANCZOS)
    ink = ink.rotate(rng.uniform(-spread.tilt, spread.tilt), Image.Resampling.BICUBIC, expand=True)
    paper = Image.new("L", (max(canvas, ink.width + 2), max(canvas, ink.height + 2)), 0)
    corner = [int(rng.integers(0, paper.size[n] - ink.size[n] + 1)) for n in (0, 1)]
    paper.paste(ink, tuple(corner))
    blur = rng.uniform(*spread.blur)
    if blur > 0.05:
        paper = paper.filter(ImageFilter.GaussianBlur(blur))
    noise = rng.normal(0, rng.uniform(*spread.noise), (paper.height, paper.width))
    pixels = 255 - np.asarray(paper, np.float32) + noise
    return Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8))


def draw_digit(
    style: str,
    digit: int,
    variation: str,
    rng: np.random.Generator,
    scans: np.ndarray | None = None,
) -> Image.Image:
    """One picture of `digit` in `style` (one of STYLES), varied as `variation` says
    ("taught" or "other"). "8x8-scan" needs `scans`, MNIST digits uint8 (N, 28, 28) of this
    digit to scan, one of which is drawn at random. Raises ValueError for another style."""
    if style == "seven-segment":
        layer = seven_segment(digit, rng)
    elif style == "hollow":
        layer = hollow(digit, rng)
    elif style == "dotted":
        layer = dotted(digit, rng)
    elif style == "8x8-scan":
        if scans is None or not len(scans):
            raise ValueError("the 8x8-scan writer needs MNIST digits to scan")
        layer = scan_8x8(scans[int(rng.integers(len(scans)))])
    else:
        raise ValueError(f"unknown style {style!r}: one of {', '.join(STYLES)}")
    return place(layer, SPREADS[variation], rng)
