"""A person's digit image -> an MNIST-style 28x28 uint8 digit (light ink on black, centred)."""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from mnist_cnn.data import IMAGE_SIZE
from mnist_cnn.errors import NoDigitFoundError, UnreadableImageError

# Decompression-bomb cap: a few phone photos' worth, far beyond any digit anyone draws.
MAX_PIXELS = 40_000_000
# Pillow's own guard fires inside decoders too (GIF frames, TIFF tiles): give it the same cap.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
DECODE_SIZE = 1024  # big JPEGs are decoded down to about this size (never below it)

# Two touching digits read whole (pair.py) are laid out alike at twice the width: their ink
# scaled to fit PAIR_BOX (rows, columns; aspect kept), centred by mass in PAIR_SHAPE.
PAIR_SHAPE = (28, 56)
PAIR_BOX = (20, 48)
DIGIT_BOX = 20  # MNIST scales each digit's longer side to 20 px inside the 28x28 field
# Ink that differs from the background by less than this (of full scale) is no ink at all.
MIN_CONTRAST = 0.1
# Normalised ink at or below this is treated as background noise (JPEG halos, paper grain).
NOISE_FLOOR = 0.1
# Pen width as a fraction of the digit's longer side: MNIST's median is 0.10 and 99% of its
# digits are above 0.05; thinner strokes (a 1-px pencil, a fine pen) get widened to the median.
THIN_STROKE = 0.05
TYPICAL_STROKE = 0.10
WORK_BOX = 80  # thin digits are widened at this size: detailed, yet cheap to filter
CLOSING_PIXELS = 2  # gaps this wide (in MNIST pixels) inside a stroke do not make it thin
PEN_TRACE = 0.25  # at WORK_BOX, a thin line's faint trace above this share of the peak is pen
# A border spread above this share of the ink's contrast is uneven lighting, not grain: the
# background is then estimated on a LIGHTING_GRID-pixel copy, opened with LIGHTING_FILTER.
UNEVEN_LIGHT = 0.3
LIGHTING_GRID = 32
LIGHTING_FILTER = 7
DENOISE_MIN_SIDE = 3 * IMAGE_SIZE  # pictures this large have pen strokes many pixels wide
# A picture under this on a side is a digit's crop, never a photo of a sheet or a page.
CROP_SIDE = 2 * IMAGE_SIZE
NOISE_SIGMAS = 3.0  # background pixels rarely stray further than this from the median
MAD_TO_SIGMA = 1.4826  # median absolute deviation -> standard deviation, for Gaussian noise
SIXTEEN_BIT_MAX = 65535
ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
OPAQUE = 255  # an 8-bit alpha that hides what is behind the pixel
# Image.info key: original pixels per decoded pixel (above 1 when a big JPEG was decoded small).
DECODE_SCALE = "mnist_cnn.decode_scale"
# A border whose 10th and 90th percentiles lie this far apart (of the 0-1 range) is not
# paper alone: a band or margin of another colour covers a side of it, and the paper is
# what the picture's middle shows. Shadows and strokes touching the edge differ less or
# cover less.
BORDER_SPLIT = 0.5
BORDER_SPLIT_PERCENTILES = (10, 90)
# ... along runs: the running median over the border spans 1/SPLIT_RUN of the shorter side,
# so a stroke crossing the edge or specks on it (runs under half of that) do not count.
SPLIT_RUN = 4
# A column (or row) whose median lies this far from the paper's level belongs to a margin when
# it runs unbroken from the picture's side: a band's blurred inner edge still counts.
MARGIN_LEVEL = 0.1
MIN_MIDDLE = 1 / 3  # margins leave at least this share of the picture between them
# A margin is levelled only when its inner edge runs straight down the picture: in at least
# STRAIGHT_ROWS of the rows it ends within MARGIN_TILT_PIXELS of its median column. A sheet
# lying askew on a table has an edge no column follows, and columns levelled across it leave
# wedges of table and paper behind, which read as strokes.
STRAIGHT_ROWS = 0.4
MARGIN_TILT_PIXELS = 1
# A photo of a sheet lying on a darker table, the sheet's edges in the picture (Otsu 1979's
# threshold parts the two; the sheet is the largest bright region): the table and the sheet's
# edge are made paper, as a document scanner crops to the sheet. It is a sheet when its
# convex hull covers SHEET_SHARE of the picture, is SHEET_SOLID filled by it (a letter's or a
# stroke's hull is mostly empty) and is SHEET_PAPER bright paper (an outline filled in is
# mostly what lies inside it), and the table lies SHEET_CONTRAST below the sheet's paper
# with nothing on it SHEET_CONTRAST darker or lighter (writing in a shadow, or light writing
# on a dark picture beside a lighter band, is not a table), and its edge is a step, not a
# shadow's fading edge (`soft_edge`). The
# hull is shrunk by SHEET_EDGE of the picture's longer side: the edge's shade and its glare.
SHEET_MIN_SIDE = CROP_SIDE
SHEET_SHARE = (0.2, 0.99)
SHEET_SOLID = 0.9
SHEET_PAPER = 0.8
SHEET_BAND = 0.03
SHEET_SOFT = 0.12
SHEET_CONTRAST = 0.2
SHEET_INK_PERCENTILE = 0.5
SHEET_EDGE = 0.02
SHEET_SIDE = 96
SHEET_LIGHT = 0.05
SHEET_WEIGHT = 1e-3  # beyond the Gaussian's reach of the sheet: its median paper instead
# A picture at most this far from square may frame one digit filling it, as MNIST's 28x28
# frames do (3:2 is a phone photo's frame); a wider one holds a number or a line of writing.
FRAME_ASPECT = 1.5
SPAN_TAIL = 0.02  # ink_span leaves out this share of the ink's mass at either end
BLANK_ROW = 0.02  # a frame's row holding under this share of its fullest row's ink is blank


