"""Read your own digit images with the trained model: python test_model.py --help."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mnist_cnn.cli import add_common_flags, expand_image_folders
from mnist_cnn.data import NUM_CLASSES
from mnist_cnn.errors import run_cli
from mnist_cnn.predict import classify_files, load_classifier


def parse_args() -> argparse.Namespace:
    """The command line, every flag with its default in --help."""
    parser = argparse.ArgumentParser(
        description="Read the digit, or the number (one line of digits), in each image file. "
        "Any format Pillow reads works (PNG, JPEG, BMP, GIF, TIFF, WebP ...). Ruled or squared "
        "paper, a form's frame, specks and shadows are set aside; each digit found is made "
        "MNIST-like: light ink on black, cropped, scaled to a 20-pixel box and centred in 28x28. "
        "A file that cannot be read gives one 'error:' line and the exit status 1, "
        "and the other files are still predicted.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "images",
        nargs="+",
        type=Path,
        metavar="IMAGE",
        help="image files, or folders whose image files are all read (in name order)",
    )
    parser.add_argument(
        "--top-k",
        type=int,
        default=1,
        choices=range(1, NUM_CLASSES + 1),
        metavar="K",
        help="also show the next most likely digits, K in all (1 to 10)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per image instead of text: path, number, and digits "
        "(each one's digit, confidence, ten probabilities and box in the image's pixels); "
        "a one-digit image also has digit, confidence, probabilities and the top K",
    )
    parser.add_argument(
        "--single",
        action="store_true",
        help="read each whole image as one digit, without looking for several",
    )
    parser.add_argument(
        "--save-preprocessed",
        type=Path,
        default=None,
        metavar="DIR",
        help="write the 28x28 PNG the model saw for each digit into DIR (created if needed): "
        "photo.png for a one-digit photo.jpg, photo-1.png, photo-2.png ... for a number",
    )
    parser.add_argument(
        "--accept-all",
        action="store_true",
        help="read every picture as a digit: turn off the 'not a digit' verdict",
    )
    parser.add_argument(
        "--model-path",
        type=Path,
        default=None,
        help="the trained model: a .keras (or Keras 2 .h5) file, run on Keras; an .onnx export, "
        "run on ONNX Runtime without TensorFlow; or a .tflite export, run on LiteRT. None: "
        "models/mnist_cnn.onnx when it was exported from models/mnist_cnn.keras, else that .keras",
    )
    add_common_flags(parser)
    return parser.parse_args()


def main() -> int:
    """Print one line per readable image; return 1 if any image could not be read."""
    args = parse_args()
    images = expand_image_folders(args.images)
    classifier, notes = load_classifier(args.model_path, args.accept_all, args.verbose)
    for note in notes:
        print(note, file=sys.stderr)
    lines, errors = classify_files(
        classifier, images, args.top_k, args.json, args.save_preprocessed, args.single
    )
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    for line in lines:
        print(line)
    return 1 if errors else 0


if __name__ == "__main__":
    run_cli(main)
