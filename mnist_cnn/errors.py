"""One error type for everything a user can get wrong, and the CLI wrapper that reports it."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem with the user's input: reported as one line, never as a traceback.

    The one base class of every error this package raises on purpose; the subclasses below
    are the failures of reading a picture that a caller may want to tell apart.
    """


class UnreadableImageError(UserError):
    """A picture that cannot be read: missing, empty, not an image, corrupt or too large."""


class NoDigitFoundError(UserError):
    """A readable picture with no ink that could be a digit (a blank page, a flat photo)."""


class SeveralLinesError(UserError):
    """A picture that is not one line of digits: several lines of writing, or a whole page."""


def run_cli(main: Callable[[], int | None]) -> None:
    """Run a script's `main`, turning a UserError (exit 1) or Ctrl-C (130) into one stderr line.

    A KeyboardInterrupt raised with a message (training says which epoch it stopped in and
    how to resume) prints that message; a bare one prints "interrupted". Then the process
    ends at once (`exit_now`).
    """
    try:
        status = main()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as interrupt:
        print(str(interrupt) or "interrupted", file=sys.stderr)
        exit_now(130)
    sys.exit(status or 0)


def exit_now(status: int) -> None:
    """End the process with `status` once stdout and stderr are flushed, without Python's
    shutdown. After Ctrl-C in training, that shutdown's last garbage collection can wait for
    ever on the threads of TensorFlow's data pipeline, which need Python's lock to finish a
    NumPy step and no longer get it. Nothing is lost: files are written to a temporary name
    and renamed, and locks let go, as the interrupt unwinds, before this is reached."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    os._exit(status)
