"""A training run's progress as a JSON file another process reads (the web page's teaching).

The file is one JSON object, replaced whole (a temp file, then a rename) at every change of
stage and every few seconds of training, so a reader never sees half of it:

    {"stage": "training", "epoch": 2, "epochs": 4, "seconds_left": 12.5,
     "before": {"own": 0.62, "mnist": 0.9951, "own_count": 100}, "after": null,
     "model_path": "/home/you/.local/share/mnist-cnn/models/mnist_cnn_taught.keras",
     "error": null}

`stage` goes "loading", "before", "training", "after", "exporting", then "done", or "failed"
with `error` the one-line message. `epoch` counts from 1 (0 before training) over every
training run of the command (cross-validation's folds, then the final one).
No TensorFlow here: the command writes "loading" before it imports it.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from mnist_cnn.errors import UserError
from mnist_cnn.files import write_json_atomically

STAGES = ("loading", "before", "training", "after", "exporting", "done", "failed")
WRITE_EVERY = 2.0  # seconds between writes during training: fresh enough, and cheap


class Progress:
    """The progress of one run, written to `path` on each change (nothing when `path` is None).

    `model_path` is the model the run writes (OUT); `clock` (seconds, monotonic) is for tests.
    """

    def __init__(self, path: Path | None, model_path: Path, clock=time.monotonic):
        self.path = None if path is None else Path(path)
        self.clock = clock
        self.state: dict = {
            "stage": "loading",
            "epoch": 0,
            "epochs": 0,
            "seconds_left": None,
            "before": None,
            "after": None,
            "model_path": str(model_path),
            "error": None,
        }
        self.last_write = float("-inf")

    def update(self, **fields) -> None:
        """Change some fields and write the file at once. Raises ValueError for an unknown
        stage or field (a bug, not the user's doing)."""
        unknown = set(fields) - set(self.state)
        if unknown or fields.get("stage", "loading") not in STAGES:
            raise ValueError(f"not a progress field or stage: {fields}")
        self.state.update(fields)
        self.write()

    def tick(self, **fields) -> None:
        """Change some fields during training; write only if WRITE_EVERY seconds have passed
        since the last write."""
        self.state.update(fields)
        if self.clock() - self.last_write >= WRITE_EVERY:
            self.write()

    def fail(self, error: str) -> None:
        """The run stopped: stage "failed" with its one-line `error` (written if it can be:
        the error being reported may be that the file cannot be written)."""
        with contextlib.suppress(UserError):
            self.update(stage="failed", error=error, seconds_left=None)

    def write(self) -> None:
        """Write the whole state now (atomically), if there is a file to write. Raises
        UserError when it cannot be written."""
        self.last_write = self.clock()
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomically(self.state, self.path)
        except OSError as error:
            reason = error.strerror or error
            raise UserError(f"{self.path}: cannot write the progress file: {reason}") from None


def figures(own: float | None, mnist: float, own_count: int) -> dict:
    """The `before` or `after` object: accuracy in [0, 1] on the person's held-out digits and
    on the MNIST test set, and how many of the person's digits `own` was measured on."""
    return {
        "own": None if own is None else round(float(own), 6),
        "mnist": round(float(mnist), 6),
        "own_count": int(own_count),
    }


class StepClock:
    """Estimates the training time left from the time taken by the steps done so far.

    `total_steps` is the number of optimiser steps of the whole command (every run).
    """

    def __init__(self, total_steps: int, clock=time.monotonic):
        self.total_steps = total_steps
        self.clock = clock
        self.done = 0
        self.started: float | None = None
        self.first_done = 0

    def step(self) -> float | None:
        """Count one finished step; returns the seconds left (None until two steps are timed:
        the first step of a run includes tracing the graph, far slower than the rest)."""
        now = self.clock()
        self.done += 1
        if self.started is None:
            self.started, self.first_done = now, self.done
            return None
        timed = self.done - self.first_done
        per_step = (now - self.started) / timed
        return round(per_step * max(0, self.total_steps - self.done), 1)
