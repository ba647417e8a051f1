"""A person's own digits: saving, listing, relabelling, deleting and reading the folder back."""

import numpy as np
import pytest
from PIL import Image

from mnist_cnn import own_digits
from mnist_cnn.errors import UserError
from mnist_cnn.preprocess import to_mnist


def digit_image(seed: int) -> np.ndarray:
    """A uint8 (28, 28) with a random blob of ink, different for each seed."""
    rng = np.random.default_rng(seed)
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 10:18] = rng.integers(0, 256, (16, 8), dtype=np.uint8)
    return digit


def test_a_saved_digit_is_read_back_unchanged(tmp_path):
    digit = digit_image(1)
    crop = np.full((40, 30), 255, np.uint8)
    path, new = own_digits.save_digit(tmp_path, 7, digit, crop)
    assert new and path.parent.name == "7"
    assert (tmp_path / own_digits.ORIGINALS / path.name).is_file()
    loaded = own_digits.load_own_digits(tmp_path)
    np.testing.assert_array_equal(loaded.images[0], digit)
    assert loaded.labels.tolist() == [7] and loaded.counts()[7] == 1
    # what preprocessing would make of it differs, so "unchanged" is a real check
    assert not np.array_equal(to_mnist(Image.open(path)), digit)


def test_the_same_digit_twice_is_one_file_and_takes_the_new_label(tmp_path):
    digit = digit_image(2)
    first, _ = own_digits.save_digit(tmp_path, 1, digit)
    second, new = own_digits.save_digit(tmp_path, 4, digit)
    assert not new and second.name == first.name and second.parent.name == "4"
    assert len(list(own_digits.saved_pictures(tmp_path))) == 1


def test_relabel_and_delete(tmp_path):
    path, _ = own_digits.save_digit(tmp_path, 3, digit_image(3), np.zeros((5, 5), np.uint8))
    moved = own_digits.relabel(tmp_path, path.name, 8)
    assert moved.parent.name == "8" and not path.exists()
    own_digits.delete(tmp_path, moved.name)
    assert not moved.exists() and not (tmp_path / own_digits.ORIGINALS / moved.name).exists()
    with pytest.raises(UserError, match="no such saved picture"):
        own_digits.delete(tmp_path, moved.name)


@pytest.mark.parametrize("name", ["../x.png", "/etc/passwd", ".hidden.png", "a/b.png", "x.txt"])
def test_a_client_name_is_never_a_path(tmp_path, name):
    with pytest.raises(UserError, match="not the name of a saved picture"):
        own_digits.delete(tmp_path, name)


@pytest.mark.parametrize("label", [10, -1, "a", "07", ""])
def test_labels_are_digits_only(tmp_path, label):
    with pytest.raises(UserError, match="not a digit label"):
        own_digits.save_digit(tmp_path, label, digit_image(4))


def test_any_picture_is_read_whole_as_one_digit(tmp_path):
    (tmp_path / "1").mkdir()
    picture = np.full((60, 40), 255, np.uint8)
    picture[10:50, 18:23] = 0  # a dark upright stroke on white paper
    Image.fromarray(picture).save(tmp_path / "1" / "mine.jpg")
    loaded = own_digits.load_own_digits(tmp_path)
    assert loaded.images.shape == (1, 28, 28) and loaded.images[0].max() > 200
    assert loaded.images[0][:, :4].max() == 0  # light ink on black, centred


def test_an_unreadable_picture_is_skipped_and_named(tmp_path):
    own_digits.save_digit(tmp_path, 2, digit_image(5))
    (tmp_path / "2" / "broken.png").write_bytes(b"not a picture")
    loaded = own_digits.load_own_digits(tmp_path)
    assert len(loaded.images) == 1
    assert len(loaded.skipped) == 1 and "broken.png" in loaded.skipped[0]


def test_bad_folders_get_one_line(tmp_path):
    with pytest.raises(UserError, match="not a folder of digits"):
        own_digits.load_own_digits(tmp_path / "missing")
    with pytest.raises(UserError, match="no readable picture"):
        own_digits.load_own_digits(tmp_path)
    (tmp_path / "seven").mkdir()
    with pytest.raises(UserError, match="'seven' is not a digit"):
        own_digits.load_own_digits(tmp_path)


def test_a_copied_picture_is_counted_once_and_named(tmp_path):
    path, _ = own_digits.save_digit(tmp_path, 3, digit_image(6))
    own_digits.save_digit(tmp_path, 3, digit_image(7))
    (tmp_path / "3" / "copy of it.png").write_bytes(path.read_bytes())
    (tmp_path / "5").mkdir()
    (tmp_path / "5" / "again.png").write_bytes(path.read_bytes())  # and filed as another digit
    loaded = own_digits.load_own_digits(tmp_path)
    assert loaded.labels.tolist() == [3, 3]
    assert len(loaded.skipped) == 2
    assert all("the same picture as" in message for message in loaded.skipped)
    assert any("again.png" in message for message in loaded.skipped)


def test_a_huge_photo_is_read_or_refused_in_one_line(tmp_path):
    (tmp_path / "1").mkdir()
    photo = np.full((3000, 4000), 235, np.uint8)  # 12 megapixels of paper
    photo[1000:2000, 1900:2050] = 30  # and a 1 on it
    Image.fromarray(photo).save(tmp_path / "1" / "photo.jpg", quality=90)
    noise = np.random.default_rng(0).integers(0, 256, (3000, 4000), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "1" / "too big.png")  # over MAX_PICTURE_BYTES
    loaded = own_digits.load_own_digits(tmp_path)
    assert loaded.labels.tolist() == [1] and loaded.images[0].max() > 200
    assert len(loaded.skipped) == 1 and "too big.png: larger than 5 MB" in loaded.skipped[0]
