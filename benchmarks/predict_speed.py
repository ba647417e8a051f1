"""Cold start and throughput of test_model.py, run as a user runs it, on each engine.

    python -m benchmarks.predict_speed [--models MODEL ...] [--images 1000] [--repeats 5]

(the models: the shipped mnist_cnn/models/mnist_cnn.keras and its .onnx export by default)

Writes test-set digits as PNG files (black on white, 280x280, like a saved drawing) to a
temporary folder, then, for each model in turn, times `python test_model.py one.png` from a
cold start (--repeats runs, the models alternating, median [min..max]) and one
`python test_model.py` over all the files.
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

from mnist_cnn.config import SHIPPED_MODEL_PATH
from mnist_cnn.data import load_mnist
from mnist_cnn.engine import onnx_beside
from mnist_cnn.errors import UserError, run_cli

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


def spread(values: list[float]) -> str:
    """`median [min..max]` in seconds."""
    return f"{np.median(values):.2f} s [{min(values):.2f}..{max(values):.2f}]"


def add_models_flag(parser: argparse.ArgumentParser) -> None:
    """--models: the model files to compare, by default the committed .keras and its .onnx."""
    parser.add_argument(
        "--models",
        type=Path,
        nargs="+",
        default=[SHIPPED_MODEL_PATH, onnx_beside(SHIPPED_MODEL_PATH)],
        help="model files to compare (.keras, .onnx ...)",
    )


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_models_flag(parser)
    parser.add_argument("--images", type=int, default=1000, help="files for the throughput run")
    parser.add_argument("--repeats", type=int, default=5, help="timed cold starts of each model")
    return parser.parse_args()


def main() -> None:
    """Write the files, time one image from cold for each model in turn, then all of them."""
    args = parse_args()
    with tempfile.TemporaryDirectory() as folder:
        paths = write_pngs(load_mnist().x_test[: args.images], Path(folder))
        cold: dict[Path, list[float]] = {model: [] for model in args.models}
        for _ in range(args.repeats):  # alternating, so a drifting machine slows each alike
            for model in args.models:
                cold[model].append(time_cli(paths[:1], model))
        total = {model: time_cli(paths, model) for model in args.models}
    print(f"CPU: {cpu_model()}")
    for model in args.models:
        per_image_ms = (total[model] - np.median(cold[model])) / max(1, len(paths) - 1) * 1e3
        print(f"\n{model}")
        print(f"  cold start, 1 image:  {spread(cold[model])} ({args.repeats} runs)")
        print(
            f"  {len(paths)} images, one run: {total[model]:6.2f} s = "
            f"{len(paths) / total[model]:6.1f} images/s"
        )
        print(f"  each image beyond the start-up: {per_image_ms:.2f} ms")


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo (or the platform module elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"


if __name__ == "__main__":
    run_cli(main)
