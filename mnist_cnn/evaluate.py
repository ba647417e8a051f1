"""Test-set evaluation: load the model, predict once, compute the metrics, report, write."""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import keras
import numpy as np

from mnist_cnn import metrics, plots
from mnist_cnn.config import DEFAULT_PLOTS_DIR
from mnist_cnn.data import CHECKSUMS, NUM_CLASSES, load_mnist, to_model_input
from mnist_cnn.errors import UserError
from mnist_cnn.model import load_trained_model
from mnist_cnn.predict import BATCH_SIZE
from mnist_cnn.train import RunPaths, write_json_atomically

TOP_CONFUSIONS = 5
GALLERY_SIZE = 32  # digits per gallery: four rows of digit_grid's eight columns
CURVES = ("accuracy", "loss")


@dataclass(frozen=True)
class Evaluation:
    """The model's answers on the test set: true labels, class probabilities, Keras' loss."""

    labels: np.ndarray
    probabilities: np.ndarray
    loss: float

    @property
    def predictions(self) -> np.ndarray:
        """The likeliest digit for each image."""
        return self.probabilities.argmax(axis=1)

    @property
    def confidences(self) -> np.ndarray:
        """The probability the model gave its own prediction."""
        return self.probabilities.max(axis=1)

    @property
    def confusion(self) -> np.ndarray:
        """The confusion matrix of counts, true class by row, predicted by column."""
        return metrics.confusion_matrix(self.labels, self.predictions, NUM_CLASSES)


def metrics_path(model_path: Path) -> Path:
    """Where the JSON report of `model_path` goes: beside the model, named after it."""
    return Path(model_path).with_name(f"{Path(model_path).stem}_metrics.json")


