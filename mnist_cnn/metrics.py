"""Classification metrics in plain NumPy: pure functions of labels, predictions and counts."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class ClassMetrics(NamedTuple):
    """Per-class arrays, one entry per class: precision, recall, F1 and support (true count)."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (num_classes, num_classes): row is the true class, column the predicted one."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.shape} labels but {y_pred.shape} predictions")
    for name, values in (("label", y_true), ("prediction", y_pred)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"a {name} is outside 0..{num_classes - 1}")
    # Each (true, predicted) pair gets one flat index, so a single bincount counts them all.
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def accuracy(cm: np.ndarray) -> float:
    """The fraction of correct predictions: the diagonal over the total (0 for no samples)."""
    total = cm.sum()
    return float(np.trace(cm) / total) if total else 0.0


def safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise numerator / denominator, with 0 wherever the denominator is 0."""
    numerator = np.asarray(numerator, np.float64)
    out = np.zeros_like(numerator)
    return np.divide(numerator, denominator, out=out, where=np.asarray(denominator) != 0)


def per_class_metrics(cm: np.ndarray) -> ClassMetrics:
    """Precision, recall, F1 and support of each class; 0, not NaN, where a ratio is undefined."""
    true_positives = np.diag(cm)
    precision = safe_divide(true_positives, cm.sum(axis=0))
    recall = safe_divide(true_positives, cm.sum(axis=1))
    f1 = safe_divide(2 * precision * recall, precision + recall)
    return ClassMetrics(precision, recall, f1, cm.sum(axis=1))


def most_confused(cm: np.ndarray, n: int) -> list[tuple[int, int, int]]:
    """The `n` commonest mistakes as (true, predicted, count), commonest first, ties by class."""
    errors = cm.copy()
    np.fill_diagonal(errors, 0)
    true, predicted = np.nonzero(errors)
    counts = errors[true, predicted]
    # lexsort's last key is the primary one: count descending, then true and predicted classes.
    order = np.lexsort((predicted, true, -counts))[:n]
    return [(int(true[i]), int(predicted[i]), int(counts[i])) for i in order]
