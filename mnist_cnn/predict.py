"""Classifying preprocessed digits in batches, and reporting the results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_cnn.data import IMAGE_SIZE, NUM_CLASSES, to_model_input
from mnist_cnn.errors import UserError
from mnist_cnn.preprocess import open_image
from mnist_cnn.segment import Candidate, find_digits, whole_picture

BATCH_SIZE = 1024  # images per model call: large enough to amortise the call, small in memory


def predict_probabilities(model, digits: np.ndarray) -> np.ndarray:
    """Class probabilities (N, 10) for uint8 digits (N, 28, 28), one model call per batch."""
    # predict_on_batch runs Keras' compiled predict step: about 5x faster per call than
    # calling the model eagerly, which matters for the web app's one-digit requests.
    batches = [
        np.asarray(model.predict_on_batch(to_model_input(digits[start : start + BATCH_SIZE])))
        for start in range(0, len(digits), BATCH_SIZE)
    ]
    return np.concatenate(batches) if batches else np.zeros((0, NUM_CLASSES), np.float32)


def top_k(probs: np.ndarray, k: int) -> list:
    """The k likeliest (digit, probability) pairs, best first; a list of such lists for (N, 10)."""
    if probs.ndim == 2:
        return [top_k(row, k) for row in probs]
    best = np.argsort(-probs, kind="stable")[:k]
    return [(int(digit), float(probs[digit])) for digit in best]


def format_line(name: str, probs: np.ndarray, k: int = 1) -> str:
    """One human-readable line: the file, its digit and confidence, then any runners-up."""
    (digit, confidence), *others = top_k(probs, k)
    line = f"{name}: {digit} ({confidence:.1%})"
    if others:
        line += "  next: " + ", ".join(f"{d} ({p:.1%})" for d, p in others)
    return line


def format_json(name: str, probs: np.ndarray, k: int = 1, saved: Path | None = None) -> str:
    """One JSON object on one line: path, digit, confidence, all probabilities and the top k."""
    best = top_k(probs, k)
    record = {
        "path": name,
        "digit": best[0][0],
        "confidence": round(best[0][1], 6),
        "probabilities": [round(float(p), 6) for p in probs],
        "top_k": [{"digit": d, "probability": round(p, 6)} for d, p in best],
    }
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


def format_number_line(name: str, probs: np.ndarray, k: int = 1) -> str:
    """A picture's line: one digit as format_line, several as `name: 42 (4: 99.8%, 2: 97.1%)`."""
    if len(probs) == 1:
        return format_line(name, probs[0], k)
    best = [(int(np.argmax(p)), float(np.max(p))) for p in probs]
    number = "".join(str(d) for d, _ in best)
    return f"{name}: {number} (" + ", ".join(f"{d}: {c:.1%}" for d, c in best) + ")"


def format_number_json(
    name: str, candidates: list[Candidate], probs: np.ndarray, k: int = 1, saved: list | None = None
) -> str:
    """One JSON line: `number` and `digits`, plus format_json's fields for a one-digit picture."""
    record = json.loads(format_json(name, probs[0], k)) if len(probs) == 1 else {"path": name}
    record.update(read_number(candidates, probs))
    if saved is not None:
        if len(saved) == 1:
            record["preprocessed"] = str(saved[0])
        for digit, path in zip(record["digits"], saved, strict=True):
            digit["preprocessed"] = str(path)
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
    model,
    paths: list[Path],
    k: int = 1,
    as_json: bool = False,
    save_dir: Path | None = None,
    single: bool = False,
) -> tuple[list[str], list[UserError]]:
    """Classify files in one batched model pass: (a line per readable file, the errors)."""
    good, found, errors = read_pictures(paths, single)
    candidates = [c for cs in found for c in cs]
    digits = (
        np.stack([c.digit for c in candidates])
        if candidates
        else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    )
    probs = predict_probabilities(model, digits)
    # Hook: a "not a digit" score per candidate would drop candidates here, per picture,
    # before the number is formed (read_number and the format functions take what is kept).
    names = [
        name for path, cs in zip(good, found, strict=True) for name in digit_names(path, len(cs))
    ]
    saved = save_digits(digits, names, save_dir) if save_dir is not None else None
    lines, start = [], 0
    for path, cs in zip(good, found, strict=True):
        own = slice(start, start + len(cs))
        start += len(cs)
        if as_json:
            lines.append(
                format_number_json(str(path), cs, probs[own], k, saved[own] if saved else None)
            )
        else:
            lines.append(format_number_line(str(path), probs[own], k))
    return lines, errors
