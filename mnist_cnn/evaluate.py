"""Test-set evaluation: load the model, predict once, compute the metrics, report, write."""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from mnist_cnn import metrics, plots
from mnist_cnn.config import user_plots_dir
from mnist_cnn.data import CHECKSUMS, NUM_CLASSES, load_mnist
from mnist_cnn.engine import engine_name
from mnist_cnn.files import file_sha256, history_path, write_json_atomically
from mnist_cnn.ood import OodStats, auroc
from mnist_cnn.predict import Classifier, load_classifier
from mnist_cnn.synthetic import OpenSetData

EPSILON = 1e-7  # Keras' backend epsilon, with which its cross-entropy clips probabilities

TOP_CONFUSIONS = 5
GALLERY_SIZE = 32  # digits per gallery: four rows of digit_grid's eight columns
CURVES = ("accuracy", "loss")


@dataclass(frozen=True)
class Evaluation:
    """The model's answers on the test set: true labels uint8 (N,), class probabilities float32
    (N, 10), and the not-a-digit verdicts bool (N,) (all True without statistics)."""

    labels: np.ndarray
    probabilities: np.ndarray
    is_digit: np.ndarray

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

    @property
    def loss(self) -> float:
        """Mean cross-entropy of the true labels, from the probabilities clipped at Keras'
        epsilon (1e-7) as Keras does, so one sure mistake cannot make it infinite."""
        chosen = self.probabilities[np.arange(len(self.labels)), self.labels]
        return float(-np.log(np.clip(chosen, EPSILON, 1.0)).mean())


def metrics_path(model_path: Path, out_dir: Path) -> Path:
    """Where the JSON report of `model_path` goes: in `out_dir`, named after the model."""
    return Path(out_dir) / f"{Path(model_path).stem}_metrics.json"


def evaluate(classifier: Classifier, images: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Classify every image in large batches: uint8 images (N, 28, 28), labels (N,)."""
    readings = classifier.classify(images)
    return Evaluation(np.asarray(labels), readings.probabilities, readings.is_digit)


def library_versions() -> dict[str, str]:
    """The versions of everything loaded that can change the numbers."""
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for name in ("tensorflow", "keras", "onnxruntime"):
        if name in sys.modules:  # the engine that ran decides which are there
            versions[name] = sys.modules[name].__version__
    return versions


def rejection(evaluation: Evaluation, stats: OodStats | None) -> dict | None:
    """How the not-a-digit verdict treats the test digits: the share rejected, and the
    accuracy on the accepted ones; None without statistics."""
    if stats is None:
        return None
    accepted = evaluation.is_digit
    right = evaluation.predictions == evaluation.labels
    return {
        "threshold": stats.threshold,
        "rejected": int((~accepted).sum()),
        "rejected_share": float((~accepted).mean()),
        "accuracy_on_accepted": float(right[accepted].mean()) if accepted.any() else None,
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


def openset_quality(classifier: Classifier, data: OpenSetData) -> dict:
    """How well the not-a-digit verdict separates digits from non-digits (`synthetic.
    openset_data`): AUROC of the score, the share rejected of each set and of each kind of
    non-digit, and the accuracy on the accepted digits."""
    mnist = classifier.classify(data.mnist_digits)
    person = classifier.classify(data.person_digits)
    other = classifier.classify(data.outliers)
    kinds = np.asarray(data.kinds)
    right = np.concatenate(
        [
            mnist.probabilities.argmax(1) == data.mnist_labels,
            person.probabilities.argmax(1) == data.person_labels,
        ]
    )
    accepted = np.concatenate([mnist.is_digit, person.is_digit])
    return {
        "auroc": auroc(np.concatenate([mnist.scores, person.scores]), other.scores),
        "mnist_rejected": float((~mnist.is_digit).mean()),
        "person_rejected": float((~person.is_digit).mean()),
        "non_digits_rejected": float((~other.is_digit).mean()),
        "rejected_by_kind": {
            kind: float((~other.is_digit[kinds == kind]).mean()) for kind in sorted(set(kinds))
        },
        "accuracy_on_accepted_digits": float(right[accepted].mean()),
        "counts": {
            "mnist": len(mnist.scores),
            "person": len(person.scores),
            "non_digits": len(kinds),
        },
    }


def build_report(evaluation: Evaluation, classifier: Classifier) -> dict:
    """The machine-readable report: metrics, confusion matrix and what produced them."""
    cm = evaluation.confusion
    return {
        "model": str(classifier.engine.path),
        "engine": engine_name(classifier.engine),
        "model_sha256": file_sha256(classifier.engine.path),
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
        "not_a_digit": rejection(evaluation, classifier.stats),
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


def format_rejection(report: dict) -> str:
    """The not-a-digit verdict on the test digits, in one or two lines."""
    found = report["not_a_digit"]
    if found is None:
        return "Not a digit: no statistics beside the model, so every image counts as a digit"
    accuracy = found["accuracy_on_accepted"]
    return (
        f"Not a digit: {found['rejected']:,} test digits rejected "
        f"({found['rejected_share']:.2%}, threshold {found['threshold']:.4f})\n"
        f"Accuracy on the accepted ones: {accuracy:.4f}"
    )


def format_report(report: dict) -> str:
    """The report as console text: loss and accuracy, per-class table, commonest mistakes,
    and the not-a-digit verdict on the test digits."""
    return "\n\n".join(
        [
            format_summary(report),
            format_class_table(report),
            format_confusions(report),
            format_rejection(report),
        ]
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
    model_path: Path | None = None,
    data_dir: Path | None = None,
    out_dir: Path | None = None,
    verbose: bool = False,
    shipped: bool = False,
) -> tuple[dict, list[Path]]:
    """Evaluate the model (`.keras`, `.h5` or `.onnx`; None: the default one, as
    predict.load_classifier chooses) on the test set; write the report
    (<model name>_metrics.json) and figures into `out_dir` (None: config.user_plots_dir());
    return both. Notes about the model go to stderr; TensorFlow's log lines too when `verbose`.
    """
    out_dir = user_plots_dir() if out_dir is None else Path(out_dir)
    classifier, notes = load_classifier(model_path, verbose=verbose, shipped=shipped)
    for note in notes:
        print(note, file=sys.stderr)
    mnist = load_mnist(data_dir)
    evaluation = evaluate(classifier, mnist.x_test, mnist.y_test)
    report = build_report(evaluation, classifier)
    model_path = classifier.engine.path
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [write_json_atomically(report, metrics_path(model_path, out_dir))]
    history = load_history(history_path(model_path))
    written += draw_plots(evaluation, mnist.x_test, history, out_dir)
    return report, written
