"""Fast to a good model: the project's pipeline against the published reference pipeline.

    python benchmarks/train_speed.py [--reference-epochs 6] [--project-epochs 2] [--repeats 3]
                                     [--limit N] [--json] [--skip-cold-start]

The headline is the time to 99.0% test accuracy, training only and for the whole process. Each
run trains in a fresh process (reference and project alternate, run n of each with seed n) so
neither inherits the other's memory, threads or compiled graphs. The reference is the design as
published: the default Sequential CNN, Adam() defaults, float32 NumPy arrays and
`model.fit(x, y, batch_size=64, validation_split=0.2)`. The project is `mnist_cnn.train.train`
with its defaults (one-cycle schedule, outlier exposure, saved model, statistics, ONNX export and
plots). At each epoch's end a callback evaluates the 10,000 test images, off the clock, to find
when test accuracy first reaches 99.0% (so that time is known to the epoch); training never
sees them.

Training only: the clock's training time at the end of the first epoch at 99.0%. Whole process:
wall time from the parent's spawning of the worker (imports, data, outliers, model, training)
minus the test evaluations: for the reference up to the end of that epoch, for the project up
to the end of train() with all it writes, counted only if its saved model reaches 99.0%.

Also measured: training FLOP/s against the CPU's estimated peak, the project model's inference
speed and the cold start of `python test_model.py one.png`. Nothing is asserted: the targets are
reported as met or not.
"""

from __future__ import annotations

import argparse
import contextlib
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

from benchmarks.hardware import GIGA, describe_cpu, format_peak, training_flops
from mnist_cnn.config import SHIPPED_MODEL_PATH
from mnist_cnn.cpu import ONEDNN_ENV, add_onednn_flag, use_onednn
from mnist_cnn.data import Mnist, load_mnist, one_hot
from mnist_cnn.engine import BATCH_SIZE, load_engine
from mnist_cnn.errors import UserError, run_cli

REPO_ROOT = Path(__file__).resolve().parent.parent
PIPELINES = ("reference", "project")
TARGET_ACCURACY = 0.99
# The reference reaches 99% test accuracy around its 5th epoch; the project's one-cycle recipe
# is meant to reach it in 2.
DEFAULT_EPOCHS = {"reference": 6, "project": 2}
REFERENCE_BATCH_SIZE = 64
REFERENCE_VALIDATION_SPLIT = 0.2
COLD_STARTS = 3
KIB_PER_MIB = 1024  # ru_maxrss is in KiB on Linux (bytes on macOS)
LABEL_WIDTH, CELL_WIDTH, GOAL_WIDTH = 36, 32, 50  # table columns


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
    Metric("seconds_to_target", f"time to {TARGET_ACCURACY:.1%}, training (s)", "{:.1f}"),
    Metric(
        "process_seconds_to_target", f"time to {TARGET_ACCURACY:.1%}, whole process (s)", "{:.1f}"
    ),
    Metric("startup_seconds", "start-up: spawn to first step (s)", "{:.1f}"),
    Metric("final_test_accuracy", "final test accuracy", "{:.4f}"),
    Metric("peak_rss_mib", "peak RSS (MiB)", "{:,.0f}"),
    Metric("images_per_second", "train images/s", "{:,.0f}"),
    Metric("seconds_per_epoch", "s/epoch", "{:.2f}"),
    Metric("gflops_per_second", "training GFLOP/s achieved", "{:.1f}"),
)
TARGETS = (
    Target(
        "process_seconds_to_target",
        f"whole-process time to {TARGET_ACCURACY:.1%} at least 4x shorter",
        highest=0.25,
    ),
    Target("final_test_accuracy", "final test accuracy no lower", lowest=1.0),
    Target("peak_rss_mib", "peak RSS no higher", highest=1.0),
)


class RunSpec(NamedTuple):
    """What a worker is told: its epochs, training-set limit, seed and when it was spawned."""

    epochs: int
    limit: int | None
    seed: int
    spawned_at: float  # the parent's time.time() just before it spawned the worker, seconds


