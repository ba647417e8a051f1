"""Export a trained model for deployment: ONNX, and on request LiteRT and a TF SavedModel.

    python -m mnist_cnn.export models/mnist_cnn.keras [--litert] [--saved-model]

Each format is written by Keras' own `model.export(path, format=...)` to a temporary name
beside the model, then renamed, so a crash never leaves half a file where a good one stood.
The ONNX file records the SHA-256 of the .keras it came from in its metadata
(`engine.SOURCE_SHA256_KEY`), so that an export older than its model is never used silently.
"""

from __future__ import annotations

import argparse
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from mnist_cnn.cli import add_common_flags, print_written, start_tensorflow
from mnist_cnn.data import IMAGE_SIZE
from mnist_cnn.engine import LITERT_SUFFIX, SOURCE_SHA256_KEY, onnx_beside
from mnist_cnn.errors import run_cli
from mnist_cnn.files import file_sha256

SAVED_MODEL_SUFFIX = "_savedmodel"


def built(model, example_shape: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE)):
    """The model after one call on a blank input (a digit unless `example_shape` says
    otherwise): Keras exports only models that have run."""
    model(np.zeros((1, *example_shape, 1), np.float32))
    return model


def export_onnx(
    model,
    keras_path: Path,
    keras_sha256: str | None = None,
    example_shape: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE),
) -> Path:
    """Write `<keras_path>.onnx` (ONNX opset chosen by Keras) recording the SHA-256 of
    `keras_path` (computed when not given) in its metadata; returns the path written.
    `example_shape`: the model's input, rows and columns (a digit's by default)."""
    import onnx

    target = onnx_beside(keras_path)
    tmp = target.with_name(f".{target.name}.tmp")
    with warnings.catch_warnings():
        # Keras' bundled tf2onnx code probes np.object, which NumPy 2 warns about.
        warnings.simplefilter("ignore", FutureWarning)
        built(model, example_shape).export(str(tmp), format="onnx", verbose=False)
    exported = onnx.load(str(tmp))
    entry = exported.metadata_props.add()
    entry.key, entry.value = SOURCE_SHA256_KEY, keras_sha256 or file_sha256(keras_path)
    onnx.save(exported, str(tmp))
    os.replace(tmp, target)
    return target


def export_litert(model, keras_path: Path) -> Path:
    """Write `<keras_path>.tflite`, a LiteRT (TensorFlow Lite) flat buffer; returns its path."""
    target = Path(keras_path).with_suffix(LITERT_SUFFIX)
    tmp = target.with_name(f".{target.stem}.tmp{LITERT_SUFFIX}")  # Keras insists on .tflite
    built(model).export(str(tmp), format="litert", verbose=False)
    os.replace(tmp, target)
    return target


def export_saved_model(model, keras_path: Path) -> Path:
    """Write the folder `<keras_path stem>_savedmodel`, a TensorFlow SavedModel whose
    `serve` signature TensorFlow Serving loads; an older folder there is replaced whole."""
    target = Path(keras_path).with_name(f"{Path(keras_path).stem}{SAVED_MODEL_SUFFIX}")
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    built(model).export(str(tmp), format="tf_saved_model", verbose=False)
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    return target


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options: the model and the extra formats."""
    parser = argparse.ArgumentParser(
        prog="python -m mnist_cnn.export",
        description="Export a trained .keras model to ONNX (MODEL.onnx, for onnxruntime), "
        "and on request to LiteRT (MODEL.tflite) and a TensorFlow SavedModel "
        "(MODEL_savedmodel/), beside the model.",
    )
    parser.add_argument("model", type=Path, help="the trained model (.keras)")
    parser.add_argument("--litert", action="store_true", help="also write MODEL.tflite")
    parser.add_argument(
        "--saved-model", action="store_true", help="also write the folder MODEL_savedmodel"
    )
    add_common_flags(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Load the model once, write each format asked for, and list the files written."""
    args = parse_args(argv)
    start_tensorflow(args.verbose)
    from mnist_cnn.model import load_trained_model

    model = load_trained_model(args.model)
    written = [export_onnx(model, args.model)]
    if args.litert:
        written.append(export_litert(model, args.model))
    if args.saved_model:
        written.append(export_saved_model(model, args.model))
    print_written(written)
    return 0


if __name__ == "__main__":
    run_cli(main)
