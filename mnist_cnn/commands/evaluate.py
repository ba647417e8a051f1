"""`evaluate_model.py` / `mnist-evaluate`: measure a trained model on the MNIST test set."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mnist_cnn.cli import add_common_flags, add_data_dir_flag, add_model_flags, print_written
from mnist_cnn.config import user_plots_dir
from mnist_cnn.errors import run_cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, every flag with its default in --help."""
    parser = argparse.ArgumentParser(
        description="Measure the saved model on the 10,000 MNIST test images: loss, accuracy, "
        "per-class precision/recall/F1 and the commonest mistakes. Draws the confusion matrix, "
        "the misclassified digits, sample predictions and (from the saved history) the training "
        "curves, and writes a JSON report, <model name>_metrics.json, with the figures.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_model_flags(parser)
    add_data_dir_flag(parser)
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the report as JSON (the content of <name>_metrics.json) instead of the table",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="folder for the report and the figures: <model name>_metrics.json, "
        "confusion_matrix.png, misclassified.png, predictions.png, and accuracy.png and loss.png "
        f"from the model's <name>_history.json. None: {user_plots_dir()}",
    )
    add_common_flags(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Evaluate, print the report, and list the files written."""
    args = parse_args(argv)
    from mnist_cnn import evaluate  # after the flags: --help needs none of it

    report, written = evaluate.run(
        args.model_path, args.data_dir, args.out_dir, args.verbose, args.shipped
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(evaluate.format_report(report))
    print_written(written)
    return 0


def run() -> None:
    """The console command: main() with one-line errors and exit codes."""
    run_cli(main)