def load_model_for_evaluation(path: Path) -> keras.Model:
    """Load a 28x28x1 model with 10 outputs, compiled with the training loss for `evaluate`."""
    model = load_trained_model(path)
    if tuple(model.output_shape[1:]) != (NUM_CLASSES,):
        raise UserError(
            f"{path}: the model gives output {tuple(model.output_shape[1:])}, "
            f"not {NUM_CLASSES} class probabilities"
        )
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def evaluate(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Predict every image in large batches, and take the loss from Keras' own `evaluate`."""
    inputs = to_model_input(images)
    probabilities = model.predict(inputs, batch_size=BATCH_SIZE, verbose=0)
    # Keras computes the loss from the logits behind the softmax, which the probabilities
    # alone cannot reproduce for a very confident mistake; so we ask Keras for it.
    loss, _ = model.evaluate(inputs, labels, batch_size=BATCH_SIZE, verbose=0)
    return Evaluation(np.asarray(labels), np.asarray(probabilities), float(loss))


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """The versions of everything that can change the numbers."""
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def class_rows(cm: np.ndarray) -> list[dict]:
    """One JSON-ready row per digit: precision, recall, F1 and support."""
    per_class = metrics.per_class_metrics(cm)
    return [
        {
            "digit": digit,
            "precision": round(float(per_class.precision[digit]), 6),
            "recall": round(float(per_class.recall[digit]), 6),
            "f1": round(float(per_class.f1[digit]), 6),
            "support": int(per_class.support[digit]),
        }
        for digit in range(len(cm))
    ]


def build_report(evaluation: Evaluation, model_path: Path) -> dict:
    """The machine-readable report: metrics, confusion matrix and what produced them."""
    cm = evaluation.confusion
    return {
        "model": str(model_path),
        "model_sha256": file_sha256(model_path),
        "data_checksums": CHECKSUMS,
        "test_images": int(cm.sum()),
        "correct": int(np.trace(cm)),
        "accuracy": metrics.accuracy(cm),
        "loss": evaluation.loss,
        "per_class": class_rows(cm),
        "confusion_matrix": cm.tolist(),
        "most_confused": [
            {"true": true, "predicted": predicted, "count": count}
            for true, predicted, count in metrics.most_confused(cm, TOP_CONFUSIONS)
        ],
        "versions": library_versions(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def format_summary(report: dict) -> str:
    """The headline: test loss and accuracy."""
    return (
        f"Test loss:     {report['loss']:.4f}\n"
        f"Test accuracy: {report['accuracy']:.4f} "
        f"({report['correct']:,} of {report['test_images']:,} correct)"
    )


def format_class_table(report: dict) -> str:
    """Precision, recall, F1 and support per digit, then their unweighted (macro) mean."""
    rows = report["per_class"]
    macro = {key: float(np.mean([r[key] for r in rows])) for key in ("precision", "recall", "f1")}
    macro.update(digit="macro", support=report["test_images"])
    header = f"{'digit':>5}  {'precision':>9}  {'recall':>6}  {'f1':>6}  {'support':>7}"
    return "\n".join(
        [header]
        + [
            f"{r['digit']:>5}  {r['precision']:>9.4f}  {r['recall']:>6.4f}  {r['f1']:>6.4f}  "
            f"{r['support']:>7,}"
            for r in [*rows, macro]
        ]
    )


def format_confusions(report: dict) -> str:
    """The commonest mistakes, one line each: "4 read as 9: 7 times"."""
    lines = [
        f"  {c['true']} read as {c['predicted']}: {c['count']} time{'s' * (c['count'] != 1)}"
        for c in report["most_confused"]
    ]
    return "\n".join(["Most confused:", *(lines or ["  none: every test image is right"])])


def format_report(report: dict) -> str:
    """The report as console text: loss and accuracy, per-class table, commonest mistakes."""
    return "\n\n".join(
        [format_summary(report), format_class_table(report), format_confusions(report)]
    )


def most_confident_mistakes(evaluation: Evaluation, count: int) -> np.ndarray:
    """Indices of up to `count` misclassified images, the most confidently wrong first."""
    wrong = np.flatnonzero(evaluation.predictions != evaluation.labels)
    return wrong[np.argsort(-evaluation.confidences[wrong], kind="stable")][:count]


def plot_gallery(
    evaluation: Evaluation, images: np.ndarray, indices: np.ndarray, path: Path, suptitle: str
) -> Path:
    """A digit grid of the chosen test images with their labels and predictions."""
    return plots.plot_predictions(
        images[indices],
        evaluation.labels[indices],
        evaluation.predictions[indices],
        evaluation.confidences[indices],
        path,
        suptitle,
    )


def is_history(data: object) -> bool:
    """Whether `data` looks like a Keras history: a dict of per-epoch lists."""
    return isinstance(data, dict) and all(isinstance(v, list) for v in data.values())


def load_history(path: Path) -> dict[str, list[float]] | None:
    """The training history saved beside the model, or None (with a warning if unreadable)."""
    if not path.is_file():
        return None
    try:
        history = json.loads(path.read_text())
    except (OSError, ValueError):  # ValueError covers bad JSON and bad UTF-8 alike
        history = None
    if not is_history(history):
        # The curves are a by-product; a broken history should not cost the user the evaluation.
        print(f"warning: {path}: not a training history; skipping the curves", file=sys.stderr)
        return None
    return history


def draw_plots(
    evaluation: Evaluation, images: np.ndarray, history: dict | None, plots_dir: Path
) -> list[Path]:
    """Confusion matrix, mistakes, sample predictions, and the training curves if known."""
    mistakes = most_confident_mistakes(evaluation, GALLERY_SIZE)
    first = np.arange(min(GALLERY_SIZE, len(images)))
    n_wrong = int((evaluation.predictions != evaluation.labels).sum())
    written = [
        plots.plot_confusion_matrix(evaluation.confusion, plots_dir / "confusion_matrix.png"),
        plot_gallery(
            evaluation,
            images,
            mistakes,
            plots_dir / "misclassified.png",
            f"The {len(mistakes)} most confident of {n_wrong:,} mistakes on the test set",
        ),
        plot_gallery(
            evaluation,
            images,
            first,
            plots_dir / "predictions.png",
            f"Predictions on the first {len(first)} test images",
        ),
    ]
    if history is not None:
        written += [plots.plot_curve(history, name, plots_dir / f"{name}.png") for name in CURVES]
    return written


def run(
    model_path: Path, data_dir: Path | None = None, plots_dir: Path = DEFAULT_PLOTS_DIR
) -> tuple[dict, list[Path]]:
    """Evaluate the model on the test set; write the report and figures; return both."""
    model = load_model_for_evaluation(model_path)
    mnist = load_mnist(data_dir)
    evaluation = evaluate(model, mnist.x_test, mnist.y_test)
    report = build_report(evaluation, model_path)
    written = [write_json_atomically(report, metrics_path(model_path))]
    history = load_history(RunPaths(Path(model_path)).history)
    written += draw_plots(evaluation, mnist.x_test, history, Path(plots_dir))
    return report, written
