"""Time to find the digits in a 12-megapixel phone photo: decode, find, normalise.

    python -m benchmarks.segment_speed [--repeats 10]

Draws a 4000x3000 photo-like JPEG (four MNIST test digits in pencil grey on ruled paper with
a red margin, light falling off, sensor noise), then times preprocess.open_image (decoding)
plus segment.find_digits (finding the digits and making each one MNIST-like), median of
--repeats runs. Finding them takes the shipped model's score, as the Reader passes it, so the
model's calls while cutting or joining pieces count; reading the digits found is
benchmarks.predict_speed's.
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
from PIL import Image

from mnist_cnn.config import SHIPPED_MODEL_PATH
from mnist_cnn.data import load_mnist
from mnist_cnn.errors import UserError, run_cli
from mnist_cnn.predict import load_classifier
from mnist_cnn.preprocess import open_image
from mnist_cnn.reader import Reader
from mnist_cnn.segment import find_digits

PHOTO_SIZE = (4000, 3000)  # a 12-megapixel phone photo, landscape
DIGIT_HEIGHT = 600  # pixels: a number written across about half the photo's width
RULE_STEP = 240  # pixels between the rules, about a third of a digit
TARGET_MS = 300.0


def photo(seed: int = 0) -> bytes:
    """The JPEG bytes of a 4000x3000 photo of four digits on ruled paper."""
    rng = np.random.default_rng(seed)
    mnist = load_mnist()
    width, height = PHOTO_SIZE
    ink = np.zeros((height, width), np.float32)
    left = 900
    for label in (2, 0, 2, 4):
        digit = mnist.x_test[int(np.flatnonzero(mnist.y_test == label)[0])]
        rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
        crop = Image.fromarray(digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])
        size = (round(crop.width * DIGIT_HEIGHT / crop.height), DIGIT_HEIGHT)
        grown = np.asarray(crop.resize(size, Image.Resampling.BICUBIC), np.float32) / 255
        top = 1150 + int(rng.integers(-40, 40))
        ink[top : top + size[1], left : left + size[0]] = grown
        left += size[0] + 150
    paper = np.ones((height, width, 3), np.float32) * np.array([0.96, 0.95, 0.90], np.float32)
    rules = np.zeros((height, 1, 1), np.float32)
    for row in range(100, height, RULE_STEP):
        rules[row : row + 12] = 0.35
    paper = paper * (1 - rules) + rules * np.array([0.55, 0.68, 0.9], np.float32)
    paper[:, 500:520] = paper[:, 500:520] * 0.4 + np.array([0.85, 0.25, 0.25]) * 0.6
    pencil = 0.8 * ink[..., np.newaxis]
    paper = paper * (1 - pencil) + pencil * np.array([0.28, 0.28, 0.32], np.float32)
    paper *= np.linspace(1.0, 0.82, width, dtype=np.float32)[np.newaxis, :, np.newaxis]
    paper += rng.normal(0, 0.012, (height, width, 1)).astype(np.float32)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(paper * 255, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed runs (median)")
    return parser.parse_args()


def main() -> None:
    """Make the photo, read it once untimed, then time decoding and finding the digits."""
    args = parse_args()
    raw = photo()
    score = Reader.from_classifier(load_classifier(SHIPPED_MODEL_PATH)[0]).score
    found = find_digits(open_image(raw, "photo.jpg"), "photo.jpg", score)  # warm caches
    if len(found) != 4:
        raise UserError(f"expected 4 digits in the benchmark photo, found {len(found)}")
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        find_digits(open_image(raw, "photo.jpg"), "photo.jpg", score)
        times.append((time.perf_counter() - start) * 1000.0)
    median = float(np.median(times))
    print(f"{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEG ({len(raw) / 1e6:.1f} MB), 4 digits found")
    print(
        f"decode + find + normalise: {median:.0f} ms median of {args.repeats} "
        f"(min {min(times):.0f}, max {max(times):.0f}); target {TARGET_MS:.0f} ms"
    )


if __name__ == "__main__":
    run_cli(main)
