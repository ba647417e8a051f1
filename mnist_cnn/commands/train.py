"""`train_model.py` / `mnist-train` / `python -m mnist_cnn.commands.train`: train the CNN on
the bundled MNIST data, or fine-tune a trained model on a person's own digits."""

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
from mnist_cnn.config import (
    FINETUNE_BATCH_SIZE,
    FINETUNE_EPOCHS,
    FINETUNE_PEAK_RATE,
    FINETUNE_STEPS_PER_EPOCH,
    MODEL_NAMES,
    TrainConfig,
    user_model_path,
    user_own_digits_dir,
    user_plots_dir,
    user_taught_model_path,
)
from mnist_cnn.cpu import MODES, add_onednn_flag, use_onednn
from mnist_cnn.data import AUGMENTATIONS
from mnist_cnn.errors import UserError, run_cli
from mnist_cnn.progress import Progress

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
        default=None,
        help=f"most epochs to train; early stopping may end sooner. None: {DEFAULTS.epochs}, "
        f"or {FINETUNE_EPOCHS} epochs of {FINETUNE_STEPS_PER_EPOCH} steps with --start-from",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help=f"images per training step. None: {DEFAULTS.batch_size}, or {FINETUNE_BATCH_SIZE} "
        "with --start-from (a quarter of them your own digits)",
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=DEFAULTS.learning_rate,
        help="Adam's peak learning rate on the one-cycle schedule: linear warm-up over the first "
        "20%% of the steps, then cosine decay to 0 by the end of --epochs; if not given, "
        "0.024 / --epochs kept within [0.006, 0.012], as a shorter run needs a higher peak, "
        f"or {FINETUNE_PEAK_RATE:g} with --start-from",
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
        "--reader-crops",
        type=float,
        default=DEFAULTS.reader_crops,
        metavar="SHARE",
        help="add this share of the training digits again, degraded, drawn as picture files "
        "and cut out by the reader's own digit finding: the model then learns the crops "
        "test_model.py gives it; 0 turns it off",
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
        "--start-from",
        type=Path,
        default=None,
        metavar="MODEL",
        help="fine-tune this trained .keras model on your own digits (--own-digits) mixed with "
        "MNIST, instead of training from scratch: a short run at a low learning rate that "
        "prints the accuracy on your digits and on the MNIST test set before and after. "
        "MODEL itself is never written unless --model-path names it",
    )
    parser.add_argument(
        "--own-digits",
        type=Path,
        default=None,
        metavar="DIR",
        help="your own digits, one picture per digit in DIR/0/ ... DIR/9/ (what test_model.py "
        "--correct saves): what --start-from fine-tunes on, or added to a run from scratch. "
        f"None: {user_own_digits_dir()} with --start-from, none without",
    )
    parser.add_argument(
        "--model-path",
        type=Path,
        default=None,
        help="where the best model is saved (Keras .keras format), with its ONNX export, "
        "not-a-digit statistics (<name>_ood.json) and per-epoch history (<name>_history.json) "
        f"beside it. None: {user_model_path()} ({user_model_path('strong').name} for "
        f"--model strong), or {user_taught_model_path()} with --start-from: the model "
        "test_model.py then reads with",
    )
    parser.add_argument(
        "--progress-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="write the run's progress to PATH as one JSON object, replaced at each stage and "
        "every few seconds: stage, epoch, epochs, seconds_left, before, after, model_path, "
        "error (docs/teaching.md)",
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


def with_defaults(flags: dict) -> dict:
    """The flags with the defaults left open filled: a run from scratch's, or fine-tuning's
    (--start-from; then --own-digits defaults to the user's own-digits folder)."""
    tuning = flags["start_from"] is not None
    filled = {
        "epochs": FINETUNE_EPOCHS if tuning else DEFAULTS.epochs,
        "batch_size": FINETUNE_BATCH_SIZE if tuning else DEFAULTS.batch_size,
        "own_digits": user_own_digits_dir() if tuning else None,
    }
    given = {name: value for name, value in flags.items() if value is not None}
    return {**flags, **filled, **given}


def run_training(config: TrainConfig, progress: Progress) -> None:
    """Train from scratch, or fine-tune with --start-from, and print what it reached."""
    from mnist_cnn.finetune import finetune
    from mnist_cnn.train import train

    if config.start_from is not None:
        result = finetune(config, progress)
        print_written(result.written)
        return
    result = train(config, progress=progress)
    print(
        f"\nBest validation accuracy: {result.best_val_accuracy:.4f} "
        f"(epoch {result.best_epoch} of {result.epochs_run})"
    )
    print(f"Test accuracy of the saved model: {result.test_accuracy:.4f}")
    print_written(result.written)


def main(argv: list[str] | None = None) -> int:
    """Train, then report the figures, every file written and the time. With
    --progress-file, the stages go to that file too, ending "done" or "failed"."""
    flags = with_defaults(vars(parse_args(argv)))
    onednn, verbose = flags.pop("onednn"), flags.pop("verbose")
    config = TrainConfig(**flags)
    progress = Progress(config.progress_file, config.model_file)
    try:
        progress.write()  # "loading": TensorFlow takes seconds to import
        print(use_onednn(onednn))
        start_tensorflow(verbose)
        start = time.perf_counter()
        run_training(config, progress)
    except UserError as error:
        progress.fail(str(error))
        raise
    except BaseException as error:  # Ctrl-C, or a bug: the reader must still learn it ended
        progress.fail(str(error) or type(error).__name__)
        raise
    progress.update(stage="done", seconds_left=None)
    print(f"\nTraining time: {format_duration(time.perf_counter() - start)}")
    return 0


def run() -> None:
    """The console command: main() with one-line errors and exit codes."""
    run_cli(main)


if __name__ == "__main__":
    run()
