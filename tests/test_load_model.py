"""Models from elsewhere: Keras 2 style .h5 files, (28, 28) and (784,) inputs, SavedModels."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import run_script
from PIL import Image, ImageOps

from mnist_cnn.errors import UserError
from mnist_cnn.model import load_trained_model

INPUTS = {"flat": (784,), "square": (28, 28)}


def save_dense_h5(path: Path, input_shape: tuple, mnist) -> Path:
    """A Sequential Flatten/Dense classifier on `input_shape`, trained briefly, saved as .h5."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input(input_shape), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    images = mnist.x_train[:2000].reshape(-1, *input_shape) / 255.0
    model.fit(images, mnist.y_train[:2000], epochs=3, verbose=0)
    model.save(path)  # the legacy HDF5 format, chosen by the .h5 suffix
    return path


@pytest.fixture(scope="module")
def h5_models(tmp_path_factory, mnist) -> dict[str, Path]:
    """One .h5 model per input shape of INPUTS, by name."""
    folder = tmp_path_factory.mktemp("h5")
    return {
        name: save_dense_h5(folder / f"{name}.h5", shape, mnist) for name, shape in INPUTS.items()
    }


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_an_h5_model_with_other_inputs_takes_digit_images(h5_models, name, mnist):
    model = load_trained_model(h5_models[name])
    assert tuple(model.input_shape[1:]) == (28, 28, 1)
    probabilities = model.predict(mnist.x_test[:500, ..., None] / 255.0, verbose=0)
    assert probabilities.shape == (500, 10)
    assert (probabilities.argmax(1) == mnist.y_test[:500]).mean() > 0.7  # fed the right shape


@pytest.mark.slow
def test_evaluate_model_reads_an_h5_model_of_flat_inputs(h5_models, tmp_path):
    model = h5_models["flat"]
    result = run_script(
        "evaluate_model.py", "--model-path", str(model), "--out-dir", str(tmp_path), "--json"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert '"accuracy": 0.' in result.stdout and "Traceback" not in result.stderr


@pytest.mark.slow
def test_test_model_reads_an_h5_model_of_28x28_inputs(h5_models, tmp_path, mnist):
    digit = tmp_path / "seven.png"
    ImageOps.invert(Image.fromarray(mnist.x_test[0]).resize((112, 112))).save(digit)
    result = run_script("test_model.py", str(digit), "--model-path", str(h5_models["square"]))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith(f"{digit}: {mnist.y_test[0]} (")


def test_a_savedmodel_folder_is_one_line_saying_how_to_convert_it(tmp_path):
    folder = tmp_path / "exported"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"\0")
    with pytest.raises(UserError, match="SavedModel") as error:
        load_trained_model(folder)
    message = str(error.value)
    assert message.startswith(str(folder)) and "\n" not in message
    assert ".save('model.h5')" in message


def test_a_wrapped_model_still_predicts_like_the_original(tmp_path):
    original = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, "softmax")])
    original.save(tmp_path / "flat.h5")
    images = np.random.default_rng(0).random((4, 28, 28, 1), np.float32)
    expected = original.predict(images.reshape(4, 784), verbose=0)
    wrapped = load_trained_model(tmp_path / "flat.h5").predict(images, verbose=0)
    np.testing.assert_allclose(wrapped, expected, rtol=1e-5)
