"""Evaluate the trained model on the MNIST test set: python evaluate_model.py --help."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mnist_cnn.cli import add_common_flags, add_data_dir_flag, print_written
from mnist_cnn.config import DEFAULT_MODEL_PATH, DEFAULT_PLOTS_DIR
from mnist_cnn.errors import run_cli


def parse_args() -> argparse.Namespace:
    """The command line, every flag with its default in --help."""
    parser = argparse.ArgumentParser(
        description="Measure the saved model on the 10,000 MNIST test images: loss, accuracy, "
        "per-class precision/recall/F1 and the commonest mistakes. Draws the confusion matrix, "
        "the misclassified digits, sample predictions and (from the saved history) the training "
        "curves, and writes a JSON report, <model name>_metrics.json, beside the model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--model-path",
        type=Path,
        default=DEFAULT_MODEL_PATH,
        help="the trained model (a .keras file from train_model.py, or its .onnx export); "
        "<name>_metrics.json is "
        "written beside it and the training curves are read from <name>_history.json beside it",
    )
    add_data_dir_flag(parser)
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the report as JSON (the content of <name>_metrics.json) instead of the table",
    )
    parser.add_argument(
        "--plots-dir",
        type=Path,
        default=DEFAULT_PLOTS_DIR,
        help="folder for the figures: confusion_matrix.png, misclassified.png, predictions.png, "
        "accuracy.png and loss.png",
    )
    add_common_flags(parser)
    return parser.parse_args()


def main() -> int:
    """Evaluate, print the report, and list the files written."""
    args = parse_args()
    from mnist_cnn import evaluate  # after the flags: --help needs none of it

    report, written = evaluate.run(args.model_path, args.data_dir, args.plots_dir, args.verbose)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(evaluate.format_report(report))
    print_written(written)
    return 0


if __name__ == "__main__":
    run_cli(main)