def describe(source: Path | bytes, name: str | None) -> str:
    """The name used in messages: `name`, else the path, else a generic word for bytes."""
    if name is not None:
        return name
    return "image" if isinstance(source, bytes) else str(source)


def check_file(path: Path, name: str) -> None:
    """Raise a one-line UnreadableImageError unless `path` is a non-empty regular file."""
    if not path.exists():
        raise UnreadableImageError(f"{name}: file not found")
    if path.is_dir():
        raise UnreadableImageError(f"{name}: is a directory, not an image")
    if path.stat().st_size == 0:
        raise UnreadableImageError(f"{name}: empty file")


def read_source(source: Path | bytes, name: str) -> bytes:
    """The raw bytes of a path or of bytes already in memory, refusing empty input."""
    if isinstance(source, Path):
        check_file(source, name)
        try:
            source = source.read_bytes()
        except OSError as error:
            raise UnreadableImageError(f"{name}: cannot read: {error.strerror or error}") from None
    if not source:
        raise UnreadableImageError(f"{name}: empty file")
    return source


def check_pixels(image: Image.Image, name: str) -> None:
    """Refuse images above MAX_PIXELS before their pixels are decoded."""
    if image.width * image.height > MAX_PIXELS:
        raise UnreadableImageError(
            f"{name}: too many pixels ({image.width}x{image.height}, the limit is {MAX_PIXELS:,})"
        )


def decode(raw: bytes, name: str) -> Image.Image:
    """Decode the first frame fully (so truncation shows now), upright per its EXIF tag."""
    with warnings.catch_warnings():
        # Pillow only warns between its cap and twice that; a bomb must be refused, not warned.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(raw)) as image:
                check_pixels(image, name)
                full_width = image.width
                # JPEG only: decode a big photo at 1/2, 1/4 or 1/8 scale, still far above 20 px.
                image.draft(None, (DECODE_SIZE, DECODE_SIZE))
                image.load()
                scale = full_width / image.width  # draft scales both sides alike
                upright = ImageOps.exif_transpose(image)  # a copy: safe after the file closes
                upright.info[DECODE_SCALE] = scale
                return upright
        except UnidentifiedImageError:
            raise UnreadableImageError(
                f"{name}: not an image (or a format Pillow cannot read)"
            ) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UnreadableImageError(
                f"{name}: too many pixels (the limit is {MAX_PIXELS:,})"
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            # Pillow reports damaged data with any of these, depending on the format.
            raise UnreadableImageError(f"{name}: truncated or corrupt image ({error})") from None


def open_image(source: Path | bytes, name: str | None = None) -> Image.Image:
    """Decode an image file or its bytes, raising a one-line UnreadableImageError naming `name`."""
    name = describe(source, name)
    if isinstance(source, str):
        source = Path(source)
    return decode(read_source(source, name), name)


def has_transparency(image: Image.Image) -> bool:
    """Whether the image has an alpha channel or a transparent palette/colour entry."""
    return image.mode in ALPHA_MODES or "transparency" in image.info


def light_ink(rgba: Image.Image) -> bool:
    """Whether a layer's visible pixels, weighted by opacity, are mostly light."""
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32)
    luminance = np.asarray(rgba.convert("L"), dtype=np.float32)
    return bool((luminance * alpha).sum() > 127.5 * alpha.sum())


