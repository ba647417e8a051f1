"""Classifying preprocessed digits in batches, and reporting the results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_cnn.data import NUM_CLASSES, to_model_input
from mnist_cnn.errors import UserError
from mnist_cnn.preprocess import read_digits

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


def classify_files(
    model, paths: list[Path], k: int = 1, as_json: bool = False, save_dir: Path | None = None
) -> tuple[list[str], list[UserError]]:
    """Classify files in one batched model pass: (a line per readable file, the errors)."""
    good, digits, errors = read_digits(paths)
    probs = predict_probabilities(model, digits)
    saved = save_digits(digits, good, save_dir) if save_dir is not None else [None] * len(good)
    lines = [
        format_json(str(path), p, k, s) if as_json else format_line(str(path), p, k)
        for path, p, s in zip(good, probs, saved, strict=True)
    ]
    return lines, errors
