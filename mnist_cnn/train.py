"""Training: configuration, callbacks (early stopping, best checkpoint, resume), saved artefacts."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import filelock
import joblib
import keras
import numpy as np

from mnist_cnn import ood, plots
from mnist_cnn.config import TrainConfig
from mnist_cnn.cpu import choose_precision, cpu_has_bf16
from mnist_cnn.data import (
    NUM_CLASSES,
    Mnist,
    load_mnist,
    make_dataset,
    one_hot,
    stratified_split,
)
from mnist_cnn.engine import BATCH_SIZE, KerasEngine, scale
from mnist_cnn.errors import UserError
from mnist_cnn.export import export_onnx
from mnist_cnn.files import file_sha256, history_path, write_json_atomically
from mnist_cnn.model import MODELS, build_model, save_atomically
from mnist_cnn.own_digits import OwnDigits, load_own_digits
from mnist_cnn.progress import Progress, StepClock
from mnist_cnn.synthetic import generator_fingerprint, outlier_digits, reader_crops

# Outlier exposure's weight on the non-digits' loss, as in Hendrycks et al. (2019).
OUTLIER_WEIGHT = 0.5
OUTLIER_STREAM = 1  # the training outliers' random stream, apart from every other use of --seed
READER_CROP_STREAM = 2  # the reader crops' random stream
# The settings that change the model, the data or the learning-rate schedule. Resuming with
# any other value would stitch two different runs together. --patience, --deterministic,
# --mixed-precision and the output folders may change between the two halves of a run.
RESUME_SETTINGS = (
    "model",
    "epochs",
    "batch_size",
    "learning_rate",
    "validation_split",
    "seed",
    "augment",
    "degrade",
    "limit",
    "outliers",
    "reader_crops",
    "data_dir",
    "start_from",
    "own_digits",
)
PATH_SETTINGS = ("data_dir", "start_from", "own_digits")  # recorded resolved, as absolute paths
DATA_DIGEST = "training_data_sha256"
OWN_DIGEST = "own_digits_sha256"  # the person's pictures and labels, not just their folder
DIGEST_CHANGES = {
    DATA_DIGEST: "other training data (its SHA-256 differs)",
    OWN_DIGEST: "other own digits (their pictures or labels changed)",
}
# A from-scratch run sees each of the person's pictures this many times an epoch (each time
# shifted and perhaps degraded anew), so a hundred of them weigh against 54,000 MNIST digits.
OWN_REPEAT = 20
# A checkpoint holds the weights and Adam's two moment estimates (3 float32 per parameter); a
# run keeps up to four at once: the best model, two backups and the one being written.
CHECKPOINT_BYTES_PER_PARAM = 3 * 4
CHECKPOINT_COPIES = 4
MB = 1024 * 1024


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
    def settings(self) -> Path:
        """What the interrupted run depends on, kept with its backup and removed with it."""
        return self.backup_dir / "run_settings.json"

    @property
    def lock(self) -> Path:
        """Held for the whole run, so two runs never share a backup and a checkpoint."""
        return self.model.with_name(f"{self.model.stem}.lock")

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
    """Early stopping, best-model checkpoint, per-epoch log, resumable backup, TensorBoard."""
    # On resume the callbacks start afresh; seeding them with the best loss seen before the
    # interruption keeps a worse epoch from overwriting the best checkpoint.
    tensorboard = (
        [] if config.tensorboard is None else [keras.callbacks.TensorBoard(config.tensorboard)]
    )
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
        *tensorboard,
    ]


def check_writable(folder: Path, what: str) -> None:
    """Create `folder` if needed and write a scratch file in it: a UserError if either fails.

    Run before training, so a bad folder is found in a second, not after the last epoch.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UserError(f"{folder}: cannot write {what} here: {error.strerror or error}") from None


def check_disk_space(folder: Path, params: int) -> None:
    """Raise a UserError when `folder` has too little room for the checkpoints of `params`."""
    needed = params * CHECKPOINT_BYTES_PER_PARAM * CHECKPOINT_COPIES
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise UserError(
            f"{folder}: {free / MB:.1f} MB free, too little for this model's checkpoints "
            f"(about {needed / MB:.1f} MB)"
        )


