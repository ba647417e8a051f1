"""The reading API: pictures in, numbers out. The CLI and the web app read through it.

    from mnist_cnn import Reader
    reader = Reader()                      # loads the model once
    reading = reader.read("photo.jpg")     # a path, bytes, a NumPy array or a PIL image
    reading.number, reading.is_digit       # "42", True
    reading.digits[0].confidence           # 0.998

Every candidate found in a picture is in `Reading.digits`, left to right, each with its own
not-a-digit verdict; the number is made of those judged digits.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import takewhile
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_cnn.data import IMAGE_SIZE
from mnist_cnn.engine import engine_name
from mnist_cnn.errors import SeveralLinesError, UnreadableImageError, UserError
from mnist_cnn.pair import SHIPPED_PAIR_PATH, shipped_pair_score
from mnist_cnn.predict import Classifier, load_classifier, shipped_classifier, top_k
from mnist_cnn.preprocess import (
    DECODE_SCALE,
    check_pixels,
    framed_digit,
    frames_one_digit,
    ink_span,
    open_image,
    row_gap,
)
from mnist_cnn.segment import Candidate, Found, Symbol, find_numbers, place, whole_picture

Source = str | Path | bytes | np.ndarray | Image.Image
READ_WHOLE = "read whole, as one digit filling the picture: surer than its parts read alone"
# The second view reads a picture whole only when its ink spans this share of it
# (preprocess.ink_span): an MNIST digit's ink spans 18 to 20 of its 28 pixels (0.64 to 0.71);
# a digit drawn smaller sits in the picture as in a drawing (a quarter to a half of its
# height), and whole it would be small and off-centre, which the model misreads surely (a 0
# as a 6 at 99.99%).
FRAME_FILL = 0.6
# ... and, when its pieces were refused as several lines, only when no blank band this share
# of its height (3 of MNIST's 28 rows) runs across it: lines of writing have one between them;
# a digit broken by a blot or drawn as its outline's pieces does not.
LINE_GAP = 0.1
# Pictures segmented together: their narrow pieces are read in one call of each model
# (segment.find_numbers), and their work-size ink maps, up to 4 MB each, are held till then.
PICTURES_AT_ONCE = 32
DECIMALS = 6  # probabilities and scores in JSON: finer than any float32 difference that matters
# A candidate the not-a-digit verdict refused between two accepted digits is read as a digit
# where it stands in their line: its height IN_LINE_HEIGHT times their median height, its
# middle within IN_LINE_BAND of a height of their band, and its confidence IN_LINE_CONFIDENCE
# or more (a non-digit's outlier-exposure target is 0.1 for every digit). The verdict's
# threshold is fitted on digits alone and refuses 0.7% of them; among digits, a mark of a
# digit's size is most often one of them, and one dropped from inside a number changes its
# value tenfold. Not so at either end, where a unit or a letter ("12kg", "A12") stands: there
# SECOND_OPINION_MODEL decides (below). Chosen on choosing data (docs/reading.md).
IN_LINE_HEIGHT = (0.75, 1.3)
IN_LINE_BAND = 0.5
IN_LINE_CONFIDENCE = 0.3
# A refused candidate at either end of the number, where a unit or a letter may stand, is
# asked of a second model, the shipped SECOND_OPINION_MODEL (a two-stage classifier: a
# second model reviews the first's rejections), where it meets IN_LINE_HEIGHT, IN_LINE_BAND
# and IN_LINE_CONFIDENCE beside the accepted digits (one is enough), and read as that model
# reads it where its own verdict accepts it; each side from the nearest piece outward, up to
# the first not taken. A poorly written digit at an end is the digit the verdict most often
# drops from a number: of 1,000 choosing numbers, 7 of the 10 read a digit short or long
# without it, 1 with it. Of the refused end pieces of the choosing data, the strong model's
# verdict takes 10 of the 14 digits and 42 of the 755 letters; the default model's
# confidence at 0.5 or more would take 9 and 129. (1,829 of 1,900 numbers read right against
# 1,821; of the 969 numbers with a letter or a unit at one end, 696 read as their digits
# alone against 713; docs/reading.md.)
SECOND_OPINION_MODEL = "strong"


@dataclass(frozen=True)
class DigitReading:
    """One candidate of a picture and what the model says of it.

    `probabilities` is float32 (10,); `box` is (left, top, right, bottom) in the picture's
    pixels; `image` is the uint8 (28, 28) the model saw (light ink on black); `ood_score` is
    the out-of-distribution score that `is_digit` thresholds (ood.py). For a piece a second
    model read (`read_at_ends`, with a note) all but `box` and `image` are that model's.
    """

    digit: int
    confidence: float
    probabilities: np.ndarray
    box: tuple[int, int, int, int]
    is_digit: bool
    ood_score: float
    image: np.ndarray

    def top_k(self, k: int) -> list[tuple[int, float]]:
        """The k likeliest (digit, probability) pairs, best first."""
        return top_k(self.probabilities, k)

    def to_dict(self, k: int = 1) -> dict:
        """JSON-ready: digit, confidence, probabilities, box, is_digit, ood_score, top_k."""
        return {
            "digit": self.digit,
            "confidence": round(self.confidence, DECIMALS),
            "probabilities": [round(float(p), DECIMALS) for p in self.probabilities],
            "box": list(self.box),
            "is_digit": self.is_digit,
            "ood_score": round(self.ood_score, DECIMALS),
            "top_k": [{"digit": d, "probability": round(p, DECIMALS)} for d, p in self.top_k(k)],
        }


@dataclass(frozen=True)
class Reading:
    """What was read in one picture: its candidates left to right, and its size (width,
    height) in the pixels the boxes are in."""

    source: str
    digits: tuple[DigitReading, ...]
    size: tuple[int, int]
    symbols: tuple[Symbol, ...] = ()  # the decimal point, commas and leading minus found
    notes: tuple[str, ...] = ()  # what could not be told apart (a point from a speck)

    @property
    def accepted(self) -> list[DigitReading]:
        """The candidates judged digits: the number's digits, left to right."""
        return [digit for digit in self.digits if digit.is_digit]

    @property
    def number(self) -> str:
        """The digits judged digits, with the decimal point, commas and minus where they were
        found, as a string ("-3.14", "1,000"; "" when no digit is)."""
        if not self.accepted:
            return ""
        marks = [(digit.box[0], str(digit.digit)) for digit in self.accepted]
        marks += [(symbol.box[0], symbol.text) for symbol in self.symbols]
        return "".join(text for _, text in sorted(marks))

    @property
    def is_digit(self) -> bool:
        """Whether anything in the picture was judged a digit."""
        return bool(self.accepted)

    @property
    def likeliest(self) -> DigitReading:
        """The candidate the model is surest of: what a picture of no digit looks most like."""
        return max(self.digits, key=lambda digit: digit.confidence)

    def to_dict(self, k: int = 1) -> dict:
        """JSON-ready, one shape for every picture: path, number, is_digit, size, digits
        (every candidate, DigitReading.to_dict with the top `k`) and notes."""
        return {
            "path": self.source,
            "number": self.number,
            "is_digit": self.is_digit,
            "size": list(self.size),
            "digits": [digit.to_dict(k) for digit in self.digits],
            "notes": list(self.notes),
        }


