"""The model's shape, and train_model.py end to end: artefacts, resume, locks, reproducibility."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import REPO_ROOT, run_script
from PIL import Image

from mnist_cnn import train as train_module
from mnist_cnn.config import MODEL_NAMES, default_peak_rate
from mnist_cnn.data import one_hot
from mnist_cnn.errors import UserError
from mnist_cnn.model import MODELS, build_model
from mnist_cnn.segment import find_digits
from mnist_cnn.synthetic import as_file_picture, reader_crop_or_none, reader_crops
from mnist_cnn.train import (
    RunPaths,
    TrainConfig,
    exclusive_run,
    generate_outliers,
    generate_reader_crops,
    prepare_run,
    train,
    training_outliers,
    training_reader_crops,
)

QUICK = ("--limit", "2000", "--batch-size", "64")


def test_default_model_has_the_designed_shape_and_parameter_count():
    model = build_model()
    assert model.count_params() == 225_034
    probabilities = model.predict(np.zeros((3, 28, 28, 1), np.float32), verbose=0)
    assert probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_the_parser_offers_every_model():
    assert set(MODEL_NAMES) == set(MODELS)


def test_every_model_choice_maps_digits_to_ten_probabilities():
    for name in MODELS:
        model = build_model(name)
        probabilities = model.predict(np.zeros((2, 28, 28, 1), np.float32), verbose=0)
        assert probabilities.shape == (2, 10), name
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_the_default_peak_rate_falls_with_the_schedule_length():
    assert [default_peak_rate(n) for n in (1, 2, 3, 4, 12, 30)] == pytest.approx(
        [0.012, 0.012, 0.008, 0.006, 0.006, 0.006]
    )
    assert TrainConfig(epochs=2).peak_learning_rate == pytest.approx(0.012)
    assert TrainConfig().peak_learning_rate == pytest.approx(0.006)  # 12 epochs
    assert TrainConfig(epochs=2, learning_rate=0.001).peak_learning_rate == 0.001


def test_keras_progress_is_a_bar_on_a_terminal_and_a_line_per_epoch_in_a_log(monkeypatch):
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert TrainConfig().fit_verbosity == 1
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    assert TrainConfig().fit_verbosity == 2
    assert TrainConfig(verbose=0).fit_verbosity == 0


def test_default_paths_are_the_users_data_folder_never_the_shipped_models(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    config = TrainConfig(model="strong")
    assert config.model_file == tmp_path / "mnist-cnn" / "models" / "mnist_cnn_strong.keras"
    assert config.plots_folder == tmp_path / "mnist-cnn" / "plots"
    assert TrainConfig(model_path=Path("m.keras")).model_file == Path("m.keras")


def test_outliers_are_generated_once_then_read_from_the_cache(tmp_path, capsys):
    first = training_outliers(40, 7, tmp_path / "cache")
    assert "generated, then cached" in capsys.readouterr().out
    again = training_outliers(40, 7, tmp_path / "cache")
    assert "(cached in" in capsys.readouterr().out
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, generate_outliers(40, 7, ""))
    assert first.dtype == np.uint8 and first.shape[1:] == (28, 28) and len(first) > 30
    other_seed = training_outliers(40, 8, tmp_path / "cache")
    assert "generated, then cached" in capsys.readouterr().out
    assert not np.array_equal(first, other_seed)


def test_an_unusable_cache_folder_still_gives_the_outliers(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    outliers = training_outliers(20, 7, blocker)
    printed = capsys.readouterr().out
    assert f"{blocker}: cannot cache generated pictures (not a folder)" in printed
    assert "(generated, not cached)" in printed
    np.testing.assert_array_equal(outliers, generate_outliers(20, 7, ""))


def test_reader_crops_are_made_once_then_read_from_the_cache(tmp_path, capsys, mnist):
    x, y = mnist.x_train[:400], mnist.y_train[:400]
    crops, labels = training_reader_crops(x, y, 0.1, 7, tmp_path / "cache")
    assert "generated, then cached" in capsys.readouterr().out
    again = training_reader_crops(x, y, 0.1, 7, tmp_path / "cache")
    assert "(cached in" in capsys.readouterr().out
    np.testing.assert_array_equal(crops, again[0])
    np.testing.assert_array_equal(labels, again[1])
    fresh = generate_reader_crops(x, y, 0.1, 7, "")
    np.testing.assert_array_equal(crops, fresh[0])
    assert 30 <= len(crops) <= 40 and len(labels) == len(crops)
    assert not np.array_equal(crops, generate_reader_crops(x, y, 0.1, 8, "")[0])


def quick_args(tmp_path, epochs: int) -> list[str]:
    """Flags for a small run whose every output lands in `tmp_path`."""
    return [*QUICK, "--epochs", str(epochs), "--model-path", str(tmp_path / "m.keras"),
            "--plots-dir", str(tmp_path / "plots")]  # fmt: skip


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The single `error:` line of a failed run, after checking there is no traceback."""
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    return errors[0]


