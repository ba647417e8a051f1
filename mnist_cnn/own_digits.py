"""A person's own digits: a folder of labelled pictures to fine-tune on (docs/teaching.md).

The layout is the one Keras' `image_dataset_from_directory` reads: `DIR/0/ ... DIR/9/`, one
digit per picture, any format Pillow reads. A picture saved from a reading is the uint8 28x28
the model saw (light ink on black), marked in its PNG text so the folder reader takes it
unchanged; beside it, in the hidden `DIR/.originals/`, the crop of the original picture, kept
for re-reading with a later version of the preprocessing. Any other picture is read as
`test_model.py --single` reads one: the whole picture is one digit.

Files are named by the SHA-256 of the 28x28's pixels, so the same digit saved twice is one file.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, PngImagePlugin

from mnist_cnn.data import IMAGE_SIZE
from mnist_cnn.errors import UserError
from mnist_cnn.files import write_png_atomically
from mnist_cnn.preprocess import DECODE_SCALE, flatten, has_transparency, open_image, to_mnist

LABELS = tuple(str(digit) for digit in range(10))
ORIGINALS = ".originals"  # hidden, so Keras' directory reader and ours see only the digits
MODEL_INPUT_KEY = "mnist-cnn"  # PNG text key marking a picture as a saved model input
MODEL_INPUT_VALUE = "model input 28x28, light ink on black"
MAX_PICTURES = 20_000  # a person's digits, not a dataset: bounds disk use and a teaching run
MAX_PICTURE_BYTES = 5 * 1024 * 1024  # a phone photo fits
NAME_LENGTH = 16  # hex digits of the SHA-256 in a file name: 64 bits, no collision in 20,000


@dataclass(frozen=True)
class OwnDigits:
    """A person's digits as arrays: `images` uint8 (N, 28, 28) light ink on black, `labels`
    int64 (N,), `paths` the file of each, and `skipped` one message per picture not read."""

    images: np.ndarray
    labels: np.ndarray
    paths: tuple[Path, ...]
    skipped: tuple[str, ...]

    def counts(self) -> dict[int, int]:
        """How many pictures of each digit, 0 to 9."""
        return {digit: int(np.sum(self.labels == digit)) for digit in range(10)}


def content_name(digit: np.ndarray) -> str:
    """The file stem of a uint8 (28, 28) digit: the first 16 hex digits of its pixels' SHA-256."""
    pixels = np.ascontiguousarray(digit, dtype=np.uint8)
    return hashlib.sha256(pixels.tobytes()).hexdigest()[:NAME_LENGTH]


def model_input_info() -> PngImagePlugin.PngInfo:
    """The PNG text chunk that marks a picture as a saved model input."""
    info = PngImagePlugin.PngInfo()
    info.add_text(MODEL_INPUT_KEY, MODEL_INPUT_VALUE)
    return info


def check_label(label: int | str) -> int:
    """A digit label as an int 0-9. Raises UserError for anything else."""
    if str(label) not in LABELS:
        raise UserError(f"{label!r} is not a digit label: labels are 0 to 9")
    return int(label)


def saved_pictures(folder: Path) -> Iterator[Path]:
    """Every picture file in the digit subfolders of `folder` (hidden files left out)."""
    for label in LABELS:
        subfolder = Path(folder) / label
        if subfolder.is_dir():
            yield from sorted(
                p for p in subfolder.iterdir() if p.is_file() and not p.name.startswith(".")
            )


