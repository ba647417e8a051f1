"""Inference engines: a trained model behind one `predict(digits) -> probabilities` call.

A `.keras` (or `.h5`) file runs on Keras; a `.onnx` file runs on ONNX Runtime and never
imports TensorFlow, so a one-image answer takes a fraction of a second from a cold start.
Everything above this module (preprocessing, scoring, output) is the same for both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from mnist_cnn.cli import start_tensorflow
from mnist_cnn.data import IMAGE_SIZE, NUM_CLASSES
from mnist_cnn.errors import UserError
from mnist_cnn.files import file_sha256

BATCH_SIZE = 1024  # images per model call: large enough to amortise the call, small in memory
ONNX_SUFFIX = ".onnx"
LITERT_SUFFIX = ".tflite"
# The ONNX metadata key naming the SHA-256 of the .keras file an export was made from.
SOURCE_SHA256_KEY = "source_keras_sha256"


class Engine(Protocol):
    """What the prediction code needs of a model, whatever runs it."""

    path: Path

    def predict(self, digits: np.ndarray) -> np.ndarray:
        """Class probabilities float32 (N, 10) for MNIST-style digits uint8 (N, 28, 28)."""
        ...

    def model_sha256(self) -> str | None:
        """The SHA-256 of the .keras file behind this model (the statistics name it)."""
        ...


def scale(digits: np.ndarray) -> np.ndarray:
    """uint8 digits (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1], as the models were trained."""
    return (np.asarray(digits, np.float32) / 255.0)[..., np.newaxis]


def in_batches(run, digits: np.ndarray) -> np.ndarray:
    """Apply `run` (float32 (n, 28, 28, 1) -> (n, 10)) to BATCH_SIZE digits at a time."""
    batches = [
        np.asarray(run(scale(digits[start : start + BATCH_SIZE])), np.float32)
        for start in range(0, len(digits), BATCH_SIZE)
    ]
    return np.concatenate(batches) if batches else np.zeros((0, NUM_CLASSES), np.float32)


@dataclass
class KerasEngine:
    """A Keras model (loaded with `model.load_trained_model`'s checks)."""

    model: object
    path: Path

    def predict(self, digits: np.ndarray) -> np.ndarray:
        """Class probabilities float32 (N, 10) for uint8 digits (N, 28, 28)."""
        # predict_on_batch runs Keras' compiled predict step: about 5x faster per call than
        # calling the model eagerly, which matters for the web app's one-digit requests.
        return in_batches(self.model.predict_on_batch, digits)

    def model_sha256(self) -> str:
        """The SHA-256 of the model file itself."""
        return file_sha256(self.path)


class OnnxEngine:
    """An exported ONNX model on ONNX Runtime's CPU provider; TensorFlow is never imported."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.session = open_onnx_session(self.path)
        self.input_name = self.session.get_inputs()[0].name

    def predict(self, digits: np.ndarray) -> np.ndarray:
        """Class probabilities float32 (N, 10) for uint8 digits (N, 28, 28)."""
        return in_batches(lambda x: self.session.run(None, {self.input_name: x})[0], digits)

    def model_sha256(self) -> str | None:
        """The SHA-256 of the .keras file this model was exported from, if it recorded one."""
        return self.session.get_modelmeta().custom_metadata_map.get(SOURCE_SHA256_KEY)


class LiteRtEngine:
    """An exported LiteRT (TensorFlow Lite) model on TensorFlow's bundled interpreter."""

    def __init__(self, path: Path):
        import warnings

        import tensorflow as tf

        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"{path}: no model here; export one with `python -m mnist_cnn.export`")
        with warnings.catch_warnings():
            # TensorFlow points to the separate ai-edge-litert package; its own copy still works.
            warnings.simplefilter("ignore", UserWarning)
            try:
                self.interpreter = tf.lite.Interpreter(model_path=str(self.path))
            except ValueError as error:
                raise UserError(f"{path}: cannot load the LiteRT model: {error}") from None
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities (n, 10) for one float32 batch (n, 28, 28, 1)."""
        self.interpreter.resize_tensor_input(self.input, batch.shape)
        self.interpreter.allocate_tensors()
        self.interpreter.set_tensor(self.input, batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output)

    def predict(self, digits: np.ndarray) -> np.ndarray:
        """Class probabilities float32 (N, 10) for uint8 digits (N, 28, 28)."""
        return in_batches(self.run, digits)

    def model_sha256(self) -> None:
        """A LiteRT file records no source model."""
        return None


def onnx_runtime():
    """The onnxruntime module, imported with its telemetry off unless ORT_DISABLE_TELEMETRY is
    already set: from 1.29 on, on Linux too, it writes a device id under ~/.cache/Microsoft
    and sends usage events to Microsoft, which a digit reader has no reason to do. The
    variable counts only when set before the first import (`disable_telemetry_events()`
    still writes the device id)."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime

    return onnxruntime


