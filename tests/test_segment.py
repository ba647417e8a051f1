"""Finding the digits of a number in a picture: lines, frames, specks, shadows, several digits."""

from __future__ import annotations

import io
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from test_preprocess import PERSON_DIGITS
from test_preprocess import SEED as PERSON_SEED

from mnist_cnn.engine import load_engine
from mnist_cnn.errors import NoDigitFoundError, UserError
from mnist_cnn.predict import load_classifier, shipped_classifier
from mnist_cnn.preprocess import border, open_image, to_grayscale, to_mnist
from mnist_cnn.reader import IN_LINE_CONFIDENCE, SECOND_OPINION_MODEL, Reader, refused_at_ends
from mnist_cnn.segment import (
    LINE_GAP,
    MAX_CANDIDATES,
    SCORED_SIDE,
    UNEVEN_LIGHT,
    Part,
    Pieces,
    among,
    candidate_digits,
    commas_among,
    could_hold_a_run,
    cropped_to_writing,
    cuts,
    digit_height,
    erase_lines,
    find_digits,
    labelled,
    opened_along_rows,
    paper_light,
    shadowed,
    spread,
    straight_runs,
    without_lit_paper,
)
from mnist_cnn.synthetic import (
    FONT_FILES,
    font_dir,
    make_outliers,
    person_style_files,
    render_glyph,
)

DATA = Path(__file__).resolve().parent / "data"
CASES = {
    "pencil_on_ruled_paper.jpg": "6",
    "shadow_across_digit.jpg": "5",
    "two_digits.png": "42",
    "touching_digits_27.png": "27",
}
NUMBERS = 500
SEED = 20261130
BACKGROUNDS = ("plain", "ruled", "squared", "form", "specks", "shadow")
MIN_HEIGHT, MAX_HEIGHT = 28, 60  # digit heights in pixels: small pictures keep the test fast
STROKE = 0.3  # generated darkness above this is a stroke, where touching digits touch
MAX_OVERLAP = 3  # touching digits' strokes overlap by 0 to this many pixels
# A decimal point's gap and a minus's length and gap to the first digit, in digit heights,
# and the pen that draws them (an MNIST digit's stroke is about 0.12 to 0.18 of its height).
POINT_GAP = 0.4
MINUS_LENGTH = (0.35, 0.6)
MINUS_GAPS = (0.2, 0.4)
PEN = (0.12, 0.18)
# What the shipped models (the digit model, the pair model and the strong model's word on
# pieces refused at a number's ends) reach on hard_numbers and the earlier kinds together
# (90.5% of touching pairs, 95.3% of numbers, 97.1% of digits: docs/reading.md), less a
# margin, so that a decision on the edge that goes the other way on another CPU fails no run.
TOUCHING_FLOOR = 0.85
SHEET_FLOOR = 0.85
NUMBERS_FLOOR = 0.93
DIGITS_FLOOR = 0.955


# --- generated numbers -------------------------------------------------------------------------


def digit_ink(digit: np.ndarray, height: int, slant: float) -> np.ndarray:
    """An MNIST digit's ink, float in [0, 1], cropped, `height` px tall and sheared by `slant`."""
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    crop = Image.fromarray(digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])
    width = max(1, round(crop.width * height / crop.height))
    grown = crop.resize((width, height), Image.Resampling.BICUBIC)
    shift = abs(slant) * height
    sheared = grown.transform(
        (width + round(shift), height),
        Image.Transform.AFFINE,
        (1, slant, -shift if slant > 0 else 0, 0, 1, 0),
        Image.Resampling.BICUBIC,
    )
    ink = np.asarray(sheared, dtype=np.float32) / 255
    cols = np.flatnonzero(ink.max(axis=0) > 0.1)
    return ink[:, cols[0] : cols[-1] + 1]


def rule(paper: np.ndarray, rng: np.random.Generator, height: int, across: bool) -> None:
    """Draw faint rules through digits `height` px tall on `paper` (float darkness).

    Rows, or columns if `across`, every 0.35 to 0.7 digit heights. A printed rule is a few
    tenths of a pen's width: 1 px next to digits under 45 px tall (strokes of 3 to 5 px),
    1 or 2 px next to taller ones.
    """
    step = height * rng.uniform(0.35, 0.7)
    strength, width = rng.uniform(0.25, 0.6), int(rng.integers(1, 3 if height >= 45 else 2))
    size = paper.shape[1] if across else paper.shape[0]
    for start in np.arange(rng.uniform(0, step), size, step).astype(int):
        if across:
            paper[:, start : start + width] = np.maximum(paper[:, start : start + width], strength)
        else:
            paper[start : start + width] = np.maximum(paper[start : start + width], strength)


def touching_left(placed: np.ndarray, ink: np.ndarray, top: int, overlap: int) -> int:
    """The column where `ink` (its top row at `top`) first touches the strokes already on
    `placed` (float darkness), moved `overlap` pixels further in."""
    strokes, rows = placed > STROKE, np.arange(top, top + ink.shape[0])
    own_first = np.argmax(ink > STROKE, axis=1)
    drawn = strokes[rows].any(axis=1) & (ink > STROKE).any(axis=1)
    last = strokes.shape[1] - 1 - np.argmax(strokes[rows][:, ::-1], axis=1)
    return int(np.max(last[drawn] + 1 - own_first[drawn])) - overlap


def draw_marks(darkness, spans, rows, marks, rng: np.random.Generator) -> None:
    """Draw a minus (`marks`: its length, its left end or None), a decimal point and a comma
    (each after that digit, or None) with a pen PEN of the digit height, on `darkness`."""
    bar, start, point_after, comma_after = marks
    height = np.mean([bottom - top for top, bottom in rows])
    pen = max(2.0, rng.uniform(*PEN) * height)
    yy, xx = np.ogrid[: darkness.shape[0], : darkness.shape[1]]
    if start is not None:
        middle = (rows[0][0] + rows[0][1]) / 2 + rng.uniform(-0.08, 0.08) * height
        stroke = (np.abs(yy - middle) <= pen / 2) & (xx >= start) & (xx < start + bar)
        darkness[stroke] = np.maximum(darkness[stroke], rng.uniform(0.75, 1.0))
    for after, tail in ((point_after, False), (comma_after, True)):
        if after is None:
            continue
        if after == -1:  # before the first digit (".5"), in the space left for it
            x, bottom = spans[0][0] - POINT_GAP * height / 2, rows[0][1]
        else:
            x = (spans[after][1] + spans[after + 1][0]) / 2
            bottom = (rows[after][1] + rows[after + 1][1]) / 2
        y, radius = bottom - pen * rng.uniform(0.5, 1.0), pen * rng.uniform(0.5, 0.7)
        mark = (yy - y) ** 2 + (xx - x) ** 2 <= radius**2
        if tail:  # a comma: the dot's tail curving down to the left, below the line
            length, lean = rng.uniform(0.25, 0.4) * height, rng.uniform(0.2, 0.7)
            along = np.clip((yy - y) / length, 0, 1)
            near = np.abs(xx - (x + radius * 0.5 - lean * along * length)) <= pen * 0.4
            mark |= near & (yy >= y) & (yy <= y + length)
        darkness[mark] = np.maximum(darkness[mark], rng.uniform(0.75, 1.0))


