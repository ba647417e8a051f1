"""Exported models (ONNX, LiteRT) and the engines that run them: parity, selection, bad files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, run_script
from PIL import Image, ImageOps

from mnist_cnn import ood
from mnist_cnn.config import SHIPPED_MODELS_DIR
from mnist_cnn.engine import (
    KerasEngine,
    OnnxEngine,
    load_default_engine,
    load_engine,
)
from mnist_cnn.errors import UserError
from mnist_cnn.files import file_sha256
from mnist_cnn.predict import load_classifier

PARITY_IMAGES = 500  # the full 10,000 run in benchmarks/export_parity.py


@pytest.fixture(scope="module")
def exported(tiny_model_path, tmp_path_factory) -> Path:
    """A copy of the tiny model with its statistics, exported by the real command line with
    --litert; returns the copied .keras path."""
    folder = tmp_path_factory.mktemp("exported")
    keras_path = Path(shutil.copy(tiny_model_path, folder / "tiny.keras"))
    shutil.copy(tiny_model_path.with_name("tiny_ood.json"), folder / "tiny_ood.json")
    result = subprocess.run(
        [sys.executable, "-m", "mnist_cnn.export", str(keras_path), "--litert"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # TensorFlow's and the converters' log lines hidden
    assert (
        str(folder / "tiny.onnx") in result.stdout and str(folder / "tiny.tflite") in result.stdout
    )
    return keras_path


def test_export_writes_no_temporary_files_and_records_the_source(exported):
    assert sorted(p.name for p in exported.parent.iterdir()) == [
        "tiny.keras", "tiny.onnx", "tiny.tflite", "tiny_ood.json"
    ]  # fmt: skip
    assert OnnxEngine(exported.with_suffix(".onnx")).model_sha256() == file_sha256(exported)


@pytest.mark.parametrize(("suffix", "tolerance"), [(".onnx", 1e-4), (".tflite", 1e-3)])
def test_exports_agree_with_keras(exported, mnist, suffix, tolerance):
    digits = mnist.x_test[:PARITY_IMAGES]
    reference = load_engine(exported).predict(digits)
    probabilities = load_engine(exported.with_suffix(suffix)).predict(digits)
    np.testing.assert_array_equal(probabilities.argmax(1), reference.argmax(1))
    assert np.abs(probabilities - reference).max() <= tolerance


def test_onnx_model_reads_files_without_importing_tensorflow(exported, mnist, tmp_path):
    picture = tmp_path / "seven.png"
    ImageOps.invert(Image.fromarray(mnist.x_test[0]).resize((112, 112))).save(picture)
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['test_model.py', {str(picture)!r}, '--model-path', "
        f"{str(exported.with_suffix('.onnx'))!r}]\n"
        "try:\n"
        f"    runpy.run_path({str(REPO_ROOT / 'test_model.py')!r}, run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    print('exit', exit.code)\n"
        "print('tensorflow loaded:', 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{picture}: ") and lines[1:] == [
        "exit 0",
        "tensorflow loaded: False",
    ]
    assert result.stderr == ""


def test_default_model_is_the_onnx_export_made_from_it(exported):
    engine, note = load_default_engine(exported)
    assert isinstance(engine, OnnxEngine) and note is None


def test_an_export_of_another_model_is_never_used_silently(exported, tmp_path, capsys):
    folder = tmp_path / "stale"
    folder.mkdir()
    keras_path = folder / "tiny.keras"
    shutil.copy(exported, keras_path)
    shutil.copy(exported.with_suffix(".onnx"), folder / "tiny.onnx")
    with zipfile.ZipFile(keras_path, "a") as archive:  # the same weights, but another file
        archive.writestr("extra.txt", "retrained")
    engine, note = load_default_engine(keras_path)
    assert isinstance(engine, KerasEngine)
    assert note.startswith(f"note: using {keras_path}: {folder / 'tiny.onnx'} was exported from")
    _, notes = load_classifier(folder / "tiny.onnx")
    assert any("SHA-256 differs" in line for line in notes)


def onnx_model(path: Path, input_shape: list, classes: int) -> Path:
    """A small valid ONNX model: flatten, then one matrix product to `classes` outputs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(
        np.zeros((int(np.prod(input_shape)), classes), np.float32), "w"
    )
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["x"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["y"]),
        ],
        "foreign",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", *input_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", classes])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p, "no model here"),
        (lambda p: (p.write_bytes(b"\x08\x07garbage"), p)[1], "cannot load the ONNX model"),
        (lambda p: onnx_model(p, [3, 32, 32], 10), "not 28x28x1 digits"),
        (lambda p: onnx_model(p, [28, 28, 1], 5), "not 10 class probabilities"),
    ],
    ids=["missing", "garbage", "input-3x32x32", "five-outputs"],
)
def test_bad_onnx_files_are_one_line_errors(tmp_path, make, reason):
    path = make(tmp_path / "bad.onnx")
    with pytest.raises(UserError, match=reason) as error:
        load_engine(path)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_truncated_onnx_file_through_the_command_line(exported, tmp_path):
    onnx_bytes = exported.with_suffix(".onnx").read_bytes()
    truncated = tmp_path / "half.onnx"
    truncated.write_bytes(onnx_bytes[: len(onnx_bytes) // 2])
    result = run_script("test_model.py", "any.png", "--model-path", str(truncated))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {truncated}: cannot load the ONNX model")
    assert result.stderr.count("\n") == 1


# Each shipped model with its export and statistics, and the test accuracy it was shipped
# for (docs/results.md), checked through its ONNX export.
COMMITTED_SETS = (("mnist_cnn", 0.9940), ("mnist_cnn_strong", 0.9965))


@pytest.mark.parametrize(("stem", "accuracy"), COMMITTED_SETS)
def test_each_committed_model_export_and_statistics_are_one_set(stem, accuracy, mnist):
    keras_path = SHIPPED_MODELS_DIR / f"{stem}.keras"
    sha256 = file_sha256(keras_path)
    onnx = OnnxEngine(keras_path.with_suffix(".onnx"))
    assert onnx.model_sha256() == sha256  # exported from this very file
    stats, line = ood.load_stats(keras_path, sha256)
    assert stats is not None, line  # fitted for this very file
    assert (onnx.predict(mnist.x_test).argmax(1) == mnist.y_test).mean() >= accuracy


def test_reading_on_onnx_runtime_writes_no_device_id_nor_telemetry(tmp_path):
    # ONNX Runtime 1.29 and later write a device id and an event store under
    # ~/.cache/Microsoft and send usage events, unless told not to before it is imported.
    env = {key: value for key, value in os.environ.items() if key != "ORT_DISABLE_TELEMETRY"}
    env["HOME"] = str(tmp_path)
    env.pop("XDG_CACHE_HOME", None)
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "test_model.py"),
            "--shipped",
            "tests/data/two_digits.png",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert ": 42 (" in result.stdout
    assert not (tmp_path / ".cache" / "Microsoft").exists()
