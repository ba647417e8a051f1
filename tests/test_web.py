"""The web app's HTTP API and static page, through Flask's test client (no real server)."""

from __future__ import annotations

import base64
import io
import json
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib

import numpy as np
import pytest
from conftest import REPO_ROOT
from PIL import Image, PngImagePlugin

from mnist_cnn.engine import load_engine
from mnist_cnn.predict import load_classifier
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


def first_digit(client, pixels: np.ndarray) -> dict:
    """The first candidate the server found in a uint8 picture: a one-digit picture's digit."""
    return post_png(client, png_bytes(pixels)).get_json()["digits"][0]


def test_prediction_has_the_documented_shape(client, mnist):
    result = post_png(client, png_bytes(mnist.x_test[0])).get_json()
    (digit,) = result["digits"]
    probabilities = np.array(digit["probabilities"])
    assert probabilities.shape == (10,)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-4)
    assert digit["digit"] == int(np.argmax(probabilities))
    assert digit["is_digit"] is True and result["is_digit"] is True
    assert result["number"] == str(digit["digit"])
    assert digit["ood_score"] == pytest.approx(1.0 - probabilities.max(), abs=1e-6)
    assert decode_data_url(digit["preprocessed"]).shape == (28, 28)
    assert result["elapsed_ms"] > 0


def test_server_uses_the_shared_preprocessing(client, tiny_model_path, mnist):
    # The photo-taking user (black ink on white) must get exactly what the CLI would give.
    body = png_bytes(255 - mnist.x_test[1])
    (result,) = post_png(client, body).get_json()["digits"]
    (candidate,) = find_digits(open_image(body))  # the CLI's path, for one digit or many
    digit = candidate.digit
    expected = load_engine(tiny_model_path).predict(digit[np.newaxis])[0]
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


def test_a_touching_pair_gets_a_box_per_digit_and_a_point_shows(committed_model_path, mnist):
    client = create_app(committed_model_path).test_client()
    pair = (REPO_ROOT / "tests" / "data" / "touching_digits_27.png").read_bytes()
    result = post_png(client, pair).get_json()
    assert result["number"] == "27"
    (first, second) = (digit["box"] for digit in result["digits"])
    assert first[0] < first[2] <= second[0] + 2 < second[2] + 2  # side by side, not one box
    paper = np.zeros((100, 250), np.uint8)  # 3.1 drawn on the canvas: light ink on black
    for n, at in ((0, 10), (2, 150)):
        paper[10:94, at : at + 84] = np.asarray(
            Image.fromarray(mnist.x_test[n + 30]).resize((84, 84))
        )
    yy, xx = np.ogrid[:100, :250]
    paper[(yy - 86) ** 2 + (xx - 122) ** 2 <= 36] = 255  # the point on the baseline
    digits = "".join(str(mnist.y_test[n + 30]) for n in (0, 2))
    assert post_png(client, png_bytes(paper)).get_json()["number"] == f"{digits[0]}.{digits[1]}"


def test_one_digit_is_a_number_of_one_digit(client, mnist):
    one = post_png(client, png_bytes(mnist.x_test[0])).get_json()
    two = post_png(client, png_bytes(np.hstack(mnist.x_test[:2]))).get_json()
    assert set(one) == set(two) and len(one["number"]) == 1 and len(two["number"]) == 2
    assert set(one["digits"][0]) == set(two["digits"][0]) and one["digits"][0]["box"][2] <= 28


def test_tiny_model_reads_most_mnist_digits(client, mnist):
    # About 90% accurate: 20 digits leave room for a few misses without flaking.
    answers = [first_digit(client, x)["digit"] for x in mnist.x_test[:20]]
    assert np.mean(np.array(answers) == mnist.y_test[:20]) >= 0.75


def test_committed_model_reads_mnist_digits(committed_model_path, mnist):
    client = create_app(committed_model_path).test_client()
    answers = [first_digit(client, x)["digit"] for x in mnist.x_test[:100]]
    assert np.sum(np.array(answers) == mnist.y_test[:100]) >= 97


