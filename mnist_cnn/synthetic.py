"""Synthetic pictures: digits saved the way people save them, and pictures that are not digits.

The first are MNIST test digits redrawn black on white at any size and place, tilted, saved
as PNG, JPEG or transparent PNG. The second are letters and symbols rendered from the fonts
Matplotlib ships (the same files on every machine, so the set is the same everywhere), random
scribbles, geometric shapes, blobs and speckle noise, drawn dark on white as a person's
picture would be. Both go through the same `preprocess` as a real picture before the model
sees them; fixed seeds make them the same on every run.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from mnist_cnn.degrade import degrade_batch
from mnist_cnn.errors import UserError
from mnist_cnn.preprocess import read_digit, to_mnist
from mnist_cnn.segment import find_digits


def redraw(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """An MNIST digit uint8 (28, 28) as a person might draw it: a light-ink "L" layer of 100
    to 400 px, the digit at any size and place, tilted up to 8 degrees."""
    canvas = int(rng.integers(100, 401))
    field = int(canvas * rng.uniform(0.3, 0.8))  # MNIST's 28x28 field, digit inside 20/28 of it
    ink = Image.fromarray(digit).resize((field, field), Image.Resampling.BICUBIC)
    ink = ink.rotate(rng.uniform(-8, 8), Image.Resampling.BICUBIC, expand=True)
    layer = Image.new("L", (canvas, canvas), 0)
    corner = [int(rng.integers(0, canvas - side + 1)) for side in ink.size]
    layer.paste(ink, tuple(corner))
    return layer


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    """The bytes of `image` saved in format `fmt` (PNG, JPEG ...) with Pillow's `options`."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def save_like_a_person(ink: Image.Image, kind: int, rng: np.random.Generator) -> bytes:
    """Encode a light-ink layer as black on white: a greyscale PNG (kind 0), an RGB JPEG of
    quality 60-95 (kind 1), or black ink on a transparent RGBA PNG (kind 2)."""
    if kind == 0:
        return encode(ImageOps.invert(ink), "PNG")
    if kind == 1:
        quality = int(rng.integers(60, 96))
        return encode(ImageOps.invert(ink).convert("RGB"), "JPEG", quality=quality)
    layer = Image.new("RGBA", ink.size, (0, 0, 0, 0))
    layer.putalpha(ink)
    return encode(layer, "PNG")


def person_style_files(digits: np.ndarray, seed: int) -> list[tuple[bytes, str]]:
    """Each digit uint8 (N, 28, 28) redrawn and saved as `save_like_a_person` does, the
    kinds taken in turn: (file bytes, suffix "png" or "jpg") per digit."""
    rng = np.random.default_rng(seed)
    files = []
    for n, digit in enumerate(digits):
        kind = n % 3
        data = save_like_a_person(redraw(digit, rng), kind, rng)
        files.append((data, "jpg" if kind == 1 else "png"))
    return files


# --- pictures that are not digits ---------------------------------------------------------------

CANVAS = 96  # pixels: the size each non-digit is drawn at, before preprocessing
# Glyphs that are not digits. Left out because a handwritten digit looks like them:
# O o Q D (0), I i l j J ! | / ( ) [ ] (1), Z z (2), S s $ (5), G b (6),
# T (7), B (8), g q (9), and the marks too small to mean anything (. , : ; ' " - _).
LEFT_OUT = "OoQDIiljJ!|/()[]Zz2Ss$GbTBgq.,:;'\"-_"
LETTERS = "ACEFHKLMNPRUVWXYacdefhkmnprtuvwxy"
SYMBOLS = "#@%&*+=?<>~^{}€£¥§¶©®"
# Outlier exposure trains on Latin letters and keyboard symbols; Greek letters and dingbats
# are seen only in evaluation, which shows how the score does on whole alphabets the model
# never met.
TRAINING_GLYPHS = LETTERS + SYMBOLS
UNSEEN_GLYPHS = "αλπΣΩΦΨΔ★♥☺♣♠✓✗"
GLYPHS = TRAINING_GLYPHS + UNSEEN_GLYPHS
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
KINDS = ("glyph", "scribble", "shape", "blob", "speckle", "doodle")


