"""Smoke test of benchmarks/train_speed.py: both workers and the report, on a tiny subset."""

from __future__ import annotations

import json

import pytest
from conftest import run_script

from benchmarks.hardware import describe_cpu, fp32_flops_per_cycle, training_flops
from benchmarks.train_speed import (
    METRICS,
    PIPELINES,
    TARGETS,
    TrainingClock,
    format_report,
    summarize,
)

LIMIT = 600
TINY = (
    *("--limit", str(LIMIT), "--reference-epochs", "1", "--project-epochs", "1"),
    *("--repeats", "1", "--skip-cold-start", "--json"),
)
# The default CNN's forward pass by hand, 2 FLOPs per multiply-add:
CONV1 = 2 * 3 * 3 * 1 * 32 * 26 * 26  # 28x28x1 -> 26x26x32, then max pooling to 13x13x32
CONV2 = 2 * 3 * 3 * 32 * 64 * 11 * 11  # 13x13x32 -> 11x11x64, then max pooling to 5x5x64
DENSE1 = 2 * (5 * 5 * 64) * 128
DENSE2 = 2 * 128 * 10
CNN_TRAINING_FLOPS = 3 * (CONV1 + CONV2 + DENSE1 + DENSE2)  # forward + 2 gradients: 15,786,240