def flatten(image: Image.Image) -> Image.Image:
    """Composite a transparent image onto white paper, or onto black if its ink is light."""
    rgba = image.convert("RGBA")
    if rgba.getchannel("A").getextrema() == (OPAQUE, OPAQUE):
        return rgba.convert("RGB")  # nothing shows through: the paper's colour cannot matter
    # Only a real alpha channel keeps strokes' edges in the alpha; a transparent palette
    # entry usually keys out a white background, leaving light anti-aliasing in the colours.
    dark_paper = image.mode in ALPHA_MODES and light_ink(rgba)
    paper = Image.new("RGBA", rgba.size, "black" if dark_paper else "white")
    return Image.alpha_composite(paper, rgba).convert("RGB")


def to_grayscale(image: Image.Image) -> np.ndarray:
    """Luminance as float32 (H, W) in [0, 1], transparent areas shown as paper."""
    if image.mode.startswith("I"):
        # 16-bit greyscale: scale from its own range, where convert("L") would clip at 255.
        pixels = np.asarray(image, dtype=np.float32) / SIXTEEN_BIT_MAX
        return np.clip(pixels, 0.0, 1.0)
    if has_transparency(image):
        image = flatten(image)
    # Divided into float32 straight from the bytes: one new array, not a float copy and another.
    return np.divide(np.asarray(image.convert("L")), np.float32(255.0), dtype=np.float32)


