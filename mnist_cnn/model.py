"""The Keras models, and loading a saved one with clear errors."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import keras
from keras import layers

from mnist_cnn.data import IMAGE_SIZE, NUM_CLASSES
from mnist_cnn.errors import UserError

INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)
# Other shapes a digit model may take, as Keras 2 examples of this design often did: the
# 28x28 image without its channel axis, or flattened to 784 pixels: a Reshape is put in front.
RESHAPED_INPUTS = ((IMAGE_SIZE, IMAGE_SIZE), (IMAGE_SIZE * IMAGE_SIZE,))
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # the first bytes of every .h5 file
SAVED_MODEL_FILE = "saved_model.pb"


def standardise() -> layers.Layer:
    """Per-image standardisation: each picture's pixels shifted to zero mean and scaled to unit
    variance (LayerNormalization over height, width and channel, nothing learnt), so grey
    paper, faint ink or a change of brightness reach the convolutions as the same digit. The
    reading path's own normalisation gives MNIST-like digits anyway; this is for raw arrays."""
    return layers.LayerNormalization(axis=(1, 2, 3), center=False, scale=False, name="standardise")


def build_cnn() -> keras.Model:
    """The classic design: per-image standardisation, two conv/pool stages, a 128-unit dense
    layer, dropout, softmax."""
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            standardise(),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.5),
            # float32 probabilities even under mixed precision: bfloat16 softmax is too coarse.
            layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32"),
        ],
        name="mnist_cnn",
    )


# The design of the best-known single Keras CNNs for MNIST (Deotte 2018, "How to choose CNN
# architecture MNIST", Kaggle), which reach 99.6-99.7% with augmentation and a decaying rate.
STRONG_DROPOUT = 0.4


def conv_bn(filters: int, kernel: int, strides: int = 1, padding: str = "valid") -> list:
    """A convolution, batch normalisation, then ReLU."""
    return [
        # No bias: batch normalisation's shift does its job.
        layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False),
        layers.BatchNormalization(),
        layers.ReLU(),
    ]


def strided_block(filters: int) -> list:
    """Two 3x3 convolutions, then a strided 5x5 one that halves the maps in place of pooling,
    each with batch normalisation, then dropout: a learnt downsampling (Springenberg et al.
    2015, "Striving for simplicity")."""
    return [
        *conv_bn(filters, 3),
        *conv_bn(filters, 3),
        *conv_bn(filters, 5, strides=2, padding="same"),
        layers.Dropout(STRONG_DROPOUT),
    ]


def build_strong() -> keras.Model:
    """A deeper, batch-normalised model for higher accuracy: per-image standardisation, two
    strided blocks of 32 and 64 filters (28 -> 26 -> 24 -> 12, then 12 -> 10 -> 8 -> 4
    pixels), a 4x4 convolution of 128 filters down to 1x1, dropout and the softmax."""
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            standardise(),
            *strided_block(32),
            *strided_block(64),
            *conv_bn(128, 4),
            layers.Flatten(),
            layers.Dropout(STRONG_DROPOUT),
            layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32"),
        ],
        name="mnist_cnn_strong",
    )


MODELS = {"cnn": build_cnn, "strong": build_strong}
GATED_START, GATED_TAUGHT = "start", "taught"  # the members of a model a person taught


@keras.saving.register_keras_serializable(package="mnist_cnn")
class NearestGate(layers.Layer):
    """Which member answers a picture, by its nearest neighbour among stored features.

    Takes [features float (N, F), start probabilities (N, 10), taught probabilities (N, 10)]
    and returns, row by row, the taught model's probabilities where the features (taught
    model's, L2-normalised) are nearer, by cosine similarity, to one of `writer_count` stored
    features of the person's digits than to any of `mnist_count` MNIST digits', else the
    start model's. A taught model answers only pictures like the ones it was taught, so MNIST
    digits keep the start model's reading (a gate choosing the expert per input, as in
    Aljundi, Chakravarty and Tuytelaars 2017, "Expert Gate"; the nearest neighbour in
    normalised features, as in Sun, Ming, Zhu and Li 2022, "Out-of-distribution detection
    with deep nearest neighbors"). The stored features are weights set after building."""

    def __init__(self, writer_count: int, mnist_count: int, feature_size: int, **kwargs):
        super().__init__(**kwargs)
        self.writer_count, self.mnist_count = writer_count, mnist_count
        self.feature_size = feature_size
        self.writer = self.add_weight(
            shape=(feature_size, writer_count), initializer="zeros", trainable=False, name="writer"
        )
        self.mnist = self.add_weight(
            shape=(feature_size, mnist_count), initializer="zeros", trainable=False, name="mnist"
        )

    def call(self, inputs):
        features, start, taught = inputs
        ops = keras.ops
        unit = features / ops.maximum(ops.norm(features, axis=-1, keepdims=True), 1e-12)
        writer = ops.max(ops.matmul(unit, self.writer), axis=-1, keepdims=True)
        mnist = ops.max(ops.matmul(unit, self.mnist), axis=-1, keepdims=True)
        return ops.where(writer > mnist, taught, start)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "writer_count": self.writer_count,
            "mnist_count": self.mnist_count,
            "feature_size": self.feature_size,
        }


