"""The ensemble: averaged probabilities, one .keras file the other scripts take, clear errors."""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import REPO_ROOT, run_script

from mnist_cnn.model import build_model, load_trained_model


@pytest.fixture(scope="module")
def members(tmp_path_factory, tiny_model_path):
    """Two models that disagree: the tiny trained one and an untrained one of the same design."""
    keras.utils.set_random_seed(1)
    untrained = tmp_path_factory.mktemp("untrained") / "untrained.keras"
    build_model().save(untrained)
    return [tiny_model_path, untrained]


@pytest.fixture(scope="module")
def ensemble_path(tmp_path_factory, members):
    """The ensemble of `members`, made by the command a user runs."""
    output = tmp_path_factory.mktemp("ensemble") / "ensemble.keras"
    result = run_ensemble("--output", str(output), *map(str, members))
    assert result.returncode == 0, result.stderr[-2000:]
    assert str(output) in result.stdout
    return output


def run_ensemble(*args: str) -> subprocess.CompletedProcess:
    """`python -m mnist_cnn.ensemble ARGS`, as a user runs it from the repository root."""
    command = [sys.executable, "-m", "mnist_cnn.ensemble", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)


def test_the_saved_ensemble_predicts_the_mean_of_its_members(ensemble_path, members, mnist):
    images = mnist.x_test[:64, ..., None].astype(np.float32) / 255.0
    each = [load_trained_model(path).predict(images, verbose=0) for path in members]
    assert not np.allclose(each[0], each[1], atol=1e-3)  # else the mean proves nothing
    ensemble = load_trained_model(ensemble_path)
    np.testing.assert_allclose(
        ensemble.predict(images, verbose=0), np.mean(each, axis=0), atol=1e-6
    )
    assert not list(ensemble_path.parent.glob(".*partial*"))  # the temporary file was renamed


@pytest.mark.slow
def test_test_model_reads_digits_with_the_ensemble(ensemble_path, tmp_path, mnist):
    from PIL import Image

    digit = tmp_path / "digit.png"
    Image.fromarray(255 - mnist.x_test[0]).resize((112, 112)).save(digit)
    result = run_script("test_model.py", str(digit), "--model-path", str(ensemble_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "digit.png" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--output", "{tmp}/e.keras", "{a}"], "needs at least 2 models, got 1"),
        (["--output", "{tmp}/e.h5", "{a}", "{a}"], "e.h5: the ensemble is saved as a Keras file"),
        (["--output", "{tmp}/e.keras", "{a}", "{tmp}/nope.keras"], "nope.keras: no model here"),
    ],
    ids=["one member", "not .keras", "missing member"],
)
@pytest.mark.slow
def test_bad_input_gets_one_line_and_no_file(tmp_path, tiny_model_path, args, message):
    filled = [arg.format(tmp=tmp_path, a=tiny_model_path) for arg in args]
    result = run_ensemble(*filled)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert message.format(tmp=tmp_path) in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("e*"))


def test_help_explains_every_flag():
    result = run_ensemble("--help")
    assert result.returncode == 0
    assert "--output" in result.stdout and "members" in result.stdout
