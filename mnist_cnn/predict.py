"""Classifying preprocessed digits in batches and saying "not a digit": the model and its
not-a-digit statistics, loaded together."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from mnist_cnn import ood
from mnist_cnn.config import reading_model_path, shipped_model_path
from mnist_cnn.engine import Engine, OnnxEngine, load_default_engine, load_engine, stale_export
from mnist_cnn.errors import UserError


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
    model_path: Path | None = None,
    accept_all: bool = False,
    verbose: bool = False,
    shipped: bool = False,
) -> tuple[Classifier, list[str]]:
    """The classifier for `model_path` (`.keras`, `.h5`, `.onnx` or `.tflite`), or when None
    for the default model (config.reading_model_path: the user's latest, else the shipped one;
    `shipped` asks for the shipped one), run on its ONNX export when that was made from it;
    and the notes to show the user: which model, an export passed over, statistics missing.
    `accept_all` turns rejection off; `verbose` shows TensorFlow's log lines, if it is loaded.

    Raises UserError (one line) when the model cannot be loaded.
    """
    if model_path is None:
        keras_path, which = reading_model_path(shipped)
        engine, note = load_default_engine(keras_path, verbose)
        notes = [line for line in (which, note) if line]
    else:
        engine = load_engine(model_path, verbose)
        stale = stale_export(engine) if isinstance(engine, OnnxEngine) else None
        notes = [f"note: {stale}"] if stale else []
    if accept_all:
        return Classifier(engine), notes
    stats, line = ood.load_stats(engine.path, engine.model_sha256())
    return Classifier(engine, stats), [*notes, line] if stats is None else notes


@cache
def shipped_classifier(model: str) -> Classifier | None:
    """The shipped model of an architecture ("cnn" or "strong") with its not-a-digit verdict,
    on its ONNX export (no TensorFlow), loaded once; None where that export or its statistics
    are not shipped or cannot be loaded (a damaged installation reads without it)."""
    path = shipped_model_path(model).with_suffix(".onnx")
    if not path.is_file():
        return None
    try:
        classifier, _ = load_classifier(path)
    except UserError:
        return None
    return classifier if classifier.stats is not None else None


def top_k(probs: np.ndarray, k: int) -> list:
    """The k likeliest (digit, probability) pairs, best first; a list of such lists for (N, 10)."""
    if probs.ndim == 2:
        return [top_k(row, k) for row in probs]
    best = np.argsort(-probs, kind="stable")[:k]
    return [(int(digit), float(probs[digit])) for digit in best]
