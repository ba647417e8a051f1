"""A Keras model's error on the validation split under our own degradations (mnist_cnn.degrade).

    python -m benchmarks.validation_robustness [--model mnist_cnn/models/mnist_cnn.keras] [--json]

The validation split is the one training held out: mnist_cnn.train.select_data with the
model's training seed (--split-seed; 10% of MNIST train, stratified per class), so these
digits were never trained on. Another seed's split overlaps the model's training digits.
Unlike MNIST-C (benchmarks/robustness.py, a report only), these degradations may be used to
choose a recipe.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from benchmarks.robustness import DEFAULT_MODEL, keras_errors, machine, product_scores
from mnist_cnn.config import TrainConfig
from mnist_cnn.degrade import DEGRADATIONS, degrade

CLEAN = "clean"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="a Keras model")
    parser.add_argument("--seed", type=int, default=0, help="the degradations' seed")
    parser.add_argument(
        "--split-seed",
        type=int,
        default=TrainConfig().seed,
        help="the --seed the model was trained with, which chose its validation split",
    )
    parser.add_argument(
        "--count", type=int, default=None, help="only the first N validation digits"
    )
    parser.add_argument(
        "--product",
        action="store_true",
        help="also read each degraded digit through test_model.py (verdict on) as a 280x280 "
        "black-on-white file and as the 28x28 white-on-black file",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    return parser.parse_args(argv)


def validation_split(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The validation digits (uint8 (N, 28, 28)) and labels that training with `seed` held out."""
    from mnist_cnn.data import load_mnist
    from mnist_cnn.train import select_data

    _, (x_val, y_val) = select_data(load_mnist(), TrainConfig(seed=seed))
    return x_val, y_val.astype(int)


def degraded_sets(images: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """The clean images and each degradation of them (uint8 (N, 28, 28))."""
    return {CLEAN: images} | {name: degrade(images, name, seed) for name in DEGRADATIONS}


def table(report: dict) -> str:
    """Command, machine, then one row per degradation, the mean and the worst."""
    m, errors = report["machine"], report["errors"]
    degraded = {name: errors[name] for name in DEGRADATIONS}
    worst = max(degraded, key=degraded.get)
    lines = [
        f"command: {report['command']}",
        f"machine: {m['cpu']} ({m['cores']} cores; flags: {', '.join(m['flags'])}); "
        f"date: {m['date']}",
        f"model: {report['model']}; {report['count']} validation digits; seed {report['seed']}",
        "",
        "| degradation | validation error | " + " | ".join(product_headers(report)) + " |",
        "|---|---|" + "---|" * len(report["product"]),
        *(
            f"| {name} | {error:.2%} | " + " | ".join(product_cells(report, name)) + " |"
            for name, error in errors.items()
        ),
        f"| **mean of {len(degraded)}** | {np.mean(list(degraded.values())):.2%} | "
        + " | ".join(f"{mean:.2%}" for mean in product_means(report))
        + " |",
        f"| **worst** | {worst} {degraded[worst]:.2%} |",
    ]
    return "\n".join(lines)


def product_headers(report: dict) -> list[str]:
    """The product path's column names: test_model.py on each file form."""
    return [f"test_model {form} (err, not-digit, refused)" for form in report["product"]]


def product_cells(report: dict, name: str) -> list[str]:
    """Each file form's error, not-a-digit and refused counts on the set `name`."""
    return [
        f"{s[name]['error']:.2%} {s[name]['not_digit']} {s[name]['refused']}"
        for s in report["product"].values()
    ]


def product_means(report: dict) -> list[float]:
    """Each file form's mean error over the degradations."""
    return [
        float(np.mean([scores[name]["error"] for name in DEGRADATIONS]))
        for scores in report["product"].values()
    ]


def main(argv: list[str] | None = None) -> int:
    """Score the model on every degradation and print the table (or --json)."""
    args = parse_args(argv)
    from mnist_cnn.model import load_trained_model

    images, labels = validation_split(args.split_seed)
    images, labels = images[: args.count], labels[: args.count]
    sets = degraded_sets(images, args.seed)
    errors = keras_errors(load_trained_model(args.model), sets, labels)
    product = {}
    if args.product:
        for form, page in (("280x280", "bilinear"), ("28x28", None)):
            scores = product_scores(sets, labels, args.model, page)
            product[form] = {name: score._asdict() for name, score in scores.items()}
    report = {
        "command": " ".join(["python -m benchmarks.validation_robustness", *sys.argv[1:]]),
        "model": str(args.model),
        "count": len(labels),
        "seed": args.seed,
        "split_seed": args.split_seed,
        "machine": machine(),
        "errors": errors,
        "product": product,
    }
    print(json.dumps(report, indent=1) if args.json else table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
