"""Reading two touching digits whole: the pair model's input, its generator, and how
segment and the Reader use it."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
from PIL import Image
from test_segment import as_page

from mnist_cnn.pair import (
    CLASSES,
    NOT_DIGITS,
    SHIPPED_PAIR_PATH,
    SINGLE,
    load_pair_score,
    make_pairs,
    pair_ink,
)
from mnist_cnn.preprocess import PAIR_SHAPE, normalise_pair
from mnist_cnn.reader import Reader
from mnist_cnn.segment import (
    PAIR_CLASSES,
    Cut,
    Part,
    agreed_cut,
    find_number,
    may_be_strokes,
    pair_of,
    pair_split,
    reads_as_pair,
)


def test_a_pair_is_laid_out_like_a_digit_at_twice_the_width():
    ink = np.zeros((40, 90), np.float32)
    ink[5:35, 10:80] = 1.0
    laid = normalise_pair(ink)
    assert laid.shape == PAIR_SHAPE and laid.dtype == np.uint8
    rows, cols = np.nonzero(laid)
    assert np.ptp(cols) + 1 <= 48 and np.ptp(rows) + 1 <= 20  # fits the 20x48 box, aspect kept
    assert abs(cols.mean() - 28) <= 1 and abs(rows.mean() - 14) <= 1  # centred by mass


def test_generated_pairs_are_reproducible_and_cover_every_kind(mnist):
    x, y = mnist.x_train[:500], mnist.y_train[:500]
    images, labels = make_pairs(x, y, 300, 0.25, seed=3, outlier_share=0.1)
    again, same = make_pairs(x, y, 300, 0.25, seed=3, outlier_share=0.1)
    assert images.shape == (300, *PAIR_SHAPE) and np.array_equal(images, again)
    assert np.array_equal(labels, same) and labels.max() < CLASSES
    assert {SINGLE, NOT_DIGITS} <= set(labels) and (labels < PAIR_CLASSES).sum() > 150
    assert (images.reshape(300, -1).max(axis=1) > 0).all()


def test_a_generated_pair_touches():
    rng = np.random.default_rng(0)
    ink = pair_ink(
        np.eye(28, dtype=np.uint8) * 255, np.fliplr(np.eye(28, dtype=np.uint8)) * 255, rng
    )
    count, _ = cv2.connectedComponents((ink > 0.3).astype(np.uint8))
    assert count <= 3  # background and the pair, or two pieces at a 2-pixel gap


def fake_pair(label: int):
    """A pair model that reads every piece as `label` (a pair 0..99, or not a pair)."""

    def score(crops: np.ndarray) -> np.ndarray:
        assert crops.shape[1:] == PAIR_SHAPE
        said = np.full((len(crops), CLASSES), 0.0001, np.float32)
        said[:, label] = 1.0
        return said / said.sum(axis=1, keepdims=True)

    return score


def unsure(digits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A digit model that reads nothing as a digit: no cut wins."""
    return np.full((len(digits), 10), 0.1, np.float32), np.zeros(len(digits), bool)


def bar_picture() -> Image.Image:
    """One wide piece, black on white: two rings joined by a bar."""
    paper = np.full((80, 160), 255, np.uint8)
    yy, xx = np.ogrid[:80, :160]
    for middle in (45, 110):
        ring = np.abs(np.hypot(yy - 40, xx - middle) - 24) < 4
        paper[ring] = 0
    paper[38:42, 60:95] = 0
    return Image.fromarray(paper)


def test_a_wide_piece_the_pair_model_reads_becomes_two_digits_carrying_its_reading():
    found = find_number(bar_picture(), score=unsure, pair=fake_pair(47))
    assert len(found.digits) == 2
    left, right = found.digits
    assert left.box[2] <= right.box[0] + 2
    assert int(np.argmax(left.reading)) == 4 and int(np.argmax(right.reading)) == 7


@pytest.mark.parametrize("label", [SINGLE, NOT_DIGITS])
def test_a_wide_piece_read_as_not_a_pair_stays_whole(label):
    found = find_number(bar_picture(), score=unsure, pair=fake_pair(label))
    assert len(found.digits) == 1 and found.digits[0].reading is None


