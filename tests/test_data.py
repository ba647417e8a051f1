"""IDX parsing, checksums, the bundled data, the stratified split and the tf.data pipeline."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
from conftest import REPO_ROOT, run_script

from mnist_cnn.data import (
    CHECKSUMS,
    load_from_dir,
    load_idx,
    make_dataset,
    parse_idx,
    stratified_split,
)
from mnist_cnn.errors import UserError

BUNDLED = REPO_ROOT / "data" / "mnist"


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as an IDX file, the way the MNIST files are written."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def test_parse_idx_round_trips_an_array():
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(parse_idx(idx_bytes(array)), array)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x00\x00", "not an IDX file"),
        (b"\x00\x00\x0d\x01" + bytes(8), "wrong magic number"),
        (b"\x1f\x8b\x08\x01" + bytes(8), "wrong magic number"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
        (idx_bytes(np.zeros((4, 5), np.uint8))[:-3], "size mismatch"),
        (idx_bytes(np.zeros((4, 5), np.uint8)) + b"extra", "size mismatch"),
    ],
)
def test_parse_idx_rejects_malformed_files(raw, reason):
    with pytest.raises(UserError, match=reason):
        parse_idx(raw, "bad.idx")


def test_load_idx_reads_gzip_and_raw_alike(tmp_path):
    array = np.arange(60, dtype=np.uint8).reshape(3, 20)
    (tmp_path / "a.idx").write_bytes(idx_bytes(array))
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(load_idx(tmp_path / "a.idx"), load_idx(tmp_path / "a.idx.gz"))


def test_load_idx_rejects_a_wrong_checksum(tmp_path):
    path = tmp_path / "labels.idx"
    path.write_bytes(idx_bytes(np.zeros(10, np.uint8)))
    with pytest.raises(UserError, match=r"labels\.idx: checksum mismatch"):
        load_idx(path, sha256="0" * 64)


def test_load_idx_rejects_truncated_gzip_and_missing_files(tmp_path):
    truncated = tmp_path / "t.gz"
    truncated.write_bytes((BUNDLED / "t10k-labels-idx1-ubyte.gz").read_bytes()[:1000])
    with pytest.raises(UserError, match=r"t\.gz: cannot read"):
        load_idx(truncated)
    with pytest.raises(UserError, match="file not found"):
        load_idx(tmp_path / "absent.gz")


def test_bundled_data_has_mnist_shapes_dtypes_and_ranges(mnist):
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.y_train.shape == (60000,)
    assert mnist.x_test.shape == (10000, 28, 28) and mnist.y_test.shape == (10000,)
    for array in mnist:
        assert array.dtype == np.uint8
    assert mnist.x_train.max() == 255 and mnist.x_train.min() == 0
    assert set(np.unique(mnist.y_train)) == set(range(10))
    # The class counts published with the data (data/mnist/README.md).
    assert list(np.bincount(mnist.y_test)) == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    assert list(mnist.y_train[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_a_raw_uncompressed_copy_loads_the_same(tmp_path, mnist):
    for stem in CHECKSUMS:
        (tmp_path / stem).write_bytes(gzip.decompress((BUNDLED / f"{stem}.gz").read_bytes()))
    np.testing.assert_array_equal(load_from_dir(tmp_path).x_test, mnist.x_test)


def test_split_is_disjoint_complete_stratified_and_seeded(mnist):
    labels = mnist.y_train
    train, val = stratified_split(labels, 0.1, seed=7)
    assert len(np.intersect1d(train, val)) == 0
    assert len(train) + len(val) == len(labels)
    assert np.abs(np.bincount(labels[val]) - 0.1 * np.bincount(labels)).max() <= 1
    again_train, again_val = stratified_split(labels, 0.1, seed=7)
    np.testing.assert_array_equal(val, again_val)
    np.testing.assert_array_equal(train, again_train)
    assert not np.array_equal(val, stratified_split(labels, 0.1, seed=8)[1])


def test_split_rejects_a_fraction_outside_zero_one():
    with pytest.raises(UserError, match="between 0 and 1"):
        stratified_split(np.zeros(10, np.uint8), 1.5, seed=0)


def test_dataset_batches_are_scaled_with_a_channel_axis(mnist):
    images, labels = next(iter(make_dataset(mnist.x_test[:100], mnist.y_test[:100], 32)))
    assert images.shape == (32, 28, 28, 1) and images.dtype.name == "float32"
    assert float(images.numpy().min()) >= 0.0 and float(images.numpy().max()) <= 1.0
    np.testing.assert_allclose(images.numpy()[0, ..., 0], mnist.x_test[0] / 255.0, atol=1e-6)
    np.testing.assert_array_equal(labels.numpy(), mnist.y_test[:32])


def test_the_training_pipeline_runs_untuned_and_gives_each_image_once_an_epoch(mnist):
    labels = mnist.y_train[:300]
    dataset = make_dataset(
        mnist.x_train[:300], labels, 64, shuffle_seed=1, augment="shift", degrade=0.5
    )
    assert dataset.options().autotune.enabled is False  # autotuning stalls each epoch's end
    for _ in range(2):
        seen = np.concatenate([batch_labels.numpy() for _, batch_labels in dataset])
        np.testing.assert_array_equal(np.sort(seen), np.sort(labels))


def copy_data_with(tmp_path, stem: str, content: bytes):
    """A data folder with the bundled files, one of them replaced by `content`."""
    for name in CHECKSUMS:
        shutil.copy(BUNDLED / f"{name}.gz", tmp_path / f"{name}.gz")
    (tmp_path / f"{stem}.gz").write_bytes(content)
    return tmp_path


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (gzip.compress(idx_bytes(np.zeros(10000, np.uint8))), "checksum mismatch"),
        (b"\x1f\x8b\x08\x00garbage", "cannot read"),
    ],
    ids=["wrong-checksum", "corrupt-gzip"],
)
@pytest.mark.slow
def test_train_script_reports_bad_data_in_one_line(tmp_path, content, reason):
    data_dir = copy_data_with(tmp_path, "t10k-labels-idx1-ubyte", content)
    result = run_script("train_model.py", "--data-dir", str(data_dir), "--epochs", "1")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: ") and "t10k-labels-idx1-ubyte.gz" in last_line
    assert reason in last_line


@pytest.mark.slow
def test_train_script_reports_a_missing_data_file(tmp_path):
    data_dir = copy_data_with(tmp_path, "train-labels-idx1-ubyte", b"")
    (data_dir / "train-labels-idx1-ubyte.gz").unlink()
    result = run_script("train_model.py", "--data-dir", str(data_dir))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "train-labels-idx1-ubyte" in result.stderr and "file not found" in result.stderr


def test_without_bundled_files_keras_download_is_the_fallback(tmp_path, monkeypatch):
    import keras

    from mnist_cnn import data

    fake = ((np.zeros((2, 28, 28), np.uint8), np.zeros(2, np.uint8)),) * 2
    monkeypatch.setattr(data, "BUNDLED_DATA_DIR", tmp_path)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: fake)
    assert data.load_mnist().x_train.shape == (2, 28, 28)

    def offline():
        raise OSError("no network")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(UserError, match="git checkout -- data/mnist"):
        data.load_mnist()
