"""The Keras models, and loading a saved one with clear errors."""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras
from keras import layers

# Re-exported: callers that load models find the default path here too.
from mnist_cnn.config import DEFAULT_MODEL_PATH as DEFAULT_MODEL_PATH
from mnist_cnn.data import IMAGE_SIZE, NUM_CLASSES
from mnist_cnn.errors import UserError

INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)
# Other shapes a digit model may take, as Keras 2 examples of this design often did: the
# 28x28 image without its channel axis, or flattened to 784 pixels: a Reshape is put in front.
RESHAPED_INPUTS = ((IMAGE_SIZE, IMAGE_SIZE), (IMAGE_SIZE * IMAGE_SIZE,))
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # the first bytes of every .h5 file
SAVED_MODEL_FILE = "saved_model.pb"


def build_cnn() -> keras.Model:
    """The classic design: two conv/pool stages, a 128-unit dense layer, dropout, softmax."""
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
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


def conv_block(filters: int) -> list:
    """3x3 convolution, batch normalisation, ReLU, then 2x2 max pooling."""
    return [
        # No bias: batch normalisation's shift does its job.
        layers.Conv2D(filters, 3, padding="same", use_bias=False),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.MaxPooling2D(2),
    ]


def build_strong() -> keras.Model:
    """A wider, batch-normalised variant for higher accuracy: three conv blocks, 256 dense units."""
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            # No batch normalisation on the first, 28x28x32 maps: there it is the costliest
            # layer of a training step on a CPU, and the deeper blocks gain the most from it.
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            *conv_block(64),
            *conv_block(128),
            layers.Flatten(),
            layers.Dense(256, activation="relu"),
            layers.Dropout(0.4),
            layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32"),
        ],
        name="mnist_cnn_strong",
    )


MODELS = {"cnn": build_cnn, "strong": build_strong}


def build_model(
    name: str = "cnn", learning_rate: float = 1e-3, decay_steps: int | None = None
) -> keras.Model:
    """Build and compile the named model: Adam, cosine-decayed over `decay_steps` when given."""
    model = MODELS[name]()
    schedule = learning_rate
    if decay_steps:
        # Decaying to 1% lets validation loss keep falling late in the run, where a constant
        # rate leaves it bouncing and early stopping picks an early, weaker epoch.
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps, alpha=0.01)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


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
    return model
