"""Average several trained models into one .keras file that every script takes unchanged.

    python -m mnist_cnn.ensemble --output models/ensemble.keras a.keras b.keras c.keras

The ensemble's probabilities are the mean of its members'; members trained from different
seeds or recipes make different mistakes, so the mean makes fewer.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mnist_cnn.cli import add_common_flags, print_written, start_tensorflow
from mnist_cnn.errors import UserError, run_cli

if TYPE_CHECKING:  # Keras loads TensorFlow: imported where used, after the flags are parsed
    import keras

MIN_MEMBERS = 2


def average_models(members: Sequence[keras.Model]) -> keras.Model:
    """One model whose output is the mean of the members' class probabilities (renames them)."""
    import keras

    from mnist_cnn.model import INPUT_SHAPE

    inputs = keras.Input(shape=INPUT_SHAPE)
    for index, member in enumerate(members):
        # Members of one architecture share a name, and a model's layers need distinct ones.
        member.name = f"member_{index + 1}"
    outputs = keras.layers.Average()([member(inputs) for member in members])
    return keras.Model(inputs, outputs, name="ensemble")


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m mnist_cnn.ensemble",
        description="Average the class probabilities of several trained models into one "
        "model file, which evaluate_model.py, test_model.py and the web app take like any other.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("members", nargs="+", type=Path, help="trained .keras models to average")
    parser.add_argument(
        "--output", type=Path, required=True, help="where the ensemble is saved (.keras)"
    )
    add_common_flags(parser)
    return parser.parse_args()


def main() -> int:
    """Load the members, average them and save the ensemble."""
    args = parse_args()
    if len(args.members) < MIN_MEMBERS:
        raise UserError(f"an ensemble needs at least {MIN_MEMBERS} models, got {len(args.members)}")
    if args.output.suffix != ".keras":  # checked before the slow part, loading the members
        raise UserError(f"{args.output}: the ensemble is saved as a Keras file; name it *.keras")
    start_tensorflow(args.verbose)
    from mnist_cnn.model import load_trained_model, save_atomically

    members = [load_trained_model(path) for path in args.members]
    print_written([save_atomically(average_models(members), args.output)])
    return 0


if __name__ == "__main__":
    run_cli(main)
