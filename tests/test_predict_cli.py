"""Batched prediction, the Reader API, result formatting, and the test_model.py command line."""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_script
from PIL import Image, ImageOps

from mnist_cnn import engine as engine_module
from mnist_cnn import predict as predict_module
from mnist_cnn.commands.read import format_text, main, unique_png_names
from mnist_cnn.config import shipped_model_path
from mnist_cnn.engine import load_engine
from mnist_cnn.errors import run_cli
from mnist_cnn.ood import OodStats
from mnist_cnn.predict import Classifier, load_classifier, top_k
from mnist_cnn.reader import (
    PICTURES_AT_ONCE,
    DigitReading,
    Reader,
    Reading,
    read_at_ends,
    read_in_line,
    refused_at_ends,
    refused_notes,
)
from mnist_cnn.segment import Symbol


@pytest.fixture(scope="module")
def engine(tiny_model_path):
    """The tiny session model on Keras, loaded once for this file."""
    return load_engine(tiny_model_path)


@pytest.fixture
def files(tmp_path, mnist):
    """Three good digit images (PNG, JPEG, RGBA PNG) and three bad files, in one folder."""
    good = []
    for n, (fmt, suffix) in enumerate([("PNG", "png"), ("JPEG", "jpg"), ("PNG", "rgba.png")]):
        paper = ImageOps.invert(Image.fromarray(mnist.x_test[n]).resize((84, 84)))
        image = paper.convert("RGBA") if suffix == "rgba.png" else paper
        path = tmp_path / f"digit{n}.{suffix}"
        image.save(path, fmt)
        good.append(path)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("not a picture")
    bad = [tmp_path / "empty.png", tmp_path / "notes.png", tmp_path / "missing.png"]
    return good, bad


def cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run test_model.py's main() through run_cli in-process: (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["test_model.py"])
    with pytest.raises(SystemExit) as exited:
        run_cli(functools.partial(main, list(args)))
    out, err = capsys.readouterr()
    return exited.value.code, out, err


# --- the package functions ---------------------------------------------------------------------


def test_probabilities_are_batched_and_sum_to_one(engine, mnist, monkeypatch):
    digits = mnist.x_test[:10]
    whole = engine.predict(digits)
    monkeypatch.setattr(engine_module, "BATCH_SIZE", 3)
    chunked = engine.predict(digits)
    assert whole.shape == (10, 10)
    assert np.allclose(whole.sum(axis=1), 1.0, atol=1e-5)
    assert np.allclose(whole, chunked, atol=1e-6)


def test_no_digits_give_no_probabilities(engine):
    assert engine.predict(np.zeros((0, 28, 28), np.uint8)).shape == (0, 10)


def test_top_k_is_sorted_for_one_row_and_for_many():
    probs = np.array([0.1, 0.6, 0.0, 0.3, 0, 0, 0, 0, 0, 0])
    assert top_k(probs, 3) == [(1, 0.6), (3, 0.3), (0, 0.1)]
    assert top_k(np.stack([probs, probs[::-1]]), 1) == [[(1, 0.6)], [(8, 0.6)]]


def reading_of(*probabilities: list[float], verdicts: tuple[bool, ...] = ()) -> Reading:
    """A Reading of one candidate per probability row, each judged as `verdicts` says."""
    digits = []
    for n, row in enumerate(probabilities):
        row = np.asarray(row, np.float32)
        digits.append(
            DigitReading(
                digit=int(row.argmax()),
                confidence=float(row.max()),
                probabilities=row,
                box=(10 * n, 0, 10 * n + 8, 10),
                is_digit=verdicts[n] if verdicts else True,
                ood_score=0.1,
                image=np.zeros((28, 28), np.uint8),
            )
        )
    return Reading("a.png", tuple(digits), (10 * len(digits), 10))


SEVEN = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9, 0.0, 0.1]
FOUR = [0.0, 0.0, 0.0, 0.0, 0.925, 0.075, 0.0, 0.0, 0.0, 0.0]


