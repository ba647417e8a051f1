"""Synthetic pictures that are not digits, for measuring a "not a digit" score.

Letters and symbols rendered from the fonts Matplotlib ships (the same files on every machine,
so the set is the same everywhere), random scribbles, geometric shapes, blobs and speckle
noise. Each is drawn dark on white, as a person's picture would be, so that it goes through
the same `preprocess.to_mnist` as a real picture before the model sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from mnist_cnn.errors import UserError
from mnist_cnn.preprocess import to_mnist

CANVAS = 96  # pixels: the size each picture is drawn at, before preprocessing
# Glyphs that are not digits. Left out because a handwritten digit looks like them:
# O o Q D (0), I i l j J ! | / ( ) [ ] (1), Z z (2), S s $ (5), G b (6),
# T (7), B (8), g q (9), and the marks too small to mean anything (. , : ; ' " - _).
LEFT_OUT = "OoQDIiljJ!|/()[]Zz2Ss$GbTBgq.,:;'\"-_"
LETTERS = "ACEFHKLMNPRUVWXYacdefhkmnprtuvwxy"
SYMBOLS = "#@%&*+=?<>~^{}€£¥§¶©®αλπΣΩΦΨΔ★♥☺♣♠✓✗"
GLYPHS = LETTERS + SYMBOLS
# Outlier exposure trains on every other glyph; the rest are seen only in evaluation, which
# shows how the score does on kinds of non-digits the model never met.
TRAINING_GLYPHS = GLYPHS[::2]
UNSEEN_GLYPHS = GLYPHS[1::2]
# Regular, bold, oblique and serif faces of the DejaVu family bundled with Matplotlib.
FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSansMono.ttf",
)
MAX_SHEAR = 0.35  # a slant of up to about 19 degrees either way, on top of the italic faces
KINDS = ("glyph", "scribble", "shape", "blob", "speckle")


def font_dir() -> Path:
    """The folder of TrueType fonts bundled with Matplotlib."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def render_glyph(glyph: str, font_file: Path, size: int, shear: float) -> Image.Image:
    """One character, black on a white CANVAS x CANVAS "L" image, `size` points, slanted."""
    font = ImageFont.truetype(str(font_file), size)
    image = Image.new("L", (CANVAS, CANVAS), 255)
    ImageDraw.Draw(image).text((CANVAS / 2, CANVAS / 2), glyph, fill=0, font=font, anchor="mm")
    # An affine shear about the centre: x' = x + shear * (y - centre).
    return image.transform(
        image.size,
        Image.Transform.AFFINE,
        (1, shear, -shear * CANVAS / 2, 0, 1, 0),
        Image.Resampling.BICUBIC,
        fillcolor=255,
    )


def random_glyph(rng: np.random.Generator, glyphs: str = GLYPHS) -> Image.Image:
    """One of `glyphs` at random, in a random face, size (28-64 pt) and slant."""
    glyph = glyphs[int(rng.integers(len(glyphs)))]
    font_file = font_dir() / FONT_FILES[int(rng.integers(len(FONT_FILES)))]
    return render_glyph(
        glyph, font_file, int(rng.integers(28, 65)), float(rng.uniform(-MAX_SHEAR, MAX_SHEAR))
    )


def random_points(rng: np.random.Generator, count: int) -> list[tuple[float, float]]:
    """`count` points spread over the canvas, away from its edges."""
    xy = rng.uniform(0.12 * CANVAS, 0.88 * CANVAS, size=(count, 2))
    return [(float(x), float(y)) for x, y in xy]


def random_scribble(rng: np.random.Generator) -> Image.Image:
    """A pen wandering through 5 to 12 random points, with a random pen width."""
    image = Image.new("L", (CANVAS, CANVAS), 255)
    points = random_points(rng, int(rng.integers(5, 13)))
    ImageDraw.Draw(image).line(points, fill=0, width=int(rng.integers(2, 7)), joint="curve")
    return image