def open_onnx_session(path: Path):
    """An onnxruntime InferenceSession for a 28x28x1 -> 10 model, or a one-line UserError."""
    onnxruntime = onnx_runtime()

    if not path.is_file():
        raise UserError(f"{path}: no model here; export one with `python -m mnist_cnn.export`")
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own types for a broken or foreign file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"{path}: cannot load the ONNX model: {reason}") from None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or list(inputs[0].shape[1:]) != [IMAGE_SIZE, IMAGE_SIZE, 1]:
        shapes = [node.shape for node in inputs]
        raise UserError(f"{path}: the ONNX model takes input {shapes}, not 28x28x1 digits")
    if not outputs or list(outputs[0].shape[1:]) != [NUM_CLASSES]:
        raise UserError(
            f"{path}: the ONNX model gives output {outputs[0].shape if outputs else None}, "
            f"not {NUM_CLASSES} class probabilities"
        )
    return session


def load_engine(path: Path | str, verbose: bool = False) -> Engine:
    """The engine for a model file: ONNX Runtime for `.onnx`, TensorFlow's LiteRT interpreter
    for `.tflite`, Keras for anything else. TensorFlow, which the last two need, is loaded
    here, its log lines hidden unless `verbose`.

    Raises UserError (one line) for a missing, broken or wrong-shaped model.
    """
    path = Path(path)
    if path.suffix == ONNX_SUFFIX:
        return OnnxEngine(path)
    start_tensorflow(verbose)
    if path.suffix == LITERT_SUFFIX:
        return LiteRtEngine(path)
    from mnist_cnn.model import load_trained_model  # imports TensorFlow: only when needed

    return KerasEngine(load_trained_model(path), path)


def onnx_beside(keras_path: Path) -> Path:
    """Where the ONNX export of a .keras file goes: the same name, `.onnx`."""
    return Path(keras_path).with_suffix(ONNX_SUFFIX)


def keras_beside(onnx_path: Path) -> Path:
    """The .keras file an ONNX model in the same folder would have been exported from."""
    return Path(onnx_path).with_suffix(".keras")


def stale_export(engine: OnnxEngine) -> str | None:
    """Why an ONNX model must not stand for the .keras beside it (None when it may): the
    SHA-256 it recorded at export differs from that file's, or it recorded none."""
    keras_path = keras_beside(engine.path)
    if not keras_path.is_file():
        return None
    recorded = engine.model_sha256()
    if recorded == file_sha256(keras_path):
        return None
    why = "records no source model" if recorded is None else "was exported from another model"
    return (
        f"{engine.path} {why} (SHA-256 differs from {keras_path}); "
        f"re-export with `python -m mnist_cnn.export {keras_path}`"
    )


def load_default_engine(keras_path: Path, verbose: bool = False) -> tuple[Engine, str | None]:
    """The engine to use when the user named no model: the ONNX export beside `keras_path`
    when it was made from that very file, else the .keras itself; and, in that case, a line
    saying why the ONNX file beside it was passed over (None when there is nothing to say).

    Raises UserError when neither file can be loaded.
    """
    onnx_path = onnx_beside(keras_path)
    if not onnx_path.is_file():
        return load_engine(keras_path, verbose), None
    try:
        onnx_engine = OnnxEngine(onnx_path)
        reason = stale_export(onnx_engine)
    except UserError as error:
        reason = str(error)
    if reason is None:
        return onnx_engine, None
    return load_engine(keras_path, verbose), f"note: using {keras_path}: {reason}"


ENGINE_NAMES = {"OnnxEngine": "ONNX Runtime", "LiteRtEngine": "LiteRT", "KerasEngine": "Keras"}


def engine_name(engine: Engine) -> str:
    """What runs the model: "ONNX Runtime", "LiteRT" or "Keras"."""
    return ENGINE_NAMES.get(type(engine).__name__, type(engine).__name__)
