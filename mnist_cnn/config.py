"""What a training run depends on, and the default paths: no TensorFlow, so --help is instant."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL_PATH = Path("models/mnist_cnn.keras")
DEFAULT_PLOTS_DIR = Path("plots")
MODEL_NAMES = ("cnn", "strong")  # the keys of model.MODELS, for the parser


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; the CLI fills it from its flags."""

    epochs: int = 12
    batch_size: int = 256
    learning_rate: float = 0.006
    validation_split: float = 0.1
    patience: int = 5
    seed: int = 42
    model: str = "cnn"
    augment: str = "shift"
    limit: int | None = None
    outliers: int = 6000
    data_dir: Path | None = None
    model_path: Path = DEFAULT_MODEL_PATH
    plots_dir: Path = DEFAULT_PLOTS_DIR
    deterministic: bool = False
    mixed_precision: str = "auto"
    restart: bool = False
    tensorboard: Path | None = None
    verbose: int | str = "auto"
