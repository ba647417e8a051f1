"""Fine-tuning on a person's own digits: the split, the progress file, the resume check, and
real (tiny) fine-tunes that write OUT's whole set and never MODEL."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT

from mnist_cnn import ood
from mnist_cnn.config import TrainConfig, user_taught_model_path
from mnist_cnn.data import one_hot
from mnist_cnn.engine import onnx_beside, onnx_runtime
from mnist_cnn.errors import UserError
from mnist_cnn.files import file_sha256
from mnist_cnn.finetune import (
    K_FOLDS,
    OUTLIER_SHARE,
    OWN_SHARE,
    MixedBatches,
    finetune,
    own_share,
    random_affine,
    split_own,
    with_features,
)
from mnist_cnn.model import GATED_START, NearestGate
from mnist_cnn.own_digits import save_digit
from mnist_cnn.progress import Progress, StepClock
from mnist_cnn.train import (
    OWN_DIGEST,
    OWN_REPEAT,
    run_settings,
    settings_differences,
    with_own_digits,
)

QUICK = ("--epochs", "1", "--limit", "1000", "--batch-size", "32")


def labels_of(counts: dict[int, int]) -> np.ndarray:
    """Labels (N,) with `counts[digit]` pictures of each digit."""
    return np.concatenate([np.full(count, digit) for digit, count in counts.items()])


def test_many_pictures_hold_out_a_stratified_part_never_taught():
    labels = labels_of({digit: 30 for digit in range(10)})
    split = split_own(labels, seed=1)
    assert split.method == "held-out"
    ((taught, measured),) = split.folds
    assert np.array_equal(split.final, taught)
    assert not set(taught) & set(measured)
    assert len(taught) + len(measured) == 300
    assert all(np.sum(labels[measured] == digit) == 6 for digit in range(10))


def test_few_pictures_are_all_taught_and_measured_by_cross_validation():
    labels = labels_of({digit: 10 for digit in range(10)})
    split = split_own(labels, seed=1)
    assert split.method == "cross-validation"
    assert len(split.folds) == K_FOLDS
    assert np.array_equal(split.final, np.arange(100))
    assert sorted(split.measured) == list(range(100))  # each picture measured once
    for taught, measured in split.folds:
        assert not set(taught) & set(measured)
        counts = [np.sum(labels[measured] == digit) for digit in range(10)]
        assert max(counts) - min(counts) <= 1  # stratified
    assert f"{K_FOLDS}-fold cross-validation" in split.describe()


def test_one_picture_cannot_be_taught_and_measured():
    with pytest.raises(UserError, match="at least 2"):
        split_own(np.array([3]), seed=0)
    assert len(split_own(np.array([3, 3]), seed=0).folds) == 2


def test_mixed_batches_are_part_own_digits_and_repeatable(mnist):
    own = (mnist.x_test[:12], mnist.y_test[:12].astype(np.int64))
    outliers = np.zeros((5, 28, 28), np.uint8)
    pool = (mnist.x_train[:500], one_hot(mnist.y_train[:500]))
    batches = MixedBatches(own, pool, outliers, 40, 3, 7)
    images, targets, weights = batches[0]
    assert images.shape == (40, 28, 28, 1) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    assert targets.shape == (40, 10) and np.allclose(targets.sum(1), 1)
    own_count = round(OWN_SHARE * 40)
    assert np.all(targets[:own_count].max(1) == 1)  # the person's part, one-hot
    assert np.sum(weights < 1) == round(OUTLIER_SHARE * (40 - own_count))  # non-digits
    again = MixedBatches(own, pool, outliers, 40, 3, 7)
    assert np.array_equal(again[0][0], images)
    batches.on_epoch_end()
    assert not np.array_equal(batches[0][0], images)  # the next epoch deforms afresh


def test_a_few_pictures_take_a_smaller_share_of_each_batch(mnist):
    assert own_share(500) == own_share(100) == OWN_SHARE
    assert own_share(10) == pytest.approx(OWN_SHARE / 10)
    own = (mnist.x_test[:10], mnist.y_test[:10].astype(np.int64))
    pool = (mnist.x_train[:500], one_hot(mnist.y_train[:500]))
    batches = MixedBatches(
        own, pool, np.zeros((5, 28, 28), np.uint8), 128, 1, 7, 0.0, own_share(10)
    )
    _, _, weights = batches[0]
    n_own = round(own_share(10) * 128)  # 3: each picture drawn as often as one of a hundred
    assert n_own == 3 and np.sum(weights < 1) == round(OUTLIER_SHARE * (128 - n_own))


def test_random_affine_keeps_shape_and_ink(mnist):
    moved = random_affine(mnist.x_test[:8], np.random.default_rng(0))
    assert moved.shape == (8, 28, 28) and moved.dtype == np.uint8
    assert np.all(moved.reshape(8, -1).max(1) > 100)
    unchanged = random_affine(mnist.x_test[:8], np.random.default_rng(0), 0, 0, 0)
    assert np.array_equal(unchanged, mnist.x_test[:8])


def test_the_progress_file_is_replaced_whole_and_throttled(tmp_path):
    now = [0.0]
    path = tmp_path / "sub" / "p.json"
    progress = Progress(path, tmp_path / "out.keras", clock=lambda: now[0])
    progress.write()
    state = json.loads(path.read_text())
    assert state == {
        "stage": "loading",
        "epoch": 0,
        "epochs": 0,
        "seconds_left": None,
        "before": None,
        "after": None,
        "model_path": str(tmp_path / "out.keras"),
        "error": None,
    }
    progress.update(stage="training", epoch=1, epochs=4)
    progress.tick(seconds_left=30.0)  # under two seconds later: kept, not written
    assert json.loads(path.read_text())["seconds_left"] is None
    now[0] = 2.5
    progress.tick(seconds_left=20.0)
    assert json.loads(path.read_text())["seconds_left"] == 20.0
    progress.fail("error: it broke")
    assert json.loads(path.read_text())["stage"] == "failed"
    assert not list(path.parent.glob(".*.tmp"))
    with pytest.raises(ValueError):
        progress.update(stage="sleeping")


def test_the_step_clock_estimates_from_the_steps_after_the_first():
    now = [0.0]
    clock = StepClock(11, clock=lambda: now[0])
    now[0] = 5.0
    assert clock.step() is None  # the first step traces the graph: not a fair measure
    for _ in range(5):
        now[0] += 0.5
        left = clock.step()
    assert left == pytest.approx(0.5 * 5)


def test_an_unwritable_progress_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    progress = Progress(tmp_path / "file" / "p.json", tmp_path / "m.keras")
    with pytest.raises(UserError, match="cannot write the progress file"):
        progress.write()
    progress.fail("the first error")  # the failure to report comes first: never a traceback


def test_the_resume_check_covers_the_new_flags_and_the_own_digits_content(tmp_path):
    config = TrainConfig(own_digits=tmp_path / "own", start_from=Path("m.keras"))
    settings = run_settings(config, "data", "own-a")
    assert settings["own_digits"] == str((tmp_path / "own").resolve())
    assert settings["start_from"] == str(Path("m.keras").resolve())
    assert settings[OWN_DIGEST] == "own-a"
    changed = settings_differences(settings, {**settings, OWN_DIGEST: "own-b"})
    assert changed == ["other own digits (their pictures or labels changed)"]
    without = run_settings(TrainConfig(), "data")
    assert without["own_digits"] is None and without[OWN_DIGEST] is None
    assert any("--own-digits" in phrase for phrase in settings_differences(settings, without))


def test_a_run_from_scratch_repeats_the_own_digits_among_mnist(mnist):
    x, y = with_own_digits(
        mnist.x_train[:100], mnist.y_train[:100], mnist.x_test[:3], np.array([7, 7, 7]), 0
    )
    assert len(x) == len(y) == 100 + 3 * OWN_REPEAT
    own_rows = np.flatnonzero((x == mnist.x_test[0]).all(axis=(1, 2)))
    assert len(own_rows) == OWN_REPEAT and (y[own_rows] == 7).all()


def test_the_taught_model_goes_beside_the_users_models_never_over_the_start():
    config = TrainConfig(start_from=Path("/somewhere/mnist_cnn.keras"))
    assert config.model_file == user_taught_model_path()
    assert config.model_file.name == "mnist_cnn_taught.keras"
    assert TrainConfig(start_from=Path("a.keras"), model_path=Path("a.keras")).model_file == Path(
        "a.keras"
    )


def bars(count: int) -> np.ndarray:
    """`count` (up to 24) uint8 (28, 28) horizontal bars, each at its own height and length:
    a "1" lying down, which no MNIST model reads as a 1; the longest come last."""
    images = np.zeros((count, 28, 28), np.uint8)
    for n in range(count):
        row, half = 9 + n % 8, 5 + n // 8
        images[n, row : row + 3, 14 - half : 14 + half] = 255
    return images


def own_folder(folder: Path, images: np.ndarray, label: int) -> Path:
    """Save `images` as the person's digits of `label` in `folder`."""
    for image in images:
        save_digit(folder, label, image)
    return folder


