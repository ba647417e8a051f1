"""Draw what test_model.py finds in a picture: python -m mnist_cnn.figure IMAGE [--out PNG].

The README's figure of a number on ruled paper is made with
`python -m mnist_cnn.figure tests/data/ruled_number.jpg --out plots/segmentation.png`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mnist_cnn.config import DEFAULT_MODEL_PATH
from mnist_cnn.engine import load_engine
from mnist_cnn.errors import run_cli
from mnist_cnn.plots import plot_segmentation
from mnist_cnn.preprocess import DECODE_SCALE, open_image
from mnist_cnn.segment import find_digits

DEFAULT_OUT = Path("plots") / "segmentation.png"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The picture, the figure to write, and the model."""
    parser = argparse.ArgumentParser(prog="python -m mnist_cnn.figure", description=__doc__)
    parser.add_argument("image", type=Path, help="a picture of a digit or a number")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the PNG to write")
    parser.add_argument("--model-path", type=Path, default=DEFAULT_MODEL_PATH, help=".keras file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Find the digits, read them, and draw the picture with its boxes and 28x28s."""
    args = parse_args(argv)
    image = open_image(args.image)
    candidates = find_digits(image, str(args.image))
    digits = np.stack([c.digit for c in candidates])
    probs = load_engine(args.model_path).predict(digits)
    # Boxes are in the file's pixels; the figure shows the picture as decoded.
    scale = float(image.info.get(DECODE_SCALE, 1.0))
    boxes = [[side / scale for side in c.box] for c in candidates]
    picture = np.asarray(image.convert("RGB"))
    written = plot_segmentation(picture, boxes, digits, probs, args.out)
    number = "".join(str(int(np.argmax(p))) for p in probs)
    print(f"{args.image}: {number}; figure written to {written}")
    return 0


if __name__ == "__main__":
    run_cli(main)