@pytest.mark.slow
def test_train_script_writes_a_loadable_model_history_and_plots(tmp_path, mnist):
    args = [*quick_args(tmp_path, epochs=1), "--tensorboard", str(tmp_path / "tb")]
    result = run_script("train_model.py", *args, "--onednn", "off")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # TensorFlow's log lines are hidden without --verbose
    assert "oneDNN: off (forced off by --onednn off)" in result.stdout.splitlines()
    assert result.stdout.splitlines()[-1].startswith("Training time: ")
    for part in ("train", "validation"):
        assert list((tmp_path / "tb" / part).glob("events.out.tfevents.*"))
    assert "Total params: 225,034" in result.stdout
    assert "Learning rate: one-cycle to a peak of 0.012" in result.stdout  # 1 epoch: 0.012
    (exposure,) = [line for line in result.stdout.splitlines() if "synthetic non-digits" in line]
    kept = int(exposure.split()[2].replace(",", ""))  # the few with no ink at all are left out
    assert 5_900 <= kept <= 6_000 and "cached in" in exposure
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


def default_sigint() -> None:
    """Let the child take Ctrl-C even when pytest runs in a background job, which ignores it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_training(args: list[str]) -> subprocess.Popen:
    """train_model.py in the background, its output kept for the test to read; Python's
    fault handler on, so that SIGABRT makes it print every thread's stack (`stderr_by`)."""
    return subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "train_model.py"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
        preexec_fn=default_sigint, env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )  # fmt: skip


def stderr_by(process: subprocess.Popen, timeout: float) -> str:
    """The process's stderr once it has exited, waiting at most `timeout` seconds; if it has
    not exited by then, the test fails with the stacks the fault handler prints on SIGABRT."""
    try:
        return process.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        stacks = process.communicate(timeout=60)[1].split("\nExtension modules:")[0]
        pytest.fail(f"no exit within {timeout} s; its stacks:\n{stacks[-8000:]}")


@pytest.mark.slow
def test_an_interrupted_run_resumes_at_the_next_epoch(tmp_path):
    args = quick_args(tmp_path, epochs=2)
    process = start_training(args)
    paths = RunPaths(tmp_path / "m.keras")
    try:
        wait_for_first_epoch(paths, process)
    finally:
        os.kill(process.pid, signal.SIGKILL)  # as hard as a power cut
        process.communicate()
    assert not paths.model.exists()
    assert paths.lock.exists()  # left behind by the killed run, yet it blocks nothing below

    # The same run with another architecture and schedule: refused, naming both values.
    changed = run_script("train_model.py", *args, "--model", "strong", "--epochs", "4")
    assert changed.returncode == 1
    error = one_error_line(changed)
    assert str(paths.model) in error and "--restart" in error
    assert "--model cnn, not --model strong" in error
    assert "--epochs 2, not --epochs 4" in error
    assert "--batch-size" not in error  # only the flags that differ

    result = run_script("train_model.py", *args)
    assert result.returncode == 0, result.stderr
    assert "Resuming after epoch" in result.stdout
    assert "Epoch 1/2" not in result.stdout
    history = json.loads(paths.history.read_text())
    assert len(history["val_loss"]) == 2
    assert paths.model.exists() and not paths.backup_dir.exists()