def test_a_piece_judged_not_a_digit_beside_digits_is_noted_not_dropped_silently():
    said = refused_notes(
        reading_of(FOUR, SEVEN, FOUR, SEVEN, verdicts=(False, True, False, False)).digits
    )
    assert said == [
        "a piece before the first digit reads most like 4 (92.5%) but was judged not a digit: "
        "read without it",
        "a piece after the last digit reads most like 4 (92.5%) but was judged not a digit: "
        "read without it",
        "a piece after the last digit reads most like 7 (90.0%) but was judged not a digit: "
        "read without it",
    ]
    inside = refused_notes(reading_of(SEVEN, FOUR, SEVEN, verdicts=(True, False, True)).digits)
    assert [note.split(" reads")[0] for note in inside] == ["a piece between digits 1 and 2"]
    assert refused_notes(reading_of(SEVEN, FOUR, verdicts=(False, False)).digits) == []
    assert refused_notes(reading_of(SEVEN, FOUR).digits) == []


def test_a_refused_piece_standing_between_digits_of_its_size_is_read_as_a_digit_with_a_note():
    digits, notes = read_in_line(
        reading_of(SEVEN, FOUR, SEVEN, verdicts=(True, False, True)).digits
    )
    assert [digit.is_digit for digit in digits] == [True, True, True]
    assert notes == [
        "digit 2 reads most like 4 (92.5%) and was judged not a digit, but stands between "
        "digits of its size: read as a digit"
    ]
    assert refused_notes(digits) == []
    # Each note names its digit's place in the number read: not the first piece's, nor the
    # count of pieces before it.
    run = reading_of(FOUR, SEVEN, FOUR, SEVEN, FOUR, SEVEN, verdicts=(False, True, False) * 2)
    digits, notes = read_in_line(run.digits)
    assert [note.split(" reads")[0] for note in notes] == ["digit 2", "digit 3"]
    assert Reading("a.png", digits, (60, 10)).number == "7474"
    assert len(refused_notes(digits)) == 2  # the 4s at either end, left out


def test_a_refused_piece_at_an_end_unsure_or_out_of_the_line_is_left_out():
    flat = [0.1] * 10  # what the model is trained to say of a non-digit
    for reading, refused in (
        (reading_of(FOUR, SEVEN, SEVEN, FOUR, verdicts=(False, True, True, False)), (0, 3)),
        (reading_of(SEVEN, flat, SEVEN, verdicts=(True, False, True)), (1,)),
        (reading_of(SEVEN, FOUR, verdicts=(True, False)), (1,)),
    ):
        digits, notes = read_in_line(reading.digits)
        assert notes == [] and [n for n, d in enumerate(digits) if not d.is_digit] == [*refused]
    seven, four, other = reading_of(SEVEN, FOUR, SEVEN, verdicts=(True, False, True)).digits
    # short, tall, below the line, and inside the first digit's box
    for box in ((10, 0, 18, 5), (10, 0, 18, 20), (10, 12, 18, 22), (2, 0, 6, 10)):
        digits, notes = read_in_line([seven, dataclasses.replace(four, box=box), other])
        assert notes == [] and not digits[1].is_digit


class ReadsEveryPictureAs:
    """An engine (stub.onnx) that gives every picture the one probability row `row`."""

    def __init__(self, row: list[float]):
        self.row, self.path = np.asarray(row, np.float32), Path("stub.onnx")

    def predict(self, digits: np.ndarray) -> np.ndarray:
        return np.tile(self.row, (len(digits), 1))


def second_model(row: list[float], threshold: float) -> Classifier:
    """A second model that reads every picture as `row`, a digit where its score (one minus
    the row's top probability) is at most `threshold`."""
    return Classifier(ReadsEveryPictureAs(row), OodStats(threshold=threshold, model_sha256=""))


