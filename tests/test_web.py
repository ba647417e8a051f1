"""The web app's HTTP API and static page, through Flask's test client (no real server)."""

from __future__ import annotations

import base64
import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from conftest import REPO_ROOT
from PIL import Image, PngImagePlugin

from mnist_cnn.model import load_trained_model
from mnist_cnn.predict import predict_probabilities
from mnist_cnn.preprocess import open_image
from mnist_cnn.segment import find_digits
from mnist_cnn.web import MAX_UPLOAD_BYTES, STATIC_DIR, create_app

API = "/api/predict"
PNG = "image/png"
DATA_URL_PREFIX = "data:image/png;base64,"
STATIC_FILES = ("index.html", "app.js", "style.css")


def png_bytes(pixels: np.ndarray, padding: int = 0) -> bytes:
    """Encode a uint8 array as PNG, optionally padded with a text chunk to make it large."""
    info = PngImagePlugin.PngInfo()
    if padding:
        info.add_text("padding", "x" * padding)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png(side: int) -> bytes:
    """A few bytes that claim to be a side x side greyscale PNG: a decompression bomb's header."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
    pixels = png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + header + pixels + png_chunk(b"IEND", b"")


def post_png(client, body: bytes):
    """POST bytes as the raw body, as the page's canvas does."""
    return client.post(API, data=body, content_type=PNG)


def post_file(client, body: bytes, field: str = "image"):
    """POST bytes as a multipart file upload, as the page's upload control does."""
    data = {field: (io.BytesIO(body), "digit.png")}
    return client.post(API, data=data, content_type="multipart/form-data")


def decode_data_url(url: str) -> np.ndarray:
    """The pixels of a `data:image/png;base64,...` URL."""
    assert url.startswith(DATA_URL_PREFIX)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url[len(DATA_URL_PREFIX) :]))))


def assert_error(response, status: int, words: str = "") -> None:
    """The response is a JSON error with `status` whose message contains `words`."""
    assert response.status_code == status, response.data
    assert response.is_json
    assert words in response.get_json()["error"]


@pytest.fixture(scope="module")
def app(tiny_model_path):
    """The app on the small test model, built once for this module."""
    return create_app(tiny_model_path)


@pytest.fixture
def client(app):
    """A fresh test client."""
    return app.test_client()


def test_page_and_assets_are_served_without_internet(client):
    for name in STATIC_FILES:
        text = (STATIC_DIR / name).read_text()
        assert "http://" not in text and "https://" not in text, f"{name} loads something remote"
    page = client.get("/")
    assert page.status_code == 200
    assert b'<canvas id="pad"' in page.data
    for name in STATIC_FILES[1:]:
        assert client.get(f"/static/{name}").status_code == 200


def test_prediction_has_the_documented_shape(client, mnist):
    result = post_png(client, png_bytes(mnist.x_test[0])).get_json()
    probabilities = np.array(result["probabilities"])
    assert probabilities.shape == (10,)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-4)
    assert result["digit"] == int(np.argmax(probabilities))
    assert decode_data_url(result["preprocessed"]).shape == (28, 28)
    assert result["elapsed_ms"] > 0


def test_server_uses_the_shared_preprocessing(client, tiny_model_path, mnist):
    # The photo-taking user (black ink on white) must get exactly what the CLI would give.
    body = png_bytes(255 - mnist.x_test[1])
    result = post_png(client, body).get_json()
    (candidate,) = find_digits(open_image(body))  # the CLI's path, for one digit or many
    digit = candidate.digit
    expected = predict_probabilities(load_trained_model(tiny_model_path), digit[np.newaxis])[0]
    np.testing.assert_array_equal(decode_data_url(result["preprocessed"]), digit)
    np.testing.assert_allclose(result["probabilities"], expected, atol=1e-6)


def test_a_number_gets_number_and_digits_with_boxes(committed_model_path, mnist):
    client = create_app(committed_model_path).test_client()
    paper = np.zeros((100, 270), np.uint8)  # light ink on black, as the page's canvas draws
    for n in range(3):
        paper[10:94, 10 + 84 * n : 94 + 84 * n] = np.asarray(
            Image.fromarray(mnist.x_test[n]).resize((84, 84))
        )
    result = post_png(client, png_bytes(paper)).get_json()
    assert result["number"] == "".join(str(d) for d in mnist.y_test[:3])
    assert result["size"] == [270, 100] and "digit" not in result
    assert len(result["digits"]) == 3
    for n, digit in enumerate(result["digits"]):
        left, top, right, bottom = digit["box"]
        assert 10 + 84 * n <= left < right <= 94 + 84 * n and 10 <= top < bottom <= 94
        assert len(digit["probabilities"]) == 10
        assert decode_data_url(digit["preprocessed"]).shape == (28, 28)


