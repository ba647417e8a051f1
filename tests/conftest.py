"""Shared fixtures: the bundled data and a small model trained once per test session."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from mnist_cnn import ood
from mnist_cnn.config import SHIPPED_MODEL_PATH
from mnist_cnn.data import load_mnist, make_dataset, one_hot
from mnist_cnn.engine import KerasEngine
from mnist_cnn.files import file_sha256
from mnist_cnn.model import build_model

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def private_cache_home(tmp_path_factory):
    """Training runs (in-process and in subprocesses) cache their outliers in this test
    session's own folder, never in the user's ~/.cache."""
    with private_xdg("XDG_CACHE_HOME", tmp_path_factory.mktemp("cache-home")) as folder:
        yield folder


@pytest.fixture(scope="session", autouse=True)
def private_data_home(tmp_path_factory):
    """The user's data directory (their trained models, figures) is this test session's own
    empty folder: what a user trained never changes what the tests see, and no test writes
    into the user's home."""
    with private_xdg("XDG_DATA_HOME", tmp_path_factory.mktemp("data-home")) as folder:
        yield folder


@contextlib.contextmanager
def private_xdg(name: str, folder: Path):
    """Set an XDG base directory variable to `folder` for the block, then restore it."""
    before = os.environ.get(name)
    os.environ[name] = str(folder)
    try:
        yield folder
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before


@pytest.fixture(scope="session")
def mnist():
    """The bundled MNIST arrays, loaded once."""
    return load_mnist()


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory, mnist) -> Path:
    """A default-architecture model trained for one epoch on 2,000 images (about 90% accurate),
    with its not-a-digit statistics beside it (fitted on the next 500 training images)."""
    import keras

    keras.utils.set_random_seed(0)
    model = build_model()
    model.fit(
        make_dataset(mnist.x_train[:2000], one_hot(mnist.y_train[:2000]), 64, shuffle_seed=0),
        epochs=1,
        shuffle=False,  # the dataset shuffles itself
        verbose=0,
    )
    path = tmp_path_factory.mktemp("tiny") / "tiny.keras"
    model.save(path)
    validation = KerasEngine(model, path).predict(mnist.x_train[2000:2500])
    ood.save_stats(ood.fit_stats(validation, file_sha256(path)), ood.stats_path(path))
    return path


@pytest.fixture(scope="session")
def committed_model_path() -> Path:
    """The shipped, fully trained model (package data, which no command writes by default);
    tests of quality targets need it."""
    return SHIPPED_MODEL_PATH


def run_script(script: str, *args: str, cwd: Path | None = None):
    """Run one of the repository's scripts in a subprocess; returns the CompletedProcess."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, str(REPO_ROOT / script), *args],
        capture_output=True,
        text=True,
        cwd=cwd or REPO_ROOT,
        timeout=600,
    )