def test_a_refused_piece_at_an_end_is_read_where_a_second_model_judges_it_a_digit():
    flat = [0.1] * 10  # what the model is trained to say of a non-digit
    run = reading_of(FOUR, SEVEN, SEVEN, FOUR, flat, verdicts=(False, True, True, False, False))
    ends = refused_at_ends(run.digits)
    assert ends == ([0], [3])  # the flat piece is no digit's likeliest reading: not asked
    digits, notes = read_at_ends(run.digits, ends, second_model(SEVEN, 0.2))
    assert Reading("a.png", digits, (50, 10)).number == "7777"
    first = digits[0]
    assert first.digit == 7 and first.confidence == pytest.approx(0.9) and first.is_digit
    assert first.ood_score == pytest.approx(0.1)
    np.testing.assert_allclose(first.probabilities, SEVEN)
    assert notes == [
        "a piece before the first digit reads most like 4 (92.5%) and was judged not a digit, "
        "but is of the digits' size and stub reads it as 7 (90.0%), a digit: read as 7",
        "a piece after the last digit reads most like 4 (92.5%) and was judged not a digit, "
        "but is of the digits' size and stub reads it as 7 (90.0%), a digit: read as 7",
    ]
    assert len(refused_notes(digits)) == 1  # the flat piece, still left out with its note
    digits, notes = read_at_ends(run.digits, ends, second_model(SEVEN, 0.05))
    assert notes == [] and Reading("a.png", digits, (50, 10)).number == "77"


class ReadsInkAsFour:
    """An engine (stub.onnx) that reads a picture with ink as FOUR, a blank one as SEVEN."""

    path = Path("stub.onnx")

    def predict(self, digits: np.ndarray) -> np.ndarray:
        inked = np.asarray(digits).reshape(len(digits), -1).max(axis=1) > 0
        return np.where(inked[:, np.newaxis], FOUR, SEVEN).astype(np.float32)


def test_a_piece_further_out_is_asked_only_past_pieces_taken():
    # "12kg": the g is not taken where the k is refused, nor asked where the k is no digit's size.
    run = reading_of(SEVEN, SEVEN, FOUR, FOUR, verdicts=(True, True, False, False))
    assert refused_at_ends(run.digits) == ([], [2, 3])
    seven, other, k, g = run.digits
    g = dataclasses.replace(g, image=np.full((28, 28), 255, np.uint8))
    second = Classifier(ReadsInkAsFour(), OodStats(threshold=0.08, model_sha256=""))
    # The second model would take the inked g (FOUR: 0.075) but refuses the blank k (0.1).
    digits, notes = read_at_ends([seven, other, k, g], ([], [2, 3]), second)
    assert notes == [] and [digit.is_digit for digit in digits] == [True, True, False, False]
    inked_k = dataclasses.replace(k, image=g.image)
    digits, notes = read_at_ends([seven, other, inked_k, g], ([], [2, 3]), second)
    assert len(notes) == 2 and Reading("a.png", digits, (40, 10)).number == "7744"
    for box in ((20, 0, 28, 5), (20, 0, 28, 20), (20, 12, 28, 22)):  # short, tall, below
        assert refused_at_ends([seven, other, dataclasses.replace(k, box=box), g]) == ([], [])
    assert refused_at_ends(reading_of(FOUR, SEVEN, verdicts=(False, False)).digits) == ([], [])


MODELS = ("cnn", "strong")


def test_the_second_opinion_is_the_shipped_strong_model_unless_it_reads_already(tmp_path):
    cnn, strong = (Reader(shipped_model_path(model).with_suffix(".onnx")) for model in MODELS)
    assert cnn.second_classifier().engine.path == strong.model_path
    assert strong.second_classifier() is None
    assert Reader.from_classifier(cnn.classifier, second_opinion=False).second_classifier() is None
    # The same model under another name is the same model: told by its statistics' checksum.
    shipped = shipped_model_path("strong")
    for suffix in (".onnx", "_ood.json"):
        shutil.copy(shipped.parent / f"{shipped.stem}{suffix}", tmp_path / f"copy{suffix}")
    assert Reader(tmp_path / "copy.onnx").second_classifier() is None


def test_a_damaged_second_model_is_read_without(tmp_path, monkeypatch):
    monkeypatch.setattr(predict_module, "shipped_model_path", lambda model: tmp_path / "x.keras")
    (tmp_path / "x.onnx").write_bytes(b"not a model")
    predict_module.shipped_classifier.cache_clear()
    try:
        assert predict_module.shipped_classifier("strong") is None
        reader = Reader(shipped_model_path("cnn").with_suffix(".onnx"))
        assert reader.second_classifier() is None
    finally:
        predict_module.shipped_classifier.cache_clear()


