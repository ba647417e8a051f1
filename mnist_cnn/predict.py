"""Classifying preprocessed digits in batches, saying "not a digit", and reporting the results."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_cnn import ood
from mnist_cnn.data import IMAGE_SIZE
from mnist_cnn.engine import (
    DEFAULT_MODEL_PATH,
    Engine,
    OnnxEngine,
    load_default_engine,
    load_engine,
    stale_export,
)
from mnist_cnn.errors import UserError
from mnist_cnn.preprocess import open_image
from mnist_cnn.segment import Candidate, find_digits, whole_picture


@dataclass
class Classifier:
    """A model engine and the not-a-digit threshold fitted for it (None: rejection off)."""

    engine: Engine
    stats: ood.OodStats | None = None

    def classify(self, digits: np.ndarray) -> Readings:
        """Probabilities, out-of-distribution scores and verdicts for uint8 digits (N, 28, 28)."""
        probabilities = self.engine.predict(digits)
        scores = ood.ood_score(probabilities)
        is_digit = self.stats.is_digit(scores) if self.stats else np.ones(len(scores), bool)
        return Readings(probabilities, scores, is_digit)


@dataclass
class Readings:
    """What a Classifier says of N pictures: float32 (N, 10), float32 (N,) and bool (N,)."""

    probabilities: np.ndarray
    scores: np.ndarray
    is_digit: np.ndarray


def load_classifier(
    model_path: Path | None = None, accept_all: bool = False, verbose: bool = False
) -> tuple[Classifier, list[str]]:
    """The classifier for `model_path` (`.keras`, `.h5` or `.onnx`), or when None for the
    default model (its ONNX export when that was made from it); and the notes to show the
    user: an export passed over, statistics missing. `accept_all` turns rejection off;
    `verbose` shows TensorFlow's log lines, if it is loaded.

    Raises UserError (one line) when the model cannot be loaded.
    """
    if model_path is None:
        engine, note = load_default_engine(DEFAULT_MODEL_PATH, verbose)
    else:
        engine = load_engine(model_path, verbose)
        stale = stale_export(engine) if isinstance(engine, OnnxEngine) else None
        note = f"note: {stale}" if stale else None
    notes = [note] if note else []
    if accept_all:
        return Classifier(engine), notes
    stats, line = ood.load_stats(engine.path, engine.model_sha256())
    return Classifier(engine, stats), [*notes, line] if stats is None else notes


def top_k(probs: np.ndarray, k: int) -> list:
    """The k likeliest (digit, probability) pairs, best first; a list of such lists for (N, 10)."""
    if probs.ndim == 2:
        return [top_k(row, k) for row in probs]
    best = np.argsort(-probs, kind="stable")[:k]
    return [(int(digit), float(probs[digit])) for digit in best]


def format_line(name: str, probs: np.ndarray, k: int = 1, is_digit: bool = True) -> str:
    """One human-readable line: the file, its digit and confidence, then any runners-up; or,
    for a picture judged not a digit, the digit it looks most like."""
    (digit, confidence), *others = top_k(probs, k)
    if not is_digit:
        return f"{name}: not a digit (looks most like {digit}, {confidence:.1%})"
    line = f"{name}: {digit} ({confidence:.1%})"
    if others:
        line += "  next: " + ", ".join(f"{d} ({p:.1%})" for d, p in others)
    return line


def digit_record(
    probs: np.ndarray, k: int = 1, is_digit: bool = True, score: float | None = None
) -> dict:
    """JSON-ready: whether it is a digit and its out-of-distribution score, the digit, its
    confidence, all probabilities (10,) and the top k."""
    best = top_k(probs, k)
    return {
        "is_digit": bool(is_digit),
        "ood_score": None if score is None else round(float(score), 6),
        "digit": best[0][0],
        "confidence": round(best[0][1], 6),
        "probabilities": [round(float(p), 6) for p in probs],
        "top_k": [{"digit": d, "probability": round(p, 6)} for d, p in best],
    }


def format_json(
    name: str,
    probs: np.ndarray,
    k: int = 1,
    saved: Path | None = None,
    is_digit: bool = True,
    score: float | None = None,
) -> str:
    """One JSON object on one line: path, then `digit_record`'s fields."""
    record = {"path": name, **digit_record(probs, k, is_digit, score)}
    if saved is not None:
        record["preprocessed"] = str(saved)
    return json.dumps(record)


