"""evaluate_model.py end to end on the tiny model, and the evaluation's pieces on their own."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import run_script

from mnist_cnn import evaluate
from mnist_cnn.commands.evaluate import parse_args
from mnist_cnn.data import CHECKSUMS, one_hot, to_model_input
from mnist_cnn.errors import UserError
from mnist_cnn.files import history_path
from mnist_cnn.ood import OodStats
from mnist_cnn.predict import Classifier

FIGURES = ("confusion_matrix.png", "misclassified.png", "predictions.png")
CURVES = ("accuracy.png", "loss.png")
HISTORY = {"loss": [0.9, 0.4], "accuracy": [0.7, 0.9], "val_loss": [0.5], "val_accuracy": [0.85]}


def copy_model(model_path: Path, folder: Path) -> Path:
    """A copy of the model in its own folder, with its own history (or none) beside it."""
    folder.mkdir(parents=True)
    return Path(shutil.copy(model_path, folder / "mnist_cnn.keras"))


def evaluate_cli(model_path: Path, plots_dir: Path, flags: list[str]):
    """Run evaluate_model.py on `model_path`, writing its report and figures into `plots_dir`."""
    return run_script(
        "evaluate_model.py", "--model-path", str(model_path), "--out-dir", str(plots_dir), *flags
    )


@pytest.fixture(scope="module")
def cli(tiny_model_path, tmp_path_factory) -> dict[str, tuple]:
    """Three runs of the script at once: `--json`, the table, and a missing model.

    Each subprocess spends most of its time importing TensorFlow, so running them side by side
    keeps this file fast. Values are (CompletedProcess, model path, plots folder).
    """
    root = tmp_path_factory.mktemp("cli")
    json_model = copy_model(tiny_model_path, root / "json" / "models")
    history_path(json_model).write_text(json.dumps(HISTORY))
    runs = {
        "json": (json_model, root / "json" / "plots", ["--json"]),
        "table": (copy_model(tiny_model_path, root / "table"), root / "table" / "plots", []),
        "missing": (root / "missing" / "nothing.keras", root / "missing" / "plots", []),
    }
    with ThreadPoolExecutor(len(runs)) as pool:
        results = list(pool.map(lambda run: evaluate_cli(*run), runs.values()))
    return {
        name: (result, *run[:2]) for (name, run), result in zip(runs.items(), results, strict=True)
    }


@pytest.fixture(scope="module")
def json_run(cli):
    """The successful `--json` run on a model with a training history beside it."""
    result, model_path, plots_dir = cli["json"]
    assert result.returncode == 0, result.stderr
    return result, model_path, plots_dir


@pytest.fixture(scope="module")
def keras_scores(tiny_model_path, mnist):
    """(loss, accuracy) of the tiny model on the test set, as Keras' own `evaluate` gives them."""
    import keras

    # Loaded with the loss and metrics it was trained with, not the ones evaluate.py compiles.
    model = keras.saving.load_model(tiny_model_path)
    loss, accuracy = model.evaluate(to_model_input(mnist.x_test), one_hot(mnist.y_test), verbose=0)
    return loss, accuracy


@pytest.mark.slow
def test_json_report_has_every_field(json_run):
    result, model_path, _ = json_run
    report = json.loads(result.stdout)
    assert report["model"] == str(model_path)
    assert report["model_sha256"] == hashlib.sha256(model_path.read_bytes()).hexdigest()
    assert report["data_checksums"] == CHECKSUMS
    assert set(report["versions"]) == {"python", "tensorflow", "keras", "numpy"}
    assert datetime.fromisoformat(report["date"]).tzinfo is not None
    assert [row["digit"] for row in report["per_class"]] == list(range(10))
    assert sum(row["support"] for row in report["per_class"]) == report["test_images"] == 10_000
    assert all(0 <= row[key] <= 1 for row in report["per_class"] for key in ("precision", "f1"))
    assert len(report["most_confused"]) == evaluate.TOP_CONFUSIONS


