"""Preprocessing a person's digit images: formats, geometry, bad input, and accuracy."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFilter, ImageOps

from mnist_cnn import preprocess
from mnist_cnn.engine import load_engine
from mnist_cnn.errors import UserError
from mnist_cnn.preprocess import (
    DIGIT_BOX,
    centre_of_mass,
    closed_stroke_width,
    denoise,
    open_image,
    stroke_width,
    to_mnist,
)
from mnist_cnn.reader import Reader, Reading
from mnist_cnn.synthetic import encode, person_style_files

LOSSLESS = [("PNG", {}), ("BMP", {}), ("TIFF", {}), ("GIF", {}), ("WEBP", {"lossless": True})]


def on_paper(digit: np.ndarray, canvas=(180, 140), at=(10, 30), size=112) -> Image.Image:
    """An MNIST digit enlarged and drawn black on white, away from the centre of a canvas."""
    paper = Image.new("L", canvas, 255)
    ink = Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC)
    paper.paste(ImageOps.invert(ink), at)
    return paper


def reference(digit: np.ndarray) -> np.ndarray:
    """What to_mnist makes of the plain greyscale drawing: the target for every encoding."""
    return to_mnist(on_paper(digit)).astype(int)


def ink_box(digit: np.ndarray) -> tuple[int, int]:
    """Height and width of the rectangle holding all non-zero pixels."""
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


@pytest.fixture(scope="module")
def seven(mnist) -> np.ndarray:
    """One MNIST test digit (a 7), uint8 28x28."""
    return mnist.x_test[0]


# --- geometry ---------------------------------------------------------------------------------


@pytest.mark.parametrize("at", [(0, 0), (60, 25), (68, 28)])
def test_digit_is_boxed_and_centred_wherever_it_was_drawn(seven, at):
    digit = to_mnist(on_paper(seven, at=at))
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    assert max(ink_box(digit)) <= DIGIT_BOX
    assert np.allclose(centre_of_mass(digit.astype(float)), (14, 14), atol=1.0)


def test_black_on_white_and_white_on_black_give_the_same_digit(seven):
    paper = on_paper(seven)
    assert np.abs(reference(seven) - to_mnist(ImageOps.invert(paper))).max() <= 1


def test_light_ink_on_grey_and_dark_ink_on_grey_are_both_found(seven):
    paper = np.asarray(on_paper(seven), dtype=float)
    dark_on_grey = Image.fromarray((paper * 0.6 + 60).astype(np.uint8))  # 60..213
    light_on_grey = ImageOps.invert(dark_on_grey)
    assert np.abs(to_mnist(dark_on_grey) - reference(seven)).mean() < 2
    assert np.abs(to_mnist(light_on_grey) - reference(seven)).mean() < 2


def test_mnist_digits_come_through_essentially_unchanged(mnist):
    digits = mnist.x_test[:500]
    through = np.stack([to_mnist(Image.fromarray(d)) for d in digits]).astype(int)
    assert np.abs(through - digits).mean() < 1.0  # grey levels out of 255


def test_thin_pen_strokes_are_widened_to_mnist_width():
    paper = Image.new("L", (300, 300), 255)
    paper.paste(0, (150, 40, 152, 260))  # a "1" drawn with a 2-pixel pencil
    paper.paste(0, (110, 40, 152, 42))
    digit = to_mnist(paper)
    assert stroke_width(digit / 255) >= 1.5


def test_speckles_below_the_noise_floor_do_not_move_the_digit(seven):
    rng = np.random.default_rng(0)
    paper = np.asarray(on_paper(seven), dtype=float)
    noisy = np.clip(paper - rng.uniform(0, 20, paper.shape), 0, 255).astype(np.uint8)
    assert np.abs(to_mnist(Image.fromarray(noisy)) - reference(seven)).mean() < 3


@pytest.mark.parametrize(("darkest", "noise"), [(245, 6), (200, 6), (150, 0), (150, 5)])
def test_photo_of_paper_with_light_falling_off_and_sensor_noise(seven, darkest, noise):
    rng = np.random.default_rng(0)
    paper = np.asarray(on_paper(seven), dtype=float) / 255  # 1 where paper shows, 0 under ink
    light = np.linspace(darkest, 245, paper.shape[1])[np.newaxis, :]
    photo = light * paper + 40 * (1 - paper) + rng.normal(0, noise, paper.shape)
    digit = to_mnist(Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)))
    assert np.abs(digit - reference(seven)).mean() < 4


# --- colour modes and file formats ------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "options"), LOSSLESS)
def test_lossless_formats_decode_to_the_same_digit(seven, fmt, options):
    decoded = to_mnist(open_image(encode(on_paper(seven), fmt, **options)))
    assert np.array_equal(decoded, reference(seven))


@pytest.mark.parametrize("mode", ["RGB", "CMYK", "L"])
def test_jpeg_in_rgb_cmyk_and_grey(seven, mode):
    image = on_paper(seven).convert(mode)
    decoded = to_mnist(open_image(encode(image, "JPEG", quality=90)))
    assert np.abs(decoded - reference(seven)).mean() < 3


def test_sixteen_bit_png_keeps_its_full_range(seven):
    wide = Image.fromarray(np.asarray(on_paper(seven)).astype(np.uint16) * 257)
    decoded = open_image(encode(wide, "PNG"))
    assert decoded.mode.startswith("I")
    assert np.abs(to_mnist(decoded) - reference(seven)).max() <= 1


@pytest.mark.parametrize("colour", [(20, 20, 20), (250, 250, 250), (0, 0, 200)])
def test_ink_of_any_colour_on_a_transparent_background(seven, colour):
    alpha = Image.new("L", (180, 140), 0)
    alpha.paste(Image.fromarray(seven).resize((112, 112), Image.Resampling.BICUBIC), (10, 30))
    layer = Image.new("RGBA", alpha.size, colour)
    layer.putalpha(alpha)  # straight alpha: one pen colour, the stroke's edges in the alpha
    decoded = to_mnist(open_image(encode(layer, "PNG")))
    assert np.abs(decoded - reference(seven)).mean() < 3


def test_an_opaque_alpha_channel_reads_exactly_as_the_colours_alone(seven):
    # The web page's canvas is an RGBA PNG with every pixel opaque: no paper can show through.
    rgb = on_paper(seven).convert("RGB")
    rgba = rgb.convert("RGBA")
    assert rgba.getchannel("A").getextrema() == (255, 255)
    np.testing.assert_array_equal(preprocess.to_grayscale(rgba), preprocess.to_grayscale(rgb))
    half = rgba.copy()
    half.putalpha(128)  # half see-through ink on black: now the paper shows, and counts
    assert not np.array_equal(preprocess.to_grayscale(half), preprocess.to_grayscale(rgb))


def test_palette_with_a_transparent_entry(seven):
    palette = on_paper(seven).convert("P")
    white = palette.getpixel((0, 0))
    decoded = to_mnist(open_image(encode(palette, "PNG", transparency=white)))
    assert np.abs(decoded - reference(seven)).mean() < 3


def test_bilevel_image(seven):
    bilevel = on_paper(seven).convert("1", dither=Image.Dither.NONE)
    decoded = to_mnist(open_image(encode(bilevel, "PNG")))
    assert np.array_equal(decoded, to_mnist(bilevel.convert("L")))


def test_exif_orientation_is_applied(seven):
    upright = on_paper(seven).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    decoded = open_image(encode(stored, "JPEG", quality=95, exif=exif))
    assert decoded.size == upright.size
    assert np.abs(to_mnist(decoded) - reference(seven)).mean() < 3


def test_big_jpeg_photo_is_decoded_at_a_reduced_scale(seven):
    photo = on_paper(seven).resize((3600, 2800)).convert("RGB")
    decoded = open_image(encode(photo, "JPEG", quality=80))
    assert 1024 <= max(decoded.size) <= 1800
    assert np.abs(to_mnist(decoded) - reference(seven)).mean() < 3


def test_animated_gif_uses_its_first_frame(seven, mnist):
    frames = [on_paper(seven), on_paper(mnist.x_test[1])]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert np.array_equal(to_mnist(open_image(gif)), reference(seven))


# --- bad input: one line naming the file and the reason ---------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares `width` x `height` pixels but holds none: a cheap decompression bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        png_chunk(kind, data)
        for kind, data in [(b"IHDR", ihdr), (b"IDAT", zlib.compress(b"")), (b"IEND", b"")]
    )


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("missing.png", None, "file not found"),
        ("empty.png", b"", "empty file"),
        ("notes.png", b"buy milk", "not an image"),
        ("random.jpg", bytes(range(256)) * 4, "not an image"),
    ],
)
def test_unreadable_files(tmp_path, name, content, reason):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=reason) as raised:
        open_image(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert "\n" not in str(raised.value)


def test_directory_is_not_an_image(tmp_path):
    with pytest.raises(UserError, match=rf"^{tmp_path}: is a directory"):
        open_image(tmp_path)


def test_empty_bytes_are_named_by_the_caller():
    with pytest.raises(UserError, match=r"^upload\.png: empty file$"):
        open_image(b"", name="upload.png")


def test_truncated_image(seven):
    whole = encode(on_paper(seven), "PNG")
    with pytest.raises(UserError, match=r"^cut\.png: truncated or corrupt"):
        open_image(whole[: len(whole) // 2], name="cut.png")


def test_huge_declared_size_is_refused_before_decoding():
    with pytest.raises(UserError, match=r"^bomb\.png: too many pixels"):
        open_image(png_header(100_000, 100_000), name="bomb.png")


def test_just_over_the_cap_is_refused_not_warned(monkeypatch, seven):
    monkeypatch.setattr(preprocess, "MAX_PIXELS", 1000)
    with pytest.raises(UserError, match="too many pixels"):
        open_image(encode(on_paper(seven), "PNG"), name="big.png")


def test_pillow_warning_band_is_refused_too():
    # Between Pillow's cap and twice it, Pillow only warns: that must still be an error here.
    with pytest.raises(UserError, match="too many pixels"):
        open_image(png_header(7_000, 7_000), name="warned.png")


@pytest.mark.parametrize("fill", [255, 0, 128])
def test_blank_image_has_no_digit(fill):
    with pytest.raises(UserError, match=r"^blank\.png: no digit found$"):
        to_mnist(Image.new("L", (64, 64), fill), name="blank.png")


def test_faint_jpeg_noise_is_not_a_digit():
    rng = np.random.default_rng(1)
    paper = Image.fromarray(rng.integers(240, 256, (80, 80), dtype=np.uint8))
    with pytest.raises(UserError, match="no digit found"):
        to_mnist(open_image(encode(paper, "JPEG")), name="noise.jpg")


def test_reading_files_keeps_good_ones_and_reports_bad_ones(tmp_path, seven):
    good = tmp_path / "seven.png"
    on_paper(seven).save(good)
    read, gone = Reader(accept_all=True).read_many([good, tmp_path / "gone.png"], single=True)
    assert isinstance(read, Reading) and read.digits[0].image.shape == (28, 28)
    assert str(gone) == f"{tmp_path / 'gone.png'}: file not found"


# --- accuracy with the committed model ---------------------------------------------------------

PERSON_DIGITS = 1000
THIN_PEN_DIGITS = 300
SEED = 20240611


def accuracy(model_path, digits: np.ndarray, labels: np.ndarray) -> float:
    """Share of digits the model classifies as their label."""
    probs = load_engine(model_path).predict(digits)
    return float((probs.argmax(axis=1) == labels).mean())


@pytest.mark.slow
def test_all_mnist_test_digits_through_preprocessing(committed_model_path, mnist):
    digits = np.stack([to_mnist(Image.fromarray(d)) for d in mnist.x_test])
    score = accuracy(committed_model_path, digits, mnist.y_test)
    print(f"\nMNIST test digits through preprocessing: {score:.2%}")  # shown with pytest -s
    assert score >= 0.99


@pytest.mark.slow
def test_digits_saved_the_way_people_save_them(committed_model_path, mnist, tmp_path):
    rng = np.random.default_rng(SEED)
    chosen = rng.choice(len(mnist.x_test), PERSON_DIGITS, replace=False)
    paths = []
    for n, (data, suffix) in enumerate(person_style_files(mnist.x_test[chosen], SEED)):
        path = tmp_path / f"{n:04d}.{suffix}"
        path.write_bytes(data)
        paths.append(path)
    read = Reader(accept_all=True).read_many(paths, single=True)
    assert all(isinstance(reading, Reading) for reading in read)
    digits = np.stack([reading.digits[0].image for reading in read])
    score = accuracy(committed_model_path, digits, mnist.y_test[chosen])
    print(f"\nDigits saved the way people save them: {score:.2%}")  # shown with pytest -s
    assert score >= 0.97


def with_thin_pen(digit: np.ndarray) -> Image.Image:
    """A test digit redrawn black on white with a pen about half as wide as MNIST's."""
    ink = Image.fromarray(digit).resize((140, 140), Image.Resampling.BICUBIC)
    paper = ink.point(lambda v: 0 if v > 128 else 255)
    return paper.filter(ImageFilter.MaxFilter(7))  # white spreading over black: thinner ink