@contextlib.contextmanager
def exclusive_run(paths: RunPaths) -> Iterator[None]:
    """Hold the model path's lock for the whole run; a second run on it gets a UserError.

    The lock is an OS file lock (flock), which dies with its process: a killed run's lock
    file is left behind but never blocks the next run.
    """
    lock = filelock.FileLock(paths.lock, blocking=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        owner = ""  # the lock file may not hold the process id yet
        with contextlib.suppress(OSError):
            owner = paths.lock.read_text().strip()
        raise UserError(
            f"{paths.model}: another run (process {owner or 'unknown'}) is training this model; "
            "wait for it to finish or choose another --model-path"
        ) from None
    try:
        paths.lock.write_text(f"{os.getpid()}\n")
        yield
    finally:
        lock.release()


def arrays_digest(images: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 of images and their labels, as 64 hex digits."""
    digest = hashlib.sha256(np.ascontiguousarray(images).data)
    digest.update(np.ascontiguousarray(labels).data)
    return digest.hexdigest()


def data_digest(mnist: Mnist) -> str:
    """SHA-256 of the training images and labels, the data every run splits and limits."""
    return arrays_digest(mnist.x_train, mnist.y_train)


def run_settings(config: TrainConfig, digest: str, own_digest: str | None = None) -> dict:
    """The JSON-ready settings a run depends on (RESUME_SETTINGS), its data's digest and the
    digest of the person's own digits (None without --own-digits)."""
    settings = {name: getattr(config, name) for name in RESUME_SETTINGS}
    for name in PATH_SETTINGS:
        value = settings[name]
        settings[name] = None if value is None else str(Path(value).resolve())
    return {**settings, DATA_DIGEST: digest, OWN_DIGEST: own_digest}


def as_flag(name: str, value: object) -> str:
    """How a setting reads on the command line: `--batch-size 64`, or `no --limit` when unset."""
    flag = "--" + name.replace("_", "-")
    return f"no {flag}" if value is None else f"{flag} {value}"


def settings_differences(recorded: dict, current: dict) -> list[str]:
    """One phrase per setting that differs: `--epochs 3, not --epochs 5` (then, now)."""
    differences = []
    for name, value in current.items():
        if recorded.get(name) == value:
            continue
        if name in DIGEST_CHANGES:
            differences.append(DIGEST_CHANGES[name])
        else:
            differences.append(f"{as_flag(name, recorded.get(name))}, not {as_flag(name, value)}")
    return differences


def check_same_settings(paths: RunPaths, settings: dict) -> None:
    """Raise a UserError naming every setting the interrupted run had otherwise."""
    try:
        recorded = json.loads(paths.settings.read_text())
    except (OSError, ValueError):
        raise UserError(
            f"{paths.backup_dir}: an interrupted run without a readable record of its settings; "
            "add --restart to discard it and start over"
        ) from None
    differences = settings_differences(recorded, settings)
    if differences:
        raise UserError(
            f"{paths.model}: the interrupted run of this model had {'; '.join(differences)}: "
            "run the command that started it to resume it, or add --restart to discard it and "
            "start over"
        )


def prepare_run(paths: RunPaths, settings: dict, restart: bool) -> None:
    """Resume only a run with the same settings; start a new one with its settings recorded."""
    if restart and paths.backup_dir.exists():
        shutil.rmtree(paths.backup_dir)
        print(f"Discarded the interrupted run in {paths.backup_dir} (--restart)")
    if paths.backup_dir.exists():
        check_same_settings(paths, settings)
        return
    start_fresh(paths)
    paths.backup_dir.mkdir()
    write_json_atomically(settings, paths.settings)


def track_epoch(progress: dict[str, int]) -> keras.callbacks.Callback:
    """A callback that keeps the number (from 1) of the epoch under way in `progress`."""
    return keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: progress.update(epoch=epoch + 1)
    )


def report_progress(
    progress: Progress, clock: StepClock, epoch_offset: int = 0
) -> keras.callbacks.Callback:
    """A callback that writes `progress`: stage "training" and the epoch (counted from
    `epoch_offset` + 1) when each epoch begins, the seconds left as the batches go."""
    return keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: progress.update(
            stage="training", epoch=epoch_offset + epoch + 1
        ),
        on_train_batch_end=lambda batch, logs: progress.tick(seconds_left=clock.step()),
    )


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