def test_a_small_fine_tune_changes_a_reading_and_writes_the_whole_set(
    tmp_path, mnist, committed_model_path
):
    from mnist_cnn.model import load_trained_model
    from mnist_cnn.train import accuracy, probabilities

    pictures = bars(24)
    start = load_trained_model(committed_model_path)
    assert accuracy(start, pictures, np.ones(24)) < 0.5
    start_sha = file_sha256(committed_model_path)
    out = tmp_path / "taught.keras"
    config = TrainConfig(
        start_from=committed_model_path,
        own_digits=own_folder(tmp_path / "own", pictures[:16], 1),
        model_path=out,
        epochs=4,
        batch_size=64,
        limit=1000,
    )
    result = finetune(config, mnist=mnist)

    taught = load_trained_model(out)
    assert accuracy(taught, pictures[16:], np.ones(8)) >= 0.75  # never taught, now read as 1
    assert result.method == "cross-validation"
    assert result.before["own_count"] == result.after["own_count"] == 16
    assert result.after["own"] > result.before["own"]
    assert result.after["mnist"] > 0.98
    assert result.written == [out, ood.stats_path(out), onnx_beside(out)]
    stats = json.loads(ood.stats_path(out).read_text())
    assert stats["model_sha256"] == file_sha256(out)
    assert file_sha256(committed_model_path) == start_sha  # MODEL is never written

    # MNIST digits keep the start model's very answers: the gate gives them to it.
    digits = mnist.x_test[:1000]
    same = np.all(probabilities(taught, digits) == probabilities(start, digits), axis=1)
    assert same.mean() >= 0.99
    session = onnx_runtime().InferenceSession(str(onnx_beside(out)))
    both = np.concatenate([digits[:200], pictures]).astype(np.float32)[..., np.newaxis] / 255
    exported = session.run(None, {session.get_inputs()[0].name: both})[0]
    np.testing.assert_allclose(exported, taught.predict(both, verbose=0), atol=1e-4)

    # Teaching again starts from what was taught, and MNIST still goes to the first start model.
    again = finetune(
        replace(config, start_from=out, model_path=tmp_path / "again.keras"), mnist=mnist
    )
    retaught = load_trained_model(again.written[0])
    assert sum(isinstance(layer, NearestGate) for layer in retaught.layers) == 1
    first = retaught.get_layer(GATED_START).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, start.get_weights(), strict=True))
    assert accuracy(retaught, pictures[16:], np.ones(8)) >= 0.75