def test_digits_drawn_with_a_thin_pen(committed_model_path, mnist):
    rng = np.random.default_rng(SEED)
    chosen = rng.choice(len(mnist.x_test), THIN_PEN_DIGITS, replace=False)
    digits = np.stack([to_mnist(with_thin_pen(mnist.x_test[i])) for i in chosen])
    assert accuracy(committed_model_path, digits, mnist.y_test[chosen]) >= 0.92


def test_a_speckled_stroke_is_not_thickened_but_a_thin_pen_is(mnist):
    digit = mnist.x_test[0].astype(np.float32) / 255
    rng = np.random.default_rng(0)
    speckled = np.where(rng.random(digit.shape) < 0.5, digit, 0.0)  # half the ink knocked out
    assert stroke_width(speckled) / speckled.shape[0] < preprocess.THIN_STROKE  # looks thin ...
    assert closed_stroke_width(speckled) / speckled.shape[0] >= preprocess.THIN_STROKE
    np.testing.assert_array_equal(preprocess.thicken(speckled), speckled)  # ... yet kept as is
    thin = np.zeros((200, 120), np.float32)
    thin[10:190, 58:61] = 1.0  # a 1 drawn with a 3-pixel pen on a 200-pixel-high crop
    widened = preprocess.thicken(thin)  # redrawn at the work size, the pen widened
    assert stroke_width(widened) / max(widened.shape) > 2 * stroke_width(thin) / max(thin.shape)