# One-cycle schedule (Smith and Topin 2019, "Super-convergence"): a linear warm-up over the
# first WARMUP_FRACTION of the steps to the peak rate, then cosine decay to 0. Adam's beta_1 of
# 0.8 instead of 0.9 lets the momentum follow the fast-changing rate.
WARMUP_FRACTION = 0.2
ADAM_BETA_1 = 0.8


def one_cycle(peak: float, total_steps: int, warmup_fraction: float = WARMUP_FRACTION):
    """Keras' CosineDecay as a one-cycle schedule: 0 -> `peak` linearly over the first
    `warmup_fraction` of `total_steps` optimiser steps, then cosine decay back to 0."""
    warmup_steps = max(1, round(warmup_fraction * total_steps))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=max(1, total_steps - warmup_steps),
        alpha=0.0,
        warmup_target=peak,
        warmup_steps=warmup_steps,
    )


@keras.saving.register_keras_serializable(package="mnist_cnn")
class DigitAccuracy(keras.metrics.Metric):
    """Accuracy over the digits of a batch, skipping outlier-exposure rows.

    Targets are float (N, 10): one-hot for a digit, uniform for a non-digit picture (whose
    "accuracy" means nothing), so only rows with a target above one half are counted.
    """

    def __init__(self, name: str = "accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        ops = keras.ops
        is_digit = ops.cast(ops.max(y_true, axis=-1) > 0.5, "float32")
        right = ops.cast(ops.argmax(y_true, axis=-1) == ops.argmax(y_pred, axis=-1), "float32")
        self.correct.assign_add(ops.sum(right * is_digit))
        self.count.assign_add(ops.sum(is_digit))

    def result(self):
        return self.correct / keras.ops.maximum(self.count, 1.0)


def build_model(
    name: str = "cnn", learning_rate: float = 1e-3, total_steps: int | None = None
) -> keras.Model:
    """Build and compile the named model with Adam: at a constant `learning_rate`, or, given
    `total_steps`, on a one-cycle schedule peaking at `learning_rate`."""
    return compile_model(MODELS[name](), learning_rate, total_steps)


def compile_model(
    model: keras.Model, learning_rate: float = 1e-3, total_steps: int | None = None
) -> keras.Model:
    """Compile `model` (new, or loaded to fine-tune) as every run here does: Adam at a constant
    `learning_rate` or, given `total_steps`, on a one-cycle schedule peaking at it; categorical
    cross-entropy on float targets; DigitAccuracy. Returns the same model."""
    schedule = one_cycle(learning_rate, total_steps) if total_steps else learning_rate
    model.compile(
        optimizer=keras.optimizers.Adam(schedule, beta_1=ADAM_BETA_1),
        # Float targets: one-hot for digits, uniform for outlier exposure's non-digits.
        loss="categorical_crossentropy",
        metrics=[DigitAccuracy()],
    )
    return model


def save_atomically(model: keras.Model, path: Path) -> Path:
    """Save to a temporary .keras file beside `path`, then rename: never half a model at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)
    return path


def check_model_file(path: Path) -> None:
    """Raise a one-line UserError unless `path` is a .keras archive or an HDF5 (.h5) file."""
    if path.is_dir() and (path / SAVED_MODEL_FILE).is_file():
        raise UserError(
            f"{path}: a TensorFlow SavedModel folder, which Keras 3 cannot load as a model; "
            "convert it with the TensorFlow 2.15 or older that saved it: "
            f"tf.keras.models.load_model('{path}').save('model.h5')"
        )
    if not path.is_file():
        raise UserError(f"{path}: no model here; train one with `python train_model.py`")
    with path.open("rb") as handle:
        is_hdf5 = handle.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE
    if not is_hdf5 and not zipfile.is_zipfile(path):
        raise UserError(f"{path}: not a Keras model file (expected a .keras archive or a .h5 file)")


def take_digit_images(model: keras.Model, input_shape: tuple) -> keras.Model:
    """`model` behind a Reshape, so that it takes (N, 28, 28, 1) like the models trained here."""
    inputs = keras.Input(shape=INPUT_SHAPE)
    return keras.Model(inputs, model(layers.Reshape(input_shape)(inputs)), name=model.name)


def load_trained_model(path: Path | str) -> keras.Model:
    """Load a saved model that takes 28x28x1 images, or raise a one-line UserError.

    Takes `.keras` files and the `.h5` files of Keras 2. A model whose input is (28, 28) or
    (784,) is wrapped to take (N, 28, 28, 1) float input like the others.
    """
    path = Path(path)
    check_model_file(path)
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a broken archive
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"{path}: cannot load the model: {reason}") from None
    input_shape = tuple(model.input_shape[1:]) if hasattr(model, "input_shape") else None
    if input_shape in RESHAPED_INPUTS:
        return take_digit_images(model, input_shape)
    if input_shape != INPUT_SHAPE:
        raise UserError(f"{path}: the model takes input {input_shape}, not 28x28x1 digits")
    if tuple(model.output_shape[1:]) != (NUM_CLASSES,):
        raise UserError(
            f"{path}: the model gives output {tuple(model.output_shape[1:])}, "
            f"not {NUM_CLASSES} class probabilities"
        )
    return model
