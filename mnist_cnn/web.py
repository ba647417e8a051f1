"""Draw a digit in the browser: a small Flask app around the trained model.

Run `python -m mnist_cnn.web` and open http://127.0.0.1:8000/. It uses Flask's built-in
server, which is fine for a local demo but is not meant to face the internet.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from flask import Flask, Request, Response, current_app, jsonify, request
from PIL import Image
from werkzeug.exceptions import HTTPException

from mnist_cnn.cli import add_common_flags
from mnist_cnn.data import IMAGE_SIZE
from mnist_cnn.engine import engine_name
from mnist_cnn.errors import UserError, run_cli
from mnist_cnn.predict import Classifier, load_classifier, picture_record, read_pictures_digits
from mnist_cnn.preprocess import DECODE_SCALE, open_image
from mnist_cnn.segment import find_digits

STATIC_DIR = Path(__file__).resolve().parent / "static"
API_PREFIX = "/api/"
PREDICT_URL = API_PREFIX + "predict"
MAX_UPLOAD_BYTES = 4 * 1024 * 1024  # a canvas PNG is a few kB; phone photos fit too
UPLOAD_FIELD = "image"
CLASSIFIER_KEY = "mnist_cnn.classifier"
JSON_EXAMPLE = '{"image": "data:image/png;base64,..."}'
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


class InMemoryRequest(Request):
    """A request whose uploads stay in memory (MAX_CONTENT_LENGTH bounds them), never on disk."""

    def _get_file_stream(self, *args, **kwargs) -> io.BytesIO:
        """Werkzeug's hook for upload storage: its default spills files over 500 kB to disk."""
        return io.BytesIO()


def png_data_url(digit: np.ndarray) -> str:
    """The 28x28 uint8 digit as a `data:image/png;base64,...` URL for an <img>."""
    buffer = io.BytesIO()
    Image.fromarray(digit).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_from_json(body: bytes) -> bytes:
    """The image in a JSON body `{"image": "data:image/png;base64,..."}`, as canvas clients send.

    Raises UserError for a body that is not JSON, has no `image`, or whose data URL is not
    base64; what the bytes hold is checked later, like any upload.
    """
    try:
        payload = json.loads(body)
    except ValueError:  # also UnicodeDecodeError
        raise UserError("the request body is not valid JSON") from None
    url = payload.get(UPLOAD_FIELD) if isinstance(payload, dict) else None
    if not isinstance(url, str):
        raise UserError(f"no '{UPLOAD_FIELD}' in the JSON body: send {JSON_EXAMPLE}")
    header, comma, data = url.partition(",")
    if not (comma and header.startswith("data:") and header.endswith(";base64")):
        raise UserError(f"'{UPLOAD_FIELD}' is not a base64 data URL: send {JSON_EXAMPLE}")
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error:
        raise UserError(f"'{UPLOAD_FIELD}' is a data URL whose data is not valid base64") from None


def read_upload() -> tuple[bytes, str]:
    """The posted image and a name for messages: a form field, a JSON data URL, or the body."""
    if request.is_json:
        return image_from_json(request.get_data(cache=False)), "JSON image"
    if request.mimetype == "multipart/form-data":
        upload = request.files.get(UPLOAD_FIELD)
        if upload is None:
            raise UserError(f"no file in the form field '{UPLOAD_FIELD}'")
        return upload.read(), upload.filename or "upload"
    raw = request.get_data(cache=False)
    if not raw:
        raise UserError(f"empty request: send a PNG body or a form field '{UPLOAD_FIELD}'")
    return raw, "request body"