@pytest.mark.slow
def test_accuracy_is_the_confusion_diagonal_and_agrees_with_keras(json_run, keras_scores):
    report = json.loads(json_run[0].stdout)
    cm = np.array(report["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == 10_000
    assert report["accuracy"] == np.trace(cm) / cm.sum()
    assert report["correct"] == np.trace(cm)
    keras_loss, keras_accuracy = keras_scores
    assert report["accuracy"] == pytest.approx(keras_accuracy, abs=1e-6)
    assert report["loss"] == pytest.approx(keras_loss, abs=1e-4)
    assert report["accuracy"] > 0.5  # the tiny model has learned something


@pytest.mark.slow
def test_metrics_json_is_written_with_the_figures_never_beside_the_model(json_run):
    result, model_path, plots_dir = json_run
    saved = json.loads(evaluate.metrics_path(model_path, plots_dir).read_text())
    assert saved == json.loads(result.stdout)
    assert sorted(p.name for p in model_path.parent.iterdir()) == [
        "mnist_cnn.keras",
        "mnist_cnn_history.json",
    ]
    assert not list(plots_dir.glob("*.tmp"))


@pytest.mark.slow
def test_plots_are_drawn_with_curves_from_the_history(json_run):
    plots_dir = json_run[2]
    for name in FIGURES + CURVES:
        assert (plots_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


@pytest.mark.slow
def test_table_is_printed(cli):
    result, model_path, plots_dir = cli["table"]
    assert result.returncode == 0, result.stderr
    assert "Test accuracy: 0." in result.stdout and "Test loss:" in result.stdout
    assert "digit  precision  recall      f1  support" in result.stdout
    assert "  9  " in result.stdout and "macro" in result.stdout
    assert " read as " in result.stdout
    assert str(evaluate.metrics_path(model_path, plots_dir)) in result.stdout
    # No history beside this model: the evaluation figures only, no curves.
    assert sorted(p.name for p in plots_dir.iterdir()) == sorted(
        [*FIGURES, "mnist_cnn_metrics.json"]
    )


def test_help_explains_every_flag(monkeypatch, capsys):
    # In-process: a subprocess would spend seconds importing TensorFlow just to print --help.
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    for flag in ("--model-path", "--shipped", "--data-dir", "--json", "--out-dir"):
        assert flag in help_text


@pytest.mark.slow
def test_missing_model_is_one_line_naming_the_path_and_the_fix(cli):
    result, missing, plots_dir = cli["missing"]
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and not result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert str(missing) in errors[0] and "python train_model.py" in errors[0]
    assert not plots_dir.exists()


def save_model_with_shape(path: Path, input_shape: tuple, classes: int) -> Path:
    """A small untrained dense model with the given input shape and number of outputs."""
    import keras

    model = keras.Sequential(
        [keras.Input(input_shape), keras.layers.Flatten(), keras.layers.Dense(classes)]
    )
    model.save(path)
    return path


def write_text(path: Path) -> Path:
    """A text file pretending to be a model."""
    path.write_text("not a model\n")
    return path


def write_zip(path: Path) -> Path:
    """A valid zip archive that holds no Keras model."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (write_text, "not a Keras model file"),
        (write_zip, "cannot load the model"),
        (lambda p: save_model_with_shape(p, (32, 32, 3), 10), r"input \(32, 32, 3\)"),
        (lambda p: save_model_with_shape(p, (28, 28, 1), 5), r"output \(5,\)"),
    ],
    ids=["text", "zip", "input-32x32x3", "five-outputs"],
)
def test_unusable_model_is_a_user_error_naming_the_file(tmp_path, make, reason):
    path = make(tmp_path / "x.keras")
    with pytest.raises(UserError, match=reason) as error:
        evaluate.run(path, out_dir=tmp_path / "plots")
    message = str(error.value)
    assert message.startswith(str(path)) and "\n" not in message
    assert not (tmp_path / "plots").exists()


def fake_evaluation() -> evaluate.Evaluation:
    """Four images: two right, one confidently wrong (3 read as 5), one narrowly wrong."""
    probabilities = np.full((4, 10), 0.01)
    for row, (digit, p) in enumerate([(1, 0.91), (2, 0.91), (5, 0.91), (8, 0.5)]):
        probabilities[row, digit] = p
    return evaluate.Evaluation(np.array([1, 2, 3, 7]), probabilities, np.ones(4, bool))


def test_loss_is_the_mean_cross_entropy_of_the_true_labels():
    # Two right at 0.91, two wrong with 0.01 on the true label.
    expected = -(2 * np.log(0.91) + 2 * np.log(0.01)) / 4
    assert fake_evaluation().loss == pytest.approx(expected)


def test_most_confident_mistakes_come_first():
    assert evaluate.most_confident_mistakes(fake_evaluation(), 5).tolist() == [2, 3]
    assert evaluate.most_confident_mistakes(fake_evaluation(), 1).tolist() == [2]


def test_format_report_prints_the_table_and_the_mistakes(tmp_path):
    model_file = tmp_path / "m.keras"
    model_file.write_bytes(b"weights")
    classifier = Classifier(SimpleNamespace(path=model_file))
    text = evaluate.format_report(evaluate.build_report(fake_evaluation(), classifier))
    assert "Test loss:     2.3497" in text
    assert "Test accuracy: 0.5000 (2 of 4 correct)" in text
    assert "    1     1.0000  1.0000  1.0000        1" in text
    assert "  3 read as 5: 1 time\n" in text
    assert "  7 read as 8: 1 time\n" in text
    assert text.endswith("so every image counts as a digit")


def test_rejection_rates_on_the_test_digits():
    evaluation = fake_evaluation()
    evaluation = evaluate.Evaluation(
        evaluation.labels, evaluation.probabilities, np.array([True, True, False, True])
    )
    found = evaluate.rejection(evaluation, OodStats(threshold=0.5, model_sha256="x"))
    assert found["rejected"] == 1 and found["rejected_share"] == 0.25
    assert found["accuracy_on_accepted"] == pytest.approx(2 / 3)
    assert evaluate.rejection(evaluation, None) is None


def test_load_history_skips_a_missing_or_broken_file(tmp_path, capsys):
    path = tmp_path / "history.json"
    assert evaluate.load_history(path) is None
    path.write_text(json.dumps(HISTORY))
    assert evaluate.load_history(path) == HISTORY
    path.write_text("{not json")
    assert evaluate.load_history(path) is None
    assert "warning:" in capsys.readouterr().err