# --- the paper's level and the whole picture as one frame -------------------------------------


@pytest.mark.parametrize("bands", [0.0, 1.0], ids=["black bands", "no bands"])
def test_a_digit_between_bands_on_two_sides_keeps_its_ink(seven, bands):
    """Bands of the ink's colour along the left and right sides (a cell between margins,
    a page's dark edges) outnumber the paper on the border; the paper is still the paper."""
    page = 1.0 - np.asarray(Image.fromarray(seven).resize((112, 112)), np.float32) / 255.0
    wide = np.full((112, 168), 1.0, np.float32)
    wide[:, 28:140] = page
    wide[:, :28] = wide[:, 140:] = bands
    inked = preprocess.ink_up(wide)
    digit = np.asarray(Image.fromarray(seven).resize((112, 112))) > 128
    assert preprocess.paper_level(wide) > 0.9  # the white paper, not the black bands
    assert inked[:, 28:140][digit].mean() > 0.8 and inked[:, 28:140][~digit].mean() < 0.2


def test_an_mnist_digit_is_its_own_frame_and_a_page_of_it_nearly(seven):
    assert np.array_equal(preprocess.framed_digit(Image.fromarray(seven)), seven)
    page = ImageOps.invert(Image.fromarray(seven).resize((280, 280), Image.Resampling.BILINEAR))
    framed = preprocess.framed_digit(page).astype(int)
    assert np.corrcoef(framed.ravel(), seven.ravel())[0, 1] > 0.97  # enlarging blurred it
    assert preprocess.frames_one_digit((280, 280)) and preprocess.frames_one_digit((300, 200))
    assert not preprocess.frames_one_digit((301, 200))