def array_to_image(pixels: np.ndarray, name: str) -> Image.Image:
    """A NumPy picture as Pillow reads a file: uint8, or float in [0, 1]; (H, W) grey, or
    (H, W, 3) RGB, or (H, W, 4) RGBA; either polarity.

    Raises UnreadableImageError for another shape or dtype, or values outside the range.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (3, 4))):
        raise UnreadableImageError(f"{name}: an array of shape {pixels.shape} is not a picture")
    if np.issubdtype(pixels.dtype, np.floating):
        if not np.isfinite(pixels).all() or pixels.min() < 0 or pixels.max() > 1:
            raise UnreadableImageError(f"{name}: float pixels must lie in [0, 1]")
        pixels = np.round(pixels * 255)
    elif pixels.dtype != np.uint8:
        raise UnreadableImageError(f"{name}: pixels must be uint8 or float, not {pixels.dtype}")
    return Image.fromarray(pixels.astype(np.uint8))


def as_image(source: Source, name: str) -> Image.Image:
    """Any Source as a decoded Pillow image, checked as a file would be.

    Raises UnreadableImageError for what cannot be read.
    """
    if isinstance(source, np.ndarray):
        image = array_to_image(source, name)
    elif isinstance(source, Image.Image):
        image = source
    else:
        return open_image(source, name)  # a str path is taken as a Path there
    check_pixels(image, name)
    return image


def describe(source: Source) -> str:
    """The name of a source in messages: its path, or what kind of object it is."""
    if isinstance(source, str | Path):
        return str(source)
    return {bytes: "image bytes", np.ndarray: "array"}.get(type(source), "image")


def may_read_whole(result: Reading | UserError, frame: Candidate | None) -> bool:
    """Whether a picture's reading may give way to its whole frame's: the picture frames one
    digit (`frame` was made, and its ink spans FRAME_FILL of it: `ink_span`) and either its
    pieces were refused as several lines with no blank band between them (`row_gap`), nothing
    in it read as a digit, or one candidate was found and nothing else (no point, no minus)."""
    if frame is None or ink_span(frame.digit) < FRAME_FILL:
        return False
    if not isinstance(result, Reading):
        return isinstance(result, SeveralLinesError) and row_gap(frame.digit) < LINE_GAP
    return not result.is_digit or (len(result.digits) == 1 and not result.symbols)


def whole_wins(result: Reading | SeveralLinesError, whole: DigitReading) -> bool:
    """Whether the whole frame's reading `whole` replaces `result`: it is a digit, and
    `result` was refused or nothing in it was a digit, or its one candidate read another digit
    less surely. Two views of one digit, the surer answering: a line or specks across the
    digit, which its crop takes in, make the crop an odd picture, where the frame keeps the
    digit as a benchmark shows it."""
    if not whole.is_digit:
        return False
    if not isinstance(result, Reading) or not result.is_digit:
        return True
    (part,) = result.digits
    return whole.digit != part.digit and whole.confidence > part.confidence


def of_their_size(candidate: DigitReading, accepted: Sequence[DigitReading]) -> bool:
    """Whether a `candidate`'s box is that of a digit in the `accepted` digits' line (at least
    one): IN_LINE_HEIGHT times their median height, its middle no further than IN_LINE_BAND
    times that height outside their band (their median top and bottom)."""
    _, top, _, bottom = candidate.box
    boxes = np.array([digit.box for digit in accepted], np.float64)
    line_top, line_bottom = np.median(boxes[:, [1, 3]], axis=0)
    height = float(np.median(boxes[:, 3] - boxes[:, 1]))
    middle = (top + bottom) / 2
    return (
        IN_LINE_HEIGHT[0] * height <= bottom - top <= IN_LINE_HEIGHT[1] * height
        and line_top - IN_LINE_BAND * height <= middle <= line_bottom + IN_LINE_BAND * height
    )


def stands_in_line(candidate: DigitReading, accepted: Sequence[DigitReading]) -> bool:
    """Whether a refused `candidate` stands between the `accepted` digits (at least two) as a
    digit of their line would: its middle between theirs and in none of their boxes,
    `of_their_size`, and its likeliest digit IN_LINE_CONFIDENCE sure."""
    if len(accepted) < 2 or candidate.confidence < IN_LINE_CONFIDENCE:
        return False
    centre = (candidate.box[0] + candidate.box[2]) / 2
    boxes = np.array([digit.box for digit in accepted], np.float64)
    centres = (boxes[:, 0] + boxes[:, 2]) / 2
    inside = np.any((boxes[:, 0] <= centre) & (centre <= boxes[:, 2]))
    if inside or not centres.min() < centre < centres.max():
        return False
    return of_their_size(candidate, accepted)


def read_in_line(digits: Sequence[DigitReading]) -> tuple[tuple[DigitReading, ...], list[str]]:
    """`digits` (left to right) with every refused candidate that `stands_in_line` of the
    accepted ones judged a digit, and a note for each, naming its place in the number."""
    accepted = [digit for digit in digits if digit.is_digit]
    taken = [not digit.is_digit and stands_in_line(digit, accepted) for digit in digits]
    read = tuple(
        replace(digit, is_digit=True) if take else digit
        for digit, take in zip(digits, taken, strict=True)
    )
    lefts = [digit.box[0] for digit in read if digit.is_digit]
    notes = [
        f"digit {sum(other < digit.box[0] for other in lefts) + 1} reads most like "
        f"{digit.digit} ({digit.confidence:.1%}) and was judged not a digit, but stands "
        "between digits of its size: read as a digit"
        for digit, take in zip(read, taken, strict=True)
        if take
    ]
    return read, notes


def refused_at_ends(digits: Sequence[DigitReading]) -> tuple[list[int], list[int]]:
    """The indices of the refused candidates (`digits`, left to right) before the first
    accepted digit and after the last (none where none is accepted), each side from the
    nearest outward and up to the first that is not `of_their_size` or IN_LINE_CONFIDENCE
    sure: those a second model may be asked of."""
    accepted = [n for n, digit in enumerate(digits) if digit.is_digit]
    if not accepted:
        return [], []
    line = [digits[n] for n in accepted]

    def may_be_digit(n: int) -> bool:
        return digits[n].confidence >= IN_LINE_CONFIDENCE and of_their_size(digits[n], line)

    before = takewhile(may_be_digit, range(accepted[0] - 1, -1, -1))
    return list(before), list(takewhile(may_be_digit, range(accepted[-1] + 1, len(digits))))


def read_at_ends(
    digits: Sequence[DigitReading], ends: tuple[list[int], list[int]], second: Classifier
) -> tuple[tuple[DigitReading, ...], list[str]]:
    """`digits` (left to right) with each candidate at `ends` (refused_at_ends) that the
    `second` classifier judges a digit replaced by its reading (its probabilities, score and
    verdict), each side from the nearest outward up to the first it refuses; and a note for
    each, the left side's from the nearest outward too."""
    asked = [*ends[0], *ends[1]]
    if not asked:
        return tuple(digits), []
    said = second.classify(np.stack([digits[n].image for n in asked]))
    judged = zip(said.probabilities, said.scores, said.is_digit, strict=True)
    verdicts = dict(zip(asked, judged, strict=True))
    count = sum(digit.is_digit for digit in digits)
    read, notes = list(digits), []
    for side, where in zip(ends, (place(0), place(count, count)), strict=True):
        for n in side:
            probabilities, score, is_digit = verdicts[n]
            if not is_digit:
                break
            digit = int(np.argmax(probabilities))
            read[n] = replace(
                digits[n],
                digit=digit,
                confidence=float(probabilities[digit]),
                probabilities=probabilities,
                is_digit=True,
                ood_score=float(score),
            )
            notes.append(
                f"a piece {where} reads most like {digits[n].digit} ({digits[n].confidence:.1%})"
                f" and was judged not a digit, but is of the digits' size and "
                f"{second.engine.path.stem} reads it as {digit} ({read[n].confidence:.1%}), a "
                f"digit: read as {digit}"
            )
    return tuple(read), notes