def generate_outliers(count: int, seed: int, fingerprint: str) -> np.ndarray:
    """The training run's synthetic non-digits, uint8 (M, 28, 28) with M <= `count`, from the
    random stream (seed, OUTLIER_STREAM). `fingerprint`, the generator's, is unused here: it
    is part of the cache's key."""
    del fingerprint
    return outlier_digits(count, (seed, OUTLIER_STREAM))[0]


def generate_reader_crops(
    x: np.ndarray, y: np.ndarray, share: float, seed: int, fingerprint: str
) -> tuple[np.ndarray, np.ndarray]:
    """`synthetic.reader_crops` of a `share` of the training digits x uint8 (N, 28, 28) with
    labels y (N,), chosen and degraded from the random stream (seed, READER_CROP_STREAM).
    `fingerprint` is part of the cache's key only."""
    del fingerprint
    rng = np.random.default_rng((seed, READER_CROP_STREAM))
    chosen = np.sort(rng.choice(len(x), round(share * len(x)), replace=False))
    return reader_crops(x[chosen], y[chosen], (seed, READER_CROP_STREAM))


def cached(function: Callable, args: tuple, cache_dir: Path | None) -> tuple[object, str]:
    """`function(*args)`, kept in `cache_dir` between runs by joblib.Memory (its key: the
    arguments and the function's code), and where it came from, for the log. With
    `cache_dir` None or unusable, it is computed every time."""
    if cache_dir is not None:
        try:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)  # joblib only warns if it cannot
            memory = joblib.Memory(cache_dir, verbose=0).cache(function)
            source = "cached" if memory.check_call_in_cache(*args) else "generated, then cached"
            return memory(*args), f"{source} in {cache_dir}"
        except OSError as error:
            reason = "not a folder" if isinstance(error, FileExistsError) else error.strerror
            print(f"note: {cache_dir}: cannot cache generated pictures ({reason or error})")
    return function(*args), "generated, not cached"


def training_outliers(count: int, seed: int, cache_dir: Path | None) -> np.ndarray:
    """`generate_outliers` through `cached` with the generator's fingerprint: generating
    6,000 costs about 10 s of a run's start-up on 2 cores, reading them back a few
    milliseconds."""
    outliers, where = cached(generate_outliers, (count, seed, generator_fingerprint()), cache_dir)
    print(f"Outlier exposure: {len(outliers):,} synthetic non-digits ({where})")
    return outliers


def training_reader_crops(
    x: np.ndarray, y: np.ndarray, share: float, seed: int, cache_dir: Path | None
) -> tuple[np.ndarray, np.ndarray]:
    """`generate_reader_crops` through `cached`: about 20 s for 11,000 crops on 2 cores."""
    args = (x, y, share, seed, generator_fingerprint())
    (crops, labels), where = cached(generate_reader_crops, args, cache_dir)
    print(f"Reader crops: {len(crops):,} degraded training digits as the reader cuts them out "
          f"({where})")  # fmt: skip
    return crops, labels


def with_outliers(x: np.ndarray, y: np.ndarray, outliers: np.ndarray):
    """The training set with outlier exposure: digits uint8 (N, 28, 28) and the non-digits
    uint8 (M, 28, 28), their float32 targets (one-hot, or uniform for a non-digit) and loss
    weights (N + M,)."""
    uniform = np.full((len(outliers), NUM_CLASSES), 1.0 / NUM_CLASSES, np.float32)
    weights = np.full(len(x) + len(outliers), OUTLIER_WEIGHT, np.float32)
    weights[: len(x)] = 1.0
    return np.concatenate([x, outliers]), np.concatenate([one_hot(y), uniform]), weights


