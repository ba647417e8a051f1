"""Shared fixtures: the bundled data and a small model trained once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mnist_cnn import ood
from mnist_cnn.data import load_mnist, make_dataset, one_hot
from mnist_cnn.engine import KerasEngine
from mnist_cnn.files import file_sha256
from mnist_cnn.model import build_model

REPO_ROOT = Path(__file__).resolve().parent.parent
COMMITTED_MODEL = REPO_ROOT / "models" / "mnist_cnn.keras"


@pytest.fixture(scope="session", autouse=True)
def private_cache_home(tmp_path_factory):
    """Training runs (in-process and in subprocesses) cache their outliers in this test
    session's own folder, never in the user's ~/.cache."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache-home"))
    yield Path(os.environ["XDG_CACHE_HOME"])
    if before is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = before


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
    """The committed, fully trained model; tests of quality targets need it."""
    if not COMMITTED_MODEL.is_file():
        pytest.skip("models/mnist_cnn.keras is not there yet: run `python train_model.py`")
    return COMMITTED_MODEL


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