def test_text_and_json_formats():
    reading = reading_of(SEVEN)
    assert format_text(reading) == "a.png: 7 (90.0%)"
    assert format_text(reading, 2) == "a.png: 7 (90.0%)  next: 9 (10.0%)"
    record = json.loads(json.dumps(reading.to_dict(2)))
    assert record["path"] == "a.png" and record["number"] == "7" and record["is_digit"] is True
    (digit,) = record["digits"]
    assert digit["digit"] == 7 and digit["confidence"] == 0.9 and digit["ood_score"] == 0.1
    assert len(digit["probabilities"]) == 10 and digit["box"] == [0, 0, 8, 10]
    assert digit["top_k"] == [{"digit": 7, "probability": 0.9}, {"digit": 9, "probability": 0.1}]


def test_a_one_digit_number_keeps_its_minus_in_the_text_line():
    minus = Symbol("-", (0, 4, 6, 6))
    reading = dataclasses.replace(reading_of(SEVEN), symbols=(minus,))
    reading = dataclasses.replace(
        reading, digits=(dataclasses.replace(reading.digits[0], box=(10, 0, 18, 10)),)
    )
    assert reading.number == "-7"
    assert format_text(reading) == "a.png: -7 (90.0%)"


def test_one_json_shape_for_a_digit_a_number_and_a_non_digit():
    shapes = {
        tuple(reading.to_dict()) + tuple(reading.to_dict()["digits"][0])
        for reading in (
            reading_of(SEVEN),
            reading_of(SEVEN, FOUR),
            reading_of(FOUR, verdicts=(False,)),
        )
    }
    assert len(shapes) == 1


def test_top_k_applies_to_each_digit_of_a_number():
    line = format_text(reading_of(SEVEN, FOUR), 2)
    assert line == "a.png: 74 (7: 90.0% next: 9 (10.0%); 4: 92.5% next: 5 (7.5%))"
    assert format_text(reading_of(SEVEN, FOUR)) == "a.png: 74 (7: 90.0%, 4: 92.5%)"
    assert [len(d["top_k"]) for d in reading_of(SEVEN, FOUR).to_dict(3)["digits"]] == [3, 3]


def test_a_rejected_candidate_is_listed_but_left_out_of_the_number():
    reading = reading_of(SEVEN, FOUR, verdicts=(True, False))
    assert reading.number == "7" and reading.is_digit
    record = reading.to_dict()
    assert [d["is_digit"] for d in record["digits"]] == [True, False]


def test_preprocessed_names_never_collide(tmp_path):
    paths = [tmp_path / "a.png", tmp_path / "b" / "a.jpg", tmp_path / "a-2.png"]
    assert unique_png_names(paths) == ["a.png", "a-2.png", "a-2-2.png"]


def test_a_picture_judged_not_a_digit_says_what_it_looks_most_like():
    reading = reading_of(SEVEN, FOUR, verdicts=(False, False))
    assert format_text(reading, 3) == "a.png: not a digit (looks most like 4, 92.5%)"
    record = reading.to_dict()
    assert record["is_digit"] is False and record["number"] == ""
    assert [d["digit"] for d in record["digits"]] == [7, 4]


def test_all_files_go_through_one_model_call_and_the_second_view_one_more(engine, files):
    good, bad = files
    calls = []

    class CountingEngine:
        path = engine.path

        def predict(self, digits):
            calls.append(len(digits))
            return engine.predict(digits)

    classifier = Classifier(CountingEngine())
    results = Reader.from_classifier(classifier, pairs=False).read_many(good + bad)
    # One call for every candidate; at most one more for the pictures read whole (reader.py).
    assert calls[0] == len(good) and len(calls) <= 2 and sum(calls[1:]) <= len(good), calls
    assert [isinstance(r, Reading) for r in results] == [True] * len(good) + [False] * len(bad)
    # With the pair model, segmentation first reads the pieces that may be two touching
    # digits (segment.may_be_pair) of all the pictures together: one call more, not one a
    # picture.
    assert len(good) <= PICTURES_AT_ONCE
    calls.clear()
    Reader.from_classifier(classifier).read_many(good)
    assert len(calls) <= 3 and max(calls) == len(good), calls


# --- the command line --------------------------------------------------------------------------


