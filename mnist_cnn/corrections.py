"""Saving a corrected reading: the picture is read again, and each of its digits is saved
under the right label into a person's own digits (mnist_cnn.own_digits).

What is taught must be what was read, so the digits saved are the 28x28s this reading made of
the picture, never pixels a client sends as model inputs; beside each, the crop of the original
around its box, for re-reading with a later version of the preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_cnn.errors import UserError
from mnist_cnn.own_digits import MAX_PICTURE_BYTES, save_digit
from mnist_cnn.preprocess import DECODE_SCALE, to_grayscale
from mnist_cnn.reader import DigitReading, Reader, Reading, as_image

CROP_MARGIN = 0.25  # of the box's longer side on every side: the stroke ends and some paper


@dataclass(frozen=True)
class SavedDigit:
    """One digit saved from a correction: its file, its label, and whether it is new (False:
    the same 28x28 was saved before, and now has this label)."""

    path: Path
    label: int
    new: bool

    def to_dict(self) -> dict:
        """JSON-ready: name, label, new."""
        return {"name": self.path.name, "label": self.label, "new": self.new}


def check_number(number: object) -> str:
    """The right number as typed: digits only, at least one. Raises UserError otherwise."""
    if number is None:
        raise UserError("no 'number': send the right number with the picture")
    text = number.strip() if isinstance(number, str) else ""
    if not (text.isascii() and text.isdigit()):
        raise UserError(f"{number!r} is not a number: type the right digits only, such as 35")
    return text


def digits_to_correct(reading: Reading, number: str) -> list[DigitReading]:
    """The candidates of `reading` that the digits of `number` label, left to right: the
    ones judged digits (the number read), or every candidate found when there are as many
    (a digit read as "not a digit" is then taught too). Raises UserError for another length."""
    if reading.accepted and len(number) == len(reading.accepted):
        return reading.accepted
    if len(number) == len(reading.digits):
        return list(reading.digits)
    found = len(reading.accepted) or len(reading.digits)
    raise UserError(
        f"{number} has {digits(len(number))}, but the picture has {digits(found)}: "
        "type one digit for each"
    )


def digits(count: int) -> str:
    """`1 digit`, `2 digits`."""
    return f"{count} digit" if count == 1 else f"{count} digits"


def crop_around(gray: np.ndarray, box: tuple[int, int, int, int], scale: float) -> np.ndarray:
    """The part of a uint8 (H, W) picture around `box` (in the original's pixels; the picture
    may be decoded `scale` times smaller), with CROP_MARGIN of paper on each side."""
    left, top, right, bottom = (side / scale for side in box)
    margin = CROP_MARGIN * max(right - left, bottom - top)
    height, width = gray.shape
    rows = slice(max(0, int(top - margin)), min(height, int(np.ceil(bottom + margin))))
    columns = slice(max(0, int(left - margin)), min(width, int(np.ceil(right + margin))))
    return gray[rows, columns]


def grey_pixels(image: Image.Image) -> np.ndarray:
    """The picture as the reader sees it first: uint8 (H, W) luminance, transparency as paper."""
    return np.round(to_grayscale(image) * 255).astype(np.uint8)


def save_correction(
    folder: Path, reader: Reader, picture: bytes, name: str, number: object
) -> list[SavedDigit]:
    """Read `picture` again with `reader` and save each of its digits into `folder` with its
    digit of `number` as the label (own_digits.save_digit: named by content, at most
    MAX_PICTURES). Raises UserError for a bad number, one of the wrong length, a picture
    over MAX_PICTURE_BYTES or one that cannot be read."""
    number = check_number(number)
    if len(picture) > MAX_PICTURE_BYTES:
        raise UserError(f"{name}: larger than {MAX_PICTURE_BYTES // (1024 * 1024)} MB")
    image = as_image(picture, name)
    reading = reader.read(image, name=name)
    digits = digits_to_correct(reading, number)
    gray = grey_pixels(image)
    scale = float(image.info.get(DECODE_SCALE, 1.0))
    saved = []
    for digit, label in zip(digits, number, strict=True):
        crop = crop_around(gray, digit.box, scale)
        path, new = save_digit(folder, label, digit.image, crop)
        saved.append(SavedDigit(path, int(label), new))
    return saved