def test_a_wide_frame_is_padded_with_paper(seven):
    page = Image.new("L", (56, 28), 0)
    page.paste(Image.fromarray(seven), (14, 0))
    framed = preprocess.framed_digit(page)
    assert framed[:7].max() == 0 and framed[-7:].max() == 0  # the padding above and below
    assert framed.sum() > 0.2 * seven.sum()


def test_ink_span_of_a_frame(seven):
    small = np.zeros((28, 28), np.uint8)
    small[8:19, 8:19] = np.asarray(Image.fromarray(seven).resize((11, 11)))
    specked = small.copy()
    specked[[1, 26], [2, 25]] = 60  # two specks at opposite corners, faint once area-resized
    crossed = small.copy()
    crossed[14, :] = 200  # a line across the whole picture
    assert preprocess.ink_span(seven) >= 0.6
    assert preprocess.ink_span(small) < 0.45 and preprocess.ink_span(specked) < 0.45
    assert preprocess.ink_span(crossed) > 0.9
    assert preprocess.ink_span(np.zeros((28, 28), np.uint8)) == 0.0


def inverted_sides(digit: np.ndarray, width: int) -> np.ndarray:
    """Grey float (28, 28) of an MNIST digit with `width` columns at each side inverted."""
    grey = digit.astype(np.float32) / 255.0
    grey[:, :width] = 1.0 - grey[:, :width]
    grey[:, -width:] = 1.0 - grey[:, -width:]
    return grey


