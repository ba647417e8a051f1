"""Where a training step of the default CNN spends its time, on whatever Keras backend is set.

    python -m benchmarks.step_cost [--batch-size 256] [--repeats 5]
    KERAS_BACKEND=jax python -m benchmarks.step_cost     # with jax installed

One fixed batch of random images, no input pipeline: the model's own cost. Each variant is
built and compiled once, then the variants are timed in turn, `repeats` times, so a slow
moment of the machine hits all of them alike. Freezing a layer (trainable=False) skips its
weight gradient, so the differences between rows price the gradients of the two conv layers.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import keras
import numpy as np

from mnist_cnn.data import IMAGE_SIZE, NUM_CLASSES
from mnist_cnn.model import build_cnn

FROZEN = {  # variant name -> which of build_cnn()'s convolutions to freeze (0: the first)
    "full training step": (),
    "conv1 frozen": (0,),
    "conv1 and conv2 frozen": (0, 1),
}
WARM_UP_STEPS = 3


def compiled_cnn(frozen: tuple[int, ...]) -> keras.Model:
    """The default CNN with the given convolutions frozen, compiled as the reference compiles
    it."""
    model = build_cnn()
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    for index in frozen:
        convolutions[index].trainable = False
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def step_functions(x: np.ndarray, y: np.ndarray) -> dict[str, Callable[[], object]]:
    """One callable per variant: a training step on (x, y), or the forward pass alone."""
    steps = {}
    for name, frozen in FROZEN.items():
        model = compiled_cnn(frozen)
        steps[name] = lambda model=model: model.train_on_batch(x, y)
    forward = compiled_cnn(())
    steps["forward pass only"] = lambda: forward.predict_on_batch(x)
    return steps


def seconds_per_call(function: Callable[[], object], calls: int) -> float:
    """Mean wall seconds of one call over `calls` calls."""
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls


def measure(batch_size: int, repeats: int, calls: int) -> dict[str, list[float]]:
    """Seconds per step of every variant, `repeats` times each, the variants taking turns."""
    rng = np.random.default_rng(0)
    x = rng.random((batch_size, IMAGE_SIZE, IMAGE_SIZE, 1), dtype=np.float32)
    y = rng.integers(0, NUM_CLASSES, batch_size)
    steps = step_functions(x, y)
    for step in steps.values():
        seconds_per_call(step, WARM_UP_STEPS)  # traces and compiles
    timings: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            timings[name].append(seconds_per_call(step, calls))
    return timings


def format_table(timings: dict[str, list[float]], batch_size: int) -> str:
    """ms per step and images per second (medians), and each row against the full step."""
    full = np.median(timings["full training step"])
    lines = [f"{'':<24}{'ms/step':>9}{'images/s':>10}{'of full step':>14}"]
    for name, seconds in timings.items():
        median = float(np.median(seconds))
        lines.append(
            f"{name:<24}{median * 1000:>9.1f}{batch_size / median:>10,.0f}{median / full:>14.0%}"
        )
    return "\n".join(lines)


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--batch-size", type=int, default=256, help="images per step")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds of every variant")
    parser.add_argument("--calls", type=int, default=20, help="steps per timed round")
    args = parser.parse_args()
    timings = measure(args.batch_size, args.repeats, args.calls)
    print(
        f"backend: {keras.backend.backend()}   batch: {args.batch_size}   medians of {args.repeats}"
    )
    print(format_table(timings, args.batch_size))


if __name__ == "__main__":
    main()