def as_float_images(images: np.ndarray) -> np.ndarray:
    """uint8 digits (N, 28, 28) as the published pipeline feeds them: float32 /255, channel axis."""
    return images.astype(np.float32)[..., np.newaxis] / 255.0


@dataclass
class TrainingClock:
    """Training time of one fit, with the test evaluations at each epoch's end taken off it, and
    the wall time since the worker was spawned. All times in seconds."""

    x_test: np.ndarray
    y_test: np.ndarray  # in the form the model's loss takes: sparse or one-hot
    spawned_at: float  # time.time() when the parent spawned this worker
    started: float = 0.0  # perf_counter() when fit began
    startup_seconds: float = 0.0  # wall time from the spawn to fit's start
    fit_ended_at: float = 0.0  # time.time() when fit ended
    eval_seconds: float = 0.0
    train_seconds: float = 0.0
    precision: str = ""  # the dtype policy the model trains under
    epoch_end_seconds: list[float] = field(default_factory=list)
    epoch_end_process_seconds: list[float] = field(default_factory=list)
    test_accuracies: list[float] = field(default_factory=list)

    def start(self, precision: str) -> None:
        """Start timing: fit begins."""
        self.started = time.perf_counter()
        self.startup_seconds = time.time() - self.spawned_at
        self.precision = precision

    def lap(self, model) -> None:
        """Note the training and whole-process times so far, then evaluate the test set off the
        clock."""
        now = time.perf_counter()
        self.epoch_end_seconds.append(now - self.started - self.eval_seconds)
        self.epoch_end_process_seconds.append(self.process_seconds(time.time()))
        scores = model.evaluate(
            self.x_test, self.y_test, batch_size=BATCH_SIZE, verbose=0, return_dict=True
        )
        self.test_accuracies.append(float(scores["accuracy"]))
        self.eval_seconds += time.perf_counter() - now

    def stop(self) -> None:
        """Stop timing: fit ends."""
        self.train_seconds = time.perf_counter() - self.started - self.eval_seconds
        self.fit_ended_at = time.time()

    def process_seconds(self, at: float) -> float:
        """Wall time from the spawn to `at` (a time.time()), minus the test evaluations so far."""
        return at - self.spawned_at - self.eval_seconds

    def first_at_target(self, times: list[float]) -> float | None:
        """The time, of `times` (one per epoch's end), at which test accuracy first reached the
        target; None if it never did."""
        reached = zip(times, self.test_accuracies, strict=True)
        return next((seconds for seconds, acc in reached if acc >= TARGET_ACCURACY), None)

    def seconds_to_target(self) -> float | None:
        """Training time until test accuracy first reached the target, None if it never did."""
        return self.first_at_target(self.epoch_end_seconds)

    def process_seconds_to_target(self) -> float | None:
        """Whole-process time until the end of the first epoch at the target, None if none was."""
        return self.first_at_target(self.epoch_end_process_seconds)


def clock_callback(clock: TrainingClock):
    """The clock as a Keras callback: it runs with fit and laps at each epoch's end."""
    import keras

    callback = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: clock.start(callback.model.dtype_policy.name),
        on_epoch_end=lambda epoch, logs: clock.lap(callback.model),
        on_train_end=lambda logs: clock.stop(),
    )
    return callback


def measurements(clock: TrainingClock, train_images: int, final_accuracy: float, model) -> dict:
    """A finished run's figures, `train_images` being the images of each epoch; peak RSS is the
    process's high-water mark so far. FLOP/s counts only the training steps' arithmetic."""
    epochs = len(clock.test_accuracies)
    images_per_second = train_images * epochs / clock.train_seconds
    flops_per_image = training_flops(model)
    return {
        "precision": f"precision: {clock.precision}",
        "train_images": train_images,
        "epochs": epochs,
        "train_seconds": clock.train_seconds,
        "images_per_second": images_per_second,
        "seconds_per_epoch": clock.train_seconds / epochs,
        "seconds_to_target": clock.seconds_to_target(),
        "startup_seconds": clock.startup_seconds,
        "test_accuracy_by_epoch": clock.test_accuracies,
        "final_test_accuracy": final_accuracy,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_MIB,
        "training_flops_per_image": flops_per_image,
        "gflops_per_second": flops_per_image * images_per_second / GIGA,
    }