def test_the_gate_answers_with_the_taught_model_only_nearer_the_persons_digits(tmp_path):
    import keras

    features = keras.Input(shape=(3,))
    start, taught = keras.Input(shape=(10,)), keras.Input(shape=(10,))
    gate = NearestGate(writer_count=2, mnist_count=1, feature_size=3)
    model = keras.Model([features, start, taught], gate([features, start, taught]))
    writer = np.array([[1, 0, 0], [0, 0, 1]], np.float32)
    gate.set_weights([writer.T, np.array([[0, 1, 0]], np.float32).T])
    rows = np.array([[5, 0.1, 0], [0.2, 3, 0.1], [0, 1, 2], [0, 0, 0]], np.float32)
    said_start, said_taught = (
        np.eye(10, dtype=np.float32)[[0] * 4],
        np.eye(10, dtype=np.float32)[[1] * 4],
    )
    out = model.predict([rows, said_start, said_taught], verbose=0)
    assert list(out.argmax(1)) == [1, 0, 1, 0]  # a row of zeros is near nothing: the start's
    model.save(tmp_path / "gate.keras")
    loaded = keras.saving.load_model(tmp_path / "gate.keras")
    np.testing.assert_array_equal(loaded.predict([rows, said_start, said_taught], verbose=0), out)


