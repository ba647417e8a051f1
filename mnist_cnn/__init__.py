"""mnist-cnn: a small, honest convolutional network for handwritten digits."""

# Also in pyproject.toml; tests/test_cli.py checks that the two agree.
__version__ = "0.2.0"
