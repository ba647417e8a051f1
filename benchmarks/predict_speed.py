"""Cold start and throughput of test_model.py, run as a user runs it.

    python -m benchmarks.predict_speed [--model-path models/mnist_cnn.keras] [--images 1000]

Writes test-set digits as PNG files (black on white, 280x280, like a saved drawing) to a
temporary folder, then times `python test_model.py one.png` (median of --repeats runs) and
one `python test_model.py` over all the files.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from mnist_cnn.data import load_mnist
from mnist_cnn.errors import UserError, run_cli
from mnist_cnn.model import DEFAULT_MODEL_PATH

REPO_ROOT = Path(__file__).resolve().parent.parent
CANVAS_SIZE = 280  # a typical drawing canvas, in pixels


def write_pngs(digits: np.ndarray, folder: Path) -> list[Path]:
    """Save each digit enlarged, black on white, as folder/NNNN.png."""
    paths = []
    for n, digit in enumerate(digits):
        image = Image.fromarray(digit).resize((CANVAS_SIZE, CANVAS_SIZE), Image.Resampling.BICUBIC)
        paths.append(folder / f"{n:04d}.png")
        ImageOps.invert(image).save(paths[-1])
    return paths


def time_cli(paths: list[Path], model_path: Path) -> float:
    """Wall seconds of one `python test_model.py PATHS...` run; any failure stops the benchmark."""
    command = [sys.executable, str(REPO_ROOT / "test_model.py"), *map(str, paths)]
    start = time.perf_counter()
    result = subprocess.run([*command, "--model-path", str(model_path)], capture_output=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise UserError(f"test_model.py failed: {result.stderr.decode().strip().splitlines()[-1]}")
    return seconds


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--images", type=int, default=1000, help="files for the throughput run")
    parser.add_argument("--repeats", type=int, default=3, help="timed cold starts (median)")
    return parser.parse_args()


def main() -> None:
    """Write the files, time one image from cold, then all of them in one run."""
    args = parse_args()
    with tempfile.TemporaryDirectory() as folder:
        paths = write_pngs(load_mnist().x_test[: args.images], Path(folder))
        cold = np.median([time_cli(paths[:1], args.model_path) for _ in range(args.repeats)])
        total = time_cli(paths, args.model_path)
    per_image_ms = (total - cold) / max(1, len(paths) - 1) * 1000.0
    print(f"cold start, 1 image:   {cold:6.2f} s (median of {args.repeats} runs)")
    print(f"{len(paths)} images, one run: {total:6.2f} s = {len(paths) / total:6.1f} images/s")
    print(f"each image beyond the start-up: {per_image_ms:.2f} ms")


if __name__ == "__main__":
    run_cli(main)
