"""Saying "not a digit": the score, the threshold and its file, the verdict end to end."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import REPO_ROOT, run_script
from PIL import Image

from mnist_cnn import ood
from mnist_cnn.errors import UserError
from mnist_cnn.evaluate import openset_quality
from mnist_cnn.files import file_sha256
from mnist_cnn.predict import load_classifier
from mnist_cnn.synthetic import (
    CANVAS,
    GLYPHS,
    LEFT_OUT,
    TRAINING_GLYPHS,
    UNSEEN_GLYPHS,
    font_dir,
    make_outliers,
    openset_data,
    random_speckle,
    render_glyph,
)

DATA = REPO_ROOT / "tests" / "data"
CASES = ["not_a_digit_hash.png", "not_a_digit_smiley.png"]  # from ../shared/cases, as found


# --- the score and the threshold on hand-made cases --------------------------------------------


def test_a_sure_prediction_scores_zero_and_a_uniform_one_scores_highest():
    sure = np.eye(10, dtype=np.float32)[3]
    uniform = np.full(10, 0.1, np.float32)
    split = np.array([0.5, 0.5, 0, 0, 0, 0, 0, 0, 0, 0], np.float32)
    scores = ood.ood_score(np.stack([sure, split, uniform]))
    np.testing.assert_allclose(scores, [0.0, 0.5, 0.9], atol=1e-6)


def test_threshold_accepts_the_chosen_share_of_validation_digits():
    scores = np.linspace(0.0, 1.0, 1001)
    threshold = ood.choose_threshold(scores, 0.99)
    assert np.mean(scores <= threshold) == pytest.approx(0.99, abs=0.001)


@pytest.mark.parametrize(
    ("inliers", "outliers", "area"),
    [
        ([0.1, 0.2, 0.3], [0.7, 0.8], 1.0),
        ([0.7, 0.8], [0.1, 0.2, 0.3], 0.0),
        ([0.5, 0.5], [0.5, 0.5], 0.5),
        ([0.1, 0.5], [0.5, 0.9], 0.875),  # one tie of four pairs counts half
    ],
)
def test_auroc_on_hand_made_scores(inliers, outliers, area):
    assert ood.auroc(np.array(inliers), np.array(outliers)) == pytest.approx(area)


# --- the statistics file -----------------------------------------------------------------------


def test_statistics_round_trip_and_name_their_model(tmp_path):
    model = tmp_path / "m.keras"
    model.write_bytes(b"a model")
    stats = ood.fit_stats(np.eye(10, dtype=np.float32)[[0, 1, 2]], file_sha256(model))
    path = ood.save_stats(stats, ood.stats_path(model))
    assert path == tmp_path / "m_ood.json" and not list(tmp_path.glob("*.tmp"))
    loaded, line = ood.load_stats(model, file_sha256(model))
    assert loaded == stats and str(path) in line
    assert ood.stats_path(tmp_path / "m.onnx") == path  # the export shares them


def test_statistics_of_another_model_are_not_used(tmp_path):
    model = tmp_path / "m.keras"
    ood.save_stats(ood.OodStats(0.5, "0" * 64), ood.stats_path(model))
    loaded, line = ood.load_stats(model, "1" * 64)
    assert loaded is None and "fitted for another model" in line and "off" in line


def test_missing_and_broken_statistics(tmp_path):
    model = tmp_path / "m.keras"
    loaded, line = ood.load_stats(model, "1" * 64)
    assert loaded is None and line.endswith("is missing: not-a-digit rejection is off")
    ood.stats_path(model).write_text("{not json")
    with pytest.raises(UserError, match="not a statistics file"):
        ood.load_stats(model, "1" * 64)


def test_a_model_without_statistics_still_predicts(tiny_model_path, tmp_path, mnist):
    bare = shutil.copy(tiny_model_path, tmp_path / "bare.keras")
    picture = tmp_path / "digit.png"
    Image.fromarray(255 - mnist.x_test[0]).save(picture)
    result = run_script("test_model.py", str(picture), "--model-path", str(bare))
    assert result.returncode == 0 and result.stdout.startswith(f"{picture}: ")
    assert "not-a-digit rejection is off" in result.stderr and "Traceback" not in result.stderr


# --- the synthetic non-digits ------------------------------------------------------------------


def test_glyphs_leave_out_digits_and_their_look_alikes():
    assert set(GLYPHS).isdisjoint("0123456789" + LEFT_OUT)
    assert set(TRAINING_GLYPHS) | set(UNSEEN_GLYPHS) == set(GLYPHS)
    assert set(TRAINING_GLYPHS).isdisjoint(UNSEEN_GLYPHS)


def test_non_digits_are_reproducible_and_cover_every_kind():
    first, kinds = make_outliers(12, seed=5)
    again, _ = make_outliers(12, seed=5)
    assert all(
        np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, again, strict=True)
    )
    assert {"scribble", "shape", "blob", "speckle"} <= set(kinds)
    assert all(p.size == (CANVAS, CANVAS) and p.mode == "L" for p in first)


# --- the committed model: the verdict and the quality targets ----------------------------------


@pytest.fixture(scope="module")
def classifier(committed_model_path):
    """The committed model with its statistics (they must match it)."""
    found, notes = load_classifier(committed_model_path)
    assert notes == [] and found.stats is not None, notes
    return found


def letter_k(tmp_path):
    """A printed K, black on white: the kind of picture issue 12 found read as a 6."""
    path = tmp_path / "K.png"
    render_glyph("K", font_dir() / "DejaVuSans.ttf", 60, 0.0).save(path)
    return path


@pytest.mark.slow
def test_the_cases_letters_and_noise_are_not_digits(committed_model_path, tmp_path, mnist):
    speckle = tmp_path / "speckle.png"
    random_speckle(np.random.default_rng(3)).save(speckle)
    seven = tmp_path / "seven.png"
    Image.fromarray(255 - mnist.x_test[0]).resize((140, 140)).save(seven)
    pictures = [DATA / name for name in CASES] + [letter_k(tmp_path), speckle, seven]
    result = run_script(
        "test_model.py", *map(str, pictures), "--model-path", str(committed_model_path)
    )
    assert result.returncode == 0, result.stderr  # it read every file: not an error
    lines = result.stdout.splitlines()
    for picture, line in zip(pictures[:-1], lines[:-1], strict=True):
        assert line.startswith(f"{picture}: not a digit (looks most like "), line
    assert lines[-1].startswith(f"{seven}: 7 (")


@pytest.mark.slow
def test_json_and_accept_all(committed_model_path, tmp_path):
    letter = str(letter_k(tmp_path))
    model = ["--model-path", str(committed_model_path)]
    record = json.loads(run_script("test_model.py", letter, "--json", *model).stdout)
    assert record["is_digit"] is False and record["number"] == ""
    assert all(not d["is_digit"] and d["ood_score"] > 0 for d in record["digits"])
    accepted = run_script("test_model.py", letter, "--accept-all", *model).stdout
    assert "not a digit" not in accepted and accepted.split(": ")[1][0].isdigit()


def test_web_api_says_not_a_digit(committed_model_path, tmp_path):
    from mnist_cnn.web import create_app

    client = create_app(committed_model_path).test_client()
    body = letter_k(tmp_path).read_bytes()
    result = client.post("/api/predict", data=body, content_type="image/png").get_json()
    assert result["is_digit"] is False and result["number"] == ""
    assert all(len(d["probabilities"]) == 10 and not d["is_digit"] for d in result["digits"])


@pytest.mark.slow
def test_quality_targets_on_a_subset(classifier, mnist):
    # Every MNIST test digit (the target is on them), subsets of the rest; the full set
    # (10,000 / 1,000 / 5,000) runs in benchmarks/openset.py.
    data = openset_data(mnist.x_test, mnist.y_test, n_mnist=10_000, n_person=300, n_outliers=600)
    quality = openset_quality(classifier, data)
    print(f"\nNot a digit, subset: {json.dumps(quality, indent=1)}")  # shown with pytest -s
    assert quality["auroc"] >= 0.97
    assert quality["non_digits_rejected"] >= 0.90
    assert quality["mnist_rejected"] <= 0.01
    assert quality["accuracy_on_accepted_digits"] >= 0.99
