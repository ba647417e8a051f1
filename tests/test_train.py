"""The model's shape, and train_model.py end to end: artefacts, resume, reproducibility."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
from conftest import REPO_ROOT, run_script

from mnist_cnn.model import MODELS, build_model
from mnist_cnn.train import RunPaths, TrainConfig, train

QUICK = ("--limit", "2000", "--batch-size", "64")


def test_default_model_has_the_designed_shape_and_parameter_count():
    model = build_model()
    assert model.count_params() == 225_034
    probabilities = model.predict(np.zeros((3, 28, 28, 1), np.float32), verbose=0)
    assert probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_every_model_choice_maps_digits_to_ten_probabilities():
    for name in MODELS:
        model = build_model(name)
        probabilities = model.predict(np.zeros((2, 28, 28, 1), np.float32), verbose=0)
        assert probabilities.shape == (2, 10), name
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def quick_args(tmp_path, epochs: int) -> list[str]:
    """Flags for a small run whose every output lands in `tmp_path`."""
    return [*QUICK, "--epochs", str(epochs), "--model-path", str(tmp_path / "m.keras"),
            "--plots-dir", str(tmp_path / "plots")]  # fmt: skip


def test_train_script_writes_a_loadable_model_history_and_plots(tmp_path, mnist):
    result = run_script("train_model.py", *quick_args(tmp_path, epochs=1), "--onednn", "off")
    assert result.returncode == 0, result.stderr
    assert "oneDNN: off (forced off by --onednn off)" in result.stdout.splitlines()
    assert "Total params: 225,034" in result.stdout
    assert "Best validation accuracy" in result.stdout

    model = keras.saving.load_model(tmp_path / "m.keras")
    predictions = model.predict(mnist.x_test[:200, ..., None] / 255.0, verbose=0).argmax(1)
    assert (predictions == mnist.y_test[:200]).mean() > 0.6  # one epoch on 2,000 images

    history = json.loads(RunPaths(tmp_path / "m.keras").history.read_text())
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == 1 for values in history.values())
    for name in ("samples", "class_counts", "accuracy", "loss"):
        assert (tmp_path / "plots" / f"{name}.png").stat().st_size > 1000
    paths = RunPaths(tmp_path / "m.keras")
    assert not paths.checkpoint.exists() and not paths.backup_dir.exists()
    assert not paths.epoch_log.exists()


def wait_for_first_epoch(paths: RunPaths, process: subprocess.Popen, timeout: float = 300):
    """Block until the run has backed up a finished epoch."""
    metadata = paths.backup_dir / "training_metadata.json"
    deadline = time.monotonic() + timeout
    while not metadata.exists():
        assert process.poll() is None, "training ended before its first backup"
        assert time.monotonic() < deadline, "no backup after the first epoch"
        time.sleep(0.2)


def test_an_interrupted_run_resumes_at_the_next_epoch(tmp_path):
    args = quick_args(tmp_path, epochs=3)
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "train_model.py"), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO_ROOT,
    )  # fmt: skip
    paths = RunPaths(tmp_path / "m.keras")
    try:
        wait_for_first_epoch(paths, process)
    finally:
        os.kill(process.pid, signal.SIGKILL)  # as hard as a power cut
        process.wait()
    assert not paths.model.exists()

    result = run_script("train_model.py", *args)
    assert result.returncode == 0, result.stderr
    assert "Resuming after epoch" in result.stdout
    assert "Epoch 1/3" not in result.stdout
    history = json.loads(paths.history.read_text())
    assert len(history["val_loss"]) == 3
    assert paths.model.exists() and not paths.backup_dir.exists()


def test_same_seed_gives_the_same_figures(tmp_path, mnist):
    def run(name: str) -> dict:
        config = TrainConfig(epochs=1, batch_size=64, limit=1000, seed=3, deterministic=True,
                             model_path=tmp_path / name / "m.keras",
                             plots_dir=tmp_path / name, verbose=0)  # fmt: skip
        train(config, mnist)
        return json.loads(RunPaths(config.model_path).history.read_text())

    assert run("a") == run("b")


def test_the_model_trains_under_mixed_bfloat16_with_float32_outputs(mnist):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_model()
        model.fit(mnist.x_train[:256, ..., None] / 255.0, mnist.y_train[:256], verbose=0)
        probabilities = model.predict(mnist.x_test[:8, ..., None] / 255.0, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.layers[0].compute_dtype == "bfloat16"
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
