"""Do the exported models answer as the Keras model does? All 10,000 MNIST test images.

    python -m benchmarks.export_parity [--model-path mnist_cnn/models/mnist_cnn.keras]

Exports the model to LiteRT in a temporary folder (the ONNX export beside the model is used
as committed, and must have been made from it), runs every engine on the test images, and
prints, per export, how many digits differ from Keras' and the largest difference of a
probability. The issue's bounds: no digit differs; probabilities within 1e-4 (ONNX) and 1e-3
(LiteRT).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np

from mnist_cnn.config import SHIPPED_MODEL_PATH
from mnist_cnn.data import load_mnist
from mnist_cnn.engine import OnnxEngine, load_engine, onnx_beside, stale_export
from mnist_cnn.errors import UserError, run_cli
from mnist_cnn.export import export_litert

BOUNDS = {"ONNX": 1e-4, "LiteRT": 1e-3}


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-path", type=Path, default=SHIPPED_MODEL_PATH)
    return parser.parse_args()


def main() -> None:
    """Run Keras, ONNX Runtime and LiteRT on the test set and compare them."""
    args = parse_args()
    digits = load_mnist().x_test
    onnx_engine = OnnxEngine(onnx_beside(args.model_path))
    if (stale := stale_export(onnx_engine)) is not None:
        raise UserError(stale)
    keras_engine = load_engine(args.model_path)
    reference = keras_engine.predict(digits)
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(shutil.copy(args.model_path, Path(folder) / "model.keras"))
        litert_engine = load_engine(export_litert(keras_engine.model, copy))
        answers = {"ONNX": onnx_engine.predict(digits), "LiteRT": litert_engine.predict(digits)}
    print(f"{len(digits):,} MNIST test images, {args.model_path} on Keras as the reference")
    for name, probabilities in answers.items():
        differing = int((probabilities.argmax(1) != reference.argmax(1)).sum())
        largest = float(np.abs(probabilities - reference).max())
        verdict = "within" if differing == 0 and largest <= BOUNDS[name] else "OUTSIDE"
        print(
            f"{name:<7} digits differing: {differing}   largest probability difference: "
            f"{largest:.2e}   ({verdict} the bound {BOUNDS[name]:.0e})"
        )


if __name__ == "__main__":
    run_cli(main)