@pytest.mark.slow
def test_mixed_good_and_bad_files_as_a_real_process(tiny_model_path, files):
    good, bad = files
    args = [*map(str, good + bad), "--model-path", str(tiny_model_path)]
    result = run_script("test_model.py", *args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert [e.split(": ")[1] for e in errors] == [str(p) for p in bad]
    lines = result.stdout.splitlines()
    assert [line.split(": ")[0] for line in lines] == [str(p) for p in good]
    assert all(line.split(": ")[1][0].isdigit() for line in lines)


def test_all_good_files_exit_zero(monkeypatch, capsys, tiny_model_path, files):
    good, _ = files
    args = [*map(str, good), "--model-path", str(tiny_model_path)]
    status, out, err = cli(monkeypatch, capsys, *args)
    assert status == 0 and err == ""
    assert len(out.splitlines()) == len(good)


def test_what_the_reader_could_not_tell_apart_is_a_note_in_text_mode(
    monkeypatch, capsys, tiny_model_path, files
):
    from mnist_cnn.reader import Reader

    said = "a small mark between digits 1 and 2 may be a decimal point or a speck"
    read_many = Reader.read_many
    monkeypatch.setattr(
        Reader,
        "read_many",
        lambda self, *a, **k: [
            dataclasses.replace(reading, notes=(said,)) for reading in read_many(self, *a, **k)
        ],
    )
    good, _ = files
    args = [str(good[0]), "--model-path", str(tiny_model_path)]
    status, out, err = cli(monkeypatch, capsys, *args)
    assert status == 0 and err == f"note: {good[0]}: {said}\n"
    status, out, err = cli(monkeypatch, capsys, *args, "--json")
    assert err == "" and json.loads(out)["notes"] == [said]  # JSON carries it itself


def test_json_top_k_and_saved_digits(monkeypatch, capsys, tiny_model_path, files, tmp_path):
    good, bad = files
    saved = tmp_path / "seen"
    status, out, err = cli(
        monkeypatch,
        capsys,
        *map(str, good + bad[:1]),
        "--model-path",
        str(tiny_model_path),
        "--json",
        "--top-k",
        "3",
        "--save-preprocessed",
        str(saved),
    )
    assert status == 1 and err == f"error: {bad[0]}: empty file\n"
    *records, failed = [json.loads(line) for line in out.splitlines()]
    assert failed == {"path": str(bad[0]), "error": f"{bad[0]}: empty file"}
    assert [r["path"] for r in records] == [str(p) for p in good]
    for (digit,) in (record["digits"] for record in records):
        assert digit["digit"] == digit["top_k"][0]["digit"]
        assert [t["probability"] for t in digit["top_k"]] == sorted(
            (t["probability"] for t in digit["top_k"]), reverse=True
        )
        assert len(digit["top_k"]) == 3 and len(digit["probabilities"]) == 10
        with Image.open(digit["preprocessed"]) as image:
            assert image.size == (28, 28) and image.mode == "L"
    assert len(list(saved.glob("*.png"))) == len(good)


def test_text_top_k(monkeypatch, capsys, tiny_model_path, files):
    good, _ = files
    args = [str(good[0]), "--model-path", str(tiny_model_path), "--top-k", "4"]
    status, out, _ = cli(monkeypatch, capsys, *args)
    assert status == 0
    assert out.count("%") == 4 and "next: " in out


def test_unwritable_save_folder_is_one_clean_line(monkeypatch, capsys, tiny_model_path, files):
    good, _ = files
    blocker = good[0]  # a file where the folder should be
    args = [str(good[0]), "--model-path", str(tiny_model_path), "--save-preprocessed", str(blocker)]
    status, _, err = cli(monkeypatch, capsys, *args)
    assert status == 1
    assert err.startswith(f"error: {blocker}: cannot write") and err.count("\n") == 1


def test_missing_model_is_one_clean_line(monkeypatch, capsys, files, tmp_path):
    good, _ = files
    missing = tmp_path / "none.keras"
    status, out, err = cli(monkeypatch, capsys, str(good[0]), "--model-path", str(missing))
    assert status == 1 and out == ""
    assert err == f"error: {missing}: no model here; train one with `python train_model.py`\n"


@pytest.mark.parametrize("k", ["0", "11", "x"])
def test_top_k_out_of_range_is_a_usage_error(monkeypatch, capsys, k):
    status, _, err = cli(monkeypatch, capsys, "a.png", "--top-k", k)
    assert status == 2 and "--top-k" in err


def test_statistics_beside_the_model_are_loaded_and_judge(tiny_model_path):
    classifier, notes = load_classifier(tiny_model_path)
    assert notes == [] and classifier.stats is not None
    uniform = np.full((1, 10), 0.1, np.float32)
    sure = np.eye(10, dtype=np.float32)[:1]

    class FixedEngine:
        path = tiny_model_path

        def __init__(self, probabilities):
            self.probabilities = probabilities

        def predict(self, digits):
            return self.probabilities

    unsure = Classifier(FixedEngine(uniform), classifier.stats).classify(np.zeros((1, 28, 28)))
    certain = Classifier(FixedEngine(sure), classifier.stats).classify(np.zeros((1, 28, 28)))
    assert not unsure.is_digit[0] and certain.is_digit[0]


def test_accept_all_turns_rejection_off(tiny_model_path):
    classifier, notes = load_classifier(tiny_model_path, accept_all=True)
    assert classifier.stats is None and notes == []


def test_a_folder_is_read_image_by_image_in_name_order(monkeypatch, capsys, tiny_model_path, files):
    good, _ = files
    folder = good[0].parent / "folder"
    folder.mkdir()
    copies = [folder / f"{n}-{path.name}" for n, path in enumerate(good)]
    for source, copy in zip(good, copies, strict=True):
        copy.write_bytes(source.read_bytes())
    (folder / "README.txt").write_text("scans of my digits")
    status, out, err = cli(monkeypatch, capsys, str(folder), "--model-path", str(tiny_model_path))
    assert status == 0
    assert err == f"{folder}: skipped 1 file that is not an image\n"
    assert [line.split(": ")[0] for line in out.splitlines()] == [str(p) for p in copies]


# --- numbers: several digits in one picture ----------------------------------------------------


@pytest.fixture
def number_file(tmp_path, mnist) -> Path:
    """A picture of three test digits side by side, black on white: the number mnist reads."""
    paper = Image.new("L", (300, 110), 255)
    for n in range(3):
        ink = Image.fromarray(mnist.x_test[n]).resize((84, 84))
        paper.paste(ImageOps.invert(ink), (10 + 95 * n, 12))
    path = tmp_path / "house.png"
    paper.save(path)
    return path


def test_a_number_prints_each_digit_and_its_confidence(
    monkeypatch, capsys, number_file, committed_model_path, mnist
):
    args = [str(number_file), "--model-path", str(committed_model_path)]
    status, out, err = cli(monkeypatch, capsys, *args)
    assert status == 0 and err == ""
    number = "".join(str(d) for d in mnist.y_test[:3])
    digits = ", ".join(rf"{d}: \d+\.\d%" for d in number)
    assert re.fullmatch(rf"{re.escape(str(number_file))}: {number} \({digits}\)\n", out)


def test_number_json_boxes_and_saved_digits(
    monkeypatch, capsys, number_file, tmp_path, tiny_model_path
):
    saved = tmp_path / "seen"
    args = [str(number_file), "--model-path", str(tiny_model_path), "--json"]
    status, out, _ = cli(monkeypatch, capsys, *args, "--save-preprocessed", str(saved))
    assert status == 0
    record = json.loads(out)
    assert len(record["number"]) == 3 and "digit" not in record and record["is_digit"]
    assert [d["digit"] for d in record["digits"]] == [int(c) for c in record["number"]]
    lefts = [d["box"][0] for d in record["digits"]]
    assert lefts == sorted(lefts) and all(len(d["probabilities"]) == 10 for d in record["digits"])
    for n, (left, top, right, bottom) in enumerate(d["box"] for d in record["digits"]):
        assert 10 + 95 * n <= left < right <= 10 + 95 * n + 84 and 12 <= top < bottom <= 96
    assert sorted(p.name for p in saved.iterdir()) == ["house-1.png", "house-2.png", "house-3.png"]


def test_single_reads_the_whole_picture_as_one_digit(
    monkeypatch, capsys, number_file, tiny_model_path
):
    args = [str(number_file), "--model-path", str(tiny_model_path), "--single"]
    status, out, _ = cli(monkeypatch, capsys, *args)
    assert status == 0 and re.fullmatch(r".*: \d \(\d+\.\d%\)\n", out)


def test_the_script_reads_with_the_shipped_model_from_any_folder(tmp_path):
    picture = Path(__file__).resolve().parent / "data" / "two_digits.png"
    result = run_script("test_model.py", str(picture), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{picture}: 42 (") and result.stderr == ""


# --- --correct: saving what was read as the person's own digits --------------------------------


def test_correct_saves_exactly_what_the_model_read_and_the_folder_takes_it_unchanged(
    monkeypatch, capsys, number_file, tiny_model_path, tmp_path
):
    from mnist_cnn.own_digits import ORIGINALS, load_own_digits

    folder = tmp_path / "own"
    reading = Reader(tiny_model_path).read(number_file)
    args = [str(number_file), "--model-path", str(tiny_model_path), "--own-digits", str(folder)]
    status, out, err = cli(monkeypatch, capsys, *args, "--correct", "907")
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == format_text(reading)
    saved = [Path(line.split(": ")[0]) for line in lines[1:]]
    assert [line.split(": ")[1] for line in lines[1:]] == [
        "saved as 9", "saved as 0", "saved as 7"
    ]  # fmt: skip
    assert [path.parent.name for path in saved] == ["9", "0", "7"]
    own = load_own_digits(folder)
    for digit, path in zip(reading.digits, saved, strict=True):
        (row,) = [n for n, p in enumerate(own.paths) if p == path]
        np.testing.assert_array_equal(own.images[row], digit.image)  # taught = read
        crop = Image.open(folder / ORIGINALS / path.name)
        left, top, right, bottom = digit.box
        assert crop.size == (right - left, bottom - top)
    assert sorted(own.labels.tolist()) == [0, 7, 9]

    status, out, _ = cli(monkeypatch, capsys, *args, "--correct", "907")
    assert status == 0 and out.count("already saved") == 3
    assert len(load_own_digits(folder).labels) == 3  # the same picture twice adds nothing
    status, _, err = cli(monkeypatch, capsys, *args, "--correct", "917", "--json")
    assert status == 1 and "leave out --json" in err  # not silently ignored
    status, out, _ = cli(monkeypatch, capsys, *args, "--correct", "917")
    assert status == 0 and "already saved; now filed as 1" in out  # moved, and it says so
    assert sorted(load_own_digits(folder).labels.tolist()) == [1, 7, 9]


@pytest.mark.parametrize(
    ("number", "message"),
    [("12", "12 has 2 digits but 3 digits were found"), ("1a3", "'1a3' is not a number")],
)
def test_correct_refuses_a_number_that_does_not_fit_in_one_line(
    monkeypatch, capsys, number_file, tiny_model_path, tmp_path, number, message
):
    folder = tmp_path / "own"
    args = [str(number_file), "--model-path", str(tiny_model_path), "--own-digits", str(folder)]
    status, _, err = cli(monkeypatch, capsys, *args, "--correct", number)
    assert status == 1
    (line,) = err.splitlines()
    assert line.startswith("error: ") and message in line
    assert not folder.exists()  # nothing saved


def test_correct_counts_candidates_judged_not_digits_when_the_number_says_so():
    from mnist_cnn.errors import UserError
    from mnist_cnn.own_digits import corrected_digits

    def read(is_digit: bool) -> DigitReading:
        image = np.zeros((28, 28), np.uint8)
        return DigitReading(
            1, 0.5, np.full(10, 0.1, np.float32), (0, 0, 1, 1), is_digit, 0.5, image
        )

    digits = [read(True), read(False), read(True)]
    assert corrected_digits(digits, "12", "p.png") == [digits[0], digits[2]]
    assert corrected_digits(digits, "123", "p.png") == digits
    with pytest.raises(UserError, match=r"p\.png: 1234 has 4 digits but 2 digits \(3 with"):
        corrected_digits(digits, "1234", "p.png")


def test_correct_names_one_picture(monkeypatch, capsys, number_file, tiny_model_path):
    args = [str(number_file), str(number_file), "--model-path", str(tiny_model_path)]
    status, _, err = cli(monkeypatch, capsys, *args, "--correct", "1")
    assert (
        status == 1
        and err == "error: --correct gives the right number of one picture: name one IMAGE\n"
    )
