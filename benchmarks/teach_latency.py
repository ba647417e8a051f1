"""How long a reading takes on the web app while the page's teaching runs, against idle.

    python -m benchmarks.teach_latency [--own 100] [--niceness 10]

Serves the shipped model on its ONNX export through Flask's test client (the server's own
process), saves --own MNIST test digits as corrections into a temporary folder, times
POST /api/predict with a canvas-sized PNG while idle, then starts teaching (the real
fine-tuning command, in its child process at --niceness) and times readings until it ends.
Times idle readings again after the run; prints the medians and 95th percentiles, their ratio
(the target: at most 3x), how long the teaching took, and the load average (other jobs).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.web_latency import canvas_png, post, report, time_ms
from mnist_cnn.config import SHIPPED_MODEL_PATH
from mnist_cnn.data import load_mnist
from mnist_cnn.engine import onnx_beside
from mnist_cnn.errors import UserError, run_cli
from mnist_cnn.own_digits import save_digit
from mnist_cnn.teaching import NICENESS
from mnist_cnn.web import TEACHER_KEY, TeachingSettings, create_app

IDLE_CALLS = 200
PAUSE_S = 0.05  # between readings while teaching: a person drawing, not a flood


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """--own (digits to teach) and --niceness (the teaching run's lower priority)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--own", type=int, default=100, help="own digits saved to teach on")
    parser.add_argument(
        "--niceness", type=int, default=NICENESS, help="how much lower the run's priority is"
    )
    return parser.parse_args(argv)


def readings_while(client, body: bytes, running) -> np.ndarray:
    """Reading times in ms, one every PAUSE_S, for as long as `running()` is true."""
    times = []
    while running():
        start = time.perf_counter()
        post(client, body)
        times.append((time.perf_counter() - start) * 1000.0)
        time.sleep(PAUSE_S)
    return np.array(times)


def load() -> tuple[float, ...]:
    """The system's load averages (other jobs on the same cores), or () where unknown."""
    return os.getloadavg() if hasattr(os, "getloadavg") else ()


def main(argv: list[str] | None = None) -> int:
    """Time readings idle and during one teaching run; print both and their ratio."""
    args = parse_args(argv)
    mnist = load_mnist()
    body = canvas_png(mnist.x_test[0])
    with tempfile.TemporaryDirectory() as folder:
        own = Path(folder) / "own"
        for digit, label in zip(mnist.x_test[: args.own], mnist.y_test[: args.own], strict=True):
            save_digit(own, int(label), digit)
        app = create_app(
            onnx_beside(SHIPPED_MODEL_PATH),
            teaching=TeachingSettings(own),
            models_dir=Path(folder) / "models",
        )
        app.extensions[TEACHER_KEY].niceness = args.niceness
        client = app.test_client()
        idle = time_ms(lambda: post(client, body), IDLE_CALLS)
        started = time.perf_counter()
        response = client.post("/api/teach", headers={"Origin": "http://localhost"})
        if response.status_code != 202:
            raise UserError(f"teaching did not start: {response.get_data(True)}")
        run = app.extensions[TEACHER_KEY].run
        busy = readings_while(client, body, lambda: not run.finished.is_set())
        took = time.perf_counter() - started
        status = app.extensions[TEACHER_KEY].status()
        # Idle again after the run: on a machine shared with other jobs, the baseline is the
        # readings on both sides of the run, not the ones before it only.
        idle = np.concatenate([idle, time_ms(lambda: post(client, body), IDLE_CALLS)])
    report("reading, idle (before and after)", idle)
    report(f"reading, teaching (nice {args.niceness})", busy)
    ratio = np.median(busy) / np.median(idle)
    p95 = np.percentile(busy, 95) / np.percentile(idle, 95)
    print(f"ratio of medians {ratio:.2f}x, of p95 {p95:.2f}x (target: at most 3x)")
    print("load average over 1, 5, 15 min at the end: " + ", ".join(f"{x:.1f}" for x in load()))
    print(f"teaching on {args.own} digits: {status['state']} in {took:.1f} s", end="")
    print(f" ({status['error']})" if status["error"] else "")
    return 0 if status["state"] == "done" else 1


if __name__ == "__main__":
    run_cli(main)
