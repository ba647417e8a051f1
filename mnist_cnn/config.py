"""What a training run depends on, and where files live: no TensorFlow, so --help is instant.

Two places, never mixed (docs/layout.md):
- the shipped models, package data in `mnist_cnn/models/`, which no command writes by default;
- the user's own files (trained models, figures, reports) under the user's data directory
  (`platformdirs`: ~/.local/share/mnist-cnn on Linux, $XDG_DATA_HOME honoured).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

APP_NAME = "mnist-cnn"
SHIPPED_MODELS_DIR = Path(__file__).resolve().parent / "models"
MODEL_STEMS = {"cnn": "mnist_cnn", "strong": "mnist_cnn_strong"}  # file name per architecture
MODEL_NAMES = tuple(MODEL_STEMS)  # the keys of model.MODELS, for the parser
KERAS_SUFFIX = ".keras"


def shipped_model_path(model: str = "cnn") -> Path:
    """The shipped, fully trained `.keras` model of an architecture ("cnn" or "strong")."""
    return SHIPPED_MODELS_DIR / f"{MODEL_STEMS[model]}{KERAS_SUFFIX}"


SHIPPED_MODEL_PATH = shipped_model_path()


def user_data_dir() -> Path:
    """The folder for the user's own files: platformdirs' user data directory for mnist-cnn
    (read at each call, so $XDG_DATA_HOME set later still counts)."""
    return platformdirs.user_data_path(APP_NAME)


def user_model_path(model: str = "cnn") -> Path:
    """Where training writes an architecture's model unless told otherwise."""
    return user_data_dir() / "models" / f"{MODEL_STEMS[model]}{KERAS_SUFFIX}"


def user_taught_model_path(model: str = "cnn") -> Path:
    """Where fine-tuning on a person's own digits writes unless told otherwise: beside the
    user's trained models, never over the model it started from (mnist_cnn.finetune)."""
    return user_data_dir() / "models" / f"{MODEL_STEMS[model]}_taught{KERAS_SUFFIX}"


def user_plots_dir() -> Path:
    """Where training, evaluation and figures write their pictures unless told otherwise."""
    return user_data_dir() / "plots"


def latest_user_model() -> Path | None:
    """The user's most recently written `.keras` model in their data directory, or None."""
    folder = user_data_dir() / "models"
    models = sorted(folder.glob(f"*{KERAS_SUFFIX}"), key=lambda path: path.stat().st_mtime)
    return models[-1] if models else None


def reading_model_path(shipped: bool = False) -> tuple[Path, str | None]:
    """The `.keras` model to read with when the user named none, and a note saying so: the
    user's latest trained model if there is one and `shipped` is False, else the shipped one
    (no note)."""
    latest = None if shipped else latest_user_model()
    if latest is None:
        return shipped_model_path(), None
    return latest, f"note: reading with your model {latest} (--shipped: the shipped model)"


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


# Fine-tuning's own defaults, used when --epochs, --batch-size or --learning-rate is not given
# (mnist_cnn.finetune). An epoch of fine-tuning is FINETUNE_STEPS_PER_EPOCH batches, a quarter
# of each the person's digits. Chosen on a validation split of the benchmark's writers
# (docs/teaching.md): 6 epochs read every writer at least 98.5% right and cost the validation
# digits at most 0.16 point, where 8 cost up to 0.23 and 5 read the dotted writer 97%.
FINETUNE_EPOCHS = 6
FINETUNE_BATCH_SIZE = 128
FINETUNE_STEPS_PER_EPOCH = 25
FINETUNE_PEAK_RATE = 0.001


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
    # Share of training images degraded each epoch (mnist_cnn.degrade). Chosen on our own
    # degradations of the validation split (docs/robustness.md, seed 1): 0.5 kept the clean
    # validation error lowest (0.80% against 0.85% at 0.3 and 0.90% at 0.7) and the degraded
    # error within 0.1 point of the best (2.58% against 2.49% at 0.7 and 6.16% with the
    # earlier, milder degradations).
    degrade: float = 0.5
    # Share of the training digits added once more as the reader cuts them out of degraded
    # pictures (synthetic.reader_crops), so that the model learns the crops it is given.
    # Chosen on our own degradations of the validation split read through the reader
    # (docs/robustness.md, seed 42): 0.2 and 0.4 both cut the mean error by about a quarter
    # (10.9% without, 8.4% and 8.3% as 280x280 files; 10.3%, 7.7% and 7.7% as 28x28), and 0.2
    # costs a third less time.
    reader_crops: float = 0.2
    limit: int | None = None
    outliers: int = 6000
    cache_dir: Path | None = field(default_factory=default_cache_dir)  # None: no cache
    data_dir: Path | None = None
    model_path: Path | None = None  # None: user_model_path(model)
    plots_dir: Path | None = None  # None: user_plots_dir()
    deterministic: bool = False
    mixed_precision: str = "auto"
    restart: bool = False
    tensorboard: Path | None = None
    verbose: int | str = "auto"
    start_from: Path | None = None  # a trained model to fine-tune (mnist_cnn.finetune)
    own_digits: Path | None = None  # a person's digits, DIR/0 ... DIR/9 (mnist_cnn.own_digits)
    progress_file: Path | None = None  # JSON progress for another process (mnist_cnn.progress)

    @property
    def peak_learning_rate(self) -> float:
        """The one-cycle peak this run uses: `learning_rate`, or the default for its epochs
        (FINETUNE_PEAK_RATE when fine-tuning: a trained model needs only small steps)."""
        if self.learning_rate is not None:
            return self.learning_rate
        if self.start_from is not None:
            return FINETUNE_PEAK_RATE
        return default_peak_rate(self.epochs)

    @property
    def fit_verbosity(self) -> int:
        """Keras' fit verbosity: `verbose`, or for "auto" a progress bar on a terminal and one
        line per epoch elsewhere (in a log file every redraw of the bar would stay)."""
        if self.verbose != "auto":
            return int(self.verbose)
        return 1 if sys.stdout.isatty() else 2

    @property
    def model_file(self) -> Path:
        """The model this run writes: `model_path`, or the user's file for this architecture
        (its `_taught` file when fine-tuning, so the model started from is never written)."""
        if self.model_path:
            return Path(self.model_path)
        if self.start_from:
            return user_taught_model_path(self.model)
        return user_model_path(self.model)

    @property
    def plots_folder(self) -> Path:
        """The folder this run draws its figures in: `plots_dir`, or the user's plots folder."""
        return Path(self.plots_dir) if self.plots_dir else user_plots_dir()


def user_own_digits_dir() -> Path:
    """Where a person's own digits are saved unless told otherwise (mnist_cnn.own_digits)."""
    return user_data_dir() / "own-digits"