def read_number(candidates: list[Candidate], probs: np.ndarray) -> dict:
    """The number read from digit candidates (left to right) and their probabilities (N, 10).

    Returns {"number": "42", "digits": [{digit, confidence, probabilities, box}, ...]}, the box
    (left, top, right, bottom) in the original picture's pixels. The caller passes only the
    candidates it takes for digits (a "not a digit" score may drop some before this).
    """
    digits = [
        {
            "digit": int(np.argmax(p)),
            "confidence": round(float(np.max(p)), 6),
            "probabilities": [round(float(q), 6) for q in p],
            "box": list(candidate.box),
        }
        for candidate, p in zip(candidates, probs, strict=True)
    ]
    return {"number": "".join(str(d["digit"]) for d in digits), "digits": digits}


@dataclass
class PictureReading:
    """The digit candidates found in one picture and what the classifier says of each."""

    candidates: list[Candidate]
    readings: Readings

    @property
    def digits(self) -> np.ndarray:
        """Indices of the candidates judged digits, left to right: the number's digits."""
        return np.flatnonzero(self.readings.is_digit)

    @property
    def likeliest(self) -> int:
        """Index of the candidate the model is surest of: what a non-digit looks most like."""
        return int(self.readings.probabilities.max(axis=1).argmax())

    @property
    def alone(self) -> int | None:
        """The candidate that answers for the whole picture: its only digit, or, when nothing
        in it is a digit, the likeliest candidate; None when it holds a number."""
        kept = self.digits
        if len(kept) > 1:
            return None
        return int(kept[0]) if len(kept) == 1 else self.likeliest


def stack_digits(found: list[list[Candidate]]) -> np.ndarray:
    """Every picture's candidate digits, in order, as uint8 (N, 28, 28)."""
    digits = [candidate.digit for picture in found for candidate in picture]
    return np.stack(digits) if digits else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)


def read_pictures_digits(
    classifier: Classifier, found: list[list[Candidate]]
) -> list[PictureReading]:
    """Classify the candidates of every picture in one batched model pass, then give each
    picture its own share; components that are not digits are dropped from its number."""
    readings = classifier.classify(stack_digits(found))
    pictures, start = [], 0
    for picture in found:
        own = slice(start, start + len(picture))
        start += len(picture)
        share = Readings(readings.probabilities[own], readings.scores[own], readings.is_digit[own])
        pictures.append(PictureReading(picture, share))
    return pictures


def format_picture_line(name: str, picture: PictureReading, k: int = 1) -> str:
    """A picture's line: one digit as format_line; several as `name: 42 (4: 99.8%, 2: 97.1%)`;
    nothing digit-like as `name: not a digit (looks most like 4, 92.5%)`."""
    probabilities = picture.readings.probabilities
    kept = picture.digits
    if len(kept) == 0:
        return format_line(name, probabilities[picture.likeliest], k, is_digit=False)
    if len(kept) == 1:
        return format_line(name, probabilities[kept[0]], k)
    best = [(int(np.argmax(p)), float(np.max(p))) for p in probabilities[kept]]
    number = "".join(str(digit) for digit, _ in best)
    return f"{name}: {number} (" + ", ".join(f"{d}: {c:.1%}" for d, c in best) + ")"