@functools.cache
def font_dir() -> Path:
    """The folder of TrueType fonts bundled with Matplotlib."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@functools.cache
def load_font(font_file: Path, size: int) -> ImageFont.FreeTypeFont:
    """A TrueType face at `size` points, read from disk once per (file, size)."""
    return ImageFont.truetype(str(font_file), size)


def render_glyph(glyph: str, font_file: Path, size: int, shear: float) -> Image.Image:
    """One character, black on a white CANVAS x CANVAS "L" image, `size` points, slanted."""
    font = load_font(font_file, size)
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


def random_glyph(rng: np.random.Generator, glyph: str) -> Image.Image:
    """`glyph` in a random face, size (28-64 pt) and slant."""
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


def random_doodle(rng: np.random.Generator) -> Image.Image:
    """A drawing around a ring, which alone would be a 0: a face (a smile or a frown, mostly
    eyes, sometimes a nose), or a sun with rays; the ring an ellipse of random shape."""
    image = Image.new("L", (CANVAS, CANVAS), 255)
    draw = ImageDraw.Draw(image)
    width = int(rng.integers(2, 6))
    rx, ry = rng.uniform(0.22, 0.34, size=2) * CANVAS
    cx, cy = CANVAS / 2, CANVAS / 2
    draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), outline=0, width=width)
    if rng.random() < 0.25:  # a sun: rays all round the ring
        for angle in np.linspace(0, 2 * np.pi, int(rng.integers(6, 13)), endpoint=False):
            far = 1.15 + rng.uniform(0.2, 0.4)
            ray = [(cx + k * rx * np.cos(angle), cy + k * ry * np.sin(angle)) for k in (1.15, far)]
            draw.line(ray, fill=0, width=width)
        return image
    eye = rng.uniform(0.05, 0.1) * CANVAS
    # Small eyes may be set aside as specks when the digits are found: train on faces without.
    for side in (-1, 1) if rng.random() < 0.7 else ():  # two eyes, dots or strokes
        ex, ey = cx + side * 0.4 * rx, cy - 0.3 * ry
        if rng.random() < 0.6:
            draw.ellipse((ex - eye / 2, ey - eye / 2, ex + eye / 2, ey + eye / 2), fill=0)
        else:
            draw.line((ex, ey - eye / 2, ex, ey + eye / 2), fill=0, width=width)
    mouth = (cx - 0.5 * rx, cy - 0.1 * ry, cx + 0.5 * rx, cy + 0.6 * ry)
    smile = rng.random() < 0.7
    draw.arc(mouth, 20 if smile else 200, 160 if smile else 340, fill=0, width=width)
    if rng.random() < 0.3:
        draw.line((cx, cy - 0.1 * ry, cx, cy + 0.15 * ry), fill=0, width=width)
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
    "doodle": random_doodle,
}


def make_outliers(
    count: int, seed: int | Sequence[int], glyphs: str = GLYPHS
) -> tuple[list[Image.Image], list[str]]:
    """`count` non-digit pictures (greyscale PIL images, CANVAS x CANVAS, dark on white) and
    their kinds, cycling through KINDS; letters and symbols are drawn from `glyphs`, and
    those outlier exposure never trains on are of the kind "unseen glyph". The same `seed`
    gives the same pictures."""
    rng = np.random.default_rng(seed)
    pictures, kinds = [], []
    for n in range(count):
        kind = KINDS[n % len(KINDS)]
        if kind == "glyph":
            glyph = glyphs[int(rng.integers(len(glyphs)))]
            pictures.append(random_glyph(rng, glyph))
            kinds.append("glyph" if glyph in TRAINING_GLYPHS else "unseen glyph")
        else:
            pictures.append(MAKERS[kind](rng))
            kinds.append(kind)
    return pictures, kinds


def to_mnist_or_none(picture: Image.Image) -> np.ndarray | None:
    """`preprocess.to_mnist` of a picture, or None where it finds no ink (a faint speckle)."""
    try:
        return to_mnist(picture)
    except UserError:
        return None


def outlier_digits(
    count: int, seed: int | Sequence[int], glyphs: str = TRAINING_GLYPHS
) -> tuple[np.ndarray, list[str]]:
    """`count` non-digit pictures as the model would see them, uint8 (M, 28, 28) with M <=
    count, each made MNIST-like by `preprocess.to_mnist` (the rare one with no ink is left
    out), and their kinds (M,)."""
    pictures, kinds = make_outliers(count, seed, glyphs)
    # Pillow and NumPy release the GIL in their loops, so threads use every core here.
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        digits = list(pool.map(to_mnist_or_none, pictures))
    kept = [n for n, digit in enumerate(digits) if digit is not None]
    return np.stack([digits[n] for n in kept]), [kinds[n] for n in kept]


# --- degraded digits as the reader cuts them out ------------------------------------------------

FILE_SCALES = (3, 10)  # a digit drawn as a file this many times MNIST's size (inclusive range)
SCALED_SHARE = 0.5  # of the files: scaled up, dark on white; the rest 28x28, light on dark


def as_file_picture(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A digit uint8 (28, 28), light on dark, as a person's file might hold it: half the time
    as it is, else scaled up FILE_SCALES times (bilinear) and turned dark on white."""
    if rng.random() >= SCALED_SHARE:
        return Image.fromarray(digit)
    side = 28 * int(rng.integers(FILE_SCALES[0], FILE_SCALES[1] + 1))
    scaled = Image.fromarray(digit).resize((side, side), Image.Resampling.BILINEAR)
    return ImageOps.invert(scaled)


