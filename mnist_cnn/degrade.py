"""Our own degradations of MNIST-style digits, for validation: what phone photos, scans and
drawings do to a digit once it is made MNIST-like (light ink on black, 28x28).

Every function takes uint8 images (N, 28, 28), white ink on black, and a NumPy Generator, and
returns new uint8 images (N, 28, 28); each image draws its own parameters from the ranges given.
The ranges are ours, set from how photographed and scanned digits look at 28x28 after the
product's preprocessing (ink inverted, digit in a 20-pixel box). They owe nothing to MNIST-C,
which stays a report (benchmarks/robustness.py) and never feeds training or recipe choices.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

SIZE = 28
WHITE = 255.0
Degradation = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def as_float(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 copy on [0, 255]."""
    return np.asarray(images, dtype=np.float32)


def as_uint8(images: np.ndarray) -> np.ndarray:
    """Float images -> uint8 (N, 28, 28), clipped to [0, 255] and rounded."""
    return np.clip(np.rint(images), 0, WHITE).astype(np.uint8)


def per_image(rng: np.random.Generator, low: float, high: float, count: int) -> np.ndarray:
    """One uniform draw in [low, high) per image, shaped (N, 1, 1) to broadcast over pixels."""
    return rng.uniform(low, high, count).astype(np.float32)[:, None, None]