@pytest.mark.parametrize("index", range(5))
def test_strips_of_inverted_colour_at_the_sides_are_turned_back(mnist, index):
    digit = mnist.x_test[index]
    levelled = preprocess.level_margins(inverted_sides(digit, 7))
    np.testing.assert_allclose(levelled, digit / 255.0, atol=1e-6)
    dark_on_white = 1.0 - inverted_sides(digit, 7)  # the same, as a black-on-white page
    np.testing.assert_allclose(preprocess.level_margins(dark_on_white), 1.0 - digit / 255.0)


def test_a_dark_table_beside_the_sheet_becomes_paper(seven):
    page = np.full((120, 200), 1.0, np.float32)
    page[10:110, 50:150] = 1.0 - np.asarray(Image.fromarray(seven).resize((100, 100))) / 255.0
    page[:, :30] = 0.15  # the desk, left of the sheet, with its own grain
    page[:, :30] += np.random.default_rng(0).normal(0.0, 0.02, (120, 30)).astype(np.float32)
    levelled = preprocess.level_margins(page)
    assert levelled[:, :30].min() > 0.9  # the desk is the paper now
    np.testing.assert_array_equal(levelled[:, 30:], page[:, 30:])  # the sheet is untouched


def test_pictures_without_margins_are_left_alone(seven):
    page = 1.0 - seven.astype(np.float32) / 255.0
    assert preprocess.level_margins(page) is page
    bars = np.zeros((28, 28), np.float32)
    bars[:, :10] = bars[:, -10:] = 1.0  # "margins" leaving under a third between them
    assert preprocess.split_border(bars)
    np.testing.assert_array_equal(preprocess.level_margins(bars), bars)


def test_a_lit_side_beside_a_shadowed_middle_is_no_margin(seven):
    """Dark digits on a page lit along its left side and shadowed beyond: the lit side reaches
    into the middle half, where it must not pass for light ink on shadowed paper (the lit side
    would be levelled as a strip of inverted colour, its digit turned light, the others lost)."""
    digit = 1.0 - np.asarray(Image.fromarray(seven).resize((40, 40)), np.float32) / 255.0
    page = np.full((60, 180), 0.4, np.float32)
    page[:, :70] = 0.95
    for left in (20, 100, 135):
        page[10:50, left : left + 40] *= digit
    assert preprocess.split_border(page)
    np.testing.assert_array_equal(preprocess.level_margins(page), page)