def run_reference(mnist: Mnist, spec: RunSpec) -> dict:
    """Train the published way; its final model is the last epoch's."""
    import keras

    from mnist_cnn.model import build_cnn

    keras.utils.set_random_seed(spec.seed)
    x, y = as_float_images(mnist.x_train[: spec.limit]), mnist.y_train[: spec.limit]
    model = build_cnn()
    model.compile(
        optimizer=keras.optimizers.Adam(),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    # Sparse test labels, as its loss takes them.
    clock = TrainingClock(as_float_images(mnist.x_test), mnist.y_test, spec.spawned_at)
    model.fit(
        x,
        y,
        batch_size=REFERENCE_BATCH_SIZE,
        validation_split=REFERENCE_VALIDATION_SPLIT,
        epochs=spec.epochs,
        callbacks=[clock_callback(clock)],
        verbose=0,
    )
    # Keras keeps the first floor(N * (1 - split)) images for training.
    train_images = math.floor(len(x) * (1 - REFERENCE_VALIDATION_SPLIT))
    report = measurements(clock, train_images, clock.test_accuracies[-1], model)
    return report | {"process_seconds_to_target": clock.process_seconds_to_target()}


def inference_images_per_second(model_path: Path, digits: np.ndarray) -> float:
    """Test images per second through the model's engine, after one warm-up batch."""
    engine = load_engine(model_path)
    engine.predict(digits[:BATCH_SIZE])
    start = time.perf_counter()
    engine.predict(digits)
    return len(digits) / (time.perf_counter() - start)


def run_project(mnist: Mnist, spec: RunSpec) -> dict:
    """Train as `python train_model.py --epochs N` does, with its defaults (a two-epoch run
    gets the one-cycle peak of a short run); its final model is the saved best one. The
    outliers come from the cache warm_outlier_cache filled, as on a user's second run."""
    from mnist_cnn.train import TrainConfig, select_data, train

    with tempfile.TemporaryDirectory() as folder:
        config = TrainConfig(
            epochs=spec.epochs,
            limit=spec.limit,
            seed=spec.seed,
            model_path=Path(folder) / "m.keras",
            plots_dir=Path(folder) / "plots",
            verbose=0,
        )
        # One-hot test labels: the project's model is compiled with categorical cross-entropy.
        clock = TrainingClock(as_float_images(mnist.x_test), one_hot(mnist.y_test), spec.spawned_at)
        callback = clock_callback(clock)
        result = train(config, mnist, callbacks=[callback])
        finished = time.time()
        process_seconds = clock.process_seconds(finished)
        (x_train, _), _ = select_data(mnist, config)
        # Each epoch trains on the digits and the synthetic outliers alike. Measured before
        # inference so the memory figure is training's alone.
        report = measurements(
            clock, len(x_train) + config.outliers, result.test_accuracy, callback.model
        )
        report |= {
            "process_seconds": process_seconds,
            "process_seconds_to_target": (
                process_seconds if result.test_accuracy >= TARGET_ACCURACY else None
            ),
            "wrap_up_seconds": finished - clock.fit_ended_at,
            "inference_images_per_second": inference_images_per_second(
                config.model_path, mnist.x_test
            ),
        }
    return report


WORKERS = {"reference": run_reference, "project": run_project}


def run_worker(pipeline: str, spec: RunSpec, onednn: str) -> None:
    """Train one pipeline in this process and print its figures as one JSON line."""
    # The project sets oneDNN as train_model.py does, before TensorFlow is imported.
    setting = use_onednn(onednn) if pipeline == "project" else "oneDNN: TensorFlow's default"
    report = WORKERS[pipeline](load_mnist(), spec)
    print(json.dumps({"pipeline": pipeline, "seed": spec.seed, "onednn": setting, **report}))


def worker_environment(pipeline: str, cache_home: Path) -> dict[str, str]:
    """The reference runs with TensorFlow's own oneDNN default, whatever this shell has set;
    the project keeps its outliers under `cache_home` ($XDG_CACHE_HOME)."""
    if pipeline == "reference":
        return {name: value for name, value in os.environ.items() if name != ONEDNN_ENV}
    return dict(os.environ) | {"XDG_CACHE_HOME": str(cache_home)}


def warm_outlier_cache(cache_home: Path, seeds: range) -> list[float]:
    """Generate the project's training outliers for each seed into `cache_home`'s cache, as a
    user's first run would, and return the seconds each took. Runs after the first read them
    back, so the runs below time a user's second run."""
    from mnist_cnn.config import TrainConfig, default_cache_dir
    from mnist_cnn.train import training_outliers

    # The folder the project's workers use, given cache_home as their $XDG_CACHE_HOME.
    cache_dir = default_cache_dir({"XDG_CACHE_HOME": str(cache_home)})
    seconds = []
    for seed in seeds:
        start = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # stdout is the report (or the JSON)
            training_outliers(TrainConfig().outliers, seed, cache_dir)
        seconds.append(time.perf_counter() - start)
    return seconds


def epochs_flag(pipeline: str) -> str:
    """The command-line flag of a pipeline's epochs."""
    return f"--{pipeline}-epochs"


def spawn_worker(
    pipeline: str, epochs: int, limit: int | None, seed: int, onednn: str, cache_home: Path
) -> dict:
    """Run one pipeline in a fresh Python process and return its figures."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", pipeline]
    command += [epochs_flag(pipeline), str(epochs), "--seed", str(seed), "--onednn", onednn]
    command += ["--limit", str(limit)] if limit else []
    environment = worker_environment(pipeline, cache_home)
    spawned_at = time.time()
    result = subprocess.run(
        [*command, "--spawned-at", repr(spawned_at)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=environment,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise UserError(f"the {pipeline} worker failed with exit status {result.returncode}")
    # Keras prints the model summary to stdout first; the figures are the last line.
    return json.loads(result.stdout.strip().splitlines()[-1])


def collect_runs(
    epochs: dict[str, int], repeats: int, limit: int | None, onednn: str, cache_home: Path
) -> dict[str, list[dict]]:
    """Alternate reference and project runs, `repeats` of each, run n with seed n, reporting
    progress on stderr."""
    runs: dict[str, list[dict]] = {pipeline: [] for pipeline in PIPELINES}
    for repeat in range(1, repeats + 1):
        for pipeline in PIPELINES:
            start = time.perf_counter()
            run = spawn_worker(pipeline, epochs[pipeline], limit, repeat, onednn, cache_home)
            runs[pipeline].append(run)
            seconds = time.perf_counter() - start
            print(f"run {repeat}/{repeats} {pipeline}: {seconds:.0f} s", file=sys.stderr)
    return runs


def cold_start_seconds() -> list[float]:
    """Wall seconds of `python test_model.py one.png` with the committed model, from cold."""
    from benchmarks.predict_speed import time_cli, write_pngs

    with tempfile.TemporaryDirectory() as folder:
        paths = write_pngs(load_mnist().x_test[:1], Path(folder))
        return [time_cli(paths, SHIPPED_MODEL_PATH) for _ in range(COLD_STARTS)]


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


def pipeline_spreads(runs: dict[str, list[dict]], value) -> dict[str, dict]:
    """Each pipeline's spread of `value(run)` over its runs."""
    return {pipeline: spread([value(run) for run in runs[pipeline]]) for pipeline in PIPELINES}


def hardware_summary(runs: dict[str, list[dict]], cpu: dict) -> dict:
    """The CPU, each pipeline's training FLOPs per image and its achieved share of the peak."""
    peak = cpu["peak_flops_per_second"]
    return {
        "cpu": cpu,
        "training_flops_per_image": {
            pipeline: runs[pipeline][0]["training_flops_per_image"] for pipeline in PIPELINES
        },
        "share_of_peak": (
            pipeline_spreads(runs, lambda run: run["gflops_per_second"] * GIGA / peak)
            if peak
            else None
        ),
    }


def summarize(
    runs: dict[str, list[dict]],
    cold_starts: list[float] | None,
    outlier_seconds: list[float],
    settings: dict,
    cpu: dict,
) -> dict:
    """Everything the report shows, as JSON-ready data: spreads, ratios, targets and the runs."""
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
    project = runs["project"]
    return {
        "settings": settings,
        "metrics": metrics,
        "targets": targets,
        "wrap_up_seconds": spread([run["wrap_up_seconds"] for run in project]),
        "inference_images_per_second": spread(
            [run["inference_images_per_second"] for run in project]
        ),
        "cold_start_seconds": spread(cold_starts) if cold_starts else None,
        "outlier_generation_seconds": spread(outlier_seconds),
        "hardware": hardware_summary(runs, cpu),
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


def format_row(label: str, cells: list[str], last: str = "") -> str:
    """One table row: the label, a cell per pipeline, then `last`."""
    row = f"{label:<{LABEL_WIDTH}}" + "".join(f"{cell:<{CELL_WIDTH}}" for cell in cells) + last
    return row.rstrip()


def format_metrics(summary: dict) -> list[str]:
    """The comparison table: a row per metric, reference, project and their ratio."""
    header = [f"{pipeline} (median [min..max])" for pipeline in PIPELINES]
    lines = [format_row("metric", header, "project/reference")]
    for metric in METRICS:
        row = summary["metrics"][metric.key]
        cells = [format_spread(row[pipeline], metric.number) for pipeline in PIPELINES]
        lines.append(format_row(metric.label, cells, format_ratio(row["ratio"])))
    return lines


def format_project_only(summary: dict) -> list[str]:
    """Wrap-up, inference speed and cold start, which only the project has."""
    cold = summary["cold_start_seconds"]
    return [
        "project only (median [min..max])",
        f"{'wrap-up: end of fit to saved (s)':<{LABEL_WIDTH}}model, statistics, ONNX, plots: "
        + format_spread(summary["wrap_up_seconds"], "{:.1f}"),
        f"{'inference images/s':<{LABEL_WIDTH}}10,000 test images, batch {BATCH_SIZE:,}: "
        + format_spread(summary["inference_images_per_second"], "{:,.0f}"),
        f"{'cold start (s)':<{LABEL_WIDTH}}python test_model.py one.png: "
        + (format_spread(cold, "{:.2f}") if cold else "skipped"),
        f"{'outliers generated (s)':<{LABEL_WIDTH}}a seed's first run only, then cached "
        "(the runs above read the cache): "
        + format_spread(summary["outlier_generation_seconds"], "{:.1f}"),
    ]


def format_hardware(summary: dict) -> list[str]:
    """FLOPs per image, the CPU's estimated peak and the share of it each pipeline achieved."""
    hardware = summary["hardware"]
    flops = ", ".join(
        f"{pipeline} {count / 1e6:.2f} M"
        for pipeline, count in hardware["training_flops_per_image"].items()
    )
    lines = [
        "how close to the hardware",
        f"{'training FLOPs per image':<{LABEL_WIDTH}}{flops}",
        f"{'':<{LABEL_WIDTH}}counted from the Conv2D and Dense layers; a training step ~= 3x the "
        "forward pass (forward + gradients w.r.t. inputs and weights)",
        f"{'CPU peak FP32 (estimate)':<{LABEL_WIDTH}}{format_peak(hardware['cpu'])}",
    ]
    if hardware["cpu"]["note"]:
        lines.append(f"{'':<{LABEL_WIDTH}}{hardware['cpu']['note']}")
    if hardware["share_of_peak"]:
        shares = hardware["share_of_peak"]
        cells = [format_spread(shares[pipeline], "{:.1%}") for pipeline in PIPELINES]
        lines.append(format_row("share of the peak", cells))
    return lines


def format_targets(summary: dict) -> list[str]:
    """Each target with the measured ratio and met / not met."""
    lines = ["targets (project/reference of the medians)"]
    for target in TARGETS:
        ratio = format_ratio(summary["metrics"][target.key]["ratio"])
        verdict = "met" if summary["targets"][target.key]["met"] else "not met"
        lines.append(f"  {target.goal:<{GOAL_WIDTH}}{ratio:>8}   {verdict}")
    return lines


def format_settings(summary: dict) -> list[str]:
    """What ran where: epochs, images, runs, the CPU and each pipeline's oneDNN and precision."""
    settings, cpu = summary["settings"], summary["hardware"]["cpu"]
    images = f"first {settings['limit']:,}" if settings["limit"] else "all 60,000"
    epochs = ", ".join(f"{pipeline} {settings['epochs'][pipeline]}" for pipeline in PIPELINES)
    return [
        f"epochs: {epochs}   training images: {images}   runs of each pipeline: "
        f"{settings['repeats']}, alternating, seeds 1..{settings['repeats']}",
        f"CPU: {cpu['model_name']}, {cpu['cores']} cores; vector flags: "
        + (" ".join(cpu["flags"]) or "none of avx2, avx512f, amx"),
    ] + [
        f"{pipeline}: {summary['runs'][pipeline][0]['onednn']}; "
        f"{summary['runs'][pipeline][0]['precision']}"
        for pipeline in PIPELINES
    ]


def format_report(summary: dict) -> str:
    """The whole human-readable report."""
    sections = [
        format_settings(summary),
        format_metrics(summary),
        format_project_only(summary),
        format_hardware(summary),
        format_targets(summary),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections)


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
    for pipeline in PIPELINES:
        parser.add_argument(
            epochs_flag(pipeline),
            type=positive_int,
            default=DEFAULT_EPOCHS[pipeline],
            help=f"epochs of each {pipeline} run",
        )
    parser.add_argument("--repeats", type=positive_int, default=3, help="runs of each pipeline")
    parser.add_argument(
        "--limit", type=positive_int, default=None, help="train on the first N training images"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--skip-cold-start", action="store_true", help="do not time test_model.py's cold start"
    )
    add_onednn_flag(parser)  # the project's setting; the reference keeps TensorFlow's default
    # A worker's own flags, given by spawn_worker.
    parser.add_argument("--worker", choices=PIPELINES, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--spawned-at", type=float, default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    """Run the workers (or be one), then print the report or the JSON."""
    args = parse_args()
    epochs = {pipeline: vars(args)[f"{pipeline}_epochs"] for pipeline in PIPELINES}
    if args.worker:
        spawned_at = args.spawned_at if args.spawned_at is not None else time.time()
        spec = RunSpec(epochs[args.worker], args.limit, args.seed, spawned_at)
        run_worker(args.worker, spec, args.onednn)
        return
    # First, so that a broken test_model.py stops the benchmark before the long training runs.
    cold_starts = None if args.skip_cold_start else cold_start_seconds()
    seeds = range(1, args.repeats + 1)
    with tempfile.TemporaryDirectory() as cache_home:
        outlier_seconds = warm_outlier_cache(Path(cache_home), seeds)
        runs = collect_runs(epochs, args.repeats, args.limit, args.onednn, Path(cache_home))
    settings = {
        "epochs": epochs,
        "repeats": args.repeats,
        "seeds": list(seeds),
        "limit": args.limit,
        "onednn": args.onednn,
        "target_accuracy": TARGET_ACCURACY,
    }
    summary = summarize(runs, cold_starts, outlier_seconds, settings, describe_cpu())
    print(json.dumps(summary, indent=2) if args.json else format_report(summary))


if __name__ == "__main__":
    run_cli(main)
