"""Pieces the command-line scripts share: common flags and the list of files written."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path


def add_data_dir_flag(parser: argparse.ArgumentParser) -> None:
    """The --data-dir flag, worded the same in every script that reads MNIST."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder with the four MNIST IDX files (gzip or raw) instead of the bundled data/mnist",
    )


def print_written(paths: Iterable[Path]) -> None:
    """Tell the user every file a run wrote, one per line."""
    print("\nWrote:")
    for path in paths:
        print(f"  {path}")