def test_the_cheap_border_tests_answer_as_the_full_ones():
    """split_border's range shortcut and sheet_on_table's edge band (edge_may_be_darker) only
    skip work: on pictures with a flat or noisy paper and a block of another level at or near
    the edge, they answer as the running medians and the resized copy do."""
    rng = np.random.default_rng(0)
    skipped = {"split": 0, "sheet": 0}
    for _ in range(300):
        height, width = rng.integers(30, 400, 2)
        noise = rng.normal(0.0, rng.choice([0.0, 0.05, 0.2]), (height, width))
        gray = np.clip(rng.uniform(0.6, 1.0) + noise, 0.0, 1.0).astype(np.float32)
        top, left = rng.integers(0, height // 3), rng.integers(0, width // 3)
        gray[top : top + rng.integers(1, height), left : left + rng.integers(1, width)] = (
            rng.uniform(0.0, 1.0)
        )
        runs = preprocess.long_runs(preprocess.border(gray), preprocess.split_window(gray.shape))
        low, high = np.percentile(runs, preprocess.BORDER_SPLIT_PERCENTILES)
        assert preprocess.split_border(gray) == (high - low > preprocess.BORDER_SPLIT)
        skipped["split"] += int(np.ptp(preprocess.border(gray)) <= preprocess.BORDER_SPLIT)
        contrast, side = preprocess.SHEET_CONTRAST, preprocess.SHEET_SIDE
        if not preprocess.edge_may_be_darker(gray, contrast, side):
            small = preprocess.rescale(gray, side, Image.Resampling.BILINEAR)
            assert gray.max() - preprocess.border(small).min() < contrast
            skipped["sheet"] += 1
    assert min(skipped.values()) > 30 and max(skipped.values()) < 270  # both ways taken


def test_a_sheet_lying_askew_on_a_table_is_not_levelled_column_by_column():
    """Columns cannot follow a tilted edge: levelled, they would leave wedges of table and
    paper behind as strokes. Upright, the same sheet's margins are levelled."""
    for degrees, levelled in ((6.0, False), (0.0, True)):
        page = np.full((300, 400), 0.15, np.float32)
        corners = np.array([[-130, -400], [130, -400], [130, 400], [-130, 400]], np.float64)
        turn = np.radians(degrees)
        rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
        sheet = (corners @ rotation.T + [200, 150]).astype(np.int32)
        cv2.fillPoly(page, [sheet], 0.9)
        changed = not np.array_equal(preprocess.level_margins(page), page)
        assert changed == levelled, degrees


def test_the_noise_floor_is_the_paper_s_noise_not_a_line_or_light_along_the_border():
    rng = np.random.default_rng(0)
    paper = 0.2 + rng.normal(0, 0.01, (120, 260))
    alone = preprocess.sensor_noise(paper)
    assert 0.02 < alone < 0.04  # three standard deviations of the noise
    lined = paper + 0.3 * np.abs(np.linspace(-1, 1, 260))[np.newaxis, :]  # light across it
    lined[0] += 0.5  # a squared paper's line along the top
    edge = preprocess.border(lined)
    assert preprocess.noise_level(edge, float(np.median(edge))) > 3 * alone
    assert preprocess.sensor_noise(lined) == pytest.approx(alone, rel=0.3)


def test_noise_levels_of_stacked_sides_are_each_side_s_noise_level():
    rng = np.random.default_rng(6)
    for dtype, length in [(np.float32, 280), (np.float32, 97), (np.float64, 120)]:
        sides = (rng.random((4, length)) ** rng.uniform(0.2, 5)).astype(dtype)
        each = [preprocess.noise_level(side, float(np.median(side))) for side in sides]
        assert preprocess.noise_levels(sides).tolist() == each


def test_in_a_digit_s_crop_haze_between_the_sides_is_the_paper_s_noise():
    # A 28x28 crop under haze: each side smooth along itself, the four at different levels.
    rows, cols = np.mgrid[0:28, 0:28] / 27.0
    crop = 0.2 + 0.3 * rows + 0.01 * np.sin(5 * cols)
    edge = preprocess.border(crop)
    whole = preprocess.noise_level(edge, float(np.median(edge)))
    each_side = [preprocess.noise_level(side, float(np.median(side))) for side in crop[[0, -1]]]
    assert whole > 4 * max(each_side)  # side by side it would pass for clean paper
    assert preprocess.sensor_noise(crop) == pytest.approx(whole)
    # The same haze over a photo's worth of pixels is light changing across it: not noise.
    photo = cv2.resize(crop, (280, 280), interpolation=cv2.INTER_LINEAR)
    assert preprocess.sensor_noise(photo) < whole / 2


def sheet_photo(seven: np.ndarray, degrees: float) -> np.ndarray:
    """Grey float (240, 320): a light sheet holding a dark 7, turned `degrees`, on a dark table
    showing along every side."""
    photo = np.full((240, 320), 0.2, np.float32)
    corners = np.array([[-90, -120], [-90, 120], [90, 120], [90, -120]], np.float64)
    turn = np.radians(degrees)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    cv2.fillPoly(photo, [(corners @ rotation.T + [160, 120]).astype(np.int32)], 0.85)
    digit = np.asarray(Image.fromarray(seven).resize((80, 80)), np.float32) / 255.0
    photo[80:160, 120:200] *= 1.0 - 0.9 * digit
    return photo


def test_a_sheet_on_a_darker_table_is_cropped_to_as_a_document_scanner_does(seven):
    for degrees in (0.0, 7.0):
        photo = sheet_photo(seven, degrees)
        cropped = preprocess.off_the_table(photo)
        np.testing.assert_array_equal(cropped[80:160, 120:200], photo[80:160, 120:200])
        assert np.abs(cropped[[0, -1]] - 0.85).max() < 0.05  # the table, now the sheet's paper
        assert np.abs(cropped[:, [0, -1]] - 0.85).max() < 0.05


@pytest.mark.parametrize("degrees", [2.0, 3.0, -3.0])
def test_the_table_where_the_sheet_runs_off_the_picture_is_made_paper_too(degrees):
    # The sheet's lower corners lie beyond the bottom edge; between them the table shows as a
    # sliver along it, which the sheet's convex hull cuts across (a stroke under the digits).
    photo = np.full((240, 320), 0.2, np.float32)
    corners = np.array([[-120, -90], [-120, 90], [120, 90], [120, -90]], np.float64)
    turn = np.radians(degrees)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    cv2.fillPoly(photo, [(corners @ rotation.T + [160, 150]).astype(np.int32)], 0.85)
    cropped = preprocess.off_the_table(photo)
    assert cropped is not photo
    assert cropped.min() > 0.6


def test_a_shadow_a_frame_or_light_writing_is_not_taken_for_a_table(seven):
    photo = sheet_photo(seven, 5.0)
    small = cv2.resize(photo, (50, 40), interpolation=cv2.INTER_AREA)  # a digit's crop, no photo
    assert preprocess.off_the_table(small) is small
    shade = 1 / (1 + np.exp(-(np.arange(320) - 100) / 12.0))  # a shadow's edge fades
    shadow = np.full((240, 320), 0.85, np.float32) * (0.4 + 0.6 * shade)[np.newaxis, :]
    assert preprocess.off_the_table(shadow) is shadow
    frame = np.full((240, 320), 0.1, np.float32)  # a light frame drawn on a dark picture
    cv2.rectangle(frame, (40, 30), (280, 210), 0.9, 4)
    assert preprocess.off_the_table(frame) is frame
    band = 1.0 - photo  # light writing on a dark picture beside a lighter band
    band[:, :60] = 0.5
    assert preprocess.off_the_table(band) is band


def test_a_shadow_along_a_side_keeps_its_ink_dark(seven):
    """Dark ink in a shadow along the left side departs beyond the shadow's level, not toward
    the paper: not a strip of inverted colour, so it is not turned (segment.py reads shadows)."""
    page = np.full((112, 224), 0.9, np.float32)
    page[:, :112] = 0.9 * (1.0 - np.asarray(Image.fromarray(seven).resize((112, 112))) / 255.0)
    page[:, :56] *= 0.3  # the shadow, over the left of the digit
    np.testing.assert_array_equal(preprocess.level_margins(page), page)
    strip = page.copy()
    strip[:, :56] = 1.0 - page[:, :56] / 0.3 * 0.9  # the same side inverted instead
    assert not np.array_equal(preprocess.level_margins(strip), strip)


def test_denoise_is_the_three_by_three_mean_with_the_edge_repeated():
    gray = np.random.default_rng(5).random((100, 130))
    padded = np.pad(gray, 1, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3))
    np.testing.assert_allclose(denoise(gray), windows.mean(axis=(2, 3)), rtol=0, atol=1e-12)
    small = gray[:40, :40]  # at MNIST's scale a lone pixel may be a stroke's tip: kept
    assert denoise(small) is small
