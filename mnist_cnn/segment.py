"""A picture of a number -> its digits: each one's MNIST-style 28x28 and its box, left to right.

Pure: an image in, candidates out. After preprocess.py's polarity and lighting steps it
  1. estimates the background locally when the light is uneven (a shadow's edge is lighting),
  2. erases long thin straight lines (ruled and squared paper, margins, a form's frame),
     keeping the digit's own strokes where they cross or run along a line,
  3. splits the rest into connected components (OpenCV), merges the pieces of one digit,
     drops specks much smaller than the digits, and orders the digits left to right,
  4. gives each digit preprocess.normalise, the MNIST normalisation a single digit gets.
Deciding which candidates are digits at all (an out-of-distribution score) is the caller's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from mnist_cnn.errors import NoDigitFoundError, SeveralLinesError
from mnist_cnn.preprocess import (
    DECODE_SCALE,
    DECODE_SIZE,
    UNEVEN_LIGHT,
    border,
    denoise,
    even_out,
    ink_strength,
    ink_up,
    normalise,
    stroke_width,
    to_grayscale,
    to_mnist,
    to_uint8,
    uneven,
)

# OpenCV's thread pool costs more than it saves on pictures this size (a 280 px canvas takes
# about 1.5x as long with it on a busy 2-core machine), and TensorFlow has the cores anyway.
cv2.setNumThreads(0)

WORK_SIDE = DECODE_SIZE  # larger pictures are shrunk to this longer side: digits stay big
# Uneven light: the paper is a median of a copy BACKGROUND_SIDE pixels high (or wide, if
# narrower) over BACKGROUND_KERNEL pixels, a quarter of that: a digit's strokes are a minority.
BACKGROUND_SIDE = 128
BACKGROUND_KERNEL = 33
# The light is uneven when the paper's border has its 10th and 90th percentiles further apart
# than preprocess.UNEVEN_LIGHT of the ink's contrast: a shadow over a third of the picture is
# invisible to preprocess.uneven, which only sees the spread of the middle half.
BORDER_PERCENTILES = (10, 90)
MIN_PAPER = 0.05  # paper darker than this (of full scale) is not divided by: noise, not light
# A straight run of ink at least this share of the picture's side along it may be a line ...
LINE_SHARE = 0.5
MAX_TILT_DEGREES = 1.0  # ... and it may be tilted this much (a phone photo of ruled paper)
LINE_GAP = 7  # ... and broken by gaps this long (pixels): a faint rule is not always whole
# ... and it is a line when its ink across is at most this share of the pen's: printed rules
# are faint hairlines next to a pen, a 1 or a 7's bar is as thick as the pen that drew it.
LINE_THIN = 0.5
PEN_PERCENTILE = 90  # the pen's strong ink: its soft edges are not what the pen laid down
BARE_PERCENTILE = 25  # a rule's width is measured in its thinnest quarter, where no digit is
LINE_MARGIN = 2  # ink this many pixels thicker than a line, across it, is a stroke crossing it
MIN_PIXELS = 3  # components smaller than this are noise at any scale
# Components with at least this share of the largest one's pixels set the digits' height.
SUBSTANTIAL = 0.15
# Pieces overlapping by this share of the narrower one's width, and at most MERGE_GAP of the
# digit height apart vertically, are one digit (a 5's lifted bar, a 4 in two strokes).
MERGE_OVERLAP = 0.5
MERGE_GAP = 0.3
# ... or together at most this many times as tall as the taller piece: a 5 whose bottom came
# away. Two digits stacked on two lines span twice a digit's height and more.
ONE_DIGIT_SPAN = 1.6
SHORT_PIECE = 0.6  # a piece under this share of its neighbour's height is part of it ...
TOUCH_GAP = 0.1  # ... when above or below it, or side-on at most this share of that height away
# A component holding another at least this share of its height is a frame (see frames).
ENCLOSED = 0.3
# A component lying along this share of a side of the picture is light or shadow at its edge
# (the page's edge in a photo, a band of glare, a shadow's dark wedge), not a stroke: a
# digit, even cropped tight, touches a side over a stretch of its own width or height.
ALONG_EDGE = 0.75
SPECK = 0.2  # components whose longer side is below this share of the digit height are dirt
MIN_DIGIT_HEIGHT = 0.4  # groups lower than this share of the digit height are specks or dots
MAX_CANDIDATES = 32  # more than this is a page of text, not a number
PIECES_PER_DIGIT = 4  # a digit is rarely in more pieces: more pieces than 4 * 32 is a page


@dataclass(frozen=True)
class Candidate:
    """One thing that may be a digit: its MNIST-style uint8 (28, 28) and where it was found."""

    digit: np.ndarray  # uint8 (28, 28), light ink on black, as preprocess.to_mnist makes
    box: tuple[int, int, int, int]  # (left, top, right, bottom) in the original image's pixels


def shrink(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """Grey float (H, W) at most WORK_SIDE on its longer side, and the pixels per work pixel."""
    longer = max(gray.shape)
    if longer <= WORK_SIDE:
        return gray, 1.0
    scale = WORK_SIDE / longer
    size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA), 1.0 / scale


def paper_light(gray: np.ndarray) -> np.ndarray:
    """The paper's brightness, float (h, w) on a copy of grey float (H, W) BACKGROUND_SIDE high.

    A median over a square wider than any stroke: ink and rulings are a minority there,
    whatever their colour, and the median keeps a shadow's edge where it is.
    """
    height, width = gray.shape
    scale = min(1.0, BACKGROUND_SIDE / min(height, width))
    small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(to_uint8(gray), small_size, interpolation=cv2.INTER_AREA)
    # medianBlur repeats the edge row, which would make a rule along the edge the paper.
    half = BACKGROUND_KERNEL // 2
    padded = cv2.copyMakeBorder(small, half, half, half, half, cv2.BORDER_REFLECT_101)
    # It takes any odd size for 8-bit images only; 1/255 is far below the ink floor.
    median = cv2.medianBlur(padded, BACKGROUND_KERNEL)[half:-half, half:-half]
    return median.astype(np.float32) / 255.0


def spread(values: np.ndarray) -> float:
    """How far apart the BORDER_PERCENTILES of `values` lie."""
    low, high = np.percentile(values, BORDER_PERCENTILES)
    return float(high - low)


def shadowed(gray: np.ndarray) -> np.ndarray | None:
    """The paper's light (`paper_light`) when much of its border is in another light, or None."""
    contrast = float(np.abs(gray - np.median(border(gray))).max())
    if spread(border(gray)) <= UNEVEN_LIGHT * contrast:
        return None  # the median of the paper cannot differ more than the paper does: skip it
    paper = paper_light(gray)
    return paper if spread(border(paper)) > UNEVEN_LIGHT * contrast else None


