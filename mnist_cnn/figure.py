"""Draw what test_model.py finds in a picture: python -m mnist_cnn.figure IMAGE [--out PNG].

The README's figure of a number on ruled paper is made with
`python -m mnist_cnn.figure tests/data/ruled_number.jpg --shipped --out plots/segmentation.png`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mnist_cnn.cli import add_common_flags, add_model_flags
from mnist_cnn.config import user_plots_dir
from mnist_cnn.errors import run_cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The picture, the figure to write, and the model."""
    parser = argparse.ArgumentParser(
        prog="python -m mnist_cnn.figure",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("image", type=Path, help="a picture of a digit or a number")
    parser.add_argument(
        "--out", type=Path, default=user_plots_dir() / "segmentation.png", help="the PNG to write"
    )
    add_model_flags(parser)
    add_common_flags(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Find the digits, read them, and draw the picture with its boxes and 28x28s."""
    args = parse_args(argv)
    from mnist_cnn.plots import plot_segmentation
    from mnist_cnn.preprocess import DECODE_SCALE, open_image
    from mnist_cnn.reader import Reader

    reader = Reader(args.model_path, shipped=args.shipped, accept_all=True, verbose=args.verbose)
    image = open_image(args.image)
    reading = reader.read(image, name=str(args.image))
    # Boxes are in the file's pixels; the figure shows the picture as decoded.
    scale = float(image.info.get(DECODE_SCALE, 1.0))
    boxes = [[side / scale for side in digit.box] for digit in reading.digits]
    digits = np.stack([digit.image for digit in reading.digits])
    probs = np.stack([digit.probabilities for digit in reading.digits])
    picture = np.asarray(image.convert("RGB"))
    written = plot_segmentation(picture, boxes, digits, probs, args.out)
    print(f"{args.image}: {reading.number}; figure written to {written}")
    return 0


if __name__ == "__main__":
    run_cli(main)
