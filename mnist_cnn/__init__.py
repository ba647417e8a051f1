"""mnist-cnn: a small, honest convolutional network for handwritten digits.

    from mnist_cnn import Reader
    reading = Reader().read("photo.jpg")
    print(reading.number)

The names below load on first use, so `import mnist_cnn` (and every script's --help) stays
instant: the reader pulls in NumPy, Pillow, OpenCV and a model runtime.
"""

from __future__ import annotations

import importlib

# Also in pyproject.toml; tests/test_cli.py checks that the two agree.
__version__ = "0.3.0"

PUBLIC = {
    "Reader": "mnist_cnn.reader",
    "Reading": "mnist_cnn.reader",
    "DigitReading": "mnist_cnn.reader",
    "UserError": "mnist_cnn.errors",
    "UnreadableImageError": "mnist_cnn.errors",
    "NoDigitFoundError": "mnist_cnn.errors",
    "SeveralLinesError": "mnist_cnn.errors",
}
__all__ = ["__version__", *PUBLIC]


def __getattr__(name: str) -> object:
    """Import a public name's module when the name is first asked for (PEP 562)."""
    if name not in PUBLIC:
        raise AttributeError(f"module 'mnist_cnn' has no attribute {name!r}")
    return getattr(importlib.import_module(PUBLIC[name]), name)