@pytest.fixture(scope="module")
def summary() -> dict:
    """The benchmark's JSON after one one-epoch run of each pipeline on 600 images."""
    result = run_script("benchmarks/train_speed.py", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.mark.slow  # the benchmark's one-epoch run of both pipelines: about 50 s
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_each_worker_reports_plausible_figures(summary, pipeline):
    (run,) = summary["runs"][pipeline]
    assert run["pipeline"] == pipeline
    assert run["seed"] == 1
    assert run["onednn"].startswith("oneDNN: ")
    assert run["precision"] in ("precision: float32", "precision: mixed_bfloat16")
    # The project's epochs also hold its 6,000 synthetic outliers.
    assert 0 < run["train_images"] <= LIMIT + (6000 if pipeline == "project" else 0)
    assert run["epochs"] == 1
    assert run["train_seconds"] > 0
    assert run["images_per_second"] == pytest.approx(run["train_images"] / run["train_seconds"])
    assert run["seconds_per_epoch"] == pytest.approx(run["train_seconds"])
    assert len(run["test_accuracy_by_epoch"]) == 1
    assert 0.0 <= run["final_test_accuracy"] <= 1.0
    assert run["seconds_to_target"] is None or run["seconds_to_target"] > 0
    assert run["startup_seconds"] > 0
    if pipeline == "reference" and run["seconds_to_target"] is not None:
        # Its whole process up to the epoch at the target: start-up, then training to it.
        expected = run["startup_seconds"] + run["seconds_to_target"]
        assert run["process_seconds_to_target"] == pytest.approx(expected, abs=0.5)
    assert run["peak_rss_mib"] > 0
    assert run["training_flops_per_image"] == CNN_TRAINING_FLOPS
    assert run["gflops_per_second"] == pytest.approx(
        CNN_TRAINING_FLOPS * run["images_per_second"] / 1e9
    )


@pytest.mark.slow  # the benchmark's one-epoch run of both pipelines: about 50 s
def test_project_worker_times_its_whole_process_and_inference(summary):
    (run,) = summary["runs"]["project"]
    # Spawn, start-up, one epoch, then saving, statistics, ONNX export and plots.
    assert run["process_seconds"] > run["startup_seconds"] + run["train_seconds"]
    assert run["wrap_up_seconds"] > 0
    assert run["process_seconds"] >= run["startup_seconds"] + run["wrap_up_seconds"]
    reached = run["final_test_accuracy"] >= 0.99
    assert (run["process_seconds_to_target"] is not None) == reached
    assert run["inference_images_per_second"] > 0
    assert summary["inference_images_per_second"]["median"] > 0
    assert summary["wrap_up_seconds"]["median"] == pytest.approx(run["wrap_up_seconds"])
    # Seed 1's outliers were generated once, before the runs, which then read them back.
    assert summary["outlier_generation_seconds"]["median"] > 0


@pytest.mark.slow  # the benchmark's one-epoch run of both pipelines: about 50 s
def test_summary_has_every_metric_target_and_the_hardware(summary):
    assert summary["settings"]["epochs"] == {"reference": 1, "project": 1}
    assert summary["settings"]["seeds"] == [1]
    assert summary["settings"]["limit"] == LIMIT
    assert set(summary["metrics"]) == {metric.key for metric in METRICS}
    for row in summary["metrics"].values():
        for pipeline in PIPELINES:
            assert set(row[pipeline]) == {"median", "min", "max"}
    assert {key: type(t["met"]) for key, t in summary["targets"].items()} == {
        target.key: bool for target in TARGETS
    }
    assert summary["cold_start_seconds"] is None
    hardware = summary["hardware"]
    assert hardware["training_flops_per_image"] == dict.fromkeys(PIPELINES, CNN_TRAINING_FLOPS)
    assert hardware["cpu"]["model_name"]
    if hardware["cpu"]["peak_flops_per_second"]:
        for pipeline in PIPELINES:
            assert 0 < hardware["share_of_peak"][pipeline]["median"] < 1


@pytest.mark.slow  # the benchmark's one-epoch run of both pipelines: about 50 s
def test_report_shows_every_row_and_target(summary):
    report = format_report(summary)
    for line in [metric.label for metric in METRICS] + [target.goal for target in TARGETS]:
        assert line in report
    for row in ("wrap-up", "inference images/s", "training FLOPs per image", "CPU peak"):
        assert row in report
    assert "15.79 M" in report and "share of the peak" in report
    assert f"CPU: {summary['hardware']['cpu']['model_name']}" in report
    assert report.count("precision: ") == len(PIPELINES)
    assert report.count("met") >= len(TARGETS)
    assert "cold start" in report and "skipped" in report


def test_training_flops_are_counted_from_the_layers():
    from mnist_cnn.model import build_cnn

    assert training_flops(build_cnn()) == CNN_TRAINING_FLOPS


def test_cpu_peak_from_made_up_cpuinfo():
    cpuinfo = "vendor_id\t: AuthenticAMD\nmodel name\t: Test CPU\ncpu MHz\t\t: 2000.000\n"
    avx512 = describe_cpu("", cpuinfo + "flags\t\t: fpu avx2 fma avx512f avx512_bf16\n", 4)
    assert avx512["model_name"] == "Test CPU"
    assert avx512["flags"] == ["avx2", "fma", "avx512f", "avx512_bf16"]
    assert avx512["peak_flops_per_second"] == 4 * 2000e6 * 16 * 2 * 2
    assert "Zen 4" in avx512["note"]
    avx2 = describe_cpu("CPU max MHz:   3000.0000\n", cpuinfo + "flags : avx2 fma\n", 2)
    assert avx2["peak_flops_per_second"] == 2 * 3000e6 * 8 * 2 * 2
    assert avx2["note"] is None
    assert fp32_flops_per_cycle({"avx512f"}) == 16 * 2  # no FMA: one FLOP per lane
    assert describe_cpu("", "", 1)["peak_flops_per_second"] is None


def fake_run(seconds_to_target: float | None, accuracy: float) -> dict:
    """A worker's report with the given time to target and made-up other figures."""
    figures = {metric.key: 1.0 for metric in METRICS}
    return figures | {
        "onednn": "oneDNN: on (made up)",
        "precision": "precision: float32",
        "seconds_to_target": seconds_to_target,
        "process_seconds_to_target": seconds_to_target,
        "final_test_accuracy": accuracy,
        "training_flops_per_image": CNN_TRAINING_FLOPS,
        "wrap_up_seconds": 1.0,
        "inference_images_per_second": 1.0,
    }


def test_a_target_never_reached_reads_not_reached_and_not_met():
    runs = {"reference": [fake_run(10.0, 0.99)], "project": [fake_run(None, 0.98)]}
    settings = {"epochs": {"reference": 6, "project": 2}, "repeats": 1, "limit": None}
    summary = summarize(runs, None, [5.0], settings, describe_cpu("", "", 1))
    assert summary["metrics"]["process_seconds_to_target"]["project"]["median"] is None
    assert summary["targets"]["process_seconds_to_target"]["met"] is False
    assert summary["targets"]["final_test_accuracy"]["met"] is False
    report = format_report(summary)
    assert "not reached" in report and "unknown" in report  # no clock speed: no peak


def test_time_to_target_is_the_first_epoch_at_the_target():
    clock = TrainingClock(x_test=None, y_test=None, spawned_at=0.0)
    clock.epoch_end_seconds, clock.test_accuracies = [5.0, 9.0, 14.0], [0.985, 0.9903, 0.995]
    clock.epoch_end_process_seconds = [20.0, 24.0, 29.0]
    assert clock.seconds_to_target() == 9.0
    assert clock.process_seconds_to_target() == 24.0
    clock.eval_seconds = 3.0
    assert clock.process_seconds(at=40.0) == 37.0


def test_step_cost_times_every_variant_and_freezing_removes_gradients():
    from benchmarks.step_cost import FROZEN, compiled_cnn, format_table, measure

    frozen = compiled_cnn(FROZEN["conv1 and conv2 frozen"])
    frozen_layers = [layer for layer in frozen.layers if not layer.trainable]
    assert [type(layer).__name__ for layer in frozen_layers] == ["Conv2D", "Conv2D"]
    assert len(frozen.trainable_weights) == len(compiled_cnn(()).trainable_weights) - 4

    timings = measure(batch_size=8, repeats=2, calls=1)
    assert list(timings) == [*FROZEN, "forward pass only"]
    assert all(len(seconds) == 2 and min(seconds) > 0 for seconds in timings.values())
    table = format_table(timings, batch_size=8)
    assert table.splitlines()[1].startswith("full training step") and "100%" in table