def rings_cut(digits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A digit model for bar_picture under which the cut through the bar wins: a ring reads as
    an accepted 0 at 0.999, the wide whole as no digit."""
    probabilities = np.full((len(digits), 10), 0.001 / 9, np.float32)
    probabilities[:, 0] = 0.999
    spans = [np.ptp(np.nonzero(digit > 50), axis=1) for digit in digits]
    return probabilities, np.array([cols <= 1.3 * rows for rows, cols in spans])


@pytest.mark.parametrize(("label", "read"), [(47, [4, 7]), (0, None), (SINGLE, None)])
def test_a_cut_gives_way_to_the_pair_model_only_when_it_is_sure_of_another_pair(label, read):
    found = find_number(bar_picture(), score=rings_cut, pair=fake_pair(label))
    assert len(found.digits) == 2
    readings = [digit.reading for digit in found.digits]
    if read is None:  # the cut's own sides, read as 0 and 0 by the digit model
        assert readings == [None, None]
    else:
        assert [int(np.argmax(reading)) for reading in readings] == read


def test_a_pair_needs_more_certainty_where_the_digit_model_reads_one_digit_surely():
    said = np.zeros(CLASSES, np.float32)
    said[12], said[SINGLE] = 0.92, 0.08
    assert reads_as_pair(said, 0.0) and reads_as_pair(said, 0.99)
    assert not reads_as_pair(said, 0.9999)


def test_a_wide_piece_judged_no_digit_is_a_pair_where_the_pair_model_rules_no_digit_out():
    said = np.zeros(CLASSES, np.float32)
    said[47], said[SINGLE] = 0.65, 0.35  # unsure which pair, but sure it is digits
    assert reads_as_pair(said, 0.0)
    assert not reads_as_pair(said, 0.0, narrow=True)  # a single digit is a narrow piece
    said[SINGLE], said[NOT_DIGITS] = 0.25, 0.1  # as sure of the pair, not of the digits
    assert not reads_as_pair(said, 0.0)
    said[47], said[SINGLE] = 0.8, 0.1
    assert reads_as_pair(said, 0.9)  # the digit model read it as a digit: no such gate


def test_11_and_a_1_before_the_digit_read_surely_may_be_strokes():
    assert may_be_strokes(11, 0.0, -1) and may_be_strokes(10, 0.999, 0)
    assert not may_be_strokes(10, 0.9, 0)  # the digit model is unsure of the whole
    assert not may_be_strokes(10, 0.999, 6) and not may_be_strokes(47, 0.999, 4)


def said_as(pair: int) -> np.ndarray:
    said = np.zeros(CLASSES, np.float32)
    said[pair] = 1.0
    return said


def ring(own: np.ndarray, centre: tuple[int, int], axes: tuple[int, int]) -> np.ndarray:
    """`own` with an ellipse's outline, 3 px wide, drawn in."""
    canvas = own.astype(np.uint8)
    cv2.ellipse(canvas, centre, axes, 0, 0, 360, 1, 3)
    return canvas.astype(bool)


def test_two_touching_ones_are_a_pair_where_their_sides_stand_apart():
    own = np.zeros((40, 24), bool)
    own[:, 3:7] = own[:, 15:19] = True
    own[20:23, 7:15] = True  # where they touch
    sides = pair_of(Part(own, (0, 0, 24, 40)), said_as(11), 0.999, narrow=True, digit=1)
    assert sides is not None and [side.height for side in sides] == [40, 40]


@pytest.mark.parametrize(("start", "split"), [(12, True), (20, False)])
def test_two_touching_ones_may_differ_in_height_by_a_third(start, split):
    own = np.zeros((40, 24), bool)
    own[:, 3:7] = True
    own[start:, 15:19] = True  # the second 1 is 0.7 (0.5) of the first's height
    own[24:27, 7:15] = True  # where they touch
    sides = pair_of(Part(own, (0, 0, 24, 40)), said_as(11), 0.999, narrow=True, digit=1)
    assert (sides is not None) == split
    if split:
        assert sorted(side.height for side in sides) == [40 - start, 40]


def test_a_0_with_a_lead_in_or_a_stroke_inside_is_not_split_as_10():
    lead_in = ring(np.zeros((40, 34), bool), (20, 20), (11, 18))
    lead_in[30:38, 2:5] = True  # a short stroke into the ring from below, left
    lead_in[29:32, 4:10] = True
    inside = ring(np.zeros((40, 30), bool), (15, 20), (12, 18))
    inside[6:34, 10:13] = True  # an upright inside the ring
    for own in (lead_in, inside):
        part = Part(own, (0, 0, own.shape[1], own.shape[0]))
        assert reads_as_pair(said_as(10), 0.999, narrow=True)
        assert pair_of(part, said_as(10), 0.999, narrow=True, digit=0) is None
        assert pair_of(part, said_as(10), 0.9, narrow=True, digit=0) is not None  # unsure of 0


def test_a_cut_is_kept_where_its_sides_read_as_the_pair_the_pair_model_finds_likeliest():
    own = np.ones((30, 60), bool)
    cut = Cut(Part(own[:, :30], (0, 0, 30, 30)), Part(own[:, 30:], (30, 0, 60, 30)), 1, False)
    other = Cut(Part(own[:, :20], (0, 0, 20, 30)), Part(own[:, 20:], (20, 0, 60, 30)), 1, False)
    said = np.zeros(CLASSES, np.float32)
    said[27], said[SINGLE] = 0.6, 0.4  # too unsure to take alone
    options = [(other, np.array([0.9, 0.8]), np.array([2, 1])), (cut, np.array([0.7, 0.9]), [2, 7])]
    assert agreed_cut(said, 0.8, 2, options) is cut
    assert agreed_cut(said, 0.0, 2, options) is None  # the whole judged not a digit
    unread = [(cut, np.array([0.0, 0.9]), np.array([2, 7]))]  # a side not accepted
    assert agreed_cut(said, 0.8, 2, unread) is None
    looped = [(replace(cut, loop=True), np.array([0.7, 0.9]), np.array([2, 7]))]
    assert agreed_cut(said, 0.8, 2, looped) is None  # one closed shape cut in two
    said[27], said[SINGLE] = 0.45, 0.55  # the pair model finds one digit likeliest
    assert agreed_cut(said, 0.8, 2, options) is None
    ten = np.zeros(CLASSES, np.float32)
    ten[10], ten[SINGLE] = 0.6, 0.4  # a stroke beside a 0 the digit model reads surely
    strokes = [(cut, np.array([0.9, 0.9]), np.array([1, 0]))]
    assert agreed_cut(ten, 0.999, 0, strokes) is None
    assert agreed_cut(ten, 0.9, 0, strokes) is cut


def test_the_split_sides_carry_the_marginals_of_the_pairs():
    own = np.zeros((30, 60), bool)
    own[5:25, 5:55] = True
    said = np.zeros(CLASSES, np.float32)
    said[12], said[13], said[SINGLE] = 0.6, 0.2, 0.2
    left, right = pair_split(Part(own, (0, 0, 60, 30)), said)
    np.testing.assert_allclose(left.reading[1], 1.0, atol=1e-6)
    np.testing.assert_allclose(right.reading[[2, 3]], [0.75, 0.25], atol=1e-6)
    assert left.box[2] <= right.box[0] and left.own.sum() + right.own.sum() == own.sum()


def sure(digits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A digit model that reads everything as an accepted 2 at 0.99999: no cut wins."""
    probabilities = np.full((len(digits), 10), 0.00001 / 9, np.float32)
    probabilities[:, 2] = 0.99999
    return probabilities, np.ones(len(digits), bool)


def refuse(crops: np.ndarray) -> np.ndarray:
    raise AssertionError("the pair model was asked")


def test_narrow_pieces_read_surely_or_thinner_than_a_pair_never_reach_the_pair_model(mnist):
    two = as_page(mnist.x_test[1])  # narrower than tall
    one = as_page(mnist.x_test[2])  # a 1, a third as wide
    assert len(find_number(two, score=sure, pair=refuse).digits) == 1
    assert len(find_number(one, score=unsure, pair=refuse).digits) == 1


@pytest.mark.parametrize(("label", "count"), [(47, 2), (SINGLE, 1)])
def test_a_narrow_piece_the_digit_model_is_unsure_of_is_read_by_the_pair_model(mnist, label, count):
    found = find_number(as_page(mnist.x_test[1]), score=unsure, pair=fake_pair(label))
    assert len(found.digits) == count
    if count == 2:
        assert [int(np.argmax(digit.reading)) for digit in found.digits] == [4, 7]


@pytest.mark.skipif(not SHIPPED_PAIR_PATH.is_file(), reason="no shipped pair model")
def test_the_shipped_pair_model_reads_touching_pairs_of_test_digits(mnist):
    images, labels = make_pairs(mnist.x_test, mnist.y_test, 200, 0.0, seed=7)
    said = load_pair_score()(images)
    assert np.mean(said.argmax(axis=1) == labels) >= 0.85


@pytest.mark.skipif(not SHIPPED_PAIR_PATH.is_file(), reason="no shipped pair model")
@pytest.mark.parametrize(("seed", "expected"), [(6, "12"), (7, "70"), (18, "79")])
def test_the_reader_reads_touching_pairs_the_cut_leaves_whole(
    committed_model_path, mnist, seed, expected
):
    # Two MNIST test digits touching on plain paper (tests/test_segment.py's generator): the
    # cut reads them as one digit, the pair model reads them whole.
    from test_segment import number_picture

    from mnist_cnn.predict import load_classifier

    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(mnist.x_test), 2, replace=False)
    picture, _ = number_picture(list(mnist.x_test[chosen]), "plain", rng, touching=True)
    classifier = load_classifier(committed_model_path)[0]
    without = Reader.from_classifier(classifier, pairs=False)
    assert without.pair_score is None and len(without.read(picture).digits) == 1
    reading = Reader.from_classifier(classifier).read(picture)
    assert reading.number == expected and all(digit.is_digit for digit in reading.digits)


@pytest.mark.skipif(not SHIPPED_PAIR_PATH.is_file(), reason="no shipped pair model")
def test_a_digit_crossed_by_lines_is_not_read_as_a_pair(committed_model_path, mnist):
    # Two straight or zigzag lines through each digit make its piece as wide as a pair; a pair
    # model that never saw one read a 6 crossed by a scribble as 46 (10 more of these 400
    # digits read as two digits than without it; 2 more once it was taught such digits).
    from mnist_cnn.degrade import crossing_lines
    from mnist_cnn.predict import load_classifier

    crossed = crossing_lines(mnist.x_test[:400], np.random.default_rng(5), (2, 2))
    pages = [as_page(digit) for digit in crossed]
    classifier = load_classifier(committed_model_path)[0]

    def two_or_more(reader: Reader) -> int:
        readings = reader.read_many(pages)
        return sum(not isinstance(r, Exception) and len(r.digits) >= 2 for r in readings)

    without = two_or_more(Reader.from_classifier(classifier, pairs=False))
    assert two_or_more(Reader.from_classifier(classifier)) <= without + 4


@pytest.mark.slow
def test_the_training_entry_writes_the_model_and_its_onnx_export(tmp_path):
    from mnist_cnn.pair import main

    out = tmp_path / "pair.keras"
    main(["--examples", "300", "--epochs", "1", "--out", str(out)])
    said = load_pair_score(out)(np.zeros((2, *PAIR_SHAPE), np.uint8))
    assert said.shape == (2, CLASSES) and np.allclose(said.sum(axis=1), 1.0, atol=1e-5)


def test_a_pair_model_you_train_is_never_taken_for_your_latest_digit_model(tmp_path, monkeypatch):
    from mnist_cnn.config import latest_user_model
    from mnist_cnn.pair import user_pair_path

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    user_pair_path().parent.mkdir(parents=True)
    user_pair_path().write_bytes(b"a pair model")
    assert tmp_path in user_pair_path().parents and latest_user_model() is None
