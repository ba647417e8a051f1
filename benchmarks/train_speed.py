"""Training speed of the project's pipeline against the published reference pipeline.

    python benchmarks/train_speed.py [--epochs 6] [--repeats 3] [--limit N] [--json]
                                     [--skip-cold-start]

Each run trains in a fresh process (reference and project alternate) so neither inherits the
other's memory, threads or compiled graphs. The reference is the design as published: the default
Sequential CNN, Adam() defaults, float32 NumPy arrays and
`model.fit(x, y, batch_size=64, validation_split=0.2)`. The project is `mnist_cnn.train.train`
with its defaults. At each epoch's end a callback evaluates the 10,000 test images, off the clock,
to find when test accuracy first reaches 99.0% (so that time is known to the epoch); training
never sees them. Also measured: the project model's inference speed and the cold start of
`python test_model.py one.png`. Nothing is asserted: the targets are reported as met or not.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

# `python benchmarks/train_speed.py` (how `make benchmark` runs it) puts only benchmarks/ on the
# path, not the repository root that holds the mnist_cnn package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from mnist_cnn.cpu import ONEDNN_ENV, add_onednn_flag, use_onednn
from mnist_cnn.data import Mnist, load_mnist
from mnist_cnn.errors import UserError, run_cli
from mnist_cnn.predict import BATCH_SIZE, predict_probabilities

REPO_ROOT = Path(__file__).resolve().parent.parent
PIPELINES = ("reference", "project")
TARGET_ACCURACY = 0.99
REFERENCE_BATCH_SIZE = 64
REFERENCE_VALIDATION_SPLIT = 0.2
COLD_STARTS = 3
KIB_PER_MIB = 1024  # ru_maxrss is in KiB on Linux (bytes on macOS)
LABEL_WIDTH, CELL_WIDTH = 26, 32  # table columns


class Metric(NamedTuple):
    """One row of the comparison: a key of the worker's report, its label and number format."""

    key: str
    label: str
    number: str


class Target(NamedTuple):
    """A goal on the ratio project/reference of a metric's medians: lowest <= ratio <= highest."""

    key: str
    goal: str
    lowest: float = 0.0
    highest: float = math.inf


METRICS = (
    Metric("images_per_second", "train images/s", "{:,.0f}"),
    Metric("seconds_per_epoch", "s/epoch", "{:.2f}"),
    Metric("seconds_to_target", f"time to {TARGET_ACCURACY:.1%} test (s)", "{:.1f}"),
    Metric("final_test_accuracy", "final test accuracy", "{:.4f}"),
    Metric("peak_rss_mib", "peak RSS (MiB)", "{:,.0f}"),
)
TARGETS = (
    Target("images_per_second", "train images/s at least 3x", lowest=3.0),
    Target("seconds_to_target", f"time to {TARGET_ACCURACY:.1%} at least 4x shorter", highest=0.25),
    Target("final_test_accuracy", "final test accuracy no lower", lowest=1.0),
    Target("peak_rss_mib", "peak RSS no higher", highest=1.0),
)


def as_float_images(images: np.ndarray) -> np.ndarray:
    """uint8 digits (N, 28, 28) as the published pipeline feeds them: float32 /255, channel axis."""
    return images.astype(np.float32)[..., np.newaxis] / 255.0


@dataclass
class TrainingClock:
    """Training time of one fit, with the test evaluations at each epoch's end taken off it."""

    x_test: np.ndarray
    y_test: np.ndarray
    started: float = 0.0
    eval_seconds: float = 0.0
    train_seconds: float = 0.0
    epoch_end_seconds: list[float] = field(default_factory=list)
    test_accuracies: list[float] = field(default_factory=list)

    def start(self) -> None:
        """Start timing: fit begins."""
        self.started = time.perf_counter()

    def lap(self, model) -> None:
        """Note the training time so far, then evaluate the test set off the clock."""
        now = time.perf_counter()
        self.epoch_end_seconds.append(now - self.started - self.eval_seconds)
        scores = model.evaluate(
            self.x_test, self.y_test, batch_size=BATCH_SIZE, verbose=0, return_dict=True
        )
        self.test_accuracies.append(float(scores["accuracy"]))
        self.eval_seconds += time.perf_counter() - now

    def stop(self) -> None:
        """Stop timing: fit ends."""
        self.train_seconds = time.perf_counter() - self.started - self.eval_seconds

    def seconds_to_target(self) -> float | None:
        """Training time until test accuracy first reached the target, None if it never did."""
        reached = zip(self.epoch_end_seconds, self.test_accuracies, strict=True)
        return next((seconds for seconds, acc in reached if acc >= TARGET_ACCURACY), None)


