"""Fine-tuning a trained model on a person's own digits, without forgetting MNIST.

    python train_model.py --start-from MODEL.keras --own-digits DIR [--model-path OUT.keras]

The model starts from MODEL's weights and takes a short one-cycle schedule at a low peak rate
(config.FINETUNE_*). A quarter of every batch is the person's digits, each one deformed
afresh (elastic deformation, a small rotation, scaling and shift, perhaps a degradation: a
few dozen pictures must stand for the many ways the person writes); the rest is MNIST
training digits, degraded as in a full run, a tenth of them replaced by the synthetic
non-digits of outlier exposure, their targets half what MODEL said of them (distillation):
so the model keeps what it read and what it refused (docs/teaching.md). The model written
holds MODEL and the fine-tuned model behind a gate (model.NearestGate): the fine-tuned one
answers only pictures nearer the person's digits than any MNIST digit, so MNIST digits keep
MODEL's reading.

Before and after, it measures the accuracy on the person's digits the model has not learnt
from, and on the MNIST test set. With enough pictures (HELD_OUT_MIN per digit in a
HELD_OUT_FRACTION part), a stratified part is held out and never taught; with fewer, every
picture is taught, and the "after" figure comes from K_FOLDS-fold cross-validation (each
fold's pictures read by the gated model fine-tuned, the same way, on the other folds).
OUT is written as a full run writes its model: the .keras, its not-a-digit statistics and
its ONNX export, as one set; MODEL is never written unless OUT is MODEL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import keras
import numpy as np
import tensorflow as tf

from mnist_cnn.config import FINETUNE_STEPS_PER_EPOCH, TrainConfig
from mnist_cnn.data import IMAGE_SIZE, NUM_CLASSES, Mnist, load_mnist, one_hot
from mnist_cnn.degrade import degrade_batch, elastic_deformation
from mnist_cnn.engine import BATCH_SIZE, scale
from mnist_cnn.errors import UserError
from mnist_cnn.model import (
    GATED_START,
    GATED_TAUGHT,
    INPUT_SHAPE,
    NearestGate,
    compile_model,
    load_trained_model,
)
from mnist_cnn.progress import Progress, StepClock, figures
from mnist_cnn.train import (
    OUTLIER_WEIGHT,
    RunPaths,
    accuracy,
    check_writable,
    exclusive_run,
    probabilities,
    read_own_digits,
    report_progress,
    save_model_set,
    select_data,
    training_outliers,
)

HELD_OUT_FRACTION = 0.2
HELD_OUT_MIN = 5  # pictures per digit in the held-out part; fewer: cross-validation instead
K_FOLDS = 2  # few folds: each is a whole fine-tune, and the command must stay within a minute
MIN_PICTURES = 2  # one to learn from and one to measure on, at the least
OWN_SHARE = 0.25  # of each batch: the person's digits; the rest MNIST (and non-digits)
# ... with FULL_SHARE_AT pictures or more; fewer take a share in proportion, so that each
# picture is drawn about as often (48 times in 6 epochs) however few there are. Ten pictures
# of one digit drawn ten times as often teach the writer's style itself to mean that digit:
# taught only hollow 1s, the model read the writer's other hollow digits 6 points worse (as
# 1s), and 1.6 points worse at the proportional share (docs/teaching.md, validation pictures).
FULL_SHARE_AT = 100
OUTLIER_SHARE = 0.1  # of the MNIST part: non-digits, as in a full run (6,000 in 60,000)
MAX_OUTLIERS = 2000  # generated once (about 3 s) and cached; enough to draw from
# The person's pictures' deformations: elastic (Simard et al. 2003's MNIST values) for half
# of them, then every one rotated, scaled and shifted by up to these.
ELASTIC_SHARE = 0.5
MAX_DEGREES = 12.0
MAX_SCALE = 0.12
MAX_SHIFT = 2.5  # pixels
MNIST_SHIFT = 2.0  # pixels: the full run's "shift" augmentation
OWN_DEGRADE = 0.3  # the person's pictures degraded too: their scans and photos vary as much
# Not forgetting MNIST: its digits' targets are half their one-hot label, half what the start
# model says of them (distillation, as in Li and Hoiem 2016, "Learning without Forgetting"),
# which holds the model to all it knew, runners-up included, not only to the right answer.
# The start model reads MNIST_POOL training digits once for it (about a second), more than a
# fine-tune draws.
DISTILL = 0.5
MNIST_POOL = 8000
# The taught model answers only pictures whose features are nearer the person's digits than
# any of the MNIST_POOL digits (model.NearestGate); the start model answers the rest, so MNIST
# digits keep their reading. The person's digits are stored with WRITER_COPIES deformed copies
# of each, as training deforms them: the ways they write beyond the few pictures they gave.
# At most WRITER_BANK are stored: the gate compares a picture with every one of them. (On the
# validation pictures of four writers, the MNIST validation digits lost 0.01-0.03 point
# against 0.11-0.20 without the gate, the writers still read 99.5% right; docs/teaching.md.)
WRITER_COPIES = 10
WRITER_BANK = 8000


@dataclass(frozen=True)
class OwnSplit:
    """How the person's digits are taught and measured: `folds` pairs of index arrays (taught,
    measured) for the runs that measure, and `final` the indices the written model learns."""

    method: str  # "held-out" or "cross-validation"
    folds: tuple[tuple[np.ndarray, np.ndarray], ...]
    final: np.ndarray

    @property
    def measured(self) -> np.ndarray:
        """Every index measured, in the order the fold results come."""
        return np.concatenate([measured for _, measured in self.folds])

    def describe(self) -> str:
        """One line for the user: which pictures the "own" figures are measured on."""
        count = len(self.measured)
        if self.method == "held-out":
            return (
                f"own digits: {count} held out (never taught, {HELD_OUT_FRACTION:.0%} of each "
                f"digit), {len(self.final)} taught"
            )
        return (
            f"own digits: {len(self.final)} all taught; the 'after' figure is "
            f"{len(self.folds)}-fold cross-validation (fewer than {HELD_OUT_MIN} a digit "
            "to hold out)"
        )


def held_out_sizes(labels: np.ndarray) -> dict[int, int]:
    """How many pictures of each digit present a HELD_OUT_FRACTION part would hold."""
    return {
        int(digit): round(HELD_OUT_FRACTION * int(np.sum(labels == digit)))
        for digit in np.unique(labels)
    }


def split_own(labels: np.ndarray, seed: int) -> OwnSplit:
    """A stratified held-out part when every digit present would have HELD_OUT_MIN pictures
    in it, else K_FOLDS stratified folds (at most one per picture). Raises UserError for
    fewer than MIN_PICTURES pictures."""
    labels = np.asarray(labels)
    if len(labels) < MIN_PICTURES:
        raise UserError(
            f"{len(labels)} own digit: at least {MIN_PICTURES} are needed to teach and measure"
        )
    rng = np.random.default_rng(seed)
    if min(held_out_sizes(labels).values()) >= HELD_OUT_MIN:
        measured = np.concatenate(
            [
                rng.permutation(np.flatnonzero(labels == digit))[:size]
                for digit, size in held_out_sizes(labels).items()
            ]
        )
        taught = np.setdiff1d(np.arange(len(labels)), measured)
        return OwnSplit("held-out", ((taught, np.sort(measured)),), taught)
    folds = min(K_FOLDS, len(labels))
    # Deal each digit's pictures round the folds in a random order: stratified folds.
    fold_of = np.empty(len(labels), np.int64)
    start = 0
    for digit in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == digit))
        fold_of[members] = (start + np.arange(len(members))) % folds
        start += len(members)
    everything = np.arange(len(labels))
    pairs = tuple(
        (everything[fold_of != fold], everything[fold_of == fold]) for fold in range(folds)
    )
    return OwnSplit("cross-validation", pairs, everything)


def random_affine(
    images: np.ndarray,
    rng: np.random.Generator,
    degrees: float = MAX_DEGREES,
    scale: float = MAX_SCALE,
    shift: float = MAX_SHIFT,
) -> np.ndarray:
    """Each uint8 (28, 28) image of (N, 28, 28) rotated by up to `degrees` about its centre,
    scaled by up to `scale` (a fraction) and shifted by up to `shift` pixels each way, all
    uniform at random; black fills what comes in from outside."""
    centre = (IMAGE_SIZE / 2, IMAGE_SIZE / 2)
    out = np.empty_like(images)
    for n, image in enumerate(images):
        matrix = cv2.getRotationMatrix2D(
            centre, rng.uniform(-degrees, degrees), 1 + rng.uniform(-scale, scale)
        )
        matrix[:, 2] += rng.uniform(-shift, shift, 2)
        out[n] = cv2.warpAffine(
            image, matrix, (IMAGE_SIZE, IMAGE_SIZE), flags=cv2.INTER_LINEAR, borderValue=0
        )
    return out


def deform_own(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The person's digits uint8 (N, 28, 28) as they might also have written them: elastic
    deformation for ELASTIC_SHARE of them, then a random small rotation, scaling and shift."""
    images = np.array(images, np.uint8, copy=True)
    wobbly = rng.random(len(images)) < ELASTIC_SHARE
    if wobbly.any():
        images[wobbly] = elastic_deformation(images[wobbly], rng)
    return random_affine(images, rng)