def number_picture(
    digits: list[np.ndarray],
    background: str,
    rng: np.random.Generator,
    touching: bool = False,
    point_after: int | None = None,
    minus: bool = False,
    comma_after: int | None = None,
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """A dark-on-light uint8 picture of the digits side by side, and each digit's column span.

    `touching`: each digit's strokes touch its left neighbour's, overlapping by 0 to
    MAX_OVERLAP pixels, one connected component. `point_after`: a decimal point (a dot a pen
    wide on the baseline) after that digit (0 the first; -1: before the first, ".5"); `minus`:
    a minus before them; `comma_after`: a comma (a point with a tail below the line) after
    that digit.
    """
    height = int(rng.integers(MIN_HEIGHT, MAX_HEIGHT + 1))
    slant = rng.uniform(-0.25, 0.25)
    inks = [digit_ink(d, round(height * rng.uniform(0.85, 1.1)), slant) for d in digits]
    gaps = [round(rng.uniform(0.04, 0.4) * height) + 1 for _ in inks[1:]]
    for after in (point_after, comma_after):
        if after is not None and after >= 0:
            gaps[after] = max(gaps[after], round(POINT_GAP * height))
    bar = round(height * rng.uniform(*MINUS_LENGTH)) if minus else 0
    before = bar + round(rng.uniform(*MINUS_GAPS) * height) if minus else 0
    before += round(POINT_GAP * height) if point_after == -1 else 0
    margin = round(height * rng.uniform(0.5, 1.0))
    width = sum(i.shape[1] for i in inks) + sum(gaps) + 2 * margin + before
    tall = round(height * rng.uniform(1.8, 2.6))
    overlaps = rng.integers(0, MAX_OVERLAP + 1, len(inks)) if touching else None
    darkness = np.zeros((tall, width), np.float32)
    spans, rows, left = [], [], margin + before
    for n, ink in enumerate(inks):
        top = (tall - ink.shape[0]) // 2 + int(rng.integers(-height // 10, height // 10 + 1))
        if overlaps is not None and n > 0:
            left = touching_left(darkness, ink, top, int(overlaps[n]))
        area = darkness[top : top + ink.shape[0], left : left + ink.shape[1]]
        np.maximum(area, ink * rng.uniform(0.75, 1.0), out=area)
        spans.append((left, left + ink.shape[1]))
        rows.append((top, top + ink.shape[0]))
        left += ink.shape[1] + (gaps[n] if n < len(gaps) else 0)
    if point_after is not None or minus or comma_after is not None:
        marks = (bar, margin if minus else None, point_after, comma_after)
        draw_marks(darkness, spans, rows, marks, rng)
    paper = np.zeros_like(darkness)
    if background in ("ruled", "squared"):
        rule(paper, rng, height, across=False)
    if background == "squared":
        rule(paper, rng, height, across=True)
    if background == "ruled" and rng.random() < 0.5:
        margin_at = int(rng.integers(2, max(3, margin - 2)))
        paper[:, margin_at : margin_at + 2] = rng.uniform(0.3, 0.6)
    if background == "form":
        pad = round(height * rng.uniform(0.15, 0.35))
        top, bottom = max(0, (tall - height) // 2 - pad), min(tall - 1, (tall + height) // 2 + pad)
        left, right = max(0, margin - pad), min(width - 2, width - margin + pad)
        strength = rng.uniform(0.5, 0.9)
        for rows, cols in (
            (slice(top, top + 2), slice(left, right + 2)),
            (slice(bottom, bottom + 2), slice(left, right + 2)),
            (slice(top, bottom + 2), slice(left, left + 2)),
            (slice(top, bottom + 2), slice(right, right + 2)),
        ):
            paper[rows, cols] = strength
    if background == "specks":
        for _ in range(int(rng.integers(2, 7))):
            radius = rng.uniform(0.7, max(1.0, 0.05 * height))
            y, x = rng.uniform(0, tall), rng.uniform(0, width)
            yy, xx = np.ogrid[:tall, :width]
            dot = (yy - y) ** 2 + (xx - x) ** 2 <= radius**2
            near = (yy - y) ** 2 + (xx - x) ** 2 <= (radius + 3) ** 2
            if not darkness[near].any():  # dirt next to the digits, not on a stroke
                paper[dot] = rng.uniform(0.5, 1.0)
    light = np.full((tall, width), rng.uniform(0.8, 0.97), np.float32)
    if background == "shadow":
        edge = rng.uniform(0.2, 0.8) * width
        soft = rng.uniform(1, 0.3 * height)
        shade = 1 / (1 + np.exp(-(np.arange(width) - edge) / soft))
        if rng.random() < 0.5:
            shade = shade[::-1]
        light *= 1 - rng.uniform(0.35, 0.6) * shade[np.newaxis, :]
    picture = light * (1 - np.maximum(darkness, paper) * 0.92)
    picture += rng.normal(0, 0.01, picture.shape)
    return np.clip(picture * 255, 0, 255).astype(np.uint8), spans


def bar_short_of_upright(four: np.ndarray, gap: int) -> np.ndarray:
    """An MNIST 4 (uint8 (28, 28)) whose bar stops `gap` pixels short of its upright: the
    `gap` columns left of the upright (the inkiest column of the right half, and its inky
    neighbours) are erased, so the 4 is in two strokes."""
    ink = four.astype(np.float32).sum(axis=0)
    upright = 14 + int(np.argmax(ink[14:]))
    while upright > 1 and ink[upright - 1] >= 0.6 * ink[upright]:
        upright -= 1
    broken = four.copy()
    broken[:, max(0, upright - gap) : upright] = 0
    return broken


def sheet_with_strip(rng: np.random.Generator) -> np.ndarray:
    """A photo of an empty grey sheet, dark-on-light uint8, with a bright strip (glare, or the
    white beyond the sheet) along one side, a few pixels in from it or on it, along most of it."""
    tall, wide = (int(v) for v in rng.integers(120, 300, 2))
    picture = np.full((tall, wide), rng.uniform(0.55, 0.8), np.float32)
    inset, strip = int(rng.integers(0, 5)), int(rng.integers(3, 11))
    start = int(rng.uniform(0, 0.3) * tall)
    end = start + int(rng.uniform(0.6, 1.0) * (tall - start))
    picture[:, :inset] = rng.uniform(0.2, 0.4)  # the table beyond the sheet
    picture[start:end, inset : inset + strip] = rng.uniform(0.92, 1.0)
    picture += rng.normal(0, 0.01, picture.shape)
    picture = np.rot90(picture, int(rng.integers(0, 4)))
    return np.clip(picture * 255, 0, 255).astype(np.uint8)


def shadow_wedge(picture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A hand's or a phone's hard shadow over a corner of `picture` (dark-on-light uint8): a
    dark wedge along part of one side, widest at the picture's edge."""
    tall, wide = picture.shape
    flipped = rng.random() < 0.5
    rows = np.arange(tall)[:, None] / tall
    reach = rng.uniform(0.4, 0.7)  # the share of the side it lies along
    depth = rng.uniform(0.06, 0.15) * wide  # how far in it reaches at the picture's edge
    inside = np.arange(wide)[None, :] < depth * np.clip(1 - rows / reach, 0, None)
    if flipped:
        inside = inside[::-1]
    if rng.random() < 0.5:
        inside = inside[:, ::-1]
    shade = np.where(inside, rng.uniform(0.35, 0.6), 1.0)
    return np.clip(picture * shade, 0, 255).astype(np.uint8)


def sheet_on_table(picture: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A phone photo of `picture` (dark-on-light uint8) on a sheet lying askew on a darker
    table: the sheet reaches 0.3 to 2 times a quarter of the picture's longer side beyond it
    on each side (past the photo's edge beyond 1), turned up to 10 degrees, under light
    falling off across the photo; a PNG or, for one in three, a JPEG."""
    tall, wide = picture.shape
    reach = max(tall, wide) // 4
    canvas = np.full((tall + 4 * reach, wide + 4 * reach), rng.uniform(0.1, 0.45), np.float32)
    top, bottom, left, right = (2 * reach - int(rng.uniform(0.3, 2) * reach) for _ in range(4))
    canvas[top : 4 * reach + tall - bottom, left : 4 * reach + wide - right] = np.median(
        picture / 255.0
    )
    canvas[2 * reach : 2 * reach + tall, 2 * reach : 2 * reach + wide] = picture / 255.0
    centre = (canvas.shape[1] / 2, canvas.shape[0] / 2)
    turn = cv2.getRotationMatrix2D(centre, float(rng.uniform(-10, 10)), 1.0)
    size = (canvas.shape[1], canvas.shape[0])
    canvas = cv2.warpAffine(
        canvas, turn, size, flags=cv2.INTER_LINEAR, borderValue=float(canvas[0, 0])
    )
    photo = canvas[reach : reach + tall + 2 * reach, reach : reach + wide + 2 * reach]
    falloff = np.linspace(1.0, rng.uniform(0.75, 1.0), photo.shape[1])[np.newaxis, :]
    photo = photo * (falloff if rng.random() < 0.5 else falloff[:, ::-1])
    photo = photo + rng.normal(0, 0.01, photo.shape)
    return encoded(np.clip(photo * 255, 0, 255).astype(np.uint8), rng)


def encoded(picture: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """uint8 `picture` saved as a JPEG for one in three, else a PNG, decoded as the CLI does."""
    buffer = io.BytesIO()
    if rng.random() < 1 / 3:
        Image.fromarray(picture).convert("RGB").save(
            buffer, "JPEG", quality=int(rng.integers(75, 96))
        )
    else:
        Image.fromarray(picture).save(buffer, "PNG")
    return open_image(buffer.getvalue())


def as_file(picture: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Light-on-dark for one in three, and a JPEG for one in three, decoded as the CLI does."""
    if rng.random() < 1 / 3:
        picture = 255 - picture
    return encoded(picture, rng)


def generated_numbers(mnist, count: int, seed: int):
    """(picture, its digits' labels, background kind) for `count` numbers of 2 to 6 digits."""
    rng = np.random.default_rng(seed)
    for n in range(count):
        chosen = rng.choice(len(mnist.x_test), int(rng.integers(2, 7)), replace=False)
        background = BACKGROUNDS[n % len(BACKGROUNDS)]
        picture, _ = number_picture([mnist.x_test[i] for i in chosen], background, rng)
        yield as_file(picture, rng), mnist.y_test[chosen], background


# The harder kinds (touching digits, a digit in two strokes, a decimal point or a minus, light
# at the picture's edge), how many of each, and their seed.
HARD_KINDS = {
    "touching": 200,
    "two strokes": 50,
    "point": 50,
    "minus": 50,
    "wedge": 40,
    "empty": 20,
    "sheet on a table": 40,
}
HARD_SEED = 20261203


def hard_numbers(mnist, seed: int):
    """(picture, the number it shows or "" for none, kind) for HARD_KINDS' pictures."""
    rng = np.random.default_rng(seed)
    fours = np.flatnonzero(mnist.y_test == 4)
    for kind, count in HARD_KINDS.items():
        for n in range(count):
            if kind == "empty":
                yield as_file(sheet_with_strip(rng), rng), "", kind
                continue
            if kind == "sheet on a table":
                chosen = list(rng.choice(len(mnist.x_test), int(rng.integers(1, 4)), replace=False))
                # Plain paper: ruled paper turned as far is another limit (docs/reading.md).
                picture, _ = number_picture([mnist.x_test[i] for i in chosen], "plain", rng)
                yield (
                    sheet_on_table(picture, rng),
                    "".join(str(mnist.y_test[i]) for i in chosen),
                    kind,
                )
                continue
            size = 2 if kind == "touching" else int(rng.integers(1 if kind != "point" else 2, 4))
            chosen = list(rng.choice(len(mnist.x_test), size, replace=False))
            digits = [mnist.x_test[i] for i in chosen]
            if kind == "two strokes":
                at = int(rng.integers(0, size))
                chosen[at] = int(rng.choice(fours))
                digits[at] = bar_short_of_upright(mnist.x_test[chosen[at]], int(rng.integers(1, 3)))
            after = int(rng.integers(0, size - 1)) if kind == "point" else None
            background = "plain" if kind == "wedge" else BACKGROUNDS[n % len(BACKGROUNDS)]
            picture, _ = number_picture(
                digits,
                background,
                rng,
                touching=kind == "touching",
                point_after=after,
                minus=kind == "minus",
            )
            if kind == "wedge":
                picture = shadow_wedge(picture, rng)
            number = "".join(str(mnist.y_test[i]) for i in chosen)
            if after is not None:
                number = number[: after + 1] + "." + number[after + 1 :]
            yield as_file(picture, rng), ("-" if kind == "minus" else "") + number, kind


@pytest.fixture(scope="module")
def reader(committed_model_path):
    """A Reader with the shipped model (its ONNX export where current), loaded once."""
    return Reader.from_classifier(load_classifier(committed_model_path)[0])


def reading_or_none(reader, image: Image.Image) -> str:
    """Reader.read's number, or "" where it found no digit (a wrong reading elsewhere)."""
    try:
        return reader.read(image).number
    except NoDigitFoundError:
        return ""
    except UserError:
        return "error"


def edit_distance(read: str, expected: str) -> int:
    """Levenshtein distance: the fewest digits inserted, deleted or replaced to turn `read`
    into `expected` (the character error count of OCR evaluation)."""
    row = list(range(len(expected) + 1))
    for i, got in enumerate(read, 1):
        diagonal, row[0] = row[0], i
        for j, want in enumerate(expected, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (got != want))
    return row[-1]


@pytest.mark.slow
def test_touching_digits_strokes_points_minus_and_edges(reader, mnist):
    kinds = [*HARD_KINDS, "earlier kinds"]
    right = dict.fromkeys(kinds, 0)
    digits_right = digits_total = aligned_wrong = 0
    pictures = list(hard_numbers(mnist, HARD_SEED))
    earlier = [
        (image, "".join(map(str, labels)), "earlier kinds")
        for image, labels, _ in generated_numbers(mnist, NUMBERS, SEED)
    ]
    for image, expected, kind in pictures + earlier:
        read = reading_or_none(reader, image)
        right[kind] += read == expected
        want, got = expected.strip("-").replace(".", ""), read.strip("-").replace(".", "")
        digits_total += len(want)
        aligned_wrong += min(len(want), edit_distance(got, want))
        if len(got) == len(want):
            digits_right += sum(a == b for a, b in zip(got, want, strict=True))
    counts = {**HARD_KINDS, "earlier kinds": NUMBERS}
    shares = {kind: right[kind] / counts[kind] for kind in kinds}
    numbers = sum(right.values()) / sum(counts.values())
    print(
        f"\n{sum(counts.values())} numbers through Reader: digits right "
        f"{digits_right / digits_total:.2%} (aligned {1 - aligned_wrong / digits_total:.2%}), "
        f"numbers right {numbers:.2%} ("
        + ", ".join(f"{kind} {share:.0%}" for kind, share in shares.items())
        + ")"
    )
    assert shares["empty"] == 1.0  # exactly "no digit found"
    # A sheet on a darker table: its edges read as 1s, 26 of 40 right without the table made
    # paper (preprocess.off_the_table).
    assert shares["sheet on a table"] >= SHEET_FLOOR
    # Read through Reader, whose not-a-digit verdict drops some digits that
    # test_generated_numbers_on_every_kind_of_paper counts by argmax: 93.8% when these kinds
    # were added (97% now), less a point.
    assert shares["earlier kinds"] >= 0.928
    assert digits_right / digits_total >= DIGITS_FLOOR
    assert shares["touching"] >= TOUCHING_FLOOR
    assert numbers >= NUMBERS_FLOOR


LEADING_POINTS = 60
LEADING_SEED = 20261205


def test_a_point_before_the_first_digit_is_noted_not_dropped_silently(reader, mnist):
    # ".5" read as 5 is ten times too large: the digits are read and the point is noted (not
    # read: noise puts a speck in its place as often).
    rng = np.random.default_rng(LEADING_SEED)
    noted = 0
    for n in range(LEADING_POINTS):
        chosen = rng.choice(len(mnist.x_test), int(rng.integers(1, 4)), replace=False)
        digits = [mnist.x_test[i] for i in chosen]
        picture, _ = number_picture(digits, BACKGROUNDS[n % len(BACKGROUNDS)], rng, point_after=-1)
        try:
            reading = reader.read(as_file(picture, rng))
        except UserError:
            continue
        before = any("before the first digit may be a decimal point" in t for t in reading.notes)
        noted += before and reading.number == "".join(str(mnist.y_test[i]) for i in chosen)
    print(f"\n{noted} of {LEADING_POINTS} numbers with a point before the first digit noted")
    assert noted >= 0.85 * LEADING_POINTS


COMMAS = 60
COMMA_SEED = 20261206


def comma_numbers(mnist, count: int, seed: int):
    """(picture, the number it shows) for `count` numbers of 2 to 4 digits with a comma after
    one of them but the last ("3,14", "1,000"), on every background."""
    rng = np.random.default_rng(seed)
    for n in range(count):
        chosen = list(rng.choice(len(mnist.x_test), int(rng.integers(2, 5)), replace=False))
        after = int(rng.integers(0, len(chosen) - 1))
        digits = [mnist.x_test[i] for i in chosen]
        background = BACKGROUNDS[n % len(BACKGROUNDS)]
        picture, _ = number_picture(digits, background, rng, comma_after=after)
        number = "".join(str(mnist.y_test[i]) for i in chosen)
        yield as_file(picture, rng), number[: after + 1] + "," + number[after + 1 :]


@pytest.mark.slow
def test_a_comma_between_digits_is_read_as_written(reader, mnist):
    # Taken for a digit, a comma made "7,21" read 7921: a number silently wrong.
    pictures, wanted = zip(*comma_numbers(mnist, COMMAS, COMMA_SEED), strict=True)
    read = [reading_or_none(reader, image) for image in pictures]
    right = sum(got == want for got, want in zip(read, wanted, strict=True))
    longer = sum(
        len(re.sub(r"\D", "", got)) > len(re.sub(r"\D", "", want))
        for got, want in zip(read, wanted, strict=True)
    )
    print(f"\n{right} of {COMMAS} numbers with a comma read right, {longer} with a digit too many")
    assert right >= 0.8 * COMMAS
    assert longer <= 0.05 * COMMAS


@pytest.fixture(scope="module")
def model(committed_model_path):
    """The committed model, loaded once for this file."""
    return load_engine(committed_model_path)


def read_number(model, image: Image.Image, name: str = "image") -> str:
    """The number the model reads in `image`, digit by digit."""
    digits = np.stack([c.digit for c in find_digits(image, name)])
    return "".join(str(d) for d in model.predict(digits).argmax(axis=1))


def digits_or_none(image: Image.Image) -> list:
    """find_digits' candidates, or none where it raised (a wrong reading for the score)."""
    try:
        return find_digits(image)
    except UserError:
        return []


@pytest.mark.slow
def test_generated_numbers_on_every_kind_of_paper(model, mnist):
    found, read, right_numbers, per_kind = [], [], 0, dict.fromkeys(BACKGROUNDS, 0)
    pictures = list(generated_numbers(mnist, NUMBERS, SEED))
    candidates = [digits_or_none(image) for image, _, _ in pictures]
    digits = np.stack([c.digit for cs in candidates for c in cs])
    guesses = iter(model.predict(digits).argmax(axis=1))
    right_digits = total_digits = 0
    for (_, labels, background), cs in zip(pictures, candidates, strict=True):
        guess = [next(guesses) for _ in cs]
        found.append(len(cs) == len(labels))
        read.append(guess)
        total_digits += len(labels)
        if len(cs) == len(labels):
            right_digits += int(np.sum(np.asarray(guess) == labels))
        if list(guess) == list(labels):
            right_numbers += 1
            per_kind[background] += 1
    digit_score, number_score = right_digits / total_digits, right_numbers / NUMBERS
    shown = ", ".join(f"{k} {v / (NUMBERS / len(BACKGROUNDS)):.0%}" for k, v in per_kind.items())
    print(
        f"\n{NUMBERS} generated numbers: digits right {digit_score:.2%}, "
        f"numbers right {number_score:.2%}, digit count right {np.mean(found):.2%} ({shown})"
    )
    assert digit_score >= 0.97
    assert number_score >= 0.93


# --- the three pictures a new user tried (tests/data) --------------------------------------------


@pytest.mark.parametrize(("name", "expected"), sorted(CASES.items()))
def test_the_pictures_a_new_user_tried(reader, name, expected):
    assert reader.read(open_image(DATA / name), name=name).number == expected


def test_the_readme_picture_of_2024_on_ruled_paper(model):
    # Four MNIST test digits (43, 55, 82, 19) in pencil grey on drawn ruled paper with a red
    # margin and light falling off, saved as JPEG: the README's figure.
    assert read_number(model, open_image(DATA / "ruled_number.jpg")) == "2024"


# --- what is not a digit, and what is out of scope ---------------------------------------------

# Non-digits that come apart into digit-like pieces: a face's ring opens into a 1 and a 3, a V,
# an N or an M into two 1s, a % into a 9 and a 6. Drawn with their own seed.
WIDE_GLYPHS = "HMNUVWXAmnuw%#&@"
NON_DIGIT_SEED = 20261204
NON_DIGITS = 120
SHAPED_KINDS = ("glyph", "unseen glyph", "scribble", "shape", "doodle")


def non_digit_pictures() -> list[tuple[Image.Image, str]]:
    """The smiley of tests/data, wide letters and symbols in every face of the DejaVu family,
    and the letters, scribbles, shapes and faces among NON_DIGITS of synthetic.make_outliers."""
    pictures = [(open_image(DATA / "not_a_digit_smiley.png"), "the smiley")]
    for glyph in WIDE_GLYPHS:
        for face in FONT_FILES:
            pictures.append((render_glyph(glyph, font_dir() / face, 56, 0.0), f"{glyph} {face}"))
    drawn, kinds = make_outliers(NON_DIGITS, NON_DIGIT_SEED)
    pictures += [(p, k) for p, k in zip(drawn, kinds, strict=True) if k in SHAPED_KINDS]
    return pictures


def widest(digits: np.ndarray, count: int) -> np.ndarray:
    """The indices of the `count` digits uint8 (N, 28, 28) whose ink is widest for its height."""
    inked_rows, inked_cols = digits.any(axis=2), digits.any(axis=1)
    spans = [
        np.ptp(np.flatnonzero(cols)) / max(1, np.ptp(np.flatnonzero(rows)))
        for rows, cols in zip(inked_rows, inked_cols, strict=True)
    ]
    return np.argsort(spans)[-count:]


@pytest.mark.parametrize("label", [0, 1, 4, 7])
def test_the_widest_single_digits_are_not_cut_in_two(reader, mnist, label):
    # A wide 0, a slanted 1, a wide 4, a 7 with a long bar: the 8 widest of each among the
    # 10,000 MNIST test digits, as 280x280 black-on-white files. Reading them cuts none: as
    # many candidates as finding them without the model's score (one, or for a 4 whose
    # strokes lie far apart, its pieces).
    (rows,) = np.nonzero(mnist.y_test == label)
    for index in rows[widest(mnist.x_test[rows], 8)]:
        page = as_page(mnist.x_test[index])
        assert len(reader.read(page).digits) == len(find_digits(page)), index


def cropped_to_ink(digit: np.ndarray, margin: int, times: int) -> Image.Image:
    """An MNIST digit (uint8 (28, 28), light on dark) cropped to its ink (over 30 of 255) with
    `margin` pixels left round it, enlarged `times` (bicubic), dark on white."""
    rows, cols = np.flatnonzero(digit.max(axis=1) > 30), np.flatnonzero(digit.max(axis=0) > 30)
    crop = digit[
        max(0, rows[0] - margin) : rows[-1] + 1 + margin,
        max(0, cols[0] - margin) : cols[-1] + 1 + margin,
    ]
    size = (crop.shape[1] * times, crop.shape[0] * times)
    return Image.fromarray(255 - crop).resize(size, Image.Resampling.BICUBIC)


def test_a_digit_cropped_to_its_ink_is_read_as_one_with_paper_round_it(reader, mnist):
    # Strokes touching all four sides leave no paper at the border, which the shadow, line and
    # edge-light rules read: the reader adds the margin. Most of the first 60 test digits
    # cropped so fail without it (1s taken for several lines, 0s for no digit).
    digits, labels = mnist.x_test[:60], mnist.y_test[:60]
    tight = [cropped_to_ink(digit, 0, 4) for digit in digits]
    assert sum(cropped_to_writing(to_grayscale(picture)) for picture in tight) >= 40
    right = 0
    for picture, label in zip(tight, labels, strict=True):
        try:
            reading = reader.read(picture)
        except UserError:
            continue
        if reading.number == str(label):
            right += 1
            ((left, top, width_end, height_end),) = [digit.box for digit in reading.digits]
            assert 0 <= left < width_end <= picture.width and 0 <= top < height_end
            assert height_end <= picture.height  # the margin taken off the box again
    assert right >= 54
    # With a few pixels of paper left, nothing is added: it reads as it always did.
    assert not any(cropped_to_writing(to_grayscale(cropped_to_ink(d, 2, 4))) for d in digits)


def test_a_number_or_a_ruled_page_reaching_every_side_gets_no_margin():
    page = np.full((120, 100), 0.9, np.float32)
    page[::20] = 0.3  # six rules reach the left and right sides
    page[:, 10] = 0.3  # and a margin rule the top and bottom
    assert not cropped_to_writing(page)
    wide = np.full((60, 200), 0.9, np.float32)
    wide[:, 0:8], wide[0:6], wide[-6:], wide[:, -8:] = 0.2, 0.2, 0.2, 0.2
    assert not cropped_to_writing(wide)  # wider than a digit: a number, a frame


def test_non_digit_shapes_are_not_read_as_numbers_of_several_digits(reader):
    read = [(name, reading_or_none(reader, picture)) for picture, name in non_digit_pictures()]
    several = [(name, number) for name, number in read if len(number.strip("-.")) >= 2]
    # A bold % is a 9 touching a 6 in every way the cut can tell (README's limits): it may
    # come out as 96. A scribble of crossing strokes can pass for two touching digits to both
    # models (a wide piece the digit model rejects is read as a pair where the pair model all
    # but rules out "no digit": 3 more of 3,896 non-digits on the choosing data): one at most
    # of these 209 pictures. Nothing else may come out as a number of several digits.
    others = [name for name, number in several if number != "96"]
    assert all(name.startswith("%") or name in ("glyph", "scribble") for name, _ in several)
    assert set(others) <= {"scribble"} and sum(name == "scribble" for name, _ in several) <= 1


def strokes_picture(offset: int) -> Image.Image:
    """Black on white: an L (an upright and a bar) and, 6 px right of the bar, an upright whose
    bottom lies `offset` px below the L's: a 4 in two strokes, or (0) two marks side by side."""
    paper = np.full((360, 360), 255, np.uint8)
    paper[60:180, 90:108] = 0  # the L's upright
    paper[162:180, 90:198] = 0  # its bar
    paper[60 : 180 + offset, 204:222] = 0  # the other upright
    return Image.fromarray(paper)


def test_a_digit_in_two_strokes_ending_at_different_heights_is_joined():
    # Every piece, and both joined, read as a digit at 0.99: no margin over the pieces'
    # product lets the join through; the strokes' lie does (segment.two_strokes).
    def sure(digits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        said = np.full((len(digits), 10), 0.01 / 9, np.float32)
        said[:, 4] = 0.99
        return said, np.ones(len(digits), bool)

    assert len(find_digits(strokes_picture(60), score=sure)) == 1
    assert len(find_digits(strokes_picture(0), score=sure)) == 2  # a shared baseline: two


def as_page(digit: np.ndarray) -> Image.Image:
    """An MNIST digit uint8 (28, 28) as a 280x280 black-on-white file would give it (bilinear)."""
    return Image.fromarray(255 - digit).resize((280, 280), Image.BILINEAR)


def paper_with(digits: list[np.ndarray], at: list[tuple[int, int]], size=(120, 260)) -> Image.Image:
    """MNIST digits, black on white, pasted at (row, column) corners on white paper."""
    paper = np.zeros(size, np.float32)
    for digit, (row, col) in zip(digits, at, strict=True):
        area = paper[row : row + 56, col : col + 56]
        np.maximum(area, np.asarray(Image.fromarray(digit).resize((56, 56))) / 255, out=area)
    return Image.fromarray(np.round(255 * (1 - paper)).astype(np.uint8))


@pytest.mark.parametrize(("length", "number", "noted"), [(12, "7", True), (24, "-7", False)])
def test_a_short_thick_dash_before_a_digit_is_noted_a_long_one_read_as_minus(
    reader, mnist, length, number, noted
):
    page = np.asarray(paper_with([mnist.x_test[0]], [(30, 90)])).copy()  # a 7
    page[54:62, 88 - length : 88] = 0  # 8 px thick at the digit's mid-height: 1.5 or 3 to 1
    reading = reader.read(Image.fromarray(page))
    assert reading.number == number
    assert any("may be a minus sign" in note for note in reading.notes) == noted


def seven_two_with_dots(mnist, dots: tuple[int, ...], grey: int = 0) -> Image.Image:
    """A 7 and a 2 (MNIST test digits 0 and 1) on white paper, a dot a pen wide and `grey`
    (0: black, as the digits) between them at each of the rows `dots` (74: on their baseline)."""
    page = np.asarray(paper_with([mnist.x_test[0], mnist.x_test[1]], [(30, 70), (30, 140)])).copy()
    rows, columns = np.ogrid[: page.shape[0], : page.shape[1]]
    for row in dots:
        page[(rows - row) ** 2 + (columns - 133) ** 2 <= 12] = grey
    return Image.fromarray(page)


@pytest.mark.parametrize(("dots", "number"), [((74,), "7.2"), ((74, 54), "72"), ((74, 44), "72")])
def test_a_dot_between_digits_is_a_point_a_colon_is_noted(reader, mnist, dots, number):
    # A colon ("12:30"), or a digit's crumbs one above another, is not a decimal point: read
    # as one, it made a number ten or a thousand times too small.
    reading = reader.read(seven_two_with_dots(mnist, dots))
    assert reading.number == number
    assert any("may be a colon" in note for note in reading.notes) == (len(dots) > 1)


# Two digits 40 px tall on a baseline at row 50, a pen 4.5 px wide, and marks between them.
DIGIT_BOXES = [(10, 10, 35, 50), (50, 10, 75, 50)]


@pytest.mark.parametrize(
    ("box", "comma"),
    [
        ((40, 46, 46, 60), True),  # a head on the line, a tail below it
        ((39, 44, 47, 58), True),  # leaning, as wide as tall
        ((40, 46, 46, 50), False),  # a point: on the line, not below it
        ((40, 48, 47, 56), False),  # a point drawn low: round, under two pens tall
        ((30, 46, 36, 60), False),  # under the first digit: a piece that came apart from it
        ((42, 44, 43, 60), False),  # a hairline, a piece of an erased rule
        ((40, 20, 46, 34), False),  # high up, between the digits' middles
        ((80, 46, 86, 60), False),  # after the last digit
    ],
)
def test_a_comma_is_a_mark_with_a_tail_below_the_line_between_digits(box, comma):
    assert commas_among(np.array([box]), np.array(DIGIT_BOXES), 40.0, pen=4.5)[0] == comma


def test_a_comma_between_two_drawn_digits_is_read_as_written(reader, mnist):
    page = np.asarray(paper_with([mnist.x_test[0], mnist.x_test[1]], [(30, 70), (30, 150)])).copy()
    rows, columns = np.ogrid[: page.shape[0], : page.shape[1]]
    head = (rows - 72) ** 2 + (columns - 134) ** 2 <= 9
    tail = (rows >= 72) & (rows <= 84) & (np.abs(columns - (136 - (rows - 72) * 0.4)) <= 1.5)
    page[head | tail] = 0
    assert reader.read(Image.fromarray(page)).number == "7,2"


@pytest.mark.parametrize(("grey", "number"), [(60, "7.2"), (150, "72")])
def test_a_point_is_as_dark_as_the_digits_a_faint_speck_is_noted(reader, mnist, grey, number):
    # Dust in a point's place read as one made a number ten or a hundred times too small.
    reading = reader.read(seven_two_with_dots(mnist, (74,), grey))
    assert reading.number == number
    assert any("may be a decimal point or a speck" in note for note in reading.notes) == (
        number == "72"
    )


def test_the_digit_height_leaves_out_flat_components_unless_all_are():
    # label, left, top, width, height, pixels: a digit 40 tall, a bar 30 wide and 8 tall
    digit, bar = [1, 40, 10, 20, 40, 300], [2, 5, 25, 30, 8, 200]
    assert digit_height(np.array([digit, bar])) == 40
    assert digit_height(np.array([bar, [3, 70, 25, 30, 6, 180]])) == 7


def test_a_minus_beside_one_digit_does_not_set_the_digit_height(reader, mnist):
    # A bar as substantial as the digit, a little above its middle: taken into the median of
    # the two heights, it halved the digit height and failed the minus's tests measured by it.
    page = np.asarray(paper_with([mnist.x_test[0]], [(30, 90)])).copy()  # a 7
    page[53:59, 55:85] = 0
    assert reader.read(Image.fromarray(page)).number == "-7"


@pytest.mark.parametrize("light", [0.0, 0.3, 0.7])
def test_squared_paper_with_a_line_along_the_border_under_uneven_light_keeps_its_digits(
    reader, mnist, light
):
    # A grid line along the top and left sides and light falling off to both sides made the
    # border's spread, and so the ink's noise floor, as strong as the digits' faint strokes.
    page = np.asarray(paper_with([mnist.x_test[0], mnist.x_test[1]], [(30, 70), (30, 130)]))
    grid = np.zeros(page.shape, np.float32)
    grid[::16], grid[:, ::16] = 1, 1
    shade = 1 - light * np.abs(np.linspace(-1, 1, page.shape[1]))[np.newaxis, :]
    paper = np.minimum(page / 255, 1 - 0.6 * grid) * shade * 230
    assert reader.read(Image.fromarray(paper.astype(np.uint8))).number == "72"


def test_upright_rules_beside_a_bold_digit_on_squared_paper_are_erased():
    # The level rules above and below a bold digit's soft edge made its columns an upright
    # run, joined with the two upright rules through it: all three stayed as one "stroke",
    # and the rules, the picture's height, joined the digit into one tall refused piece.
    ink = np.zeros((107, 165), np.float32)
    for row in (21, 53, 86):
        ink[row : row + 4, :] = 0.35
    for column in (6, 29, 52, 75, 98, 121, 144):
        ink[:, column : column + 4] = 0.35
    ink[29:81, 45:85] = np.maximum(ink[29:81, 45:85], 0.15)  # the soft edge
    ink[35:75, 55:72] = 0.95  # the strokes
    mask = erase_lines(ink)
    assert mask[35:75, 55:72].all()
    for column in (6, 29, 52, 75, 98):
        assert not mask[:29, column : column + 4].any() and not mask[81:, column : column + 4].any()


def test_a_thin_one_beside_an_upright_rule_of_squared_paper_keeps_its_ink():
    # Joined to the rule beside it through the level rules' pixels, the 1 was one thick run
    # with it, then judged with the rule: 2 of its 480 pixels were left.
    ink = np.zeros((280, 280), np.float32)
    for line in range(20, 280, 30):
        ink[line : line + 2, :] = 0.3
    for line in range(15, 280, 30):
        ink[:, line : line + 2] = 0.3
    ink[60:220, 138:141] = 0.9  # a 1, a pixel from the rule at 135
    ink[100:160, 200:203], ink[100:103, 180:203] = 0.9, 0.9  # a 7 beside it
    mask = erase_lines(ink)
    assert mask[60:220, 138:141].all()
    assert not mask[:, 15:17].any()


def test_a_margin_rule_from_edge_to_edge_beside_a_thin_pen_is_erased():
    # A notebook's margin rule, two pixels of 0.6 ink, has more than half the ink across of
    # a thin pen's stroke (2.3 pixels): kept as a stroke, it was read as a 1 before the digits.
    ink = np.zeros((64, 95), np.float32)
    ink[10, :], ink[52, :] = 0.3, 0.3  # the hairlines above and below the digits
    ink[:, 3:5] = 0.6  # the margin rule, top to bottom
    ink[18:43, 30:32], ink[18:20, 30:50], ink[18:43, 48:50] = 1.0, 1.0, 1.0  # a thin-pen digit
    ink[18:43, 32] = 0.3  # its soft edge
    mask = erase_lines(ink)
    assert not mask[:, 3:5].any()
    assert mask[18:43, 30:32].all() and mask[18:43, 48:50].all()


@pytest.mark.parametrize(("one", "top"), [(0.9, 15), (0.5, 2)])
def test_a_one_from_edge_to_edge_keeps_its_ink(one, top):
    # A 1 cropped tight runs off the picture as a rule does: with the pen's ink across, or
    # thinner than the pen where the digit beside it reaches the edges too (a tight crop).
    ink = np.zeros((60, 80), np.float32)
    ink[:, 20:23] = one  # the 1, top to bottom
    bottom = 60 - top
    ink[top:bottom, 45:48], ink[top:bottom, 62:65] = 1.0, 1.0  # a digit beside it
    ink[top : top + 3, 45:65], ink[bottom - 3 : bottom, 45:65] = 1.0, 1.0
    assert erase_lines(ink)[:, 20:23].all()


def test_one_digit_on_plain_paper_is_normalised_exactly_as_before(mnist):
    image = paper_with([mnist.x_test[0]], [(30, 90)])
    (candidate,) = find_digits(image)
    assert np.array_equal(candidate.digit, to_mnist(image))


def test_a_piece_hundreds_of_pixels_wide_is_cut_on_its_pooled_copy():
    """Cuts are found on a copy pooled to about CUT_SIDE pixels: the valleys are looked for
    across that copy's width, not the piece's (once an IndexError on a sheet's edge)."""
    own = np.zeros((40, 400), bool)
    own[18:22] = True
    own[5:35, 195:205] = True
    for cut in cuts(Part(own, (0, 0, 400, 40)), 40.0, 0.0):
        assert cut.left.width + cut.right.width <= 400


def test_a_tall_one_drawn_alone_is_not_taken_for_a_line():
    canvas = np.zeros((280, 280), np.uint8)
    canvas[50:230, 130:150] = 255  # a 1 down the middle of the web app's canvas, its own pen
    (candidate,) = find_digits(Image.fromarray(canvas))
    assert np.allclose(candidate.box, (130, 50, 150, 230), atol=1)  # the 3x3 denoise spreads it


def test_boxes_are_in_the_original_pixels_of_a_big_jpeg(mnist):
    image = paper_with([mnist.x_test[0], mnist.x_test[1]], [(30, 40), (30, 150)])
    big = image.resize((image.width * 20, image.height * 20)).convert("RGB")
    buffer = io.BytesIO()
    big.save(buffer, "JPEG", quality=90)
    decoded = open_image(buffer.getvalue())
    assert decoded.width < big.width  # decoded at a reduced scale ...
    boxes = [c.box for c in find_digits(decoded)]
    small = [c.box for c in find_digits(image)]
    for box, expected in zip(boxes, small, strict=True):  # ... yet boxed in the file's pixels
        assert np.allclose(box, np.asarray(expected) * 20, atol=40)


def test_two_lines_of_digits_are_refused_in_one_line(mnist):
    image = paper_with([mnist.x_test[0], mnist.x_test[1]], [(0, 40), (64, 40)], size=(130, 140))
    with pytest.raises(UserError, match=r"^two\.png: several lines of writing"):
        find_digits(image, "two.png")


def test_a_page_of_marks_is_one_line_not_a_flood(mnist):
    many = [mnist.x_test[i] for i in range(MAX_CANDIDATES + 4)]
    at = [(30, 40 * n) for n in range(len(many))]
    image = paper_with(many, at, size=(120, 40 * len(many) + 60))
    with pytest.raises(UserError) as raised:
        find_digits(image, "page.png")
    assert str(raised.value) == (
        f"page.png: more than {MAX_CANDIDATES} digit candidates: "
        "this reads one line of digits, not a page"
    )


def test_a_digit_in_a_form_box_with_a_speck_is_the_digit_alone(mnist):
    eight = mnist.x_test[61]
    assert mnist.y_test[61] == 8
    plain = paper_with([eight], [(32, 100)])
    paper = np.asarray(plain).copy()
    paper[14:17, 70:190] = paper[104:107, 70:190] = 0  # a printed box, 3 px, as dark as ink
    paper[14:107, 70:73] = paper[14:107, 187:190] = 0
    paper[4:7, 240:243] = 0  # and a speck of dirt in the corner
    (candidate,) = find_digits(Image.fromarray(paper))
    (alone,) = find_digits(plain)
    assert candidate.box == alone.box
    assert np.abs(candidate.digit.astype(int) - alone.digit).max() <= 1


@pytest.mark.slow
def test_single_digits_saved_the_way_people_save_them_still_read(model, mnist, tmp_path):
    # tests/test_preprocess.py's person-style set, through find_digits as test_model.py reads it.
    rng = np.random.default_rng(PERSON_SEED)
    chosen = rng.choice(len(mnist.x_test), PERSON_DIGITS, replace=False)
    files = person_style_files(mnist.x_test[chosen], PERSON_SEED)
    read = [digits_or_none(open_image(raw)) for raw, _ in files]
    singles = [found[0].digit for found in read if len(found) == 1]
    guesses = iter(model.predict(np.stack(singles)).argmax(axis=1))
    right = sum(
        len(found) == 1 and next(guesses) == label
        for found, label in zip(read, mnist.y_test[chosen], strict=True)
    )
    print(f"\nPerson-style digits through find_digits: {right / PERSON_DIGITS:.2%}")
    # Models trained alike with other seeds read 98.8% to 99.2% of them.
    assert right / PERSON_DIGITS >= 0.985


@pytest.mark.parametrize("shape", [(280, 280), (600, 500)])
def test_labelling_agrees_with_opencv_whichever_label_type_it_picks(shape):
    import cv2

    mask = (np.random.default_rng(3).random(shape) < 0.3).astype(np.uint8)
    labels, stats = labelled(mask)
    # uint16 only where no picture of that size can have more components than it counts.
    assert labels.dtype == (np.uint16 if shape == (280, 280) else np.int32)
    count, wide, wide_stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    np.testing.assert_array_equal(labels, wide)
    np.testing.assert_array_equal(stats, wide_stats)
    assert len(stats) == count


def test_label_lookup_agrees_with_numpy_isin():
    labels = np.random.default_rng(4).integers(0, 40, (120, 90)).astype(np.uint16)
    for chosen in ([], [0], [3, 17, 39], [5, 5, 41], np.array([12, 1])):
        np.testing.assert_array_equal(among(labels, chosen), np.isin(labels, chosen))


def test_opening_by_box_sums_agrees_with_opencv_s_opening():
    rng = np.random.default_rng(5)
    for _ in range(300):
        height, width = rng.integers(1, 30), rng.integers(1, 300)
        mask = (rng.random((height, width)) < rng.uniform(0.5, 0.995)).astype(np.uint8)
        for length in (2, 3, int(rng.integers(2, width + 3)), width, width + 1):
            kernel = np.ones((1, max(2, length)), np.uint8)
            expected = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
            np.testing.assert_array_equal(opened_along_rows(mask, max(2, length)), expected)


def test_the_shadow_test_s_shortcuts_agree_with_its_full_computation():
    def full(gray):  # the test spelled out: both percentile spreads, the contrast by abs
        contrast = float(np.abs(gray - np.median(border(gray))).max())
        if spread(border(gray)) <= UNEVEN_LIGHT * contrast:
            return None
        paper = paper_light(gray)
        return paper if spread(border(paper)) > UNEVEN_LIGHT * contrast else None

    rng = np.random.default_rng(7)
    rows, cols = np.mgrid[0:120, 0:160]
    shadows = 0
    for _ in range(60):
        gray = np.full((120, 160), rng.uniform(0.6, 1.0), np.float32)
        if rng.random() < 0.5:  # a shadow's edge across the paper
            gray[cols * rng.uniform(-1, 1) + rng.uniform(0, 160) > rows] *= rng.uniform(0.3, 0.9)
        gray += rng.normal(0, rng.uniform(0, 0.05), gray.shape).astype(np.float32)
        gray[40:80, 60:70] = rng.uniform(0.0, 0.3)  # a stroke
        expected, got = full(gray), shadowed(gray)
        assert (expected is None) == (got is None)
        if got is not None:
            shadows += 1
            np.testing.assert_array_equal(got, expected)
    assert 5 < shadows < 55  # both answers were put to the test


def test_the_line_search_is_skipped_only_where_no_line_can_be():
    # straight_runs looks for runs half the width long: 100 px in a picture 200 px wide.
    dash = np.zeros((40, 200), np.uint8)
    dash[10:12, 60:150] = 1  # 90 px, far from both sides
    assert not could_hold_a_run(dash, 100) and not straight_runs(dash).any()
    line = np.zeros_like(dash)
    line[10:12, 40:160] = 1  # 120 px
    assert could_hold_a_run(line, 100)
    assert straight_runs(line)[10:12, 41:160].all()  # an even-length opening drops an end pixel
    side = np.zeros_like(dash)
    side[10:12, : LINE_GAP + 60] = 1  # touching a side, where a shorter run may survive
    assert could_hold_a_run(side, 100)


@pytest.mark.parametrize("scale", [1, 10])
def test_a_digit_on_grey_paper_between_dark_bands_is_found(mnist, scale):
    # The bands fill most of the border, so the border's median is theirs, not the paper's.
    digit = mnist.x_test[0]
    picture = np.maximum(digit, 70).astype(np.uint8)
    picture[:, :4] = picture[:, -4:] = 0
    page = Image.fromarray(picture).resize((28 * scale, 28 * scale), Image.Resampling.NEAREST)
    (found,) = find_digits(page)
    plain = find_digits(Image.fromarray(digit).resize(page.size, Image.Resampling.NEAREST))[0]
    assert np.abs(found.digit.astype(int) - plain.digit.astype(int)).mean() < 10


def test_a_bold_digit_cropped_tight_keeps_its_ink():
    ink = np.zeros((20, 14), np.float32)
    ink[2:18, 1:13] = 1.0
    ink[6:14, 5:9] = 0.0  # a thick 0 filling most of its picture, at full strength
    np.testing.assert_array_equal(without_lit_paper(ink, "bold"), ink)


def against_a_side(digit: np.ndarray, side: int) -> np.ndarray:
    """An MNIST digit uint8 (28, 28) moved until its ink touches one side of the picture
    (0 top, 1 bottom, 2 left, 3 right): a picture cropped tight to one side."""
    rows, cols = np.nonzero(digit)
    shift, axis = [(-rows.min(), 0), (27 - rows.max(), 0), (-cols.min(), 1), (27 - cols.max(), 1)][
        side
    ]
    return np.roll(digit, shift, axis)


def test_digits_cropped_tight_against_a_side_are_read_not_taken_for_edge_light(reader, mnist):
    digits, labels = mnist.x_test[:200], mnist.y_test[:200]
    pages = [
        Image.fromarray(255 - against_a_side(digit, n % 4)).resize((280, 280))
        for n, digit in enumerate(digits)
    ]
    read = [reading_or_none(reader, page) for page in pages]
    assert sum(number in ("", "error") for number in read) <= 4  # "no digit found", refused
    assert (
        np.mean([number == str(label) for number, label in zip(read, labels, strict=True)]) >= 0.96
    )


def test_a_digit_refused_at_a_numbers_end_is_read_where_the_second_model_judges_it_one(
    reader, mnist
):
    # MNIST test digits the digit model refuses yet reads IN_LINE_CONFIDENCE sure, and the
    # strong model accepts, each written after two digits the digit model is sure of.
    digits, labels = mnist.x_test[:5000], mnist.y_test[:5000]
    said = reader.classifier.classify(digits)
    strong = shipped_classifier(SECOND_OPINION_MODEL)
    confidence = said.probabilities.max(axis=1)
    sure = np.flatnonzero(confidence > 0.9999)[:2]
    refused = ~said.is_digit & (confidence >= IN_LINE_CONFIDENCE)
    doubted = np.flatnonzero(refused & strong.classify(digits).is_digit)
    alone = Reader.from_classifier(reader.classifier, second_opinion=False)
    first = "".join(str(labels[n]) for n in sure)
    taken = 0
    for n in doubted[:12]:
        page = paper_with([digits[k] for k in (*sure, n)], [(30, 10), (30, 80), (30, 170)])
        before = alone.read(page)
        if before.number != first or refused_at_ends(before.digits) != ([], [2]):
            continue  # read otherwise, or not of the digits' size: not the case in question
        # What the strong model says of the piece as the picture gives it, not as MNIST does.
        verdict = strong.classify(before.digits[2].image[np.newaxis])
        reading = reader.read(page)
        if verdict.is_digit[0]:
            taken += 1
            assert reading.number == first + str(int(np.argmax(verdict.probabilities[0])))
            assert any("mnist_cnn_strong reads it as" in note for note in reading.notes)
        else:
            assert reading.number == first and reading.notes == before.notes
    assert taken >= 3


def test_a_piece_resegmentation_made_is_read_as_it_was_scored(mnist):
    # Two pieces 200 px tall: a cut's side is read from the copy its cut was chosen on (read
    # at full size, a side of 27 passed for no digit), a piece found whole at full size.
    digit = np.asarray(Image.fromarray(mnist.x_test[0]).resize((200, 200)), np.float32) / 255
    ink = np.concatenate([digit, digit], axis=1)
    parts = [Part(digit > 0, (0, 0, 200, 200)), Part(digit > 0, (200, 0, 400, 200))]
    pieces = Pieces(parts, narrow=[], made=[1], little=[], ink=ink, height=200.0, scale=1.0)
    found, made = candidate_digits(pieces)
    np.testing.assert_array_equal(found, parts[0].digit(ink))
    np.testing.assert_array_equal(made, parts[1].digit(ink, SCORED_SIDE))
    assert np.abs(found.astype(int) - made.astype(int)).max() > 0  # the two readings differ
