"""How well "not a digit" works, and what it costs: the full open-set evaluation.

    python -m benchmarks.openset [--model-path mnist_cnn/models/mnist_cnn.keras]
                                 [--baseline MODEL] [--mnist 10000] [--person 1000]
                                 [--non-digits 5000]

On the evaluation set of `synthetic.openset_data` (MNIST test digits through preprocessing,
person-style redrawn digits, and non-digits that no model or threshold was fitted on) it
prints the project's verdict (the statistics saved beside the model), then compares scores on
the same data, each with its threshold chosen on the validation digits for 99.3% acceptance:

- maximum softmax probability (Hendrycks and Gimpel 2017), the baseline;
- the energy score, -logsumexp of the logits (Liu et al. 2020);
- the Mahalanobis distance of the penultimate features to the nearest class mean, with a
  shared covariance fitted on the training images (Lee et al. 2018);

for the model, and for `--baseline`, a model trained without outlier exposure
(`python train_model.py --outliers 0`). Last, the time the score adds to a prediction.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from mnist_cnn import ood
from mnist_cnn.config import SHIPPED_MODEL_PATH
from mnist_cnn.data import load_mnist, to_model_input
from mnist_cnn.errors import run_cli
from mnist_cnn.evaluate import openset_quality
from mnist_cnn.predict import load_classifier
from mnist_cnn.synthetic import EVALUATION_SEED, openset_data
from mnist_cnn.train import TrainConfig, select_data

TIMING_REPEATS = 50


def logits_and_features(model, digits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The logits (N, 10) and penultimate features (N, D) of a Keras model whose last layer
    is a Dense softmax, for uint8 digits (N, 28, 28)."""
    import keras

    last = model.layers[-1]
    features = keras.Model(model.inputs, last.input).predict(to_model_input(digits), verbose=0)
    kernel, bias = (np.asarray(w, np.float64) for w in last.get_weights())
    return np.asarray(features, np.float64) @ kernel + bias, np.asarray(features, np.float64)


def energy(logits: np.ndarray) -> np.ndarray:
    """Energy score, higher for non-digits: -logsumexp of the logits (Liu et al. 2020)."""
    top = logits.max(axis=1, keepdims=True)
    return -(top[:, 0] + np.log(np.exp(logits - top).sum(axis=1)))


def softmax_score(logits: np.ndarray) -> np.ndarray:
    """One minus the maximum softmax probability (Hendrycks and Gimpel 2017)."""
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return ood.ood_score(exp / exp.sum(axis=1, keepdims=True))


def mahalanobis_scorer(features: np.ndarray, labels: np.ndarray):
    """Squared Mahalanobis distance to the nearest class mean, with class means and one shared
    covariance fitted on `features` (N, D) of labelled training digits (Lee et al. 2018)."""
    means = np.stack([features[labels == c].mean(axis=0) for c in range(10)])
    centred = features - means[labels]
    precision = np.linalg.pinv(centred.T @ centred / len(features))

    def score(queries: np.ndarray) -> np.ndarray:
        offsets = queries[:, None, :] - means[None]
        return np.einsum("ncd,de,nce->nc", offsets, precision, offsets).min(axis=1)

    return score


def compare_scores(model_path: Path, data, fit_x, fit_y, val_x) -> list[tuple]:
    """(score name, AUROC, MNIST rejected, person rejected, non-digits rejected) for each of
    the three scores on one Keras model; none for a model whose last layer is not its softmax
    Dense layer (a taught model's is its gate), whose logits and features are not at hand."""
    import keras

    from mnist_cnn.model import load_trained_model

    model = load_trained_model(model_path)
    if not isinstance(model.layers[-1], keras.layers.Dense):
        return []
    outputs = {
        name: logits_and_features(model, x)
        for name, x in [
            ("fit", fit_x),
            ("val", val_x),
            ("mnist", data.mnist_digits),
            ("person", data.person_digits),
            ("other", data.outliers),
        ]
    }
    mahalanobis = mahalanobis_scorer(outputs["fit"][1], fit_y)
    scorers = {
        "max softmax probability": lambda out: softmax_score(out[0]),
        "energy": lambda out: energy(out[0]),
        "Mahalanobis": lambda out: mahalanobis(out[1]),
    }
    rows = []
    for name, scorer in scorers.items():
        threshold = ood.choose_threshold(scorer(outputs["val"]))
        scores = {key: scorer(value) for key, value in outputs.items()}
        digits = np.concatenate([scores["mnist"], scores["person"]])
        rows.append(
            (
                name,
                ood.auroc(digits, scores["other"]),
                float((scores["mnist"] > threshold).mean()),
                float((scores["person"] > threshold).mean()),
                float((scores["other"] > threshold).mean()),
            )
        )
    return rows


