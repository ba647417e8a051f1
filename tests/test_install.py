"""`pip install .`: the package, its data and its console commands work outside the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

pytestmark = pytest.mark.slow  # builds and installs the package: about 10 s

# What a source distribution holds: the package, the bundled MNIST and the build's metadata.
SOURCES = ("pyproject.toml", "README.md", "mnist_cnn", "data/mnist")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The package installed with pip from a copy of its sources (the build writes beside them):
    (the folder it was installed into, an environment that imports it from there)."""
    root = tmp_path_factory.mktemp("install")
    source, target = root / "source", root / "site"
    for name in SOURCES:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        if (REPO_ROOT / name).is_dir():
            caches = shutil.ignore_patterns("__pycache__")
            shutil.copytree(REPO_ROOT / name, source / name, ignore=caches)
        else:
            shutil.copy(REPO_ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        check=True, capture_output=True, cwd=root, timeout=300,
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(target)}
    return target, env


def test_the_api_reads_a_picture_with_the_installed_model_and_data(installed, tmp_path):
    target, env = installed
    code = (
        "import mnist_cnn, mnist_cnn.data as data\n"
        "from mnist_cnn import Reader\n"
        "reader = Reader()\n"
        "print(mnist_cnn.__file__, reader.model_path, data.BUNDLED_DATA_DIR, sep='\\n')\n"
        f"print(reader.read({str(REPO_ROOT / 'tests/data/two_digits.png')!r}).number)\n"
        "print(data.load_mnist().x_test.shape)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    package, model, mnist, number, shape = result.stdout.splitlines()
    for path in (package, model, mnist):
        assert path.startswith(str(target)), path
    assert number == "42" and shape == "(10000, 28, 28)"


@pytest.mark.parametrize("command", ["mnist-read", "mnist-train", "mnist-evaluate", "mnist-serve"])
def test_each_console_command_answers_version(installed, command, tmp_path):
    target, env = installed
    result = subprocess.run(
        [str(target / "bin" / command), "--version"],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(command)