def own_share(count: int) -> float:
    """The share of each batch given to the person's digits when they have `count` pictures:
    OWN_SHARE from FULL_SHARE_AT pictures on, in proportion below."""
    return OWN_SHARE * min(1.0, count / FULL_SHARE_AT)


class MixedBatches(keras.utils.PyDataset):
    """`steps` batches an epoch, each `share` the person's digits (deformed and degraded
    afresh; `own` uint8 (N, 28, 28) and labels (N,)) and the rest MNIST digits (`mnist`: uint8
    (M, 28, 28) and float32 targets (M, 10)), OUTLIER_SHARE of those replaced by `outliers`
    with a uniform target and weight OUTLIER_WEIGHT, a `degrade` share of them degraded.
    Yields (float32 (B, 28, 28, 1) in [0, 1], float32 (B, 10), float32 (B,)). Batch `index`
    of epoch `e` is the same for the same `seed`, whatever came before."""

    def __init__(
        self,
        own: tuple[np.ndarray, np.ndarray],
        mnist: tuple[np.ndarray, np.ndarray],
        outliers: np.ndarray,
        batch_size: int,
        steps: int,
        seed: int,
        degrade: float = 0.0,
        share: float = OWN_SHARE,
    ):
        super().__init__()
        self.own_x, self.own_y = own
        self.mnist_x, self.mnist_targets = mnist
        self.outliers = outliers
        self.batch_size, self.steps, self.seed = batch_size, steps, seed
        self.degrade, self.share = degrade, share
        self.epoch = 0

    def __len__(self) -> int:
        return self.steps

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def __getitem__(self, index: int):
        rng = np.random.default_rng((self.seed, self.epoch, index))
        n_own = max(1, round(self.share * self.batch_size))
        n_mnist = self.batch_size - n_own
        n_outliers = round(OUTLIER_SHARE * n_mnist) if len(self.outliers) else 0
        own = rng.integers(0, len(self.own_y), n_own)
        rows = rng.integers(0, len(self.mnist_x), n_mnist - n_outliers)
        others = np.concatenate(
            [self.mnist_x[rows], self.outliers[rng.integers(0, len(self.outliers), n_outliers)]]
        )
        others = random_affine(degrade_batch(others, rng, self.degrade), rng, 0, 0, MNIST_SHIFT)
        uniform = np.full((n_outliers, NUM_CLASSES), 1.0 / NUM_CLASSES, np.float32)
        mine = degrade_batch(deform_own(self.own_x[own], rng), rng, OWN_DEGRADE)
        images = np.concatenate([mine, others])
        targets = np.concatenate([one_hot(self.own_y[own]), self.mnist_targets[rows], uniform])
        weights = np.ones(self.batch_size, np.float32)
        weights[self.batch_size - n_outliers :] = OUTLIER_WEIGHT
        return (images.astype(np.float32) / 255.0)[..., np.newaxis], targets, weights