def reader_crop_or_none(picture: Image.Image) -> np.ndarray | None:
    """The digit `segment.find_digits` cuts out of `picture`, uint8 (28, 28), or None when
    it finds no digit, or several."""
    try:
        candidates = find_digits(picture)
    except UserError:
        return None
    return candidates[0].digit if len(candidates) == 1 else None


def reader_crops(
    digits: np.ndarray, labels: np.ndarray, seed: int | Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Degraded digits as the reader gives them to the model: each of `digits` uint8
    (N, 28, 28) through one of `mnist_cnn.degrade`'s degradations, drawn as a file
    (`as_file_picture`) and cut out again by `segment.find_digits`. Returns the crops uint8
    (M, 28, 28) and their labels (M,), M <= N: a picture in which the reader finds no digit,
    or several, is left out. The same `seed` gives the same crops.

    A model trained only on degraded 28x28 arrays meets other pictures at test time: the
    reader crops a degraded digit to its ink, stains and crossing lines included, and scales
    that to MNIST's 20-pixel box. These crops show it those pictures (train-test consistency).
    """
    rng = np.random.default_rng(seed)
    degraded = degrade_batch(digits, rng, fraction=1.0)
    pictures = [as_file_picture(digit, rng) for digit in degraded]
    # Pillow, NumPy and OpenCV release the GIL in their loops, so threads use every core here.
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        crops = list(pool.map(reader_crop_or_none, pictures))
    kept = [n for n, crop in enumerate(crops) if crop is not None]
    empty = np.zeros((0, *np.shape(digits)[1:]), np.uint8)
    stacked = np.stack([crops[n] for n in kept]) if kept else empty
    return stacked, np.asarray(labels)[kept]


def generator_fingerprint() -> str:
    """The SHA-256 (64 hex digits) of what decides the generated pictures: this module's,
    preprocess.py's, segment.py's and degrade.py's code, and the Pillow, NumPy, OpenCV and
    Matplotlib (fonts) versions. A cache of generated pictures keyed by it is never read after
    any of them changes."""
    import cv2
    import matplotlib
    import PIL

    from mnist_cnn import degrade, preprocess, segment

    digest = hashlib.sha256()
    for module_file in (__file__, preprocess.__file__, segment.__file__, degrade.__file__):
        digest.update(Path(module_file).read_bytes())
    versions = (PIL.__version__, np.__version__, cv2.__version__, matplotlib.__version__)
    digest.update(" ".join(versions).encode())
    return digest.hexdigest()


# --- the open-set evaluation set ---------------------------------------------------------------

# The evaluation's own random stream: no training run draws from it (training outliers use
# the pair (--seed, 1)), and neither does the choice of the threshold.
EVALUATION_SEED = 20261130


class OpenSetData(NamedTuple):
    """Digits and non-digits as the model sees them: uint8 (N, 28, 28) arrays and labels."""

    mnist_digits: np.ndarray
    mnist_labels: np.ndarray
    person_digits: np.ndarray
    person_labels: np.ndarray
    outliers: np.ndarray
    kinds: list[str]


def openset_data(
    x_test: np.ndarray,
    y_test: np.ndarray,
    n_mnist: int,
    n_person: int,
    n_outliers: int,
    seed: int = EVALUATION_SEED,
) -> OpenSetData:
    """The evaluation set of the not-a-digit verdict: the first `n_mnist` MNIST test digits
    through preprocessing, `n_person` others redrawn and saved the way people save them, and
    `n_outliers` non-digits drawn from every glyph (half never trained on)."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(x_test), n_person, replace=False)
    person = [read_digit(data) for data, _ in person_style_files(x_test[chosen], seed)]
    outliers, kinds = outlier_digits(n_outliers, seed, GLYPHS)
    return OpenSetData(
        np.stack([to_mnist(Image.fromarray(digit)) for digit in x_test[:n_mnist]]),
        y_test[:n_mnist],
        np.stack(person),
        y_test[chosen],
        outliers,
        kinds,
    )