def time_both(bare, scored, repeats: int = TIMING_REPEATS) -> tuple[float, float]:
    """Median wall times in seconds of two functions, called in turn after a warm-up each,
    so that a drifting machine slows both alike."""
    bare(), scored()
    times: tuple[list, list] = ([], [])
    for _ in range(repeats):
        for function, bucket in zip((bare, scored), times, strict=True):
            start = time.perf_counter()
            function()
            bucket.append(time.perf_counter() - start)
    return float(np.median(times[0])), float(np.median(times[1]))


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-path", type=Path, default=SHIPPED_MODEL_PATH)
    parser.add_argument("--baseline", type=Path, default=None, help="a model trained without OE")
    parser.add_argument("--mnist", type=int, default=10_000)
    parser.add_argument("--person", type=int, default=1_000)
    parser.add_argument("--non-digits", type=int, default=5_000)
    return parser.parse_args()


def main() -> int:
    """Build the evaluation set once, then report the verdict, the comparison and the cost."""
    args = parse_args()
    mnist = load_mnist()
    data = openset_data(mnist.x_test, mnist.y_test, args.mnist, args.person, args.non_digits)
    classifier, notes = load_classifier(args.model_path)
    print(*notes, sep="\n")
    quality = openset_quality(classifier, data)
    print(f"model: {args.model_path} ({classifier.stats.method if classifier.stats else 'none'})")
    print(f"evaluation set: {args.mnist:,} MNIST test digits, {args.person:,} person-style "
          f"digits, {len(data.kinds):,} non-digits (seed {EVALUATION_SEED})")  # fmt: skip
    print(f"AUROC digits vs non-digits:      {quality['auroc']:.4f}")
    print(f"MNIST test digits rejected:      {quality['mnist_rejected']:.2%}")
    print(f"person-style digits rejected:    {quality['person_rejected']:.2%}")
    print(f"non-digits rejected:             {quality['non_digits_rejected']:.2%}")
    for kind, share in quality["rejected_by_kind"].items():
        print(f"  {kind:<14} {share:.2%}")
    print(f"accuracy on the accepted digits: {quality['accuracy_on_accepted_digits']:.2%}")

    (fit_x, fit_y), (val_x, _) = select_data(mnist, TrainConfig())
    print("\nscores compared (threshold: 99.3% of validation digits accepted)")
    print(f"{'model':<10} {'score':<26} {'AUROC':>7} {'MNIST rej.':>10} {'person rej.':>11} "
          f"{'non-digits rej.':>15}")  # fmt: skip
    models = [("OE", args.model_path)] + ([("no OE", args.baseline)] if args.baseline else [])
    for label, path in models:
        rows = compare_scores(path, data, fit_x, fit_y, val_x)
        if not rows:
            print(f"{label:<10} (none: the last layer is not the model's softmax Dense layer)")
        for name, area, rej_mnist, rej_person, rej_other in rows:
            print(f"{label:<10} {name:<26} {area:>7.4f} {rej_mnist:>10.2%} {rej_person:>11.2%} "
                  f"{rej_other:>15.2%}")  # fmt: skip

    one, batch = data.mnist_digits[:1], data.mnist_digits[:1000]
    for size, digits in (("1 digit", one), ("1,000 digits", batch)):
        bare, scored = time_both(
            lambda d=digits: classifier.engine.predict(d), lambda d=digits: classifier.classify(d)
        )
        print(f"\nprediction of {size}: {bare * 1e3:.3f} ms, with the score {scored * 1e3:.3f} ms "
              f"({scored / bare - 1:+.1%})", end="")  # fmt: skip
    print()
    return 0


if __name__ == "__main__":
    run_cli(main)