def save_digit(
    folder: Path, label: int | str, digit: np.ndarray, crop: np.ndarray | None = None
) -> tuple[Path, bool]:
    """Save one read digit under `folder/<label>/`, named by its content.

    `digit` is the uint8 (28, 28) the model saw; `crop` (optional, uint8 (H, W) or (H, W, 3))
    the part of the original picture it came from, saved in `folder/.originals/`. Returns the
    path and whether it is new (False: the same digit was already saved, under any label; it
    is then moved to `label`). Raises UserError for a bad label, a digit of another shape, or
    a folder already holding MAX_PICTURES pictures.
    """
    label = check_label(label)
    digit = np.asarray(digit)
    if digit.shape != (IMAGE_SIZE, IMAGE_SIZE) or digit.dtype != np.uint8:
        raise UserError(f"a saved digit must be uint8 (28, 28), not {digit.dtype} {digit.shape}")
    folder = Path(folder)
    name = f"{content_name(digit)}.png"
    existing = find_saved(folder, name)
    if existing is not None:
        return relabel(folder, existing, label), False
    if sum(1 for _ in saved_pictures(folder)) >= MAX_PICTURES:
        raise UserError(f"{folder}: already holds {MAX_PICTURES:,} pictures, the most it may hold")
    path = folder / str(label) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if crop is not None:
        (folder / ORIGINALS).mkdir(exist_ok=True)
        write_png_atomically(Image.fromarray(np.asarray(crop, np.uint8)), folder / ORIGINALS / name)
    write_png_atomically(Image.fromarray(digit, mode="L"), path, model_input_info())
    return path, True


def find_saved(folder: Path, name: str) -> Path | None:
    """The saved picture called `name` under any digit subfolder of `folder`, or None."""
    for label in LABELS:
        path = Path(folder) / label / name
        if path.is_file():
            return path
    return None


def checked_name(name: str) -> str:
    """A saved picture's file name as a client may give it: a bare name, never a path.
    Raises UserError otherwise."""
    if Path(name).name != name or name.startswith(".") or not name.endswith(".png"):
        raise UserError(f"{name!r} is not the name of a saved picture")
    return name


def relabel(folder: Path, path_or_name: Path | str, label: int | str) -> Path:
    """Move a saved picture to the subfolder of `label`; returns its new path.
    Raises UserError when no such picture is saved."""
    label = check_label(label)
    path = (
        path_or_name
        if isinstance(path_or_name, Path)
        else find_saved(folder, checked_name(path_or_name))
    )
    if path is None or not path.is_file():
        raise UserError(f"{path_or_name}: no such saved picture in {folder}")
    target = Path(folder) / str(label) / path.name
    if target != path:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    return target


def delete(folder: Path, name: str) -> None:
    """Delete a saved picture and its original crop. Raises UserError when it is not there."""
    path = find_saved(folder, checked_name(name))
    if path is None:
        raise UserError(f"{name}: no such saved picture in {folder}")
    path.unlink()
    (Path(folder) / ORIGINALS / name).unlink(missing_ok=True)


def is_model_input(image: Image.Image) -> bool:
    """Whether a picture is a digit saved by `save_digit`: 28x28 grey, marked in its PNG text."""
    return (
        image.size == (IMAGE_SIZE, IMAGE_SIZE)
        and image.mode == "L"
        and image.info.get(MODEL_INPUT_KEY) == MODEL_INPUT_VALUE
    )


def read_picture(path: Path) -> np.ndarray:
    """One picture of the folder as the model's uint8 (28, 28): a saved model input unchanged,
    any other picture read whole as one digit. Raises UserError when it cannot be read."""
    if path.stat().st_size > MAX_PICTURE_BYTES:
        raise UserError(f"{path}: larger than {MAX_PICTURE_BYTES // (1024 * 1024)} MB")
    image = open_image(path, str(path))
    if is_model_input(image):
        return np.asarray(image, dtype=np.uint8)
    return to_mnist(image, str(path))