def test_one_digit_keeps_the_old_fields_and_gets_the_new_ones(client, mnist):
    result = post_png(client, png_bytes(mnist.x_test[0])).get_json()
    assert result["number"] == str(result["digit"])
    (only,) = result["digits"]
    assert only["probabilities"] == pytest.approx(result["probabilities"], abs=1e-5)
    assert only["preprocessed"] == result["preprocessed"] and only["box"][2] <= 28


def test_tiny_model_reads_most_mnist_digits(client, mnist):
    # About 90% accurate: 20 digits leave room for a few misses without flaking.
    answers = [post_png(client, png_bytes(x)).get_json()["digit"] for x in mnist.x_test[:20]]
    assert np.mean(np.array(answers) == mnist.y_test[:20]) >= 0.75


def test_committed_model_reads_mnist_digits(committed_model_path, mnist):
    client = create_app(committed_model_path).test_client()
    answers = [post_png(client, png_bytes(x)).get_json()["digit"] for x in mnist.x_test[:100]]
    assert np.sum(np.array(answers) == mnist.y_test[:100]) >= 97


def test_multipart_upload(client, mnist):
    response = post_file(client, png_bytes(mnist.x_test[0]))
    assert response.status_code == 200
    assert len(response.get_json()["probabilities"]) == 10


def test_large_upload_stays_off_disk(client, mnist, monkeypatch):
    import werkzeug.formparser

    def no_disk(*args, **kwargs):
        raise AssertionError("an upload was spooled to a temporary file")

    # Werkzeug's default spills uploads above 500 kB into a temporary file.
    monkeypatch.setattr(werkzeug.formparser, "SpooledTemporaryFile", no_disk)
    response = post_file(client, png_bytes(mnist.x_test[0], padding=1024 * 1024))
    assert response.status_code == 200


def test_a_loaded_model_object_works_too(tiny_model_path, mnist):
    client = create_app(load_trained_model(tiny_model_path)).test_client()
    assert post_png(client, png_bytes(mnist.x_test[0])).status_code == 200


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "empty request"),
        (b"this is not an image", "not an image"),
        (png_bytes(np.eye(280, dtype=np.uint8) * 255)[:-100], ""),
        (png_bytes(np.zeros((280, 280), np.uint8)), "no digit found"),
        (png_bytes(np.full((280, 280), 255, np.uint8)), "no digit found"),
        (huge_png(50_000), "too many pixels"),
    ],
    ids=["empty", "text", "truncated", "black", "white", "bomb"],
)
def test_bad_images_get_400(client, body, words):
    assert_error(post_png(client, body), 400, words)


def test_blank_upload_gets_400(client):
    assert_error(post_file(client, png_bytes(np.zeros((28, 28), np.uint8))), 400, "no digit")


def test_form_without_the_image_field_gets_400(client, mnist):
    assert_error(post_file(client, png_bytes(mnist.x_test[0]), field="photo"), 400, "'image'")


def test_too_big_gets_413_as_json(client):
    assert_error(post_png(client, b"\0" * (MAX_UPLOAD_BYTES + 1)), 413)
    assert_error(post_file(client, b"\0" * (MAX_UPLOAD_BYTES + 1)), 413)


def test_get_on_the_api_gets_405(client):
    response = client.get(API)
    assert_error(response, 405)
    assert "POST" in response.headers["Allow"]


def test_unknown_paths_get_404(client):
    assert_error(client.get("/api/nothing"), 404)
    assert client.get("/nothing").status_code == 404


def test_missing_model_is_one_line_without_traceback(tmp_path):
    missing = tmp_path / "missing.keras"
    result = subprocess.run(
        [sys.executable, "-m", "mnist_cnn.web", "--model-path", str(missing)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    # Only the last line is ours: TensorFlow may print start-up notices before it.
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {missing}: no model")