def random_shape(rng: np.random.Generator) -> Image.Image:
    """A square, triangle, star, filled disc, grid or cross-hatch, outlined or filled."""
    image = Image.new("L", (CANVAS, CANVAS), 255)
    draw = ImageDraw.Draw(image)
    width = int(rng.integers(2, 7))
    low, high = sorted(rng.uniform(0.15 * CANVAS, 0.85 * CANVAS, size=2))
    kind = int(rng.integers(6))
    if kind == 0:  # square or rectangle outline: not a 0, whose sides are curved
        bottom = low + (high - low) * rng.uniform(0.6, 1.0)
        draw.rectangle((low, low, high, bottom), outline=0, width=width)
    elif kind == 1:
        draw.regular_polygon(
            (CANVAS / 2, CANVAS / 2, CANVAS / 3), 3, rotation=float(rng.uniform(0, 120)),
            outline=0, width=width, fill=None if rng.random() < 0.5 else 0,
        )  # fmt: skip
    elif kind == 2:  # a five-pointed star: alternate outer and inner radii
        angles = np.linspace(0, 2 * np.pi, 11)[:-1] + rng.uniform(0, np.pi)
        radii = np.where(np.arange(10) % 2 == 0, CANVAS / 2.5, CANVAS / 6)
        star = [
            (CANVAS / 2 + r * np.cos(a), CANVAS / 2 + r * np.sin(a))
            for r, a in zip(radii, angles, strict=True)
        ]
        draw.polygon(star, outline=0, fill=None if rng.random() < 0.5 else 0, width=width)
    elif kind == 3:  # a filled disc: a blot, not a written 0
        draw.ellipse((low, low, high, high), fill=0)
    elif kind == 4:  # a grid of three by three lines, like squared paper or a noughts board
        for t in np.linspace(low, high, 3 + int(rng.integers(2))):
            draw.line((t, low, t, high), fill=0, width=width)
            draw.line((low, t, high, t), fill=0, width=width)
    else:  # cross-hatching: parallel diagonal strokes both ways
        for t in np.linspace(-CANVAS / 3, CANVAS / 3, 5):
            draw.line((low + t, low, high + t, high), fill=0, width=width)
            draw.line((high + t, low, low + t, high), fill=0, width=width)
    return image


def random_blob(rng: np.random.Generator) -> Image.Image:
    """A smooth random ink blot: blurred noise cut at a threshold."""
    noise = Image.fromarray((rng.random((CANVAS, CANVAS)) * 255).astype(np.uint8))
    smooth = np.asarray(noise.filter(ImageFilter.GaussianBlur(float(rng.uniform(6, 12)))))
    blot = smooth < np.quantile(smooth, float(rng.uniform(0.08, 0.3)))
    return Image.fromarray(np.where(blot, 0, 255).astype(np.uint8))


def random_speckle(rng: np.random.Generator) -> Image.Image:
    """Dirt on the page: 20 to 200 dark dots of 1 to 4 pixels scattered everywhere."""
    image = Image.new("L", (CANVAS, CANVAS), 255)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(20, 201))):
        x, y = rng.uniform(0, CANVAS, size=2)
        radius = float(rng.uniform(0.5, 2.0))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=0)
    return image


MAKERS: dict[str, Callable[[np.random.Generator], Image.Image]] = {
    "scribble": random_scribble,
    "shape": random_shape,
    "blob": random_blob,
    "speckle": random_speckle,
}


def make_outliers(
    count: int, seed: int | Sequence[int], glyphs: str = GLYPHS
) -> tuple[list[Image.Image], list[str]]:
    """`count` non-digit pictures (greyscale PIL images, CANVAS x CANVAS, dark on white) and
    their kinds, cycling through KINDS; letters and symbols are drawn from `glyphs`. The same
    `seed` gives the same pictures."""
    rng = np.random.default_rng(seed)
    kinds = [KINDS[n % len(KINDS)] for n in range(count)]
    pictures = [
        random_glyph(rng, glyphs) if kind == "glyph" else MAKERS[kind](rng) for kind in kinds
    ]
    return pictures, kinds


def outlier_digits(count: int, seed: int | Sequence[int], glyphs: str = TRAINING_GLYPHS):
    """`count` non-digit pictures as the model would see them: uint8 (M, 28, 28), M <= count,
    each made MNIST-like by `preprocess.to_mnist` (the rare one with no ink is left out)."""
    pictures, _ = make_outliers(count, seed, glyphs)
    digits = []
    for picture in pictures:
        try:
            digits.append(to_mnist(picture))
        except UserError:  # a speckle pattern too faint to count as ink
            continue
    return np.stack(digits)