def local_background(gray: np.ndarray, paper: np.ndarray) -> np.ndarray:
    """Grey float (H, W) -> ink-up float (H, W), ink measured against the paper around it.

    The ink's colour is the larger departure from the paper (`paper_light`), and the ink is
    divided by the light the paper gets, so a digit reads the same in a shadow as in full light.
    """
    height, width = gray.shape
    paper = cv2.resize(paper, (width, height), interpolation=cv2.INTER_LINEAR)
    above, below = gray - paper, paper - gray
    if below.max() > above.max():  # dark ink: its darkness over the paper's brightness
        return np.clip(below / np.maximum(paper, MIN_PAPER), 0.0, 1.0)
    return np.clip(above / np.maximum(1.0 - paper, MIN_PAPER), 0.0, 1.0)


def ink_map(image: Image.Image, name: str) -> tuple[np.ndarray, float]:
    """Ink float32 (H, W) in [0, 1] at the work size, and the original pixels per work pixel.

    Light that changes smoothly takes preprocess.py's steps unchanged (so a single digit reads
    as it always has); a shadow's edge on the border takes local_background. Raises
    NoDigitFoundError when nothing stands out from the paper.
    """
    gray, scale = shrink(to_grayscale(image))
    gray = denoise(gray)
    flipped, paper = ink_up(gray), shadowed(gray)
    if paper is not None:
        flipped = local_background(gray, paper)
    elif uneven(flipped):
        flipped = even_out(flipped)
    return ink_strength(flipped, name), scale * float(image.info.get(DECODE_SCALE, 1.0))