def border(pixels: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels, where a photo or drawing shows its background."""
    return np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])


def scaled_size(shape: tuple[int, ...], scale: float) -> tuple[int, int]:
    """The (width, height) that Pillow and OpenCV take for an array of `shape` (H, W, ...)
    scaled by `scale`, each side at least one pixel."""
    return max(1, round(shape[1] * scale)), max(1, round(shape[0] * scale))


def rescale(pixels: np.ndarray, longer: int, resample: Image.Resampling) -> np.ndarray:
    """Float pixels resized so the longer side is `longer`, keeping the aspect ratio."""
    size = scaled_size(pixels.shape, longer / max(pixels.shape))
    return np.asarray(Image.fromarray(pixels).resize(size, resample))


def long_runs(edge: np.ndarray, window: int) -> np.ndarray:
    """The border's pixels float (L,) with every run shorter than about half `window` (odd)
    taken out: a running median, wrapping round the ring."""
    half = window // 2
    ring = np.concatenate([edge[-half:], edge, edge[:half]])
    windows = np.lib.stride_tricks.sliding_window_view(ring, window)
    # An odd window's median is its middle value: a partial sort finds it without sorting.
    return np.partition(windows, half, axis=1)[:, half]


def middle_half(length: int) -> slice:
    """The middle half of `length` pixels (a quarter left out at either end)."""
    return slice(length // 4, length - length // 4)


def split_window(shape: tuple[int, ...]) -> int:
    """The running median's window over the border of an array of `shape` (H, W): an odd
    number of pixels, about 1/SPLIT_RUN of the shorter side."""
    return 2 * max(1, min(shape[:2]) // (2 * SPLIT_RUN)) + 1


def split_border(gray: np.ndarray) -> bool:
    """Whether the border of grey float (H, W) is split between two levels (BORDER_SPLIT
    apart) along long stretches, as when bands or margins of another colour run along its
    sides. Strokes crossing the edge and specks on it make short runs, which do not count."""
    edge = border(gray)
    # Running medians lie within the border's own range: when that is narrow, none can split.
    if float(edge.max()) - float(edge.min()) <= BORDER_SPLIT:
        return False
    low, high = np.percentile(long_runs(edge, split_window(gray.shape)), BORDER_SPLIT_PERCENTILES)
    return bool(high - low > BORDER_SPLIT)


def margin_widths(medians: np.ndarray, paper: float) -> tuple[int, int]:
    """How many of the columns (rows) with `medians` float (N,), from the start and from the
    end, lie unbroken MARGIN_LEVEL or more away from the `paper` level."""
    far = np.abs(medians - paper) >= MARGIN_LEVEL
    if far.all():
        return len(far), 0
    return int(np.argmin(far)), int(np.argmin(far[::-1]))


def straight_edges(gray: np.ndarray, paper: float, levels: tuple[float, float]) -> bool:
    """Whether the left and right margins (at grey `levels`) of grey float (H, W) end straight
    down the picture: in STRAIGHT_ROWS of the rows or more, the first pixel nearer the `paper`
    than the margin lies within MARGIN_TILT_PIXELS of that pixel's median column. Strokes
    crossing the edge move it in some rows only."""
    for level, flip in zip(levels, (False, True), strict=True):
        nearer = np.abs(gray - paper) < np.abs(gray - level)
        ends = np.argmax(nearer[:, ::-1] if flip else nearer, axis=1)
        if np.mean(np.abs(ends - np.median(ends)) <= MARGIN_TILT_PIXELS) < STRAIGHT_ROWS:
            return False
    return True


def inverted(gray: np.ndarray, medians: np.ndarray, paper: float, left: int, right: int) -> bool:
    """Whether the margins (the first `left` and last `right` columns of grey float (H, W),
    with column `medians`) hold more ink turned toward the `paper` than beyond their own
    level: strokes in a strip of inverted colour, not in a shadow (segment.py's local
    background reads those) nor on a bare table. Ink departs MARGIN_LEVEL or more."""
    columns = np.r_[0:left, len(medians) - right : len(medians)]
    # The core of each margin, not its blurred inner edge, where the paper's strokes show.
    edge = np.where(columns < left, medians[0], medians[-1])
    columns = columns[np.abs(medians[columns] - edge) < MARGIN_LEVEL]
    side = np.sign(medians[columns] - paper)
    beyond = side * (gray[:, columns] - medians[columns])
    return int((beyond <= -MARGIN_LEVEL).sum()) >= int((beyond >= MARGIN_LEVEL).sum())


def may_level(gray: np.ndarray, medians: np.ndarray, paper: float, left: int, right: int) -> bool:
    """Whether the margins (the first `left` and last `right` columns of grey float (H, W),
    with column `medians`) are to be levelled: they leave MIN_MIDDLE of the width between
    them, their inner edges are straight (`straight_edges`), they lie on the ink's side of the
    paper (a margin lighter than the paper around dark ink is the paper in full light, the
    middle in shadow), and their ink, if any, is turned toward the paper (`inverted`: a shadow's
    ink lies beyond its level, and segment.py's local background reads it better)."""
    width = len(medians)
    if left + right == 0 or left + right > (1.0 - MIN_MIDDLE) * width:
        return False
    if not straight_edges(gray, paper, (float(medians[0]), float(medians[-1]))):
        return False
    # The ink's colour is judged between the margins: a lit margin reaching into the middle
    # half would pass for light ink on a shadowed middle.
    middle = gray[:, left : width - right]
    if float(middle.max() - middle.min()) >= MIN_CONTRAST:
        ink_side = -1.0 if dark_ink(middle, paper) else 1.0
        edges = [float(medians[0])] * bool(left) + [float(medians[-1])] * bool(right)
        if any(np.sign(edge - paper) != ink_side for edge in edges):
            return False
    return inverted(gray, medians, paper, left, right)


def level_side_margins(gray: np.ndarray) -> np.ndarray:
    """Grey float (H, W) with the margins along its left and right sides brought to the
    paper's level (the median of the middle half's column medians). Each margin column becomes
    the paper's level plus the column's departure from its own median, turned to the side of
    the paper the margin lies on, which is the ink's: a dark table beside a white sheet turns
    white, and a strip whose colours are inverted shows its strokes as the rest does. Margins
    that `may_level` refuses are left as they are."""
    medians = np.median(gray, axis=0)
    width = len(medians)
    paper = float(np.median(medians[middle_half(width)]))
    left, right = margin_widths(medians, paper)
    if not may_level(gray, medians, paper, left, right):
        return gray
    levelled = gray.copy()
    for margin in (slice(0, left), slice(width - right, width)):
        level = medians[margin]
        departure = np.abs(gray[:, margin] - level)
        levelled[:, margin] = paper + np.sign(level - paper) * departure
    return np.clip(levelled, 0.0, 1.0)


def margins_levelled(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """Grey float (H, W), whose border is split (`split_border`), with bands of another level
    along its sides brought to the paper's level (`level_side_margins`, on columns and then,
    if the border is still split, on rows); and whether its border is split still."""
    gray = level_side_margins(gray)
    if not split_border(gray):
        return gray, False
    gray = level_side_margins(gray.T).T
    return gray, split_border(gray)


def level_margins(gray: np.ndarray) -> np.ndarray:
    """Grey float (H, W) with bands of another level along its sides brought to the paper's
    level (`margins_levelled`). A picture whose border is not split (`split_border`) is
    returned as it is."""
    return margins_levelled(gray)[0] if split_border(gray) else gray


def paper_of(gray: np.ndarray, split: bool) -> float:
    """The paper's grey level in grey float (H, W) whose border is `split` or not: the
    border's median, or the median of the picture's middle half when it is split."""
    if not split:
        return float(np.median(border(gray)))
    height, width = gray.shape
    return float(np.median(gray[middle_half(height), middle_half(width)]))


def paper_level(gray: np.ndarray) -> float:
    """The paper's grey level in grey float (H, W) (`paper_of`, its border's split tested)."""
    return paper_of(gray, split_border(gray))


def dark_ink(gray: np.ndarray, paper: float) -> bool:
    """Whether the ink in grey float (H, W) is darker than its `paper` level: the darkest
    pixel lies further below the paper than the brightest lies above it."""
    return paper - gray.min() > gray.max() - paper


def largest_region(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The largest region of uint8 mask (H, W) with its holes filled, uint8 (H, W) of 0 and 1,
    and its convex hull, the same; None where the mask is empty."""
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    outline = max(contours, key=cv2.contourArea)
    filled, hull = np.zeros_like(mask), np.zeros_like(mask)
    cv2.drawContours(filled, [outline], -1, 1, cv2.FILLED)
    cv2.fillConvexPoly(hull, cv2.convexHull(outline), 1)
    return filled, hull


def square_kernel(share: float, shape: tuple[int, ...]) -> np.ndarray:
    """A square uint8 structuring element an odd number of pixels wide: about `share` of the
    longer side of an array of `shape` each side of its middle."""
    width = 2 * round(share * max(shape)) + 1
    return np.ones((width, width), np.uint8)


def soft_edge(gray: np.ndarray, hull: np.ndarray, table: float, paper: float) -> bool:
    """Whether the edge of a bright region, uint8 `hull` (H, W) of 0 and 1 on grey float
    (H, W), fades like a shadow's: over SHEET_SOFT of a band SHEET_BAND of the longer side
    either side of it lies between the `table` and `paper` levels (a quarter of the way in
    from each). A sheet's edge is a step a pixel or two wide."""
    kernel = square_kernel(SHEET_BAND, gray.shape)
    band = (cv2.dilate(hull, kernel) > 0) & (cv2.erode(hull, kernel) == 0)
    quarter = (paper - table) / 4
    between = (gray > table + quarter) & (gray < paper - quarter)
    return bool(band.any()) and float(between[band].mean()) > SHEET_SOFT


def edge_may_be_darker(gray: np.ndarray, contrast: float, longer: int) -> bool:
    """Whether the edge of grey float (H, W) resized to `longer` pixels on its longer side
    (Pillow's bilinear) can lie `contrast` or more below its brightest pixel: a resized edge
    pixel mixes only the pixels of a band about 1.5 of its own widths deep (the filter's reach,
    taken here as 2), so a band that bright everywhere settles it without resizing."""
    width, height = scaled_size(gray.shape, longer / max(gray.shape))
    rows = 2 * math.ceil(gray.shape[0] / height) + 1
    columns = 2 * math.ceil(gray.shape[1] / width) + 1
    sides = (gray[:rows], gray[-rows:], gray[:, :columns], gray[:, -columns:])
    band = min(float(side.min()) for side in sides)
    return float(gray.max() - band) >= contrast


def sheet_on_table(gray: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Where grey float (H, W) is a photo of a sheet on a darker table (see SHEET_SHARE): the
    sheet's inside, bool (H, W), shrunk by SHEET_EDGE, and its paper's grey level; else None."""
    if min(gray.shape) < SHEET_MIN_SIDE:
        return None
    if not edge_may_be_darker(gray, SHEET_CONTRAST, SHEET_SIDE):
        return None
    # Cheap first, on a copy SHEET_SIDE pixels on its longer side: a table shows at the edge.
    # (Bilinear: its weights are not negative, which edge_may_be_darker's bound relies on.)
    small = rescale(gray, SHEET_SIDE, Image.Resampling.BILINEAR)
    if np.percentile(small, 95) - np.percentile(border(small), 5) < SHEET_CONTRAST:
        return None
    pixels = np.clip(gray * 255, 0, 255).astype(np.uint8)
    _, bright = cv2.threshold(pixels, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    found = largest_region(bright)
    if found is None:
        return None
    sheet, hull = found
    share, area = hull.mean(), sheet.sum()
    if not SHEET_SHARE[0] <= share <= SHEET_SHARE[1] or area < SHEET_SOLID * hull.sum():
        return None
    lit = (sheet & bright) > 0
    if lit.sum() < SHEET_PAPER * area:
        return None  # an outline (a frame, a ring) filled in: mostly what lies inside it
    paper = float(np.median(gray[lit]))
    table = gray[hull == 0]
    level = float(np.median(table))
    spread = np.percentile(table, [SHEET_INK_PERCENTILE, 100 - SHEET_INK_PERCENTILE]) - level
    if paper - level < SHEET_CONTRAST or np.abs(spread).max() > SHEET_CONTRAST:
        return None
    if soft_edge(gray, hull, level, paper):
        return None
    # Shrunk along the picture's edge too: where a corner of the sheet runs off the picture the
    # hull's outline cuts across the table and the sheet's shaded edge, which would stay in
    # as a stroke; the band is paper either way.
    kernel = square_kernel(SHEET_EDGE, gray.shape)
    inside = cv2.erode(hull, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return (inside > 0, paper) if inside.any() else None


def off_the_table(gray: np.ndarray) -> np.ndarray:
    """Grey float (H, W) with the table and the sheet's edge made paper where it is a photo
    of a sheet on a table (`sheet_on_table`); otherwise the same array. The paper put there
    is the sheet's own nearby (a Gaussian-weighted mean of its pixels, SHEET_LIGHT of the
    longer side wide), so light falling off across the sheet leaves no step at its edge."""
    found = sheet_on_table(gray)
    if found is None:
        return gray
    inside, paper = found
    # The light changes slowly: it is worked out on a copy SHEET_SIDE on its longer side.
    size = scaled_size(gray.shape, SHEET_SIDE / max(gray.shape))
    weight, near = (
        cv2.GaussianBlur(
            cv2.resize(layer.astype(np.float32), size, interpolation=cv2.INTER_AREA),
            (0, 0),
            SHEET_LIGHT * SHEET_SIDE,
        )
        for layer in (inside, np.where(inside, gray, 0))
    )
    fill = np.where(weight > SHEET_WEIGHT, near / np.maximum(weight, SHEET_WEIGHT), paper)
    fill = cv2.resize(fill.astype(np.float32), gray.shape[::-1], interpolation=cv2.INTER_LINEAR)
    return np.where(inside, gray, fill).astype(gray.dtype)


def levelled(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """Grey float (H, W) with its margins levelled (`level_margins`), and its paper's level
    (`paper_level`), testing the border's split once for each picture it is tested on."""
    split = split_border(gray)
    if split:
        gray, split = margins_levelled(gray)
    return gray, paper_of(gray, split)


def ink_up(gray: np.ndarray, paper: float | None = None) -> np.ndarray:
    """Turn the image so ink is bright and background dark, as in MNIST; `paper` is the
    paper's level (default: `paper_level`)."""
    paper = paper_level(gray) if paper is None else paper
    return 1.0 - gray if dark_ink(gray, paper) else gray


def noise_level(edge: np.ndarray, background: float) -> float:
    """How much the background itself varies: a robust spread (MAD) of the border pixels."""
    # MAD rather than a percentile: a stroke touching the edge must not count as noise.
    return NOISE_SIGMAS * MAD_TO_SIGMA * float(np.median(np.abs(edge - background)))


def noise_levels(sides: np.ndarray) -> np.ndarray:
    """`noise_level` of each row of grey float (N, L) about that row's own median: float64 (N,)."""
    centre = np.median(sides, axis=1, keepdims=True)
    spread = np.median(np.abs(sides - centre), axis=1).astype(np.float64)
    return NOISE_SIGMAS * MAD_TO_SIGMA * spread


def sensor_noise(gray: np.ndarray) -> float:
    """How much the paper itself varies, grey float (H, W) -> a spread in its grey units:
    `noise_level` of each side of the border about that side's own median, the second
    smallest of the four. A ruled or squared line lying along a side, or light changing
    across the picture (which changes two sides along their length), is not noise; up to two
    sides may hold either. In a digit's crop (under CROP_SIDE) a side is too short to tell
    those from haze or stains a stroke wide, which are the paper's: there it is the whole
    border's `noise_level`."""
    if min(gray.shape) < CROP_SIDE:
        edge = border(gray)
        return noise_level(edge, float(np.median(edge)))
    # The top and bottom rows as one array, the left and right columns as another: a median
    # along an axis costs about what one side's alone does.
    levels = [noise_levels(sides) for sides in (gray[[0, -1]], gray[:, [0, -1]].T)]
    return float(np.sort(np.concatenate(levels))[1])


def denoise(gray: np.ndarray) -> np.ndarray:
    """Average away single-pixel sensor and JPEG noise in a large picture; leave small ones be."""
    if min(gray.shape) < DENOISE_MIN_SIDE:
        return gray  # at MNIST's scale a lone pixel can be the tip of a stroke
    # A 3x3 mean with the edge pixels repeated outside (Pillow's blurs refuse float images).
    return cv2.blur(gray, (3, 3), borderType=cv2.BORDER_REPLICATE)


def uneven(gray: np.ndarray) -> bool:
    """Whether the border varies a lot next to the ink's contrast: light falling across paper."""
    edge = border(gray)
    background = float(np.median(edge))
    return noise_level(edge, background) > UNEVEN_LIGHT * (float(gray.max()) - background)


def even_out(gray: np.ndarray) -> np.ndarray:
    """Subtract a smooth estimate of the background from ink-up pixels (uneven light on paper)."""
    small = Image.fromarray(rescale(gray, LIGHTING_GRID, Image.Resampling.BOX))
    # An opening wider than any pen stroke wipes out the ink and keeps the light's slope.
    opened = small.filter(ImageFilter.MinFilter(LIGHTING_FILTER)).filter(
        ImageFilter.MaxFilter(LIGHTING_FILTER)
    )
    height, width = gray.shape
    background = np.asarray(opened.resize((width, height), Image.Resampling.BILINEAR))
    return np.clip(gray - background, 0.0, 1.0)


def above_floor(ink: np.ndarray, floor: float, name: str) -> np.ndarray:
    """Ink float (H, W) with everything at or below `floor` made exactly 0, as float32.
    Raises NoDigitFoundError, naming `name`, when no ink is left."""
    ink = np.where(ink > floor, ink, 0.0).astype(np.float32, copy=False)
    if not ink.any():
        raise NoDigitFoundError(f"{name}: no digit found")
    return ink


def ink_strength(gray: np.ndarray, name: str) -> np.ndarray:
    """Ink in [0, 1] above the background; background and its noise become exactly 0."""
    edge = border(gray)
    background = float(np.median(edge))
    contrast = float(gray.max()) - background
    if contrast < MIN_CONTRAST:
        raise NoDigitFoundError(f"{name}: no digit found")
    ink = np.clip((gray - background) / contrast, 0.0, 1.0)
    return above_floor(ink, max(NOISE_FLOOR, sensor_noise(gray) / contrast), name)


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """The smallest rectangle holding every ink pixel."""
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def fit_box(ink: np.ndarray, box: int = DIGIT_BOX) -> np.ndarray:
    """Scale so the longer side is `box` pixels, keeping the aspect ratio, anti-aliased."""
    if max(ink.shape) == box:
        return ink  # already MNIST-sized: resampling would only blur it
    # Lanczos rings slightly below 0 and above 1 next to sharp edges.
    return np.clip(rescale(ink, box, Image.Resampling.LANCZOS), 0.0, 1.0)


def stroke_width(ink: np.ndarray) -> float:
    """Mean pen width in pixels: twice the ink area over its outline length (a ribbon's width)."""
    mask = np.pad(ink > 0.5, 1)
    outline = np.count_nonzero(mask[1:] != mask[:-1]) + np.count_nonzero(
        mask[:, 1:] != mask[:, :-1]
    )
    return 2.0 * np.count_nonzero(mask) / max(outline, 1)


def closed_stroke_width(ink: np.ndarray) -> float:
    """`stroke_width` of float ink (H, W) after a morphological closing over a square of
    CLOSING_PIXELS MNIST pixels (at the digit's 20-pixel box): ink broken into specks by
    noise, jitter or an outline counts as the stroke it draws, not as many thin ones."""
    side = max(1, round(CLOSING_PIXELS * max(ink.shape) / DIGIT_BOX))
    mask = (ink > 0.5).astype(np.uint8)
    # OpenCV's rectangular closing costs about the same at any size (Pillow's grows with it).
    closed = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((side, side), np.uint8))
    return stroke_width(closed.astype(np.float32))


def thicken(ink: np.ndarray) -> np.ndarray:
    """Redraw a thin-penned digit (tightly cropped) with MNIST's typical pen width."""
    ratio = closed_stroke_width(ink) / max(ink.shape)
    if ratio >= THIN_STROKE:
        return ink
    patch = fit_box(ink, WORK_BOX)
    # Where the pen went: a fine line shrunk below a pixel is faint, yet it is full ink.
    pen = (patch > PEN_TRACE * patch.max()).astype(np.float32)
    grow = round((TYPICAL_STROKE - ratio) * WORK_BOX) // 2  # pixels added on each side
    widened = Image.fromarray(np.pad(pen, grow)).filter(ImageFilter.MaxFilter(2 * grow + 1))
    return np.asarray(widened)


def centre_of_mass(ink: np.ndarray) -> tuple[float, float]:
    """The intensity-weighted mean (row, column) of the ink, in pixel indices."""
    rows, cols = np.indices(ink.shape)
    total = ink.sum()
    return float((rows * ink).sum() / total), float((cols * ink).sum() / total)


def paste_centred(
    patch: np.ndarray, shape: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE)
) -> np.ndarray:
    """Place `patch` in a float32 field of `shape` (rows, columns) so its centre of mass lands
    on the field's centre: pixel index (14, 14) in MNIST's 28x28, as MNIST puts it."""
    row, col = centre_of_mass(patch)
    height, width = patch.shape
    # Whole-pixel shifts keep strokes sharp; clamping keeps a lopsided digit inside the field.
    top = int(np.clip(round(shape[0] / 2 - row), 0, shape[0] - height))
    left = int(np.clip(round(shape[1] / 2 - col), 0, shape[1] - width))
    field = np.zeros(shape, dtype=np.float32)
    field[top : top + height, left : left + width] = patch
    return field


def to_uint8(ink: np.ndarray) -> np.ndarray:
    """Float ink in [0, 1] -> uint8 in [0, 255], rounded."""
    return np.round(ink * 255.0).astype(np.uint8)


def normalise(ink: np.ndarray) -> np.ndarray:
    """One digit's ink, float (H, W) in [0, 1] with some ink -> MNIST's uint8 (28, 28) layout."""
    return to_uint8(paste_centred(fit_box(thicken(crop_to_ink(ink)))))


def normalise_pair(ink: np.ndarray) -> np.ndarray:
    """A wide piece's ink, float (H, W) in [0, 1] with some ink -> uint8 PAIR_SHAPE: cropped
    to its ink, scaled to fit PAIR_BOX keeping its aspect, centred by mass."""
    crop = crop_to_ink(np.asarray(ink, np.float32))
    height, width = crop.shape
    scale = min(PAIR_BOX[0] / height, PAIR_BOX[1] / width)
    size = scaled_size(crop.shape, scale)
    resample = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    patch = np.clip(cv2.resize(crop, size, interpolation=resample), 0.0, 1.0)
    return to_uint8(paste_centred(patch, PAIR_SHAPE))


def to_mnist(image: Image.Image, name: str = "image") -> np.ndarray:
    """An MNIST-style digit, uint8 (28, 28): light ink on black, 20 px box, centred by mass."""
    gray = ink_up(*levelled(denoise(to_grayscale(image))))
    return normalise(ink_strength(even_out(gray) if uneven(gray) else gray, name))


def frames_one_digit(size: tuple[int, int]) -> bool:
    """Whether a picture of `size` (width, height) is close enough to square (FRAME_ASPECT)
    to be read whole as one digit filling it (framed_digit)."""
    return max(size) <= FRAME_ASPECT * max(1, min(size))


def framed_digit(image: Image.Image) -> np.ndarray:
    """The whole picture as one digit filling MNIST's frame, uint8 (28, 28), light ink on
    black: ink made light (ink_up), padded square with the paper's level, area-resized.

    Nothing is cropped, scaled to the 20-pixel box or centred: the digit is given to the model
    as a benchmark gives a 28x28 digit. For a picture whose crop read no digit or a doubtful
    one, such as a digit crossed by a line or spattered with specks, which its crop takes in.
    """
    gray, paper = levelled(to_grayscale(image))
    if dark_ink(gray, paper):
        gray, paper = 1.0 - gray, 1.0 - paper
    height, width = gray.shape
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    square = cv2.copyMakeBorder(
        gray,
        top,
        side - height - top,
        left,
        side - width - left,
        cv2.BORDER_CONSTANT,
        value=paper,
    )
    small = cv2.resize(square, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return to_uint8(np.clip(small, 0.0, 1.0))


def frame_ink(frame: np.ndarray) -> np.ndarray:
    """Each pixel's excess over the median of a frame (uint8 (28, 28), `framed_digit`), which
    is the paper's level, as float32 (28, 28)."""
    return np.clip(frame.astype(np.float32) - float(np.median(frame)), 0.0, None)


def row_gap(frame: np.ndarray, blank: float = BLANK_ROW) -> float:
    """The share of a frame's rows (uint8 (28, 28), `framed_digit`) in its widest run of blank
    rows (under `blank` of the fullest row's ink) between the first and last inked rows: the
    space between two lines of writing, where a digit broken across shows none."""
    rows = frame_ink(frame).sum(axis=1)
    inked = np.flatnonzero(rows > blank * rows.max()) if rows.any() else np.zeros(0, int)
    if len(inked) < 2:
        return 0.0
    return float((np.diff(inked) - 1).max() / len(rows))


def ink_span(frame: np.ndarray, tail: float = SPAN_TAIL) -> float:
    """The share of a frame (uint8 (28, 28), `framed_digit`) that its ink spans: the larger of
    the shares of its rows and of its columns holding all but `tail` of the ink's mass at
    either end. Ink is each pixel's excess over the frame's median (the paper), so a few
    specks do not stretch the span, where a line across the picture does."""
    ink = frame_ink(frame)
    total = float(ink.sum())
    if total == 0.0:
        return 0.0
    spans = []
    for profile in (ink.sum(axis=1), ink.sum(axis=0)):
        cumulative = np.cumsum(profile) / total
        first, last = np.searchsorted(cumulative, [tail, 1.0 - tail])
        spans.append((last - first + 1) / len(profile))
    return float(max(spans))


def read_digit(source: Path | bytes, name: str | None = None) -> np.ndarray:
    """Decode and preprocess one image file (or its bytes) into an MNIST-style digit."""
    name = describe(source, name)
    return to_mnist(open_image(source, name), name)
