"""Training: configuration, callbacks (early stopping, best checkpoint, resume), saved artefacts."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from mnist_cnn import ood, plots
from mnist_cnn.cpu import choose_precision, cpu_has_bf16
from mnist_cnn.data import (
    NUM_CLASSES,
    Mnist,
    load_mnist,
    make_dataset,
    one_hot,
    stratified_split,
)
from mnist_cnn.engine import DEFAULT_MODEL_PATH, KerasEngine
from mnist_cnn.export import export_onnx
from mnist_cnn.files import file_sha256, history_path, write_json_atomically
from mnist_cnn.model import MODELS, build_model, save_atomically
from mnist_cnn.synthetic import outlier_digits

# Outlier exposure's weight on the non-digits' loss, as in Hendrycks et al. (2019).
OUTLIER_WEIGHT = 0.5
OUTLIER_STREAM = 1  # the training outliers' random stream, apart from every other use of --seed


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
    plots_dir: Path = Path("plots")
    deterministic: bool = False
    mixed_precision: str = "auto"
    verbose: int | str = "auto"


@dataclass
class TrainResult:
    """What a finished run reports: its figures and every file it wrote."""

    best_val_accuracy: float
    best_epoch: int
    epochs_run: int
    test_accuracy: float
    written: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class RunPaths:
    """The files of one run, all derived from the model path."""

    model: Path

    @property
    def checkpoint(self) -> Path:
        """The best model so far; renamed onto `model` only when the run finishes."""
        return self.model.with_name(f"{self.model.stem}.partial.keras")

    @property
    def backup_dir(self) -> Path:
        """Where BackupAndRestore keeps the last finished epoch, for resuming."""
        return self.model.with_name(f"{self.model.stem}_backup")

    @property
    def epoch_log(self) -> Path:
        """Per-epoch metrics appended as the run goes, so a resumed run keeps its history."""
        return self.model.with_name(f"{self.model.stem}.partial.csv")

    @property
    def history(self) -> Path:
        """The finished run's per-epoch history."""
        return history_path(self.model)


def select_data(mnist: Mnist, config: TrainConfig):
    """Split (and optionally shrink) the training set into seeded, stratified train/validation."""
    x, y = mnist.x_train, mnist.y_train
    if config.limit is not None:
        x, y = x[: config.limit], y[: config.limit]
    train_idx, val_idx = stratified_split(y, config.validation_split, config.seed)
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


def read_epoch_log(path: Path) -> dict[str, list[float]]:
    """Read a CSVLogger file into a Keras-style history dict (empty when there is none)."""
    if not path.is_file():
        return {}
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    keys = [key for key in (rows[0] if rows else {}) if key != "epoch"]
    return {key: [float(row[key]) for row in rows] for key in keys}


def make_callbacks(config: TrainConfig, paths: RunPaths, best_val_loss: float | None) -> list:
    """Early stopping, best-model checkpoint, per-epoch log and resumable backup."""
    # On resume the callbacks start afresh; seeding them with the best loss seen before the
    # interruption keeps a worse epoch from overwriting the best checkpoint.
    return [
        keras.callbacks.EarlyStopping(
            monitor="val_loss",
            patience=config.patience,
            restore_best_weights=True,
            baseline=best_val_loss,
        ),
        keras.callbacks.ModelCheckpoint(
            paths.checkpoint,
            monitor="val_loss",
            save_best_only=True,
            initial_value_threshold=best_val_loss,
        ),
        keras.callbacks.CSVLogger(paths.epoch_log, append=True),
        keras.callbacks.BackupAndRestore(paths.backup_dir, double_checkpoint=True),
    ]


def start_fresh(paths: RunPaths) -> None:
    """Remove leftovers of an earlier, finished run so they cannot leak into this one."""
    for path in (paths.checkpoint, paths.epoch_log):
        path.unlink(missing_ok=True)


def draw_plots(mnist: Mnist, history: dict[str, list[float]], plots_dir: Path) -> list[Path]:
    """The four training figures: sample digits, class balance, accuracy and loss curves."""
    return [
        plots.plot_samples(mnist.x_train, mnist.y_train, plots_dir / "samples.png"),
        plots.plot_class_counts(mnist.y_train, plots_dir / "class_counts.png"),
        plots.plot_curve(history, "accuracy", plots_dir / "accuracy.png"),
        plots.plot_curve(history, "loss", plots_dir / "loss.png"),
    ]