def refused_notes(digits: Sequence[DigitReading]) -> list[str]:
    """Notes on the candidates judged not digits in a picture where others were (`digits`
    left to right): the number is read without them, which a reader of the number alone
    would not know (a digit the verdict refused makes 60050 read 6005). No notes where no
    candidate is a digit: the answer is then "not a digit"."""
    count = sum(digit.is_digit for digit in digits)
    if count == 0:
        return []
    notes, after = [], 0
    for digit in digits:
        if digit.is_digit:
            after += 1
            continue
        notes.append(
            f"a piece {place(after, count)} reads most like {digit.digit} "
            f"({digit.confidence:.1%}) but was judged not a digit: read without it"
        )
    return notes


def stack(candidates: list[Candidate]) -> np.ndarray:
    """The candidates' digits as one uint8 (N, 28, 28) batch (N may be 0)."""
    if not candidates:
        return np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    return np.stack([candidate.digit for candidate in candidates])


def size_of(image: Image.Image) -> tuple[int, int]:
    """(width, height) in the original picture's pixels, before any reduced JPEG decoding."""
    scale = float(image.info.get(DECODE_SCALE, 1.0))
    return round(image.width * scale), round(image.height * scale)


class Reader:
    """Reads the digits and numbers in pictures with one trained model, loaded once.

    `model_path`: a `.keras`, `.h5`, `.onnx` or `.tflite` file; None reads with your latest
    trained model, else the shipped one (`shipped=True`: always the shipped one), on its ONNX
    export when that is current. `accept_all` turns the not-a-digit verdict off. `pairs`
    reads a wide piece that no cut splits with the shipped pair model (pair.py), loaded at
    the first such piece; `second_opinion` asks the shipped SECOND_OPINION_MODEL of a piece
    refused at a number's end (`read_at_ends`), loaded at the first such piece. `notes` holds
    what the caller may show the user (which model, statistics missing).

    Raises UserError when the model cannot be loaded.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        shipped: bool = False,
        accept_all: bool = False,
        verbose: bool = False,
        pairs: bool = True,
        second_opinion: bool = True,
    ):
        path = None if model_path is None else Path(model_path)
        self.classifier, self.notes = load_classifier(path, accept_all, verbose, shipped)
        self.pairs, self.second_opinion = pairs, second_opinion

    @classmethod
    def from_classifier(
        cls, classifier: Classifier, pairs: bool = True, second_opinion: bool = True
    ) -> Reader:
        """A Reader around a classifier already loaded (tests, the web app's warm copy)."""
        reader = cls.__new__(cls)
        reader.classifier, reader.notes = classifier, []
        reader.pairs, reader.second_opinion = pairs, second_opinion
        return reader

    def second_classifier(self) -> Classifier | None:
        """The shipped SECOND_OPINION_MODEL for pieces refused at a number's ends, or None
        (`second_opinion` off, not shipped, or the very model that reads: the same .keras
        file behind their not-a-digit statistics)."""
        second = shipped_classifier(SECOND_OPINION_MODEL) if self.second_opinion else None
        own = self.classifier.stats
        same = second is not None and own is not None
        return None if same and own.model_sha256 == second.stats.model_sha256 else second

    @property
    def pair_score(self):
        """segment.PairScore of the shipped pair model, or None (`pairs` off, or not shipped)."""
        shipped = SHIPPED_PAIR_PATH.is_file() or SHIPPED_PAIR_PATH.with_suffix(".onnx").is_file()
        return self.read_pairs if self.pairs and shipped else None

    def read_pairs(self, crops: np.ndarray) -> np.ndarray:
        """The shipped pair model's probabilities for uint8 wide pieces (segment.PairScore)."""
        return shipped_pair_score()(crops)

    @property
    def model_path(self) -> Path:
        """The model file that answers."""
        return self.classifier.engine.path

    @property
    def engine(self) -> str:
        """What runs the model: "ONNX Runtime", "LiteRT" or "Keras"."""
        return engine_name(self.classifier.engine)

    def read(self, source: Source, *, single: bool = False, name: str | None = None) -> Reading:
        """Read one picture: a path, the file's bytes, a NumPy array or a PIL image.

        `single` reads the whole picture as one digit. Raises UnreadableImageError,
        NoDigitFoundError or SeveralLinesError (all UserError), each naming `name` (default:
        the path, or the kind of object).
        """
        (result,) = self.read_many([source], single=single, names=None if name is None else [name])
        if isinstance(result, UserError):
            raise result
        return result

    def read_many(
        self,
        sources: Iterable[Source],
        *,
        single: bool = False,
        names: Sequence[str] | None = None,
    ) -> list[Reading | UserError]:
        """Read many pictures, their candidates in one batched model pass (segmentation's own
        calls are batched over PICTURES_AT_ONCE pictures; the pieces refused at a number's
        ends are asked of the second model picture by picture, few as they are); a picture
        that fails gives its error in its place, so one bad file does not stop the rest.

        A picture close to square in which nothing read as a digit, or one candidate alone
        was found, is read again whole, as one digit filling it (preprocess.framed_digit),
        and answered so, with a note, when that reads as a digit, and as another digit more
        surely than the candidate (`whole_wins`).
        """
        sources = list(sources)
        names = [describe(source) for source in sources] if names is None else list(names)
        found: list[tuple[str, tuple[int, int], Found] | UserError] = []
        frames: list[Candidate | None] = []
        for start in range(0, len(sources), PICTURES_AT_ONCE):
            chunk = slice(start, start + PICTURES_AT_ONCE)
            images = [self.decode(*each) for each in zip(sources[chunk], names[chunk], strict=True)]
            frames += [self.frame(image) for image in images]
            found += self.find(images, names[chunk], single)
        pictures = [entry for entry in found if not isinstance(entry, UserError)]
        digits = [candidate for _, _, number in pictures for candidate in number.digits]
        readings = iter(self.digit_readings(digits, stack(digits)))
        results = [
            entry if isinstance(entry, UserError) else self.reading(entry, readings)
            for entry in found
        ]
        return self.read_whole(results, frames, names)

    def reading(
        self, entry: tuple[str, tuple[int, int], Found], readings: Iterator[DigitReading]
    ) -> Reading:
        """The Reading of a picture's name, size and Found, its candidates' DigitReadings
        taken in turn from `readings` (`read_in_line`, then `read_at_ends` with the
        second_classifier); its notes are Found's, theirs and `refused_notes`."""
        name, size, number = entry
        digits, in_line = read_in_line([next(readings) for _ in number.digits])
        at_ends: list[str] = []
        if any(ends := refused_at_ends(digits)) and (second := self.second_classifier()):
            digits, at_ends = read_at_ends(digits, ends, second)
        notes = (*number.notes, *in_line, *at_ends, *refused_notes(digits))
        return Reading(name, digits, size, tuple(number.symbols), notes)

    def find(
        self, images: list[Image.Image | UserError], names: list[str], single: bool
    ) -> list[tuple[str, tuple[int, int], Found] | UserError]:
        """Each picture's name, size and what segment.find_numbers finds in it (with `single`,
        the whole picture as one digit), or its error."""
        numbers = (
            [self.whole(image, name) for image, name in zip(images, names, strict=True)]
            if single
            else find_numbers(images, names, self.score, self.pair_score)
        )
        return [
            number if isinstance(number, UserError) else (name, size_of(image), number)
            for image, name, number in zip(images, names, numbers, strict=True)
        ]

    @staticmethod
    def decode(source: Source, name: str) -> Image.Image | UserError:
        """The picture of `source` (as_image), or the error that says why there is none."""
        try:
            return as_image(source, name)
        except UserError as error:
            return error

    @staticmethod
    def frame(image: Image.Image | UserError) -> Candidate | None:
        """A picture close to square as one digit filling it (preprocess.framed_digit), boxed
        by the whole picture; None for another picture or an error."""
        if isinstance(image, UserError) or not frames_one_digit(size := size_of(image)):
            return None
        return Candidate(framed_digit(image), (0, 0, *size))

    @staticmethod
    def whole(image: Image.Image | UserError, name: str) -> Found | UserError:
        """A picture read whole as one digit (`--single`: segment.whole_picture), or its error."""
        if isinstance(image, UserError):
            return image
        try:
            return Found([whole_picture(image, name)], [], [])
        except UserError as error:
            return error

    def read_whole(
        self,
        results: list[Reading | UserError],
        frames: list[Candidate | None],
        names: list[str],
    ) -> list[Reading | UserError]:
        """`results` with those that may give way to their picture's whole frame (a Candidate
        of preprocess.framed_digit's uint8 (28, 28) boxing the picture, or None; see
        `may_read_whole`) replaced by the frame's reading where it wins (`whole_wins`)."""
        again = [
            index
            for index, (result, frame) in enumerate(zip(results, frames, strict=True))
            if may_read_whole(result, frame)
        ]
        if not again:
            return results
        wholes = [frames[index] for index in again]
        for index, whole in zip(again, self.digit_readings(wholes, stack(wholes)), strict=True):
            if whole_wins(results[index], whole):
                size = (whole.box[2], whole.box[3])
                results[index] = Reading(names[index], (whole,), size, (), (READ_WHOLE,))
        return results

    def score(self, digits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """segment.Score for recognition-based segmentation: uint8 (N, 28, 28) -> the model's
        probabilities float (N, 10) and its not-a-digit verdict bool (N,) (True: a digit)."""
        said = self.classifier.classify(digits)
        return said.probabilities, said.is_digit

    def digit_readings(self, candidates: list[Candidate], stacked: np.ndarray) -> list:
        """A DigitReading per candidate, from one classifier pass over uint8 (N, 28, 28); a
        candidate the pair model read (one of two touching digits) keeps that reading and
        is a digit."""
        said = self.classifier.classify(stacked)
        return [
            DigitReading(
                digit=int(np.argmax(probabilities)),
                confidence=float(np.max(probabilities)),
                probabilities=probabilities,
                box=tuple(int(side) for side in candidate.box),
                is_digit=bool(is_digit) or candidate.reading is not None,
                ood_score=float(score),
                image=candidate.digit,
            )
            for candidate, probabilities, score, is_digit in zip(
                candidates,
                [
                    read if c.reading is None else c.reading
                    for c, read in zip(candidates, said.probabilities, strict=True)
                ],
                said.scores,
                said.is_digit,
                strict=True,
            )
        ]
