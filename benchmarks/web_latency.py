"""Server-side time per prediction of the web app, and the real server's memory, per engine.

    python -m benchmarks.web_latency [--models MODEL ...] [--requests 200] [--memory-requests 1000]

(the models: the shipped mnist_cnn/models/mnist_cnn.keras and its .onnx export by default)

For each model: times POST /api/predict through Flask's test client with a canvas-sized PNG
(280x280 RGBA, as the page sends), then the preprocessing and the model call on their own;
then starts the real server (`python -m mnist_cnn.web`) on a free local port, sends it
--memory-requests predictions over HTTP and reads its resident memory (VmRSS) afterwards.
"""

from __future__ import annotations

import argparse
import io
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.predict_speed import add_models_flag
from mnist_cnn.data import load_mnist
from mnist_cnn.engine import engine_name
from mnist_cnn.errors import UserError, run_cli
from mnist_cnn.predict import load_classifier
from mnist_cnn.preprocess import open_image
from mnist_cnn.reader import Reader
from mnist_cnn.segment import find_digits
from mnist_cnn.web import PREDICT_URL, create_app

CANVAS_SIZE = 280  # the page's canvas, in pixels
SERVER_START_SECONDS = 120  # the Keras engine imports TensorFlow first: seconds on a busy CPU
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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_server(url: str, server: subprocess.Popen, seconds: float = SERVER_START_SECONDS):
    """Poll `url` until the server answers; raise UserError if it exits or never does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise UserError(f"the server exited with status {server.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise UserError(f"the server did not answer at {url} within {seconds:.0f} s")


def resident_mib(pid: int) -> float:
    """A process's resident memory (VmRSS) in MiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0  # the kernel reports kB
    raise UserError(f"no VmRSS for process {pid}")


def server_memory_mib(model_path: Path, body: bytes, requests: int) -> float:
    """Resident memory of the real server after `requests` predictions over HTTP."""
    port = free_port()
    command = [sys.executable, "-m", "mnist_cnn.web", "--port", str(port)]
    command += ["--model-path", str(model_path)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_server(f"http://127.0.0.1:{port}/", server)
        for _ in range(requests):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}{PREDICT_URL}",
                data=body,
                headers={"Content-Type": "image/png"},
            )
            urllib.request.urlopen(request, timeout=30).close()
        return resident_mib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_models_flag(parser)
    parser.add_argument("--requests", type=int, default=200, help="timed calls of each kind")
    parser.add_argument(
        "--memory-requests", type=int, default=1000, help="requests before reading the memory"
    )
    return parser.parse_args()


def main() -> None:
    """For each model: the timings, then the real server's memory after many requests."""
    args = parse_args()
    body = canvas_png(load_mnist().x_test[0])
    digit = find_digits(open_image(body))[0].digit[np.newaxis]
    for model_path in args.models:
        time_model(model_path, body, digit, args.requests)
        memory = server_memory_mib(model_path, body, args.memory_requests)
        print(f"{'server resident memory':<32} {memory:6.0f} MiB after {args.memory_requests:,}")


def time_model(model_path: Path, body: bytes, digit: np.ndarray, requests: int) -> None:
    """Print the timings of one model: the whole request through the test client, then
    finding and normalising the digits (as the app does) and the model call (with the
    not-a-digit score) on their own."""
    classifier, _ = load_classifier(model_path)
    client = create_app(classifier).test_client()
    print(f"\n{model_path} ({engine_name(classifier.engine)})")
    report("POST /api/predict (test client)", time_ms(lambda: post(client, body), requests))
    # With the model's score, as Reader finds them: its calls while cutting or joining count.
    score = Reader.from_classifier(classifier).score
    report(
        "finding the digits only",
        time_ms(lambda: find_digits(open_image(body), score=score), requests),
    )
    report("model call only", time_ms(lambda: classifier.classify(digit), requests))


if __name__ == "__main__":
    run_cli(main)
