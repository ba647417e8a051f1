"""`train_model.py` / `mnist-train`: train the CNN on the bundled MNIST data."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

# Nothing imported here loads TensorFlow: --help answers at once, and --onednn and the log
# level are applied before TensorFlow reads them, when it is imported.
from mnist_cnn.cli import (
    add_common_flags,
    add_data_dir_flag,
    format_duration,
    print_written,
    start_tensorflow,
)
from mnist_cnn.config import MODEL_NAMES, TrainConfig, user_model_path, user_plots_dir
from mnist_cnn.cpu import MODES, add_onednn_flag, use_onednn
from mnist_cnn.data import AUGMENTATIONS
from mnist_cnn.errors import run_cli

DEFAULTS = TrainConfig()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, every flag with its default in --help."""
    parser = argparse.ArgumentParser(
        description="Train a CNN on the bundled MNIST data, keep the best model by validation "
        "loss, and draw the training plots. An interrupted run resumes from its last finished "
        "epoch when the same command is run again.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=DEFAULTS.epochs,
        help="most epochs to train; early stopping may end sooner",
    )
    parser.add_argument(
        "--batch-size", type=int, default=DEFAULTS.batch_size, help="images per training step"
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=DEFAULTS.learning_rate,
        help="Adam's peak learning rate on the one-cycle schedule: linear warm-up over the first "
        "20%% of the steps, then cosine decay to 0 by the end of --epochs; if not given, "
        "0.024 / --epochs kept within [0.006, 0.012], as a shorter run needs a higher peak",
    )
    parser.add_argument(
        "--validation-split",
        type=float,
        default=DEFAULTS.validation_split,
        help="fraction of the 60,000 training images held out (stratified) "
        "for early stopping and model selection; the test set is never used",
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=DEFAULTS.patience,
        help="epochs without a better validation loss before stopping",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULTS.seed,
        help="seed for the split, the shuffling and the initial weights",
    )
    parser.add_argument(
        "--model", choices=MODEL_NAMES, default=DEFAULTS.model, help="architecture to train"
    )
    parser.add_argument(
        "--augment",
        choices=AUGMENTATIONS,
        default=DEFAULTS.augment,
        help="random changes to the training images each epoch: 'shift' moves them up to "
        "2 pixels each way; 'affine' also rotates them up to 10 degrees and zooms up to 10%%; "
        "the validation and test images are never altered",
    )
    parser.add_argument(
        "--degrade",
        type=float,
        default=DEFAULTS.degrade,
        metavar="FRACTION",
        help="share of the training images put through one of mnist_cnn.degrade's "
        "degradations each epoch (noise, blur, low contrast, grey paper, stains, crossing "
        "lines, hollow strokes, bands at the edge, elastic deformation): robustness to "
        "degraded pictures; 0 turns it off",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="train on only the first N training images (a quick run)",
    )
    parser.add_argument(
        "--outliers",
        type=int,
        default=DEFAULTS.outliers,
        help="synthetic non-digits (letters, symbols, scribbles, shapes, blots, specks) added "
        "to the training images with a uniform target (outlier exposure), so the model can say "
        "'not a digit'; 0 turns it off",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULTS.cache_dir,
        help="where the generated non-digits are kept for the next run with the same --outliers "
        "and --seed (about 10 s of start-up saved); delete it at any time",
    )
    add_data_dir_flag(parser)
    parser.add_argument(
        "--model-path",
        type=Path,
        default=None,
        help="where the best model is saved (Keras .keras format), with its ONNX export, "
        "not-a-digit statistics (<name>_ood.json) and per-epoch history (<name>_history.json) "
        f"beside it. None: {user_model_path()} ({user_model_path('strong').name} for "
        "--model strong), the model test_model.py then reads with",
    )
    parser.add_argument(
        "--plots-dir",
        type=Path,
        default=None,
        help=f"folder for the training figures. None: {user_plots_dir()}",
    )
    parser.add_argument(
        "--deterministic",
        action="store_true",
        help="use deterministic TensorFlow ops: the same seed then gives the "
        "same figures, at some cost in speed",
    )
    parser.add_argument(
        "--mixed-precision",
        choices=MODES,
        default=DEFAULTS.mixed_precision,
        help="bfloat16 compute with float32 weights; 'auto' turns it on only on CPUs with "
        "native bfloat16 (AVX512-BF16 or AMX), where it is faster, and says which it chose",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="discard an interrupted run of this --model-path and start over; the finished "
        "model there is replaced only when the new run ends",
    )
    parser.add_argument(
        "--tensorboard",
        type=Path,
        default=None,
        metavar="DIR",
        help="write TensorBoard logs to DIR (view them with `tensorboard --logdir DIR`)",
    )
    add_onednn_flag(parser)
    add_common_flags(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Train, then report the best validation accuracy, every file written and the time."""
    flags = vars(parse_args(argv))
    print(use_onednn(flags.pop("onednn")))
    start_tensorflow(flags.pop("verbose"))
    from mnist_cnn.train import train

    start = time.perf_counter()
    result = train(TrainConfig(**flags))
    print(
        f"\nBest validation accuracy: {result.best_val_accuracy:.4f} "
        f"(epoch {result.best_epoch} of {result.epochs_run})"
    )
    print(f"Test accuracy of the saved model: {result.test_accuracy:.4f}")
    print_written(result.written)
    print(f"\nTraining time: {format_duration(time.perf_counter() - start)}")
    return 0


def run() -> None:
    """The console command: main() with one-line errors and exit codes."""
    run_cli(main)