@dataclass
class FinetuneResult:
    """What a fine-tune reports: `before` and `after` (progress.figures), how the own figure
    was measured, and every file written."""

    before: dict
    after: dict
    method: str
    written: list[Path] = field(default_factory=list)


def finetune(
    config: TrainConfig, progress: Progress | None = None, mnist: Mnist | None = None
) -> FinetuneResult:
    """Fine-tune `config.start_from` on `config.own_digits` and write `config.model_file` (OUT)
    with its statistics and ONNX export; report each stage to `progress`.

    Raises UserError, before any training, for a missing or bad model, folder of own digits
    or MNIST copy, an unwritable OUT folder, or another run writing OUT.
    """
    if config.start_from is None or config.own_digits is None:
        raise UserError("fine-tuning needs --start-from MODEL.keras and --own-digits DIR")
    paths = RunPaths(config.model_file)
    progress = progress or Progress(None, paths.model)
    check_writable(paths.model.parent, "the model")
    with exclusive_run(paths):
        return finetune_locked(config, paths, progress, mnist)


def members(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """(the model that answers pictures unlike the person's, the model to fine-tune) for a
    start `model`: for a model taught before (a NearestGate's), its start member and its taught
    member, so that teaching again starts from what was taught and MNIST keeps the original
    reading; for any other model, a copy of it and itself."""
    if any(isinstance(layer, NearestGate) for layer in model.layers):
        taught = model.get_layer(GATED_TAUGHT)
        return model.get_layer(GATED_START), keras.Model(taught.inputs, taught.outputs[1])
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy, model


def with_features(model: keras.Model) -> keras.Model | None:
    """`model` with two outputs, the features its last layer takes, float (N, F), and its
    probabilities (N, 10); None unless that layer is a Dense layer taking one vector a picture
    (a model of another shape is taught without a gate)."""
    last = model.layers[-1]
    if not isinstance(last, keras.layers.Dense) or len(last.input.shape) != 2:
        return None
    return keras.Model(model.inputs, [last.input, last.output], name=GATED_TAUGHT)


def writer_pictures(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The person's digits uint8 (N, 28, 28) and WRITER_COPIES copies of each deformed and
    degraded as training does (deform_own, OWN_DEGRADE): at most WRITER_BANK pictures."""
    copies = max(0, min(WRITER_COPIES, WRITER_BANK // len(images) - 1))
    bank = np.concatenate(
        [images, *(degrade_batch(deform_own(images, rng), rng, OWN_DEGRADE) for _ in range(copies))]
    )
    if len(bank) > WRITER_BANK:
        bank = bank[rng.choice(len(bank), WRITER_BANK, replace=False)]
    return bank


def unit_features(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """The first output of a with_features model for uint8 images (N, 28, 28), each row
    scaled to unit length: float32 (N, F)."""
    features = model.predict(scale(images), batch_size=BATCH_SIZE, verbose=0)[0]
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return (features / np.maximum(norms, 1e-12)).astype(np.float32)


def gated(
    start: keras.Model,
    taught: keras.Model,
    own: np.ndarray,
    mnist: np.ndarray,
    rng: np.random.Generator,
) -> keras.Model:
    """One model of `start` and `taught` behind a NearestGate: the taught model answers the
    pictures nearer, in its features, to the person's digits uint8 (N, 28, 28) (writer_pictures
    of them) than to any of the MNIST digits uint8 (M, 28, 28); the start model the others.
    `taught` alone when its features are not one vector a picture (with_features)."""
    two = with_features(taught)
    if two is None:
        return taught
    writer, digits = unit_features(two, writer_pictures(own, rng)), unit_features(two, mnist)
    inputs = keras.Input(shape=INPUT_SHAPE)
    start.name = GATED_START
    features, said = two(inputs)
    gate = NearestGate(len(writer), len(digits), writer.shape[1], name="nearest_gate")
    outputs = gate([features, start(inputs), said])
    gate.set_weights([writer.T, digits.T])
    return keras.Model(inputs, outputs, name="gated")


def remembered(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """MNIST digits' targets float32 (N, 10) for fine-tuning: DISTILL of what the start
    `model` says of the uint8 images (N, 28, 28), the rest their one-hot labels (N,)."""
    return DISTILL * probabilities(model, images) + (1 - DISTILL) * one_hot(labels)


def fit_once(
    model: keras.Model,
    weights: list,
    batches: MixedBatches,
    config: TrainConfig,
    callback: keras.callbacks.Callback,
) -> keras.Model:
    """Reset `model` to the start `weights`, compile it afresh for this schedule, fit it."""
    model.set_weights(weights)
    total = config.epochs * batches.steps
    compile_model(model, config.peak_learning_rate, total)
    model.fit(batches, epochs=config.epochs, callbacks=[callback], verbose=0)
    return model


def finetune_locked(
    config: TrainConfig, paths: RunPaths, progress: Progress, mnist: Mnist | None
) -> FinetuneResult:
    """The fine-tune itself, once `finetune` holds OUT's lock."""
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy("float32")  # as the saved models are
    # Each run compiles the model afresh, so TensorFlow warns that its functions are traced
    # again: expected here, and a second or so, not a problem to show the user.
    tf.get_logger().setLevel(logging.ERROR)
    own = read_own_digits(config.own_digits)
    split = split_own(own.labels, config.seed)
    loaded = load_trained_model(config.start_from)
    original, model = members(loaded)
    start = model.get_weights()
    mnist = mnist if mnist is not None else load_mnist(config.data_dir)
    (x_train, y_train), (x_val, _) = select_data(mnist, config)
    pool = (x_train[:MNIST_POOL], remembered(loaded, x_train[:MNIST_POOL], y_train[:MNIST_POOL]))
    count = min(config.outliers, MAX_OUTLIERS)
    outliers = training_outliers(count, config.seed, config.cache_dir) if count else x_train[:0]
    print(f"Fine-tuning {config.start_from}: {split.describe()}")
    if with_features(model) is None:
        print(
            f"note: {config.start_from} does not end in a Dense layer: the taught model will "
            "answer every picture (no gate to leave MNIST's digits to the start model)"
        )

    progress.update(stage="before")
    measured = split.measured
    before = figures(
        accuracy(loaded, own.images[measured], own.labels[measured]),
        accuracy(loaded, mnist.x_test, mnist.y_test),
        len(measured),
    )
    print_figures("Before", before)
    steps = FINETUNE_STEPS_PER_EPOCH
    runs = [*([] if split.method == "held-out" else split.folds), (split.final, None)]
    clock = StepClock(len(runs) * config.epochs * steps)
    progress.update(stage="training", epochs=len(runs) * config.epochs, before=before)
    right = 0.0  # pictures read right by the folds' models (cross-validation)
    for run, (taught, held) in enumerate(runs):
        batches = MixedBatches(
            (own.images[taught], own.labels[taught]),
            pool,
            outliers,
            config.batch_size,
            steps,
            config.seed + run,
            config.degrade,  # the MNIST part degraded as in a full run (--degrade)
            own_share(len(own.labels)),  # of all of them: each fold's model learns alike
        )
        callback = report_progress(progress, clock, run * config.epochs)
        fit_once(model, start, batches, config, callback)
        rng = np.random.default_rng((config.seed, run))
        result = gated(original, model, own.images[taught], pool[0], rng)
        if held is not None:
            right += accuracy(result, own.images[held], own.labels[held]) * len(held)
    if split.method == "held-out":
        own_after = accuracy(result, own.images[measured], own.labels[measured])
    else:
        own_after = right / len(measured)
    progress.update(stage="after", seconds_left=None)
    after = figures(own_after, accuracy(result, mnist.x_test, mnist.y_test), len(measured))
    print_figures("After", after)
    progress.update(stage="exporting", after=after)
    written = save_model_set(result, paths.model, x_val)
    return FinetuneResult(before, after, split.method, written)


def print_figures(when: str, figures: dict) -> None:
    """`Before: own digits 62.0% (100), MNIST test 99.51%`: one line of figures."""
    print(
        f"{when}: own digits {figures['own']:.1%} ({figures['own_count']}), "
        f"MNIST test {figures['mnist']:.2%}"
    )
