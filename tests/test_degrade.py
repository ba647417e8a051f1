"""mnist_cnn.degrade: shapes, seeding and what each degradation is meant to do."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mnist_cnn.data import make_dataset
from mnist_cnn.degrade import DEGRADATIONS, degrade, degrade_batch, line_kernel

COUNT = 16


@pytest.fixture(scope="module")
def digits(mnist) -> np.ndarray:
    """A few MNIST training digits, uint8 (N, 28, 28)."""
    return mnist.x_train[:COUNT]


@pytest.mark.parametrize("name", DEGRADATIONS)
def test_shape_dtype_seed_and_change(name, digits):
    out = degrade(digits, name, seed=0)
    assert out.shape == digits.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(degrade(digits, name, seed=0), out)
    assert not np.array_equal(degrade(digits, name, seed=1), out) or name == "hollow_strokes"
    assert not np.array_equal(out, digits)


def test_the_input_is_left_alone(digits):
    before = digits.copy()
    for name in DEGRADATIONS:
        degrade(digits, name)
    np.testing.assert_array_equal(digits, before)


def test_unknown_name_is_refused(digits):
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade(digits, "frost")


def test_tinted_paper_raises_the_background_not_the_ink(digits):
    out = degrade(digits, "tinted_paper").astype(float)
    background, ink = digits == 0, digits == 255
    assert out[background].mean() > 30
    assert out[ink].min() >= 250


def test_low_contrast_shrinks_the_range(digits):
    out = degrade(digits, "low_contrast").astype(int)
    spans = out.max(axis=(1, 2)) - out.min(axis=(1, 2))
    assert np.all(spans < 0.6 * 255)


def test_blurs_keep_the_ink_and_its_centre(digits):
    for name in ("defocus_blur", "motion_blur"):
        out = degrade(digits, name)
        np.testing.assert_allclose(out.sum(axis=(1, 2)), digits.sum(axis=(1, 2)), rtol=0.05)
        for before, after in zip(digits, out, strict=True):
            shift = np.subtract(ndimage.center_of_mass(after), ndimage.center_of_mass(before))
            assert np.all(np.abs(shift) < 1.0), name


def test_line_kernel_is_a_normalised_line():
    kernel = line_kernel(5, 0.0)
    assert kernel.shape == (5, 5) and np.isclose(kernel.sum(), 1.0)
    np.testing.assert_allclose(kernel[2].sum(), 1.0, atol=1e-6)  # horizontal: the middle row


def test_hollow_strokes_empty_the_middle_of_thick_strokes():
    square = np.zeros((1, 28, 28), np.uint8)
    square[0, 8:20, 8:20] = 255
    out = degrade(square, "hollow_strokes")[0]
    assert (
        out[14, 14] == 0 and out[5:10, 14].max() == 255
    )  # the outline, with or without thickening


def test_crossing_lines_only_add_ink(digits):
    out = degrade(digits, "crossing_lines")
    assert np.all(out >= digits)
    assert np.all((out > digits).any(axis=2).sum(axis=1) >= 1)  # each image got a line


def test_salt_and_pepper_sets_pixels_to_the_extremes(digits):
    out = degrade(digits, "salt_and_pepper")
    changed = out != digits
    assert 0.0 < changed.mean() < 0.21
    assert set(np.unique(out[changed])) <= {0, 255}


def test_degrade_batch_changes_the_chosen_share_and_leaves_its_input_alone(digits):
    before = digits.copy()
    rng = np.random.default_rng(0)
    assert np.array_equal(degrade_batch(digits, rng, 0.0), digits)
    changed = (degrade_batch(digits, rng, 1.0) != digits).any(axis=(1, 2))
    assert changed.mean() > 0.8  # a few degradations may leave a digit as it was
    assert np.array_equal(digits, before)


def test_the_training_pipeline_degrades_batches_reproducibly(digits):
    targets = np.zeros((len(digits), 10), np.float32)
    first = [x.numpy() for x, _ in make_dataset(digits, targets, 4, shuffle_seed=3, degrade=1.0)]
    again = [x.numpy() for x, _ in make_dataset(digits, targets, 4, shuffle_seed=3, degrade=1.0)]
    clean = [x.numpy() for x, _ in make_dataset(digits, targets, 4, shuffle_seed=3)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, clean, strict=True))
    assert all(
        a.shape == b.shape and a.dtype == np.float32 for a, b in zip(first, clean, strict=True)
    )
