"""Pieces the command-line scripts share: common flags, quiet TensorFlow, files written.

Nothing here imports TensorFlow, so a script can parse its flags (and answer --help or
--version) before the seconds it takes to load.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from mnist_cnn import __version__
from mnist_cnn.errors import UserError

TF_LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
QUIET_TF_LOG_LEVEL = "2"  # errors only: TensorFlow's INFO and WARNING lines are hidden
# TensorFlow logs a few lines through absl before it reads TF_CPP_MIN_LOG_LEVEL (its oneDNN
# notice, twice, each after absl's own warning), so those are filtered out of stderr instead.
ABSL_PRE_INIT_WARNING = "WARNING: All log messages before absl::InitializeLog() is called"
ABSL_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] ")
ABSL_SEVERITIES = "IWEF"  # INFO, WARNING, ERROR, FATAL: TF_CPP_MIN_LOG_LEVEL 0 to 3 hides below


def program_name(module: str) -> str:
    """How the user started a module that is also a console command: the command's name
    (`mnist-serve`), or `python -m module` when run as a module."""
    called = Path(sys.argv[0]).name
    return f"python -m {module}" if called.endswith(".py") else called


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    """--version and --verbose, the same in every script."""
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow's own log lines, hidden by default; "
        f"{TF_LOG_LEVEL_ENV} in the environment, if set, chooses which (0: all)",
    )


def add_data_dir_flag(parser: argparse.ArgumentParser) -> None:
    """The --data-dir flag, worded the same in every script that reads MNIST."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder with the four MNIST IDX files (gzip or raw) instead of the bundled data/mnist",
    )


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """--model-path and --shipped: which model reads, worded the same in every script."""
    from mnist_cnn.config import SHIPPED_MODEL_PATH, user_data_dir

    parser.add_argument(
        "--model-path",
        type=Path,
        default=None,
        help="the trained model: a .keras (or Keras 2 .h5) file, run on Keras; an .onnx export, "
        "run on ONNX Runtime without TensorFlow; or a .tflite export, run on LiteRT. None: your "
        f"latest trained model in {user_data_dir() / 'models'}, else the shipped "
        f"{SHIPPED_MODEL_PATH.name}; either on its .onnx export when that is current",
    )
    parser.add_argument(
        "--shipped",
        action="store_true",
        help="read with the shipped model even when you have trained your own",
    )


def is_below_log_level(line: str, level: int) -> bool:
    """Whether a stderr line is a TensorFlow (absl) log line that `level` is meant to hide."""
    if line.startswith(ABSL_PRE_INIT_WARNING):
        return level > 0  # it only says that the lines around it bypass the level
    match = ABSL_LINE.match(line)
    return bool(match) and ABSL_SEVERITIES.index(match.group(1)) < level


def tensorflow_log_level() -> int:
    """TF_CPP_MIN_LOG_LEVEL as TensorFlow reads it: a number, 0 when unset or not a number."""
    try:
        return int(os.environ.get(TF_LOG_LEVEL_ENV, "0"))
    except ValueError:
        return 0


@contextlib.contextmanager
def filtered_stderr(drop: Callable[[str], bool]) -> Iterator[None]:
    """Capture file descriptor 2 (C++ writes there too), then pass on the lines not dropped."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not drop(line)))
            sys.stderr.flush()


def start_tensorflow(verbose: bool = False) -> None:
    """Import TensorFlow, its INFO and WARNING log lines hidden unless `verbose`.

    A TF_CPP_MIN_LOG_LEVEL the user set is kept and applied to the lines TensorFlow logs
    before reading it, too. Call this after the flags are parsed and before anything else
    imports TensorFlow: the level is read once, at import. Real errors still come through.
    """
    if verbose:
        importlib.import_module("tensorflow")
        return
    os.environ.setdefault(TF_LOG_LEVEL_ENV, QUIET_TF_LOG_LEVEL)
    level = tensorflow_log_level()
    with filtered_stderr(lambda line: is_below_log_level(line, level)):
        importlib.import_module("tensorflow")


def format_duration(seconds: float) -> str:
    """`12.3 s` under a minute, else `5 min 51 s`: how the README writes wall times."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def image_suffixes() -> set[str]:
    """File name endings Pillow can read (".png", ".jpg", ...), lower case."""
    from PIL import Image

    return {suffix.lower() for suffix in Image.registered_extensions()}


def expand_image_folders(paths: Iterable[Path]) -> list[Path]:
    """The paths, each folder replaced by the image files in it (sorted, not recursive).

    Files in a folder that are not images by name are skipped, with a one-line count on
    stderr; a file named on its own is kept, so a bad one still gets its own error later.
    Raises UserError for a folder without a single image.
    """
    suffixes = image_suffixes()
    expanded: list[Path] = []
    for path in paths:
        if not path.is_dir():
            expanded.append(path)
            continue
        files = sorted(child for child in path.iterdir() if child.is_file())
        images = [child for child in files if child.suffix.lower() in suffixes]
        if not images:
            raise UserError(f"{path}: no image files in this folder")
        skipped = len(files) - len(images)
        if skipped:
            noun = "file that is not an image" if skipped == 1 else "files that are not images"
            print(f"{path}: skipped {skipped} {noun}", file=sys.stderr)
        expanded.extend(images)
    return expanded


def print_written(paths: Iterable[Path]) -> None:
    """Tell the user every file a run wrote, one per line."""
    print("\nWrote:")
    for path in paths:
        print(f"  {path}")
