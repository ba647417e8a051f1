"""The MNIST-C port (benchmarks/mnist_c.py) and the robustness benchmark's scoring: fast checks
of properties of the published algorithms, no outputs copied from a run."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage import transform

# The port's motion blur is ImageMagick's, through Wand, as in the published code.
pytest.importorskip("wand.image", reason="ImageMagick's MagickWand is not installed")

from benchmarks.mnist_c import CORRUPTIONS, corrupt, old_affine_matrix, to_uint8
from benchmarks.robustness import as_page, score_product

COUNT = 8
SHIFT = 3  # translate's default severity (3) moves the digit 3 pixels along each axis


@pytest.fixture(scope="module")
def digits(mnist) -> np.ndarray:
    """A few MNIST test digits, uint8 (N, 28, 28)."""
    return mnist.x_test[:COUNT]


@pytest.fixture(scope="module")
def corrupted(digits) -> dict[str, np.ndarray]:
    """Each corruption of `digits`, seed 0."""
    return {name: corrupt(digits, name, seed=0) for name in CORRUPTIONS}


def test_the_fifteen_corruptions_of_the_benchmark():
    assert len(CORRUPTIONS) == len(set(CORRUPTIONS)) == 15


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_shape_range_and_change(name, digits, corrupted):
    out = corrupted[name]
    assert out.shape == digits.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255  # the published range: 0 to 255
    assert not np.allclose(out, digits, atol=1)
    assert to_uint8(out).dtype == np.uint8


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_same_seed_same_output(name, digits, corrupted):
    np.testing.assert_array_equal(corrupt(digits, name, seed=0), corrupted[name])


def test_random_corruptions_depend_on_the_seed(digits, corrupted):
    for name in ("shot_noise", "impulse_noise", "glass_blur", "fog", "zigzag", "translate"):
        assert not np.array_equal(corrupt(digits, name, seed=1), corrupted[name]), name


def test_the_callers_random_state_is_left_alone(digits):
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    corrupt(digits[:2], "fog", seed=0)
    np.testing.assert_array_equal(np.random.random(3), expected)


def test_brightness_raises_the_mean(digits, corrupted):
    # HSV value + 0.5: every pixel brightens, black paper becomes mid grey.
    assert np.all(corrupted["brightness"] >= digits.astype(np.float32) - 1)
    assert corrupted["brightness"].mean() > digits.mean() + 100


def test_translate_shifts_the_centre_of_mass(digits, corrupted):
    for before, after in zip(digits, corrupted["translate"], strict=True):
        shift = np.subtract(ndimage.center_of_mass(after), ndimage.center_of_mass(before))
        np.testing.assert_allclose(np.abs(shift), SHIFT, atol=0.6)


def test_canny_edges_are_binary(corrupted):
    assert set(np.unique(corrupted["canny_edges"])) <= {0.0, 255.0}


def test_stripe_inverts_the_outer_columns_only(digits, corrupted):
    out = corrupted["stripe"]
    np.testing.assert_array_equal(out[:, :, 7:21], digits[:, :, 7:21])
    np.testing.assert_array_equal(out[:, :, :7], 255 - digits[:, :, :7].astype(np.float32))


def test_impulse_noise_flips_about_its_amount(digits, corrupted):
    # severity 4: 17% of the pixels are set to 0 or 255 (some were already that value).
    changed = np.abs(corrupted["impulse_noise"] - digits) > 1
    assert 0.05 < changed.mean() < 0.17
    assert set(np.unique(corrupted["impulse_noise"][changed])) <= {0.0, 255.0}


def test_scale_shrinks_the_digit(digits, corrupted):
    # severity 3 maps by 1/0.7 from output to input: the digit shrinks to 0.7 of its size.
    ratio = corrupted["scale"].sum() / digits.sum()
    assert 0.7**2 - 0.1 < ratio < 0.7**2 + 0.1


def test_old_affine_matrix_matches_skimage_without_shear():
    # skimage changed only `shear`'s meaning; rotation, scale and translation must agree.
    for kwargs in ({"rotation": 0.4}, {"scale": (1.4, 1.4)}, {"translation": (3, -2)}):
        np.testing.assert_allclose(
            old_affine_matrix(**kwargs), transform.AffineTransform(**kwargs).params, atol=1e-12
        )


def test_page_form_is_black_on_white_and_ten_times_larger(digits):
    page = np.asarray(as_page(digits[0], "nearest"))
    assert page.shape == (280, 280)
    np.testing.assert_array_equal(page[::10, ::10], 255 - digits[0])


def test_score_product_counts_both_error_shapes():
    labels = np.array([3, 5, 7, 1])
    records = [
        {"path": "/t/fog/00000_3.png", "number": "3", "is_digit": True},
        {"path": "/t/fog/00001_5.png", "number": "5", "is_digit": False},
        {"path": "/t/fog/00002_7.png", "error": "no digit found"},
    ]
    stderr = ["error: /t/fog/00003_1.png: no digit found", "note: something else"]
    score = score_product(records, stderr, labels, ["fog"])["fog"]
    assert score.error == 0.75 and score.not_digit == 1 and score.refused == 2
    assert score.missing == 0