def picture_record(picture: PictureReading, k: int = 1) -> dict:
    """A picture's reading, JSON-ready: `number`, `digits` (each candidate judged a digit,
    with its box and out-of-distribution score) and `is_digit`; for a picture answered by one
    candidate (`PictureReading.alone`) also format_json's fields for it."""
    readings, kept, alone = picture.readings, picture.digits, picture.alone
    record = {}
    if alone is not None:
        record = digit_record(
            readings.probabilities[alone],
            k,
            bool(readings.is_digit[alone]),
            float(readings.scores[alone]),
        )
    record.update(read_number([picture.candidates[n] for n in kept], readings.probabilities[kept]))
    record["is_digit"] = bool(len(kept))
    for digit, n in zip(record["digits"], kept, strict=True):
        digit["ood_score"] = round(float(readings.scores[n]), 6)
    return record


def format_picture_json(
    name: str, picture: PictureReading, k: int = 1, saved: list[Path] | None = None
) -> str:
    """One JSON line: the file's path, `picture_record`, and where each candidate's 28x28
    was saved (`saved`, one path per candidate), if it was."""
    record = {"path": name, **picture_record(picture, k)}
    if saved is not None:
        if picture.alone is not None:
            record["preprocessed"] = str(saved[picture.alone])
        for digit, n in zip(record["digits"], picture.digits, strict=True):
            digit["preprocessed"] = str(saved[n])
    return json.dumps(record)


def unique_png_names(paths: list[Path]) -> list[str]:
    """A distinct `stem.png` per path; a stem already taken gets -2, -3 ... appended."""
    names: list[str] = []
    for path in paths:
        name, count = f"{path.stem}.png", 1
        while name in names:
            count += 1
            name = f"{path.stem}-{count}.png"
        names.append(name)
    return names


def digit_names(path: Path, count: int) -> list[Path]:
    """What each of a picture's `count` digits is saved as: photo.png, or photo-1.png, ..."""
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{n}{path.suffix}") for n in range(1, count + 1)]


def save_digits(digits: np.ndarray, paths: list[Path], out_dir: Path) -> list[Path]:
    """Write each 28x28 digit the model saw as a PNG in `out_dir`; returns the files written."""
    written = [out_dir / name for name in unique_png_names(paths)]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for digit, target in zip(digits, written, strict=True):
            Image.fromarray(digit).save(target)
    except OSError as error:
        raise UserError(f"{out_dir}: cannot write the preprocessed digits: {error}") from None
    return written


def read_pictures(
    paths: list[Path], single: bool = False
) -> tuple[list[Path], list[list[Candidate]], list[UserError]]:
    """Find the digits in each file: (the readable paths, each one's candidates, the errors).

    `single` reads each whole picture as one digit, as preprocess.to_mnist does.
    """
    good, found, errors = [], [], []
    for path in map(Path, paths):
        try:
            image = open_image(path)
            found.append(
                [whole_picture(image, str(path))] if single else find_digits(image, str(path))
            )
            good.append(path)
        except UserError as error:
            errors.append(error)
    return good, found, errors


def classify_files(
    classifier: Classifier,
    paths: list[Path],
    k: int = 1,
    as_json: bool = False,
    save_dir: Path | None = None,
    single: bool = False,
) -> tuple[list[str], list[UserError]]:
    """Read every file in one batched model pass: (a line per readable file, the errors).

    Each picture's digits are found (`segment.find_digits`; `single`: the whole picture is one
    digit); candidates judged not digits are left out of its number.
    """
    good, found, errors = read_pictures(paths, single)
    pictures = read_pictures_digits(classifier, found)
    names = [
        name for path, cs in zip(good, found, strict=True) for name in digit_names(path, len(cs))
    ]
    saved = save_digits(stack_digits(found), names, save_dir) if save_dir is not None else None
    lines, start = [], 0
    for path, picture in zip(good, pictures, strict=True):
        own = saved[start : start + len(picture.candidates)] if saved else None
        start += len(picture.candidates)
        lines.append(
            format_picture_json(str(path), picture, k, own)
            if as_json
            else format_picture_line(str(path), picture, k)
        )
    return lines, errors
