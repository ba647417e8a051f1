"""Classifying preprocessed digits in batches, saying "not a digit", and reporting the results."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_cnn import ood
from mnist_cnn.engine import (
    DEFAULT_MODEL_PATH,
    Engine,
    OnnxEngine,
    load_default_engine,
    load_engine,
    stale_export,
)
from mnist_cnn.errors import UserError
from mnist_cnn.preprocess import read_digits


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


def format_json(
    name: str,
    probs: np.ndarray,
    k: int = 1,
    saved: Path | None = None,
    is_digit: bool = True,
    score: float | None = None,
) -> str:
    """One JSON object on one line: path, whether it is a digit and its out-of-distribution
    score, the digit, its confidence, all probabilities and the top k."""
    best = top_k(probs, k)
    record = {
        "path": name,
        "is_digit": bool(is_digit),
        "ood_score": None if score is None else round(float(score), 6),
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
    classifier: Classifier,
    paths: list[Path],
    k: int = 1,
    as_json: bool = False,
    save_dir: Path | None = None,
) -> tuple[list[str], list[UserError]]:
    """Classify files in one batched model pass: (a line per readable file, the errors)."""
    good, digits, errors = read_digits(paths)
    readings = classifier.classify(digits)
    saved = save_digits(digits, good, save_dir) if save_dir is not None else [None] * len(good)
    lines = [
        format_json(str(path), p, k, s, ok, score) if as_json else format_line(str(path), p, k, ok)
        for path, p, s, ok, score in zip(
            good, readings.probabilities, saved, readings.is_digit, readings.scores, strict=True
        )
    ]
    return lines, errors