def with_outliers(x: np.ndarray, y: np.ndarray, count: int, seed: int):
    """The training set with outlier exposure: digits uint8 (N, 28, 28) and `count` synthetic
    non-digits, their float32 targets (one-hot, or uniform for a non-digit) and loss weights."""
    targets, weights = one_hot(y), np.ones(len(x), np.float32)
    if count == 0:
        return x, targets, weights
    outliers, _ = outlier_digits(count, (seed, OUTLIER_STREAM))
    uniform = np.full((len(outliers), NUM_CLASSES), 1.0 / NUM_CLASSES, np.float32)
    return (
        np.concatenate([x, outliers]),
        np.concatenate([targets, uniform]),
        np.concatenate([weights, np.full(len(outliers), OUTLIER_WEIGHT, np.float32)]),
    )


def float32_copy(model: keras.Model, name: str) -> keras.Model:
    """The same weights in a float32 model: the saved model then predicts alike on every CPU,
    and its ONNX export matches it, whatever precision it was trained in."""
    keras.mixed_precision.set_global_policy("float32")
    copy = MODELS[name]()
    copy.set_weights(model.get_weights())
    return copy


def train(config: TrainConfig, mnist: Mnist | None = None, callbacks: Sequence = ()) -> TrainResult:
    """Train a model as `config` says, save the best one atomically with its not-a-digit
    threshold and its ONNX export, and draw the plots."""
    keras.utils.set_random_seed(config.seed)
    policy, reason = choose_precision(config.mixed_precision, cpu_has_bf16())
    keras.mixed_precision.set_global_policy(policy)
    print(f"Precision: {policy} ({reason})")
    if config.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    mnist = mnist if mnist is not None else load_mnist(config.data_dir)
    (x_train, y_train), (x_val, y_val) = select_data(mnist, config)
    x_train, targets, weights = with_outliers(x_train, y_train, config.outliers, config.seed)

    paths = RunPaths(Path(config.model_path))
    paths.model.parent.mkdir(parents=True, exist_ok=True)
    resuming = paths.backup_dir.exists()
    if not resuming:
        start_fresh(paths)
    earlier = read_epoch_log(paths.epoch_log)
    best_val_loss = min(earlier["val_loss"]) if earlier.get("val_loss") else None

    steps_per_epoch = -(-len(x_train) // config.batch_size)
    model = build_model(config.model, config.learning_rate, config.epochs * steps_per_epoch)
    model.summary()
    if earlier:
        print(f"Resuming after epoch {len(earlier['val_loss'])} from {paths.backup_dir}")
    model.fit(
        make_dataset(
            x_train,
            targets,
            config.batch_size,
            shuffle_seed=config.seed,
            augment=config.augment,
            weights=weights,
        ),
        validation_data=make_dataset(x_val, one_hot(y_val), config.batch_size),
        epochs=config.epochs,
        callbacks=[*make_callbacks(config, paths, best_val_loss), *callbacks],
        shuffle=False,  # the tf.data pipeline already reshuffles every epoch
        verbose=config.verbose,
    )

    history = read_epoch_log(paths.epoch_log)
    best = float32_copy(keras.saving.load_model(paths.checkpoint), config.model)
    engine = KerasEngine(best, paths.model)
    test_accuracy = float((engine.predict(mnist.x_test).argmax(1) == mnist.y_test).mean())
    save_atomically(best, paths.model)
    paths.checkpoint.unlink()
    paths.epoch_log.unlink()
    model_sha256 = file_sha256(paths.model)
    stats = ood.fit_stats(engine.predict(x_val), model_sha256)
    written = [
        paths.model,
        ood.save_stats(stats, ood.stats_path(paths.model)),
        export_onnx(best, paths.model, model_sha256),
        write_json_atomically(history, paths.history),
    ]
    written += draw_plots(mnist, history, Path(config.plots_dir))

    best_epoch = int(np.argmin(history["val_loss"]))
    return TrainResult(
        best_val_accuracy=history["val_accuracy"][best_epoch],
        best_epoch=best_epoch + 1,
        epochs_run=len(history["val_loss"]),
        test_accuracy=test_accuracy,
        written=written,
    )