def straight_runs(mask: np.ndarray) -> np.ndarray:
    """Ink uint8 (H, W) on level runs at least LINE_SHARE of the width long, slightly tilted."""
    length = max(2, round(LINE_SHARE * mask.shape[1]))
    drift = math.ceil(length * math.tan(math.radians(MAX_TILT_DEGREES)) / 2)
    # Cheap first: a run needs `length` ink pixels within some 2 * drift + 1 rows, so only
    # the rows from the first to the last such row (and the drift beyond) take the costly
    # morphology below: a digit's upright stroke is a few rows of a transposed canvas.
    rows = np.convolve(mask.sum(axis=1, dtype=np.int64), np.ones(2 * drift + 1), "same")
    (candidates,) = np.nonzero(rows >= length)
    runs = np.zeros_like(mask)
    if len(candidates) == 0:
        return runs
    first, last = candidates[0], candidates[-1] + 1
    top, bottom = max(0, first - drift), min(len(mask), last + drift)
    if not could_hold_a_run(mask[top:bottom], length):
        return runs
    # Thickening across the line first lets a slightly tilted line hold a level run, and
    # closing short gaps along it keeps a faint rule whole where JPEG or the paper broke it.
    band = cv2.dilate(mask[top:bottom], np.ones((2 * drift + 1, 1), np.uint8))
    band = cv2.morphologyEx(band, cv2.MORPH_CLOSE, np.ones((1, LINE_GAP), np.uint8))
    opened = cv2.morphologyEx(band, cv2.MORPH_OPEN, np.ones((1, length), np.uint8))
    runs[first:last] = opened[first - top : last - top] & mask[first:last]
    return runs


def could_hold_a_run(mask: np.ndarray, length: int) -> bool:
    """Whether uint8 (H, W) ink could hold a level run `length` pixels long after straight_runs'
    gap closing: not when its ink spans fewer columns, unless it comes within LINE_GAP of a
    side, where OpenCV's erosion counts the outside as ink and shorter runs can survive."""
    (columns,) = np.nonzero(mask.any(axis=0))
    if len(columns) == 0:
        return False
    near_a_side = columns[0] <= LINE_GAP or columns[-1] >= mask.shape[1] - 1 - LINE_GAP
    return near_a_side or columns[-1] - columns[0] + 1 >= length


def across_run(own: np.ndarray, ink: np.ndarray) -> tuple[float, float]:
    """A level run's (bool (h, w), its box) ink and pixel count across it, where it is bare."""
    # Digits crossing a rule thicken some of its columns: its thinnest quarter is bare rule.
    columns = own.any(axis=0)
    mass = np.percentile((ink * own).sum(axis=0)[columns], BARE_PERCENTILE)
    width = np.percentile(own.sum(axis=0)[columns], BARE_PERCENTILE)
    return float(mass), float(width)