def read_own_digits(folder: Path) -> OwnDigits:
    """`own_digits.load_own_digits`, saying how many of each digit it read and naming every
    picture it skipped. Raises UserError as that does."""
    own = load_own_digits(folder)
    counts = ", ".join(f"{digit}: {count}" for digit, count in own.counts().items() if count)
    print(f"Own digits: {len(own.labels)} pictures in {folder} ({counts})")
    for message in own.skipped:
        print(f"note: skipped {message}")
    return own


def with_own_digits(
    x: np.ndarray, y: np.ndarray, own_x: np.ndarray, own_y: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The training digits uint8 (N, 28, 28) and labels (N,) with the person's own, each
    repeated OWN_REPEAT times, all in one seeded random order."""
    x = np.concatenate([x, np.repeat(own_x, OWN_REPEAT, axis=0)])
    y = np.concatenate([y, np.repeat(np.asarray(own_y, y.dtype), OWN_REPEAT)])
    order = np.random.default_rng(seed).permutation(len(y))
    return x[order], y[order]


def probabilities(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """The model's float32 (N, 10) class probabilities for uint8 digits (N, 28, 28)."""
    # Keras' predict traces once for any batch size; predict_on_batch would trace again for
    # each size, and each fine-tuning run's recompiling (TensorFlow warns of it).
    return np.asarray(model.predict(scale(images), batch_size=BATCH_SIZE, verbose=0), np.float32)


def accuracy(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> float:
    """The share of uint8 digits (N, 28, 28) the model reads as their labels (N,); NaN for N=0."""
    if len(labels) == 0:
        return float("nan")
    return float(np.mean(probabilities(model, images).argmax(1) == np.asarray(labels)))


def save_model_set(model: keras.Model, path: Path, x_val: np.ndarray) -> list[Path]:
    """Write a finished model as one set: the .keras at `path` (atomically), then its
    not-a-digit statistics, fitted on the validation digits uint8 (N, 28, 28) and naming its
    SHA-256, then its ONNX export recording the same. Returns the three paths."""
    save_atomically(model, path)
    model_sha256 = file_sha256(path)
    stats = ood.fit_stats(KerasEngine(model, path).predict(x_val), model_sha256)
    return [
        path,
        ood.save_stats(stats, ood.stats_path(path)),
        export_onnx(model, path, model_sha256),
    ]


def float32_copy(model: keras.Model, name: str) -> keras.Model:
    """The same weights in a float32 model: the saved model then predicts alike on every CPU,
    and its ONNX export matches it, whatever precision it was trained in."""
    keras.mixed_precision.set_global_policy("float32")
    copy = MODELS[name]()
    copy.set_weights(model.get_weights())
    return copy


def train(
    config: TrainConfig,
    mnist: Mnist | None = None,
    callbacks: Sequence = (),
    progress: Progress | None = None,
) -> TrainResult:
    """Train a model as `config` says, save the best one atomically with its not-a-digit
    threshold and its ONNX export, and draw the plots; report the stages and epochs to
    `progress` when given.

    Raises UserError before the first epoch for an unwritable folder, too little disk space,
    another run on the same model path, or an interrupted run with other settings; raises
    KeyboardInterrupt with a one-line message on Ctrl-C during training (the backup is kept).
    """
    paths = RunPaths(config.model_file)
    check_writable(paths.model.parent, "the model")
    check_writable(config.plots_folder, "the plots")
    if config.tensorboard is not None:
        if importlib.util.find_spec("tensorboard") is None:  # Keras' callback fails without it
            raise UserError("--tensorboard needs the tensorboard package: pip install tensorboard")
        check_writable(Path(config.tensorboard), "TensorBoard logs")
    with exclusive_run(paths):
        return train_locked(
            config, paths, mnist, callbacks, progress or Progress(None, paths.model)
        )


def train_locked(
    config: TrainConfig,
    paths: RunPaths,
    mnist: Mnist | None,
    callbacks: Sequence,
    progress: Progress,
) -> TrainResult:
    """The run itself, once `train` has checked the folders and holds the model path's lock."""
    keras.utils.set_random_seed(config.seed)
    policy, reason = choose_precision(config.mixed_precision, cpu_has_bf16())
    keras.mixed_precision.set_global_policy(policy)
    print(f"Precision: {policy} ({reason})")
    if config.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    mnist = mnist if mnist is not None else load_mnist(config.data_dir)
    (x_train, y_train), (x_val, y_val) = select_data(mnist, config)
    if config.reader_crops:
        crops, crop_labels = training_reader_crops(
            x_train, y_train, config.reader_crops, config.seed, config.cache_dir
        )
        x_train, y_train = np.concatenate([x_train, crops]), np.concatenate([y_train, crop_labels])
    own = None if config.own_digits is None else read_own_digits(config.own_digits)
    if own is not None:
        x_train, y_train = with_own_digits(x_train, y_train, own.images, own.labels, config.seed)
    outliers = np.zeros((0, *x_train.shape[1:]), np.uint8)
    if config.outliers:
        outliers = training_outliers(config.outliers, config.seed, config.cache_dir)
    x_train, targets, weights = with_outliers(x_train, y_train, outliers)

    steps_per_epoch = -(-len(x_train) // config.batch_size)
    print(f"Learning rate: one-cycle to a peak of {config.peak_learning_rate:g}")
    total_steps = config.epochs * steps_per_epoch
    model = build_model(config.model, config.peak_learning_rate, total_steps)
    check_disk_space(paths.model.parent, model.count_params())
    own_digest = None if own is None else arrays_digest(own.images, own.labels)
    prepare_run(paths, run_settings(config, data_digest(mnist), own_digest), config.restart)
    earlier = read_epoch_log(paths.epoch_log)
    best_val_loss = min(earlier["val_loss"]) if earlier.get("val_loss") else None
    model.summary()
    if earlier:
        print(f"Resuming after epoch {len(earlier['val_loss'])} from {paths.backup_dir}")
    progress.update(epochs=config.epochs)
    clock = StepClock(config.epochs * steps_per_epoch)
    epoch = {"epoch": 0}
    try:
        model.fit(
            make_dataset(
                x_train,
                targets,
                config.batch_size,
                shuffle_seed=config.seed,
                augment=config.augment,
                weights=weights,
                degrade=config.degrade,
            ),
            validation_data=make_dataset(x_val, one_hot(y_val), config.batch_size),
            epochs=config.epochs,
            callbacks=[
                track_epoch(epoch),
                report_progress(progress, clock),
                *make_callbacks(config, paths, best_val_loss),
                *callbacks,
            ],
            shuffle=False,  # the tf.data pipeline already reshuffles every epoch
            verbose=config.fit_verbosity,
        )
    except KeyboardInterrupt:
        when = f"during epoch {epoch['epoch']}" if epoch["epoch"] else "before epoch 1"
        raise KeyboardInterrupt(
            f"interrupted {when} of {config.epochs}: run the same command to resume"
        ) from None

    progress.update(stage="exporting", seconds_left=None)
    history = read_epoch_log(paths.epoch_log)
    best = float32_copy(keras.saving.load_model(paths.checkpoint), config.model)
    test_accuracy = accuracy(best, mnist.x_test, mnist.y_test)
    written = save_model_set(best, paths.model, x_val)
    paths.checkpoint.unlink()
    paths.epoch_log.unlink()
    written.append(write_json_atomically(history, paths.history))
    written += draw_plots(mnist, history, config.plots_folder)
    if config.tensorboard is not None:
        written.append(Path(config.tensorboard))

    best_epoch = int(np.argmin(history["val_loss"]))
    return TrainResult(
        best_val_accuracy=history["val_accuracy"][best_epoch],
        best_epoch=best_epoch + 1,
        epochs_run=len(history["val_loss"]),
        test_accuracy=test_accuracy,
        written=written,
    )
