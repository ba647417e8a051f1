"""Saying "not a digit": an out-of-distribution score for every prediction, and its threshold.

The model is trained with outlier exposure (Hendrycks, Mazeika and Dietterich 2019, "Deep
Anomaly Detection with Outlier Exposure"): besides the digits it sees synthetic non-digits
(`mnist_cnn.synthetic`) whose target is the uniform distribution, so that it learns to be
unsure of what is not a digit. The score is then the maximum softmax probability (Hendrycks
and Gimpel 2017), turned so that higher means "less like a digit": 1 - max_k p_k. It needs
only the probabilities, so every engine (Keras, ONNX Runtime, an ensemble) gives it at no
cost. The README compares it with the energy score (Liu et al. 2020) and the Mahalanobis
distance (Lee et al. 2018) on the same held-out data.

The threshold is chosen on validation digits, never on the test set, so that ACCEPT_RATE of
them are accepted; it is saved beside the model in `<model name>_ood.json`, which names the
SHA-256 of the model it was fitted for.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mnist_cnn.errors import UserError
from mnist_cnn.files import write_json_atomically

# Accept this share of the validation digits. The floor is 99%; the 0.3-point margin
# keeps the test set's rejections under 1% although its scores are not those of validation.
ACCEPT_RATE = 0.993
METHOD = "outlier exposure + maximum softmax probability (Hendrycks et al. 2019)"


def ood_score(probabilities: np.ndarray) -> np.ndarray:
    """Out-of-distribution score float32 (N,) in [0, 0.9] for probabilities (N, 10): one
    minus the largest probability, so a confident digit scores near 0."""
    return (1.0 - np.asarray(probabilities, np.float32).max(axis=-1)).astype(np.float32)


def choose_threshold(scores: np.ndarray, accept_rate: float = ACCEPT_RATE) -> float:
    """The score at or below which `accept_rate` of `scores` (real digits' scores) fall."""
    return float(np.quantile(np.asarray(scores, np.float64), accept_rate))


def auroc(inlier_scores: np.ndarray, outlier_scores: np.ndarray) -> float:
    """Area under the ROC curve of telling outliers (high scores) from inliers, in [0, 1]:
    the chance that a random outlier scores above a random inlier, ties counting half
    (the Mann-Whitney U statistic over the product of the two counts)."""
    inliers = np.asarray(inlier_scores, np.float64)
    outliers = np.asarray(outlier_scores, np.float64)
    values = np.concatenate([inliers, outliers])
    # Ties share their average rank, as the U statistic requires.
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0
    u = average_rank[inverse][len(inliers) :].sum() - len(outliers) * (len(outliers) + 1) / 2.0
    return float(u / (len(inliers) * len(outliers)))


@dataclass(frozen=True)
class OodStats:
    """What the score needs at prediction time, saved with the model."""

    threshold: float  # scores above this are "not a digit"
    model_sha256: str  # the .keras file the threshold was chosen for
    accept_rate: float = ACCEPT_RATE  # share of validation digits accepted
    method: str = METHOD

    def is_digit(self, scores: np.ndarray) -> np.ndarray:
        """bool (N,): whether each score is low enough to call the picture a digit."""
        return np.asarray(scores) <= self.threshold


def stats_path(model_path: Path) -> Path:
    """Where the statistics of `model_path` (a .keras or its .onnx export) are kept."""
    return Path(model_path).with_name(f"{Path(model_path).stem}_ood.json")


def fit_stats(validation_probabilities: np.ndarray, model_sha256: str) -> OodStats:
    """The threshold for a model, from its probabilities (N, 10) on validation digits."""
    return OodStats(choose_threshold(ood_score(validation_probabilities)), model_sha256)


def save_stats(stats: OodStats, path: Path) -> Path:
    """Write the statistics as JSON to `path` (a temp file, then a rename)."""
    return write_json_atomically(asdict(stats), path)


def load_stats(model_path: Path, model_sha256: str | None) -> tuple[OodStats | None, str]:
    """The statistics saved beside `model_path` if they were fitted for the model whose
    SHA-256 is `model_sha256`; else None. Also a line saying what was found, for the user.

    Raises UserError when the file is there but unreadable.
    """
    path = stats_path(model_path)
    if not path.is_file():
        return None, f"note: {path} is missing: not-a-digit rejection is off"
    try:
        stats = OodStats(**json.loads(path.read_text()))
    except (ValueError, TypeError) as error:
        raise UserError(f"{path}: not a statistics file of this project ({error})") from None
    if stats.model_sha256 != model_sha256:
        return None, (
            f"note: {path} was fitted for another model (SHA-256 differs): "
            "not-a-digit rejection is off"
        )
    return stats, f"not-a-digit threshold {stats.threshold:.4f} from {path}"