def labelled(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's 8-connected components of uint8 (H, W): labels (H, W), 0 the background, and
    stats int32 (N + 1, 5) of x, y, width, height and area, the background's first.

    Labels are uint16 when no picture of this size can hold more components than uint16
    counts (one per 2x2 block at most): OpenCV labels into uint16 about 2.5 times as fast
    as into int32 on a 280x280 canvas (0.19 against 0.50 ms, measured on a 2-core EPYC).
    """
    most = -(-mask.shape[0] // 2) * -(-mask.shape[1] // 2)
    ltype = cv2.CV_16U if most < np.iinfo(np.uint16).max else cv2.CV_32S
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=ltype)
    return labels, stats


def thin_lines(runs: np.ndarray, ink: np.ndarray, pen: float) -> tuple[np.ndarray, float]:
    """The horizontal runs (uint8 (H, W)) with less ink across them than LINE_THIN of the pen.

    Ink across is the ink (float (H, W) in [0, 1]) summed across the run: a ruling is faint
    and thin, so a pale, blurred rule still counts as thin. Also returns the widest line's
    width in pixels (0.0 when there are none).
    """
    lines = np.zeros_like(runs)
    (rows,) = np.nonzero(runs.any(axis=1))
    if len(rows) == 0:
        return lines, 0.0
    span = np.s_[rows[0] : rows[-1] + 1]  # runs are a few rows: label only those
    labels, stats = labelled(runs[span])
    ink = ink[span]
    keep, widest = [], 0.0
    for label, (left, top, width, height, _) in enumerate(stats[1:], start=1):
        box = np.s_[top : top + height, left : left + width]
        mass, across = across_run(labels[box] == label, ink[box])
        if mass <= LINE_THIN * pen:
            keep.append(label)
            widest = max(widest, across)
    if keep:
        lines[span] = np.isin(labels, keep)
    return lines, widest


def erase_level_lines(
    mask: np.ndarray, runs: np.ndarray, ink: np.ndarray, pen: float
) -> np.ndarray:
    """Remove the thin horizontal lines among `runs` from `mask`, keeping strokes across them."""
    lines, width = thin_lines(runs, ink, pen)
    if width == 0.0:
        return mask
    # Ink thicker than a line across it (a stroke crossing, or lying along, the line) stays.
    across = math.ceil(width) + LINE_MARGIN
    # Outside the picture is no ink: a rule along its edge is not thick there.
    strokes = cv2.morphologyEx(
        mask,
        cv2.MORPH_OPEN,
        np.ones((across, 1), np.uint8),
        borderType=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return mask & ~(lines & ~strokes)


def erase_lines(ink: np.ndarray) -> np.ndarray:
    """The uint8 (H, W) 0/1 mask of float `ink` less long thin straight lines, level or upright."""
    mask = (ink > 0).astype(np.uint8)
    level, upright = straight_runs(mask), straight_runs(mask.T.copy()).T
    if not (level.any() or upright.any()):
        return mask
    rest = (mask & ~level & ~upright).astype(bool)
    if not rest.any():
        rest = mask.astype(bool)
    # The pen's ink across a stroke (its width times its strong ink), from the ink not on a
    # long straight run: a ruling is then thin next to it, and a digit's own long stroke (a 1,
    # soft-edged as it may be) is not.
    pen = stroke_width(rest) * float(np.percentile(ink[rest], PEN_PERCENTILE))
    if level.any():
        mask = erase_level_lines(mask, level, ink, pen)
    if not upright.any():
        return mask
    flipped = erase_level_lines(mask.T.copy(), upright.T.copy(), ink.T.copy(), pen)
    return flipped.T.copy()


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of uint8 (H, W): labels (H, W) (see labelled), and (N, 6) stats
    label, x, y, w, h, area for the N components of at least MIN_PIXELS (label = row index + 1
    before filtering).
    """
    labels, stats = labelled(mask)
    stats = np.column_stack([np.arange(len(stats)), stats])[1:]  # label first, background out
    return labels, stats[stats[:, 5] >= MIN_PIXELS]


def digit_height(stats: np.ndarray) -> float:
    """The typical digit height in pixels: the median height of the substantial components."""
    substantial = stats[stats[:, 5] >= SUBSTANTIAL * stats[:, 5].max()]
    return float(np.median(substantial[:, 4]))


def frames(stats: np.ndarray) -> np.ndarray:
    """bool (N,): components (rows of `stats`) whose box holds another one of some size.

    A digit never holds another digit: what does is a form's box, or a frame drawn around the
    number, left over when its sides were too short or too thick to be erased as lines.
    """
    left, top = stats[:, 1], stats[:, 2]
    right, bottom = left + stats[:, 3], top + stats[:, 4]
    holds = (
        (left[:, None] < left[None, :])
        & (top[:, None] < top[None, :])
        & (right[:, None] > right[None, :])
        & (bottom[:, None] > bottom[None, :])
        & (stats[None, :, 4] >= ENCLOSED * stats[:, None, 4])
    )
    return holds.any(axis=1)


def along_edges(labels: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """bool (N,): components (rows of `stats`) covering at least ALONG_EDGE of one side of
    the picture, counted on its outermost row or column of `labels` (H, W)."""
    count = int(stats[:, 0].max()) + 1 if len(stats) else 1
    sides = (labels[0], labels[-1], labels[:, 0], labels[:, -1])
    along = np.zeros(count, bool)
    for side in sides:
        along |= np.bincount(side.ravel(), minlength=count)[:count] >= ALONG_EDGE * len(side)
    return along[stats[:, 0]]


def same_digit(a: np.ndarray, b: np.ndarray, height: float) -> bool:
    """Whether two components (label, x, y, w, h, area) are pieces of one digit."""
    overlap = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    gap = max(a[2], b[2]) - min(a[2] + a[4], b[2] + b[4])
    span = max(a[2] + a[4], b[2] + b[4]) - min(a[2], b[2])
    taller = max(a[4], b[4])
    # A piece well under its neighbour's height is no digit of its own next to it: digits
    # side by side, or in two lines, are about as tall as each other.
    short = min(a[4], b[4]) < SHORT_PIECE * taller
    close = gap <= MERGE_GAP * height or span <= ONE_DIGIT_SPAN * taller or short
    stacked = overlap >= MERGE_OVERLAP * min(a[3], b[3]) and close
    # A short piece touching or overlapping its neighbour side-on is part of it too: a 5's
    # lifted bar off to the right, the foot of a 1.
    beside = overlap >= -TOUCH_GAP * taller and gap <= MERGE_GAP * height
    return stacked or (short and beside)


def group_pieces(stats: np.ndarray, height: float) -> list[list[int]]:
    """Rows of `stats` grouped into digits, the pieces of each joined as same_digit says."""
    group = list(range(len(stats)))

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    for i in range(len(stats)):
        for j in range(i + 1, len(stats)):
            if same_digit(stats[i], stats[j], height):
                group[root(j)] = root(i)
    members: dict[int, list[int]] = {}
    for i in range(len(stats)):
        members.setdefault(root(i), []).append(i)
    return list(members.values())


def bounding_box(stats: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom), right and bottom exclusive, around components' stats rows."""
    left, top = stats[:, 1].min(), stats[:, 2].min()
    right, bottom = (stats[:, 1] + stats[:, 3]).max(), (stats[:, 2] + stats[:, 4]).max()
    return int(left), int(top), int(right), int(bottom)


def check_count(count: int, name: str) -> None:
    """Refuse more than MAX_CANDIDATES candidates in one line: a page, not a number."""
    if count > MAX_CANDIDATES:
        raise SeveralLinesError(
            f"{name}: more than {MAX_CANDIDATES} digit candidates: "
            "this reads one line of digits, not a page"
        )


def check_one_line(boxes: list[tuple[int, int, int, int]], name: str) -> None:
    """Refuse a picture whose digits are not side by side: several lines, a page, a table."""
    check_count(len(boxes), name)
    for i, first in enumerate(boxes):
        for second in boxes[i + 1 :]:
            if first[3] <= second[1] or second[3] <= first[1]:
                raise SeveralLinesError(
                    f"{name}: several lines of writing: this reads one line of digits"
                )


def whole_picture(image: Image.Image, name: str = "image") -> Candidate:
    """The whole picture read as one digit, as preprocess.to_mnist reads it (`--single`)."""
    scale = float(image.info.get(DECODE_SCALE, 1.0))
    box = (0, 0, round(image.width * scale), round(image.height * scale))
    return Candidate(to_mnist(image, name), box)


def find_digits(image: Image.Image, name: str = "image") -> list[Candidate]:
    """The digit candidates in `image`, left to right (at least one).

    Raises NoDigitFoundError, or SeveralLinesError for several lines or more than MAX_CANDIDATES
    candidates.
    """
    ink, scale = ink_map(image, name)
    mask = erase_lines(ink)
    labels, stats = components(mask)
    stats = stats[~frames(stats) & ~along_edges(labels, stats)]
    if len(stats) == 0:
        raise NoDigitFoundError(f"{name}: no digit found")
    height = digit_height(stats)
    stats = stats[np.maximum(stats[:, 3], stats[:, 4]) >= SPECK * height]
    # Grouping compares every pair: a page of text is refused before that, not after.
    check_count(len(stats) // PIECES_PER_DIGIT, name)
    groups = sorted(
        (stats[rows] for rows in group_pieces(stats, height)), key=lambda g: g[:, 1].min()
    )
    boxes = [bounding_box(g) for g in groups]
    tall = [box[3] - box[1] >= MIN_DIGIT_HEIGHT * height for box in boxes]
    groups = [g for g, keep in zip(groups, tall, strict=True) if keep]
    boxes = [box for box, keep in zip(boxes, tall, strict=True) if keep]
    check_one_line(boxes, name)
    candidates = []
    for group, (left, top, right, bottom) in zip(groups, boxes, strict=True):
        own = np.isin(labels[top:bottom, left:right], group[:, 0])
        digit = normalise(np.where(own, ink[top:bottom, left:right], 0.0))
        original = tuple(round(side * scale) for side in (left, top, right, bottom))
        candidates.append(Candidate(digit, original))
    return candidates