def clock_callback(clock: TrainingClock):
    """The clock as a Keras callback: it runs with fit and laps at each epoch's end."""
    import keras

    callback = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: clock.start(),
        on_epoch_end=lambda epoch, logs: clock.lap(callback.model),
        on_train_end=lambda logs: clock.stop(),
    )
    return callback


def test_set_clock(mnist: Mnist) -> TrainingClock:
    """A clock that evaluates the 10,000 test images, the same way for both pipelines."""
    return TrainingClock(as_float_images(mnist.x_test), mnist.y_test)


def measurements(clock: TrainingClock, train_images: int, final_accuracy: float) -> dict:
    """A finished run's figures; peak RSS is the process's high-water mark so far."""
    epochs = len(clock.test_accuracies)
    return {
        "train_images": train_images,
        "epochs": epochs,
        "train_seconds": clock.train_seconds,
        "images_per_second": train_images * epochs / clock.train_seconds,
        "seconds_per_epoch": clock.train_seconds / epochs,
        "seconds_to_target": clock.seconds_to_target(),
        "test_accuracy_by_epoch": clock.test_accuracies,
        "final_test_accuracy": final_accuracy,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_MIB,
    }


def run_reference(mnist: Mnist, epochs: int, limit: int | None) -> dict:
    """Train the published way; its final model is the last epoch's."""
    import keras

    from mnist_cnn.model import build_cnn

    x, y = as_float_images(mnist.x_train[:limit]), mnist.y_train[:limit]
    model = build_cnn()
    model.compile(
        optimizer=keras.optimizers.Adam(),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    clock = test_set_clock(mnist)
    model.fit(
        x,
        y,
        batch_size=REFERENCE_BATCH_SIZE,
        validation_split=REFERENCE_VALIDATION_SPLIT,
        epochs=epochs,
        callbacks=[clock_callback(clock)],
        verbose=0,
    )
    # Keras keeps the first floor(N * (1 - split)) images for training.
    train_images = math.floor(len(x) * (1 - REFERENCE_VALIDATION_SPLIT))
    return measurements(clock, train_images, clock.test_accuracies[-1])


def inference_images_per_second(model_path: Path, digits: np.ndarray) -> float:
    """Test images per second through predict_probabilities, after one warm-up batch."""
    from mnist_cnn.model import load_trained_model

    model = load_trained_model(model_path)
    predict_probabilities(model, digits[:BATCH_SIZE])
    start = time.perf_counter()
    predict_probabilities(model, digits)
    return len(digits) / (time.perf_counter() - start)


def run_project(mnist: Mnist, epochs: int, limit: int | None) -> dict:
    """Train with train_model.py's code and defaults; its final model is the saved best one."""
    from mnist_cnn.train import TrainConfig, select_data, train

    with tempfile.TemporaryDirectory() as folder:
        config = TrainConfig(
            epochs=epochs,
            limit=limit,
            model_path=Path(folder) / "m.keras",
            plots_dir=Path(folder) / "plots",
            verbose=0,
        )
        clock = test_set_clock(mnist)
        result = train(config, mnist, callbacks=[clock_callback(clock)])
        (x_train, _), _ = select_data(mnist, config)
        # Measured before inference so the memory figure is training's alone.
        report = measurements(clock, len(x_train), result.test_accuracy)
        report["inference_images_per_second"] = inference_images_per_second(
            config.model_path, mnist.x_test
        )
    return report


WORKERS = {"reference": run_reference, "project": run_project}


def run_worker(pipeline: str, epochs: int, limit: int | None, onednn: str) -> None:
    """Train one pipeline in this process and print its figures as one JSON line."""
    # The project sets oneDNN as train_model.py does, before TensorFlow is imported.
    setting = use_onednn(onednn) if pipeline == "project" else "oneDNN: TensorFlow's default"
    report = WORKERS[pipeline](load_mnist(), epochs, limit)
    print(json.dumps({"pipeline": pipeline, "onednn": setting, **report}))


def worker_environment(pipeline: str) -> dict[str, str]:
    """The reference runs with TensorFlow's own oneDNN default, whatever this shell has set."""
    if pipeline == "reference":
        return {name: value for name, value in os.environ.items() if name != ONEDNN_ENV}
    return dict(os.environ)


def spawn_worker(pipeline: str, epochs: int, limit: int | None, onednn: str) -> dict:
    """Run one pipeline in a fresh Python process and return its figures."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", pipeline]
    command += ["--epochs", str(epochs), "--onednn", onednn]
    command += ["--limit", str(limit)] if limit else []
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=REPO_ROOT, env=worker_environment(pipeline)
    )
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise UserError(f"the {pipeline} worker failed with exit status {result.returncode}")
    # Keras prints the model summary to stdout first; the figures are the last line.
    return json.loads(result.stdout.strip().splitlines()[-1])


def collect_runs(
    epochs: int, repeats: int, limit: int | None, onednn: str
) -> dict[str, list[dict]]:
    """Alternate reference and project runs, `repeats` of each, reporting progress on stderr."""
    runs: dict[str, list[dict]] = {pipeline: [] for pipeline in PIPELINES}
    for repeat in range(1, repeats + 1):
        for pipeline in PIPELINES:
            start = time.perf_counter()
            runs[pipeline].append(spawn_worker(pipeline, epochs, limit, onednn))
            seconds = time.perf_counter() - start
            print(f"run {repeat}/{repeats} {pipeline}: {seconds:.0f} s", file=sys.stderr)
    return runs


def cold_start_seconds() -> list[float]:
    """Wall seconds of `python test_model.py one.png` with the committed model, from cold."""
    from benchmarks.predict_speed import time_cli, write_pngs
    from mnist_cnn.model import DEFAULT_MODEL_PATH

    with tempfile.TemporaryDirectory() as folder:
        paths = write_pngs(load_mnist().x_test[:1], Path(folder))
        return [time_cli(paths, REPO_ROOT / DEFAULT_MODEL_PATH) for _ in range(COLD_STARTS)]


def finite(value: float) -> float | None:
    """`value`, or None where it is infinite or undefined (JSON has neither)."""
    return value if math.isfinite(value) else None


def as_array(values: list[float | None]) -> np.ndarray:
    """Values as floats; None (a target never reached) counts as infinitely late."""
    return np.array([math.inf if value is None else value for value in values], dtype=float)


def spread(values: list[float | None]) -> dict[str, float | None]:
    """Median, min and max, so the noise between repeats is visible."""
    array = as_array(values)
    stats = {"median": np.median(array), "min": array.min(), "max": array.max()}
    return {name: finite(float(value)) for name, value in stats.items()}


def median_ratio(project: list[float | None], reference: list[float | None]) -> float:
    """Ratio of the medians, project/reference: NaN where both never reached a target."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.median(as_array(project)) / np.median(as_array(reference)))


def compare(metric: Metric, runs: dict[str, list[dict]]) -> tuple[dict, float]:
    """One metric's spread in each pipeline, and the ratio of the medians."""
    values = {pipeline: [run[metric.key] for run in runs[pipeline]] for pipeline in PIPELINES}
    ratio = median_ratio(values["project"], values["reference"])
    return {pipeline: spread(values[pipeline]) for pipeline in PIPELINES}, ratio


def summarize(runs: dict[str, list[dict]], cold_starts: list[float] | None, settings: dict) -> dict:
    """Everything the table shows, as JSON-ready data: spreads, ratios, targets and the runs."""
    metrics, ratios = {}, {}
    for metric in METRICS:
        spreads, ratios[metric.key] = compare(metric, runs)
        metrics[metric.key] = spreads | {"ratio": finite(ratios[metric.key])}
    targets = {
        target.key: {
            "goal": target.goal,
            "met": target.lowest <= ratios[target.key] <= target.highest,  # False for NaN
        }
        for target in TARGETS
    }
    inference = [run["inference_images_per_second"] for run in runs["project"]]
    return {
        "settings": settings,
        "metrics": metrics,
        "targets": targets,
        "inference_images_per_second": spread(inference),
        "cold_start_seconds": spread(cold_starts) if cold_starts else None,
        "runs": runs,
    }


def format_spread(stats: dict[str, float | None], number: str) -> str:
    """`median [min..max]`, with "not reached" for a target never reached."""
    shown = {k: "not reached" if v is None else number.format(v) for k, v in stats.items()}
    if stats["median"] is None:
        return "not reached"
    return f"{shown['median']} [{shown['min']}..{shown['max']}]"


def format_ratio(ratio: float | None) -> str:
    """A ratio as `1.23x`, or n/a where it is undefined."""
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def format_metrics(summary: dict) -> list[str]:
    """The comparison table: a row per metric, reference, project and their ratio."""
    lines = [
        f"{'metric':<{LABEL_WIDTH}}{'reference (median [min..max])':<{CELL_WIDTH}}"
        f"{'project (median [min..max])':<{CELL_WIDTH}}project/reference"
    ]
    for metric in METRICS:
        row = summary["metrics"][metric.key]
        cells = [format_spread(row[pipeline], metric.number) for pipeline in PIPELINES]
        lines.append(
            f"{metric.label:<{LABEL_WIDTH}}{cells[0]:<{CELL_WIDTH}}{cells[1]:<{CELL_WIDTH}}"
            f"{format_ratio(row['ratio'])}"
        )
    return lines


def format_project_only(summary: dict) -> list[str]:
    """Inference speed and cold start, which only the project has."""
    cold = summary["cold_start_seconds"]
    return [
        f"{'inference images/s':<{LABEL_WIDTH}}project, 10,000 test images, batch 1,024: "
        + format_spread(summary["inference_images_per_second"], "{:,.0f}"),
        f"{'cold start (s)':<{LABEL_WIDTH}}python test_model.py one.png: "
        + (format_spread(cold, "{:.2f}") if cold else "skipped"),
    ]


def format_targets(summary: dict) -> list[str]:
    """Each target with the measured ratio and met / not met."""
    lines = ["targets (project/reference of the medians)"]
    for target in TARGETS:
        ratio = format_ratio(summary["metrics"][target.key]["ratio"])
        verdict = "met" if summary["targets"][target.key]["met"] else "not met"
        lines.append(f"  {target.goal:<40}{ratio:>8}   {verdict}")
    return lines


def format_report(summary: dict) -> str:
    """The whole human-readable report."""
    settings = summary["settings"]
    images = f"first {settings['limit']:,}" if settings["limit"] else "all 60,000"
    title = (
        f"epochs: {settings['epochs']}   training images: {images}   "
        f"runs of each pipeline: {settings['repeats']}, alternating"
    )
    settings_lines = [title] + [
        f"{pipeline}: {summary['runs'][pipeline][0]['onednn']}" for pipeline in PIPELINES
    ]
    sections = [settings_lines, format_metrics(summary), format_project_only(summary)]
    return "\n\n".join("\n".join(lines) for lines in [*sections, format_targets(summary)])


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--epochs", type=positive_int, default=6, help="epochs of each run")
    parser.add_argument("--repeats", type=positive_int, default=3, help="runs of each pipeline")
    parser.add_argument(
        "--limit", type=positive_int, default=None, help="train on the first N training images"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--skip-cold-start", action="store_true", help="do not time test_model.py's cold start"
    )
    add_onednn_flag(parser)  # the project's setting; the reference keeps TensorFlow's default
    parser.add_argument("--worker", choices=PIPELINES, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    """Run the workers (or be one), then print the table or the JSON."""
    args = parse_args()
    if args.worker:
        run_worker(args.worker, args.epochs, args.limit, args.onednn)
        return
    runs = collect_runs(args.epochs, args.repeats, args.limit, args.onednn)
    cold_starts = None if args.skip_cold_start else cold_start_seconds()
    settings = {
        "epochs": args.epochs,
        "repeats": args.repeats,
        "limit": args.limit,
        "onednn": args.onednn,
        "target_accuracy": TARGET_ACCURACY,
    }
    summary = summarize(runs, cold_starts, settings)
    print(json.dumps(summary, indent=2) if args.json else format_report(summary))


if __name__ == "__main__":
    run_cli(main)