def run_train(*args: str) -> subprocess.CompletedProcess:
    """`python -m mnist_cnn.commands.train ARGS`, as the web page runs it."""
    return subprocess.run(
        [sys.executable, "-m", "mnist_cnn.commands.train", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=600,
    )


@pytest.mark.slow
def test_the_command_the_web_page_runs_keeps_its_contract(tmp_path, tiny_model_path):
    own = own_folder(tmp_path / "own", bars(6), 1)
    out, progress = tmp_path / "out" / "t.keras", tmp_path / "p.json"
    start_sha = file_sha256(tiny_model_path)
    flags = ["--start-from", str(tiny_model_path), "--own-digits", str(own)]
    result = run_train(*flags, "--model-path", str(out), "--progress-file", str(progress), *QUICK)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""
    state = json.loads(progress.read_text())
    assert state["stage"] == "done" and state["error"] is None
    assert state["epoch"] == state["epochs"] == 3  # two folds, then the final run
    assert state["model_path"] == str(out)
    for when in ("before", "after"):
        assert set(state[when]) == {"own", "mnist", "own_count"}
        assert 0 <= state[when]["own"] <= 1 and 0 <= state[when]["mnist"] <= 1
    assert "Before: own digits" in result.stdout and "After: own digits" in result.stdout
    for path in (out, ood.stats_path(out), onnx_beside(out)):
        assert path.is_file() and str(path) in result.stdout
    assert file_sha256(tiny_model_path) == start_sha

    missing = run_train(*flags[:2], "--own-digits", str(tmp_path / "nowhere"),
                        "--model-path", str(tmp_path / "m2.keras"), "--progress-file",
                        str(progress), *QUICK)  # fmt: skip
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    (line,) = missing.stderr.splitlines()
    assert line.startswith(f"error: {tmp_path / 'nowhere'}: not a folder of digits")
    state = json.loads(progress.read_text())
    assert state["stage"] == "failed" and state["error"] == line.removeprefix("error: ")
    assert not (tmp_path / "m2.keras").exists()


def test_a_bad_start_model_is_one_line_and_writes_nothing(tmp_path):
    own = own_folder(tmp_path / "own", bars(4), 1)
    (tmp_path / "broken.keras").write_text("not a model")
    config = TrainConfig(
        start_from=tmp_path / "broken.keras", own_digits=own, model_path=tmp_path / "o.keras"
    )
    progress = Progress(tmp_path / "p.json", config.model_file)
    with pytest.raises(UserError, match=r"broken\.keras: not a Keras model file"):
        finetune(config, progress)
    assert not (tmp_path / "o.keras").exists()


def test_fine_tuning_has_its_own_defaults_and_given_flags_win():
    from mnist_cnn.commands.train import parse_args, with_defaults
    from mnist_cnn.config import FINETUNE_BATCH_SIZE, FINETUNE_EPOCHS, user_own_digits_dir

    tuning = with_defaults(vars(parse_args(["--start-from", "m.keras"])))
    assert (tuning["epochs"], tuning["batch_size"]) == (FINETUNE_EPOCHS, FINETUNE_BATCH_SIZE)
    assert tuning["own_digits"] == user_own_digits_dir()
    scratch = with_defaults(vars(parse_args(["--epochs", "3"])))
    assert (scratch["epochs"], scratch["batch_size"], scratch["own_digits"]) == (3, 256, None)
    given = with_defaults(vars(parse_args(["--start-from", "m.keras", "--epochs", "1"])))
    assert given["epochs"] == 1


@pytest.mark.slow
def test_own_digits_join_a_run_from_scratch_with_its_progress(tmp_path):
    own = own_folder(tmp_path / "own", bars(6), 1)
    out, progress = tmp_path / "m.keras", tmp_path / "p.json"
    result = run_train("--own-digits", str(own), "--model-path", str(out), "--progress-file",
                       str(progress), "--plots-dir", str(tmp_path / "plots"), "--outliers", "0",
                       "--limit", "500", "--epochs", "1", "--batch-size", "64")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Own digits: 6 pictures" in result.stdout
    state = json.loads(progress.read_text())
    assert (state["stage"], state["epoch"], state["epochs"]) == ("done", 1, 1)
    assert state["before"] is None and state["after"] is None
    assert out.is_file() and onnx_beside(out).is_file() and ood.stats_path(out).is_file()


def test_fine_tuning_writes_over_the_start_model_only_when_told_to(
    tmp_path, mnist, tiny_model_path
):
    start = tmp_path / "m.keras"
    shutil.copyfile(tiny_model_path, start)
    before = file_sha256(start)
    config = TrainConfig(
        start_from=start,
        own_digits=own_folder(tmp_path / "own", bars(8), 1),
        model_path=start,  # OUT is MODEL: the person asked for it
        epochs=2,
        batch_size=64,
        limit=500,
    )
    result = finetune(config, mnist=mnist)
    assert result.written[0] == start and file_sha256(start) != before
    assert json.loads(ood.stats_path(start).read_text())["model_sha256"] == file_sha256(start)


def test_only_a_model_ending_in_a_dense_layer_gets_a_gate():
    import keras

    from mnist_cnn.model import build_cnn, take_digit_images

    features, said = with_features(build_cnn()).outputs
    assert tuple(features.shape) == (None, 128) and tuple(said.shape) == (None, 10)
    flat = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])
    assert with_features(take_digit_images(flat, (784,))) is None  # taught without a gate


def test_a_start_model_without_a_dense_last_layer_is_taught_without_a_gate_and_says_so(
    tmp_path, mnist, capsys
):
    import keras

    from mnist_cnn.model import load_trained_model

    flat = keras.Sequential(
        [keras.Input((784,)), keras.layers.Dense(16), keras.layers.Dense(10, activation="softmax")]
    )
    flat.save(tmp_path / "flat.keras")
    config = TrainConfig(
        start_from=tmp_path / "flat.keras",
        own_digits=own_folder(tmp_path / "own", bars(4), 1),
        model_path=tmp_path / "out.keras",
        epochs=1,
        batch_size=32,
        limit=1000,
    )
    finetune(config, mnist=mnist)
    assert "does not end in a Dense layer" in capsys.readouterr().out
    taught = load_trained_model(tmp_path / "out.keras")
    assert not any(isinstance(layer, NearestGate) for layer in taught.layers)