def test_multipart_upload(client, mnist):
    response = post_file(client, png_bytes(mnist.x_test[0]))
    assert response.status_code == 200
    assert len(response.get_json()["digits"][0]["probabilities"]) == 10


def test_large_upload_stays_off_disk(client, mnist, monkeypatch):
    import werkzeug.formparser

    def no_disk(*args, **kwargs):
        raise AssertionError("an upload was spooled to a temporary file")

    # Werkzeug's default spills uploads above 500 kB into a temporary file.
    monkeypatch.setattr(werkzeug.formparser, "SpooledTemporaryFile", no_disk)
    response = post_file(client, png_bytes(mnist.x_test[0], padding=1024 * 1024))
    assert response.status_code == 200


def test_a_loaded_classifier_works_too(tiny_model_path, mnist):
    classifier, _ = load_classifier(tiny_model_path)
    client = create_app(classifier).test_client()
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


@pytest.mark.slow
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
    # One line: TensorFlow's start-up notices are hidden without --verbose.
    assert (
        result.stderr.startswith(f"error: {missing}: no model") and result.stderr.count("\n") == 1
    )


# --- the JSON body: {"image": "data:image/png;base64,..."}, as canvas clients send ----------------


def post_json(client, image: object):
    """POST a JSON body `{"image": image}`."""
    return client.post(API, json={"image": image})


def as_data_url(body: bytes) -> str:
    """`body` as a PNG data URL."""
    return DATA_URL_PREFIX + base64.b64encode(body).decode("ascii")


def test_json_data_url_gets_the_same_answer_as_the_raw_body(client, mnist):
    body = png_bytes(mnist.x_test[0])
    from_json, from_body = post_json(client, as_data_url(body)), post_png(client, body)
    assert from_json.status_code == 200, from_json.data
    assert from_json.get_json()["digits"] == from_body.get_json()["digits"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"picture": "data:image/png;base64,AAAA"}', "no 'image'"),
        (b'["data:image/png;base64,AAAA"]', "no 'image'"),
        (b'{"image": "iVBORw0KGgo="}', "not a base64 data URL"),
        (b'{"image": "data:image/png;base64,@@not base64@@"}', "not valid base64"),
        (b'{"image": "data:image/png;base64,aGVsbG8="}', "not an image"),
    ],
    ids=["not-json", "no-image", "not-an-object", "no-data-url", "bad-base64", "not-an-image"],
)
def test_bad_json_bodies_get_400(client, body, words):
    assert_error(client.post(API, data=body, content_type="application/json"), 400, words)


def test_too_big_json_gets_413(client):
    image = as_data_url(b"\0" * MAX_UPLOAD_BYTES)
    assert_error(post_json(client, image), 413)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post_to_server(
    url: str, body: bytes, headers: dict | None = None, timeout: float = 180
) -> tuple[int, dict]:
    """POST a JSON body (and `headers`) to a starting server, retrying until it listens:
    (status, JSON reply)."""
    deadline = time.monotonic() + timeout
    while True:
        sent = {"Content-Type": "application/json", **(headers or {})}
        request = urllib.request.Request(url, body, sent)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)
        except urllib.error.URLError:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.5)


@pytest.mark.slow
def test_the_real_server_takes_a_json_data_url(tiny_model_path, mnist):
    port = free_port()
    command = [sys.executable, "-m", "mnist_cnn.web", "--port", str(port),
               "--model-path", str(tiny_model_path)]  # fmt: skip
    server = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        url = f"http://127.0.0.1:{port}{API}"
        image = as_data_url(png_bytes(mnist.x_test[0]))
        status, reply = post_to_server(url, json.dumps({"image": image}).encode())
        assert status == 200 and reply["number"].isdigit(), reply
        status, reply = post_to_server(url, b"{not json")
        assert status == 400 and "not valid JSON" in reply["error"]
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=60)
    assert b"Traceback" not in stderr