def coordinates() -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre row and column grids (28, 28), on [-1, 1] from edge to edge."""
    axis = np.linspace(-1, 1, SIZE, dtype=np.float32)
    return np.meshgrid(axis, axis, indexing="ij")


def gaussian_noise(
    images: np.ndarray, rng: np.random.Generator, sigma: tuple[float, float] = (6, 45)
) -> np.ndarray:
    """Additive Gaussian sensor noise, a standard deviation of `sigma` grey levels (per image,
    uniform in the range): a phone's sensor in dim light after its own denoising (6), up to a
    high-ISO shot or a webcam at night (45)."""
    x = as_float(images)
    scale = per_image(rng, *sigma, len(x))
    return as_uint8(x + rng.standard_normal(x.shape, dtype=np.float32) * scale)


def salt_and_pepper(
    images: np.ndarray, rng: np.random.Generator, amount: tuple[float, float] = (0.01, 0.2)
) -> np.ndarray:
    """Impulse noise: a fraction `amount` of the pixels set to black or white at random
    (dust on a scanner's glass, specks of the paper, dead pixels; at a fifth of the pixels, a
    fax or a badly dithered print)."""
    x = as_float(images)
    hit = rng.random(x.shape) < per_image(rng, *amount, len(x))
    return as_uint8(np.where(hit, WHITE * (rng.random(x.shape) < 0.5), x))


def defocus_blur(
    images: np.ndarray, rng: np.random.Generator, sigma: tuple[float, float] = (0.6, 1.4)
) -> np.ndarray:
    """Out-of-focus blur modelled as a Gaussian of standard deviation `sigma` pixels (at 28x28:
    0.6 px is a slightly soft photo, 1.4 px a clearly missed focus)."""
    sigmas = rng.uniform(*sigma, len(images))
    out = [
        cv2.GaussianBlur(image, (0, 0), float(s)) for image, s in zip(images, sigmas, strict=True)
    ]
    return np.stack(out)


def line_kernel(length: int, angle: float) -> np.ndarray:
    """A normalised motion-blur kernel (length x length, float32): a one-pixel anti-aliased
    line through the centre at `angle` degrees."""
    kernel = np.zeros((length, length), np.float32)
    centre = (length - 1) / 2
    dx, dy = np.cos(np.radians(angle)) * centre, np.sin(np.radians(angle)) * centre
    shift = 4  # cv2.line's fractional bits: coordinates in 1/16 pixel
    start = (round((centre - dx) * 16), round((centre - dy) * 16))
    end = (round((centre + dx) * 16), round((centre + dy) * 16))
    cv2.line(kernel, start, end, 1.0, 1, cv2.LINE_AA, shift)
    return kernel / kernel.sum()


def motion_blur(
    images: np.ndarray, rng: np.random.Generator, length: tuple[int, int] = (3, 6)
) -> np.ndarray:
    """Camera shake: each image convolved (cv2.filter2D) with a line kernel `length` pixels
    long (inclusive range) at a uniform random angle."""
    lengths = rng.integers(length[0], length[1] + 1, len(images))
    angles = rng.uniform(0, 180, len(images))
    out = [
        cv2.filter2D(image, -1, line_kernel(int(n), float(a)), borderType=cv2.BORDER_CONSTANT)
        for image, n, a in zip(images, lengths, angles, strict=True)
    ]
    return np.stack(out)


def low_contrast(
    images: np.ndarray,
    rng: np.random.Generator,
    contrast: tuple[float, float] = (0.25, 0.55),
    floor: tuple[float, float] = (10, 60),
) -> np.ndarray:
    """Faint ink on dull paper: the grey range squeezed to `contrast` of its span and lifted
    to start at `floor` grey levels (light pencil, a dim or over-exposed photo)."""
    x = as_float(images)
    span = per_image(rng, *contrast, len(x)) * WHITE
    return as_uint8(per_image(rng, *floor, len(x)) + x * span / WHITE)


def tinted_paper(
    images: np.ndarray,
    rng: np.random.Generator,
    level: tuple[float, float] = (30, 110),
    grain: float = 4.0,
) -> np.ndarray:
    """Grey, tinted or recycled paper: the background raised to `level` grey levels (the ink
    keeps its white), plus a faint paper grain of standard deviation `grain`."""
    x = as_float(images)
    paper = per_image(rng, *level, len(x)) + rng.normal(0, grain, x.shape).astype(np.float32)
    return as_uint8(paper + x * (WHITE - paper) / WHITE)


def illumination_gradient(
    images: np.ndarray, rng: np.random.Generator, strength: tuple[float, float] = (40, 140)
) -> np.ndarray:
    """Uneven light: a linear ramp across the picture in a random direction, from 0 to
    `strength` grey levels, added to the background and partly to the ink (a shadow falling
    across the page, a lamp to one side)."""
    x = as_float(images)
    rows, cols = coordinates()
    angle = rng.uniform(0, 2 * np.pi, len(x))[:, None, None]
    ramp = (np.cos(angle) * cols + np.sin(angle) * rows + np.sqrt(2)) / (2 * np.sqrt(2))
    light = ramp.astype(np.float32) * per_image(rng, *strength, len(x))
    return as_uint8(x + light * (1 - x / WHITE))


def stains(
    images: np.ndarray,
    rng: np.random.Generator,
    count: tuple[int, int] = (1, 3),
    radius: tuple[float, float] = (1.5, 4.0),
    level: tuple[float, float] = (60, 180),
) -> np.ndarray:
    """Blots and stains: `count` soft elliptical blobs (inclusive range) of `radius` pixels and
    `level` grey levels at random places; the brighter of blob and ink shows (coffee rings,
    ink blots, a thumb's shadow)."""
    x = as_float(images)
    rows, cols = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    blots = np.zeros_like(x)
    counts = rng.integers(count[0], count[1] + 1, len(x))
    for blob in range(count[1]):
        centre_r, centre_c = (per_image(rng, 0, SIZE, len(x)) for _ in range(2))
        radius_r, radius_c = (per_image(rng, *radius, len(x)) for _ in range(2))
        distance = ((rows - centre_r) / radius_r) ** 2 + ((cols - centre_c) / radius_c) ** 2
        shade = per_image(rng, *level, len(x)) * np.exp(-(distance**2))  # soft-edged disc
        blots = np.maximum(blots, shade * (blob < counts)[:, None, None])
    return as_uint8(np.maximum(x, blots))


def line_path(rng: np.random.Generator, tilt: float, zigzag: bool) -> np.ndarray:
    """The vertices (K, 2) of a line across the picture, x then y in pixels: straight within
    `tilt` degrees of horizontal, or a zigzag about that line with teeth 2 to 5 px high and
    wide (a scribbled strike-through)."""
    row = rng.uniform(2, SIZE - 2)
    slope = np.tan(np.radians(rng.uniform(-tilt, tilt)))
    xs = np.arange(0, SIZE + 1, rng.uniform(2, 5)) if zigzag else np.array([0.0, SIZE])
    ys = row + slope * (xs - SIZE / 2)
    if zigzag:
        ys = ys + rng.uniform(1, 2.5) * np.where(np.arange(len(xs)) % 2, 1, -1)
    return np.stack([xs, ys], axis=1)


def crossing_lines(
    images: np.ndarray,
    rng: np.random.Generator,
    count: tuple[int, int] = (1, 2),
    tilt: float = 30.0,
    level: tuple[float, float] = (90, 255),
) -> np.ndarray:
    """Lines through the digit: `count` (inclusive range) anti-aliased lines, one or two
    pixels thick, across the whole picture within `tilt` degrees of horizontal, of `level`
    grey levels; half straight (ruled paper, a form's frame, an underline), half zigzag (a
    scribbled strike-through)."""
    out = np.array(images, copy=True)
    for image, n in zip(out, rng.integers(count[0], count[1] + 1, len(out)), strict=True):
        lines = np.zeros((SIZE, SIZE), np.uint8)
        for _ in range(n):
            path = np.round(line_path(rng, tilt, rng.random() < 0.5) * 16).astype(np.int32)
            shade = int(rng.uniform(*level))
            cv2.polylines(lines, [path], False, shade, int(rng.integers(1, 3)), cv2.LINE_AA, 4)
        np.maximum(image, lines, out=image)
    return out


def hollow_strokes(
    images: np.ndarray, rng: np.random.Generator, thicken: tuple[int, int] = (0, 1)
) -> np.ndarray:
    """Outlined (hollow) strokes. Half the images: the morphological gradient (dilation minus
    erosion, 3x3) of the digit after thickening it by `thicken` dilations (inclusive range):
    bubble letters, a marker's outline, a thick stroke whose middle a photo's exposure burned
    out. The other half: one-pixel edges (Canny 1986, cv2.Canny): a digit traced in thin
    pen, or a photo app's sketch filter."""
    kernel = np.ones((3, 3), np.uint8)
    out = []
    for image, n in zip(images, rng.integers(thicken[0], thicken[1] + 1, len(images)), strict=True):
        if rng.random() < 0.5:
            out.append(cv2.Canny(image, 50, 150))
            continue
        thick = cv2.dilate(image, kernel, iterations=int(n)) if n else image
        out.append(cv2.morphologyEx(thick, cv2.MORPH_GRADIENT, kernel))
    return np.stack(out)


def edge_band(
    images: np.ndarray,
    rng: np.random.Generator,
    width: tuple[float, float] = (2, 8),
    bright: tuple[float, float] = (120, 255),
    paper: tuple[float, float] = (40, 90),
) -> np.ndarray:
    """Bands `width` pixels wide with a soft inner edge, at one edge (top, bottom, left or
    right) or, for half the images, at two opposite edges (a digit cropped from a column or a
    cell between two margins). Half the images get bright bands of `bright` grey levels (the
    page's edge, a table or a finger's shadow in the crop, light after inversion); the other
    half dark bands over paper raised to `paper` (glare or a light border, which after
    inversion wipes the ink)."""
    x = as_float(images)
    rows, cols = coordinates()
    depth = (np.stack([rows, -rows, cols, -cols]) + 1) * (SIZE / 2)  # distance from each edge
    first = rng.integers(0, 4, len(x))
    opposite = np.where(rng.random(len(x)) < 0.5, first ^ 1, first)  # 0-1 and 2-3 face
    side = np.minimum(depth[first], depth[opposite])
    band = np.clip(per_image(rng, *width, len(x)) - side + 0.5, 0, 1)
    is_bright = (rng.random(len(x)) < 0.5)[:, None, None]
    lit = np.maximum(x, band * per_image(rng, *bright, len(x)))
    raised = per_image(rng, *paper, len(x))
    wiped = (raised + x * (WHITE - raised) / WHITE) * (1 - band)
    return as_uint8(np.where(is_bright, lit, wiped))


def pixel_jitter(
    images: np.ndarray, rng: np.random.Generator, reach: tuple[int, int] = (1, 2)
) -> np.ndarray:
    """Each pixel replaced by one up to `reach` pixels away in each direction (uniform;
    inclusive range per image): frosted or rippled glass, a shaky line scanner, a texture
    filter. Ink is moved, not added: the stroke frays into its neighbourhood."""
    count = len(images)
    reaches = rng.integers(reach[0], reach[1] + 1, count)[:, None, None]
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    offsets = rng.uniform(-1, 1, (2, count, SIZE, SIZE)) * reaches
    source_rows = np.clip(np.rint(rows + offsets[0]), 0, SIZE - 1).astype(np.intp)
    source_cols = np.clip(np.rint(cols + offsets[1]), 0, SIZE - 1).astype(np.intp)
    return np.asarray(images)[np.arange(count)[:, None, None], source_rows, source_cols]


def elastic_deformation(
    images: np.ndarray, rng: np.random.Generator, alpha: float = 34.0, sigma: float = 4.0
) -> np.ndarray:
    """Elastic deformation (Simard, Steinkraus and Platt 2003, their MNIST values): a random
    displacement field, uniform on [-1, 1] per pixel, smoothed by a Gaussian of `sigma` pixels
    and scaled by `alpha`, resamples each image bilinearly (cv2.remap): the wobble of a
    hand's strokes."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    out = []
    for image in images:
        field = rng.uniform(-1, 1, (2, SIZE, SIZE)).astype(np.float32)
        dy, dx = (cv2.GaussianBlur(f, (0, 0), sigma) * alpha for f in field)
        out.append(
            cv2.remap(image, cols + dx, rows + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        )
    return np.stack(out)


DEGRADATIONS: dict[str, Degradation] = {
    "gaussian_noise": gaussian_noise,
    "salt_and_pepper": salt_and_pepper,
    "defocus_blur": defocus_blur,
    "motion_blur": motion_blur,
    "low_contrast": low_contrast,
    "tinted_paper": tinted_paper,
    "illumination_gradient": illumination_gradient,
    "stains": stains,
    "crossing_lines": crossing_lines,
    "hollow_strokes": hollow_strokes,
    "edge_band": edge_band,
    "pixel_jitter": pixel_jitter,
    "elastic_deformation": elastic_deformation,
}


def degrade(images: np.ndarray, name: str, seed: int = 0) -> np.ndarray:
    """Apply the degradation `name` (a key of DEGRADATIONS) to uint8 images (N, 28, 28) with
    its default parameter ranges and a Generator seeded with `seed`; returns uint8 (N, 28, 28)."""
    if name not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {name!r}: one of {', '.join(DEGRADATIONS)}")
    return DEGRADATIONS[name](np.asarray(images, np.uint8), np.random.default_rng(seed))


def degrade_batch(
    images: np.ndarray, rng: np.random.Generator, fraction: float, names: tuple[str, ...] = ()
) -> np.ndarray:
    """Training augmentation: each image, with probability `fraction`, through one of the
    degradations `names` (default: all of DEGRADATIONS), chosen uniformly at random, with its
    default parameter ranges. uint8 (N, 28, 28) in and out; the input is not changed."""
    names = names or tuple(DEGRADATIONS)
    out = np.array(images, dtype=np.uint8, copy=True)
    chosen = rng.random(len(out)) < fraction
    kinds = rng.integers(0, len(names), len(out))
    for kind, name in enumerate(names):
        rows = np.flatnonzero(chosen & (kinds == kind))
        if len(rows):
            out[rows] = DEGRADATIONS[name](out[rows], rng)
    return out
