"""The teaching benchmark's made-up writers: every style draws every digit, the same way for
the same seed, and the taught and other pictures of the 8x8 writer never share a digit."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.teach import scan_pool
from benchmarks.writers import STYLES, draw_digit


@pytest.mark.parametrize("style", STYLES)
def test_each_style_draws_each_digit_dark_on_light_and_repeatably(style, mnist):
    pool = mnist.x_train[:50]
    for digit in range(10):
        picture = draw_digit(style, digit, "other", np.random.default_rng(digit), pool)
        again = draw_digit(style, digit, "other", np.random.default_rng(digit), pool)
        pixels = np.asarray(picture)
        assert picture.mode == "L" and np.array_equal(pixels, np.asarray(again))
        assert min(picture.size) >= 80 and np.median(pixels) > 200 and pixels.min() < 80


def test_an_unknown_style_is_refused():
    with pytest.raises(ValueError, match="unknown style"):
        draw_digit("copperplate", 3, "taught", np.random.default_rng(0))


def test_the_8x8_writer_never_scans_a_taught_digit_again(mnist):
    taught, other = scan_pool(mnist, 4, 0), scan_pool(mnist, 4, 1)
    assert len(taught) == len(other) > 0
    flat = {row.tobytes() for row in taught}
    assert not any(row.tobytes() in flat for row in other)