def check_layout(folder: Path) -> None:
    """Raise UserError unless `folder` is a folder whose visible subfolders are all 0-9."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder of digits (expected {folder}/0/ ... {folder}/9/)")
    strays = sorted(
        p.name
        for p in folder.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name not in LABELS
    )
    if strays:
        raise UserError(f"{folder}: subfolder {strays[0]!r} is not a digit; name them 0 to 9")


def load_own_digits(folder: Path | str) -> OwnDigits:
    """Every picture under `folder/0/ ... folder/9/` as model inputs with their labels.

    A picture that cannot be read is skipped, with one message naming it in `skipped`; so is
    a picture whose model input is the same as an earlier one's (a copy, or the same digit
    saved under another name), the first one kept whatever its label.
    Raises UserError when the folder is missing, has a subfolder not named 0-9, holds no
    readable picture, or holds more than MAX_PICTURES.
    """
    folder = Path(folder)
    check_layout(folder)
    paths = list(saved_pictures(folder))
    if len(paths) > MAX_PICTURES:
        raise UserError(
            f"{folder}: {len(paths):,} pictures, more than the {MAX_PICTURES:,} allowed"
        )
    images, labels, kept, skipped = [], [], [], []
    first: dict[str, Path] = {}  # content name -> the first picture read with that content
    for path in paths:
        try:
            image = read_picture(path)
        except UserError as error:
            skipped.append(str(error))
            continue
        seen = first.setdefault(content_name(image), path)
        if seen != path:  # counted twice, it would weigh double and could be taught and measured
            skipped.append(f"{path}: the same picture as {seen}, counted once")
            continue
        images.append(image)
        labels.append(int(path.parent.name))
        kept.append(path)
    if not images:
        raise UserError(f"{folder}: no readable picture in {folder}/0/ ... {folder}/9/")
    return OwnDigits(np.stack(images), np.array(labels, np.int64), tuple(kept), tuple(skipped))


class ReadDigit(Protocol):
    """What a correction needs of one digit read (reader.DigitReading): the uint8 (28, 28) the
    model saw, the box (left, top, right, bottom) in the picture's pixels, and its verdict."""

    image: np.ndarray
    box: tuple[int, int, int, int]
    is_digit: bool


def check_number(number: str) -> str:
    """The right number as a person typed it: digits 0-9 only. Raises UserError otherwise."""
    if not re.fullmatch(r"[0-9]+", number):
        raise UserError(f"{number!r} is not a number: the right number is digits 0-9 only")
    return number


def corrected_digits(digits: Sequence[ReadDigit], number: str, name: str) -> list[ReadDigit]:
    """The digits read in a picture that the right `number` labels, one per character: those
    judged digits when as many as `number` has; else every candidate when as many (the person
    says they are digits, even those the model judged not to be). Raises UserError naming
    the picture `name` when neither count matches, or for a `number` not of digits only."""
    check_number(number)
    accepted = [digit for digit in digits if digit.is_digit]
    for chosen in (accepted, list(digits)):
        if len(chosen) == len(number):
            return chosen
    found = f"{len(accepted)} digit{'s' * (len(accepted) != 1)}"
    if len(digits) != len(accepted):
        found += f" ({len(digits)} with those judged not digits)"
    raise UserError(
        f"{name}: {number} has {len(number)} digit{'s' * (len(number) != 1)} but {found} "
        "were found in the picture: nothing saved"
    )


def crop(picture: Image.Image, box: tuple[int, int, int, int]) -> np.ndarray:
    """The part of `picture` inside `box` (original pixels, as the reader gives it), uint8
    (H, W, 3) RGB, transparency shown on its paper, as the reader saw it."""
    scale = float(picture.info.get(DECODE_SCALE, 1.0))  # a big JPEG may be decoded smaller
    left, top, right, bottom = (round(side / scale) for side in box)
    rgb = flatten(picture) if has_transparency(picture) else picture.convert("RGB")
    part = np.asarray(rgb, dtype=np.uint8)[top : max(bottom, top + 1), left : max(right, left + 1)]
    return np.ascontiguousarray(part)


def save_correction(
    folder: Path, picture: Image.Image, digits: Sequence[ReadDigit], number: str, name: str
) -> list[tuple[Path, bool]]:
    """Save each digit read in `picture` (named `name` in messages) under `folder/<its right
    digit>/`, with the crop of the picture it came from: what `test_model.py --correct` and
    the web page's correction do. Returns (path, new) per digit, left to right. Raises
    UserError before saving anything when `number` does not fit the digits found
    (corrected_digits), or when a digit cannot be saved."""
    chosen = corrected_digits(digits, number, name)
    return [
        save_digit(folder, int(label), digit.image, crop(picture, digit.box))
        for digit, label in zip(chosen, number, strict=True)
    ]