def classify(classifier: Classifier, raw: bytes, name: str) -> dict:
    """Find the digits as the CLI does and return the JSON-ready reading.

    `number` and `digits` [{digit, confidence, probabilities, box, preprocessed, ood_score}]
    always, the candidates judged not digits left out; `is_digit`: whether any is a digit.
    For a picture of one digit (or of nothing digit-like: what it looks most like) also
    `digit`, `probabilities`, `ood_score` and `preprocessed`, as before. `size` is the
    picture's [width, height], the pixels the boxes are in.
    """
    image = open_image(raw, name)
    (picture,) = read_pictures_digits(classifier, [find_digits(image, name)])
    result = picture_record(picture)
    shown = {*picture.digits} | ({picture.alone} if picture.alone is not None else set())
    urls = {n: png_data_url(picture.candidates[n].digit) for n in shown}  # each encoded once
    for digit, n in zip(result["digits"], picture.digits, strict=True):
        digit["preprocessed"] = urls[n]
    if picture.alone is not None:
        result["preprocessed"] = urls[picture.alone]
    scale = float(image.info.get(DECODE_SCALE, 1.0))
    result["size"] = [round(image.width * scale), round(image.height * scale)]
    return result


def predict_route() -> Response:
    """POST /api/predict: an image (raw PNG body or multipart `image`) in, the digit out."""
    start = time.perf_counter()
    raw, name = read_upload()
    result = classify(current_app.extensions[CLASSIFIER_KEY], raw, name)
    result["elapsed_ms"] = round((time.perf_counter() - start) * 1000.0, 2)
    return jsonify(result)


def index_route() -> Response:
    """GET /: the drawing page."""
    return current_app.send_static_file("index.html")


def user_error(error: UserError) -> tuple[Response, int]:
    """Bad input is the client's fault: 400 with the one-line message."""
    return jsonify(error=str(error)), 400


def http_error(error: HTTPException) -> Response | HTTPException:
    """JSON errors under /api/ (404, 405, 413, 500...), Flask's own pages elsewhere."""
    if not request.path.startswith(API_PREFIX):
        return error
    response = error.get_response()  # keeps headers such as 405's Allow
    response.data = current_app.json.dumps({"error": f"{error.name}: {error.description}"})
    response.content_type = "application/json"
    return response


def warm_up(classifier: Classifier) -> None:
    """Run one blank batch so the first visitor does not wait for the engine's first-call setup."""
    classifier.classify(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE), np.uint8))


def create_app(classifier: Classifier | Path | str | None = None, verbose: bool = False) -> Flask:
    """The Flask app; `classifier` is a loaded Classifier or a model path (.keras, .h5 or
    .onnx; None: the default model), loaded once here, its notes printed (and TensorFlow's
    log lines, if it loads, when `verbose`)."""
    if not isinstance(classifier, Classifier):
        path = None if classifier is None else Path(classifier)
        classifier, notes = load_classifier(path, verbose=verbose)
        for note in notes:
            print(note, file=sys.stderr)
    warm_up(classifier)
    app = Flask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")
    app.request_class = InMemoryRequest
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES
    app.extensions[CLASSIFIER_KEY] = classifier
    app.add_url_rule("/", view_func=index_route, methods=["GET"])
    app.add_url_rule(PREDICT_URL, view_func=predict_route, methods=["POST"])
    app.register_error_handler(UserError, user_error)
    app.register_error_handler(HTTPException, http_error)
    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options: where to listen and which model to serve."""
    parser = argparse.ArgumentParser(
        prog="python -m mnist_cnn.web", description="Draw a digit in the browser and classify it."
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    parser.add_argument(
        "--model-path",
        type=Path,
        default=None,
        help="a .keras, .h5, .onnx or .tflite model; none given: models/mnist_cnn.onnx when it "
        "was exported from models/mnist_cnn.keras, else that .keras",
    )
    add_common_flags(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Load the model once, then serve the app with Flask's threaded development server."""
    args = parse_args(argv)
    app = create_app(args.model_path, args.verbose)
    engine = app.extensions[CLASSIFIER_KEY].engine
    print(
        f"Serving {engine.path} ({engine_name(engine)}) at http://{args.host}:{args.port}/ "
        "(Ctrl-C to stop)"
    )
    app.run(host=args.host, port=args.port, threaded=True)
    return 0


if __name__ == "__main__":
    run_cli(main)
