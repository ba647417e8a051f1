"""Smoke test of benchmarks/train_speed.py: both workers and the report, on a tiny subset."""

from __future__ import annotations

import json

import pytest
from conftest import run_script

from benchmarks.train_speed import (
    METRICS,
    PIPELINES,
    TARGETS,
    TrainingClock,
    format_report,
    summarize,
)

LIMIT = 600
TINY = ("--limit", str(LIMIT), "--epochs", "1", "--repeats", "1", "--skip-cold-start", "--json")


@pytest.fixture(scope="module")
def summary() -> dict:
    """The benchmark's JSON after one one-epoch run of each pipeline on 600 images."""
    result = run_script("benchmarks/train_speed.py", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_each_worker_reports_plausible_figures(summary, pipeline):
    (run,) = summary["runs"][pipeline]
    assert run["pipeline"] == pipeline
    assert run["onednn"].startswith("oneDNN: ")
    assert 0 < run["train_images"] <= LIMIT
    assert run["epochs"] == 1
    assert run["train_seconds"] > 0
    assert run["images_per_second"] == pytest.approx(run["train_images"] / run["train_seconds"])
    assert run["seconds_per_epoch"] == pytest.approx(run["train_seconds"])
    assert len(run["test_accuracy_by_epoch"]) == 1
    assert 0.0 <= run["final_test_accuracy"] <= 1.0
    assert run["seconds_to_target"] is None or run["seconds_to_target"] > 0
    assert run["peak_rss_mib"] > 0


def test_project_worker_measures_inference(summary):
    (run,) = summary["runs"]["project"]
    assert run["inference_images_per_second"] > 0
    assert summary["inference_images_per_second"]["median"] > 0


def test_summary_has_every_metric_and_target(summary):
    assert summary["settings"]["epochs"] == 1
    assert summary["settings"]["limit"] == LIMIT
    assert set(summary["metrics"]) == {metric.key for metric in METRICS}
    for row in summary["metrics"].values():
        for pipeline in PIPELINES:
            assert set(row[pipeline]) == {"median", "min", "max"}
    assert {key: type(t["met"]) for key, t in summary["targets"].items()} == {
        target.key: bool for target in TARGETS
    }
    assert summary["cold_start_seconds"] is None


def test_report_shows_every_metric_and_target(summary):
    report = format_report(summary)
    for line in [metric.label for metric in METRICS] + [target.goal for target in TARGETS]:
        assert line in report
    assert report.count("met") >= len(TARGETS)
    assert "cold start" in report and "skipped" in report


def fake_run(seconds_to_target: float | None, accuracy: float) -> dict:
    """A worker's report with the given time to target and made-up other figures."""
    figures = {metric.key: 1.0 for metric in METRICS}
    return figures | {
        "onednn": "oneDNN: on (made up)",
        "seconds_to_target": seconds_to_target,
        "final_test_accuracy": accuracy,
        "inference_images_per_second": 1.0,
    }


def test_a_target_never_reached_reads_not_reached_and_not_met():
    runs = {"reference": [fake_run(10.0, 0.99)], "project": [fake_run(None, 0.98)]}
    summary = summarize(runs, None, {"epochs": 1, "repeats": 1, "limit": None})
    assert summary["metrics"]["seconds_to_target"]["project"]["median"] is None
    assert summary["targets"]["seconds_to_target"]["met"] is False
    assert summary["targets"]["final_test_accuracy"]["met"] is False
    assert "not reached" in format_report(summary)


def test_time_to_target_is_the_first_epoch_at_the_target():
    clock = TrainingClock(x_test=None, y_test=None)
    clock.epoch_end_seconds, clock.test_accuracies = [5.0, 9.0, 14.0], [0.985, 0.9903, 0.995]
    assert clock.seconds_to_target() == 9.0


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
