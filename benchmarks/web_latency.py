"""Server-side time per prediction of the web app, without a network or a browser.

    python -m benchmarks.web_latency [--model-path models/mnist_cnn.keras] [--requests 200]

Times POST /api/predict through Flask's test client with a canvas-sized PNG (280x280 RGBA, as
the page sends), then the preprocessing and the model call on their own.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_cnn.data import load_mnist
from mnist_cnn.errors import UserError, run_cli
from mnist_cnn.model import DEFAULT_MODEL_PATH
from mnist_cnn.predict import predict_probabilities
from mnist_cnn.preprocess import open_image, to_mnist
from mnist_cnn.web import MODEL_KEY, create_app

CANVAS_SIZE = 280  # the page's canvas, in pixels
WARMUP_CALLS = 10  # first calls pay for tracing and allocator growth, not steady-state work


def canvas_png(digit: np.ndarray) -> bytes:
    """An MNIST digit as the page would send it: white on black, canvas-sized, RGBA PNG."""
    image = Image.fromarray(digit).resize((CANVAS_SIZE, CANVAS_SIZE), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.convert("RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


def time_ms(call: Callable[[], object], repeats: int) -> np.ndarray:
    """Wall time of `repeats` calls in milliseconds, after WARMUP_CALLS untimed ones."""
    for _ in range(WARMUP_CALLS):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0)
    return np.array(times)


def report(name: str, times: np.ndarray) -> None:
    """Print one line: median and 95th percentile."""
    median, p95 = np.percentile(times, [50, 95])
    print(f"{name:<32} median {median:6.2f} ms   p95 {p95:6.2f} ms   ({len(times)} calls)")


def post(client, body: bytes) -> None:
    """One prediction request; any failure stops the benchmark."""
    response = client.post("/api/predict", data=body, content_type="image/png")
    if response.status_code != 200:
        raise UserError(f"the app answered {response.status_code}: {response.get_data(True)}")


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--requests", type=int, default=200, help="timed calls of each kind")
    return parser.parse_args()


def main() -> None:
    """Time the whole request, then its two parts."""
    args = parse_args()
    app = create_app(args.model_path)
    client, model = app.test_client(), app.extensions[MODEL_KEY]
    body = canvas_png(load_mnist().x_test[0])
    digit = to_mnist(open_image(body))[np.newaxis]
    report("POST /api/predict (test client)", time_ms(lambda: post(client, body), args.requests))
    report("preprocessing only", time_ms(lambda: to_mnist(open_image(body)), args.requests))
    report("model call only", time_ms(lambda: predict_probabilities(model, digit), args.requests))


if __name__ == "__main__":
    run_cli(main)