@pytest.mark.slow
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
        model.fit(mnist.x_train[:256, ..., None] / 255.0, one_hot(mnist.y_train[:256]), verbose=0)
        probabilities = model.predict(mnist.x_test[:8, ..., None] / 255.0, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.layers[0].compute_dtype == "bfloat16"
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_ctrl_c_is_one_line_and_keeps_the_backup(tmp_path):
    args = quick_args(tmp_path, epochs=5)
    process = start_training(args)
    paths = RunPaths(tmp_path / "m.keras")
    try:
        wait_for_first_epoch(paths, process)
        process.send_signal(signal.SIGINT)
        stderr = stderr_by(process, timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted during epoch ") and last.endswith(
        " of 5: run the same command to resume"
    )
    assert (paths.backup_dir / "training_metadata.json").exists()
    assert paths.settings.exists() and not paths.model.exists()


@pytest.mark.slow
def test_a_second_run_on_a_locked_model_path_stops_naming_the_first(tmp_path):
    paths = RunPaths(tmp_path / "m.keras")
    with exclusive_run(paths):  # this test process plays the first run
        result = run_script("train_model.py", *quick_args(tmp_path, epochs=1))
    assert result.returncode == 1
    error = one_error_line(result)
    assert str(paths.model) in error and f"process {os.getpid()}" in error
    assert not paths.backup_dir.exists() and not paths.epoch_log.exists()


def a_file(path: Path) -> Path:
    """A regular file where a folder should be: no one, not even root, can write under it."""
    path.write_text("a file, not a folder\n")
    return path


@pytest.mark.slow
def test_an_unwritable_model_folder_is_one_line_before_training(tmp_path):
    blocker = a_file(tmp_path / "models")
    args = [*QUICK, "--epochs", "1", "--model-path", str(blocker / "m.keras"),
            "--plots-dir", str(tmp_path / "plots")]  # fmt: skip
    result = run_script("train_model.py", *args)
    assert result.returncode == 1
    error = one_error_line(result)
    assert error.startswith(f"error: {blocker}: cannot write the model here: ")
    assert "Epoch 1/" not in result.stdout


def test_an_unwritable_plots_folder_stops_before_training(tmp_path, mnist):
    blocker = a_file(tmp_path / "plots")
    config = TrainConfig(epochs=1, batch_size=64, limit=500, model_path=tmp_path / "m.keras",
                         plots_dir=blocker / "curves", verbose=0)  # fmt: skip
    with pytest.raises(UserError, match="cannot write the plots here") as error:
        train(config, mnist)
    assert str(error.value).startswith(str(blocker / "curves")) and "\n" not in str(error.value)
    assert not RunPaths(config.model_path).backup_dir.exists()


def test_too_little_disk_space_stops_before_the_first_epoch(tmp_path, mnist, monkeypatch):
    def nearly_full(folder):
        return shutil._ntuple_diskusage(total=10**9, used=10**9 - 1000, free=1000)

    monkeypatch.setattr(train_module.shutil, "disk_usage", nearly_full)
    config = TrainConfig(epochs=1, batch_size=64, limit=500, model_path=tmp_path / "m.keras",
                         plots_dir=tmp_path / "plots", verbose=0)  # fmt: skip
    with pytest.raises(UserError, match="too little for this model's checkpoints") as error:
        train(config, mnist)
    assert "\n" not in str(error.value)
    paths = RunPaths(config.model_path)
    assert not paths.backup_dir.exists() and not paths.epoch_log.exists()


def test_restart_discards_the_interrupted_run_but_not_the_finished_model(tmp_path):
    paths = RunPaths(tmp_path / "m.keras")
    paths.model.write_bytes(b"the finished model")
    paths.backup_dir.mkdir()
    (paths.backup_dir / "training_metadata.json").write_text("{}")
    paths.epoch_log.write_text("epoch,val_loss\n0,0.5\n")
    old = {"model": "cnn", "epochs": 3}
    paths.settings.write_text(json.dumps(old))

    with pytest.raises(UserError, match="--epochs 3, not --epochs 4"):
        prepare_run(paths, {**old, "epochs": 4}, restart=False)
    prepare_run(paths, {**old, "epochs": 4}, restart=True)
    assert json.loads(paths.settings.read_text()) == {**old, "epochs": 4}
    assert not (paths.backup_dir / "training_metadata.json").exists()
    assert not paths.epoch_log.exists()
    assert paths.model.read_bytes() == b"the finished model"  # replaced only when a run ends


def test_a_file_picture_is_the_digit_as_it_is_or_scaled_up_dark_on_white(mnist):
    digit = mnist.x_test[0]
    rng = np.random.default_rng(0)
    pictures = [np.asarray(as_file_picture(digit, rng)) for _ in range(20)]
    as_is = [p for p in pictures if p.shape == (28, 28)]
    scaled = [p for p in pictures if p.shape != (28, 28)]
    assert as_is and scaled
    for picture in as_is:
        np.testing.assert_array_equal(picture, digit)
    for picture in scaled:
        assert picture.shape[0] == picture.shape[1] and picture.shape[0] % 28 == 0
        assert 3 * 28 <= picture.shape[0] <= 10 * 28
        assert picture[0, 0] == 255 and picture.min() < 64  # white paper, dark ink


def test_a_reader_crop_is_the_one_digit_the_reader_finds_or_nothing(mnist):
    one = Image.fromarray(mnist.x_test[0])
    np.testing.assert_array_equal(reader_crop_or_none(one), find_digits(one)[0].digit)
    pair = Image.fromarray(np.concatenate([mnist.x_test[0], mnist.x_test[1]], axis=1))
    assert len(find_digits(pair)) == 2 and reader_crop_or_none(pair) is None
    assert reader_crop_or_none(Image.new("L", (28, 28))) is None


def test_reader_crops_keep_each_crops_label_in_order(mnist):
    digits = mnist.x_test[:60]
    crops, labels = reader_crops(digits, np.arange(60), 3)
    assert crops.dtype == np.uint8 and crops.shape[1:] == (28, 28)
    assert len(crops) == len(labels) >= 45
    assert np.all(np.diff(labels) > 0)  # a subset of the pictures, in their order
    # Each crop is its digit, degraded and normalised: mostly where the digit's ink is.
    overlap = [(crop > 0) & (digits[n] > 0) for crop, n in zip(crops, labels, strict=True)]
    assert (
        np.median([o.sum() / (digits[n] > 0).sum() for o, n in zip(overlap, labels, strict=True)])
        > 0.5
    )
