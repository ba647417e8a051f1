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

from mnist_cnn.cli import add_common_flags, add_model_flags, program_name
from mnist_cnn.data import IMAGE_SIZE
from mnist_cnn.errors import UserError, run_cli
from mnist_cnn.predict import Classifier
from mnist_cnn.reader import Reader

STATIC_DIR = Path(__file__).resolve().parent / "static"
API_PREFIX = "/api/"
PREDICT_URL = API_PREFIX + "predict"
MAX_UPLOAD_BYTES = 4 * 1024 * 1024  # a canvas PNG is a few kB; phone photos fit too
UPLOAD_FIELD = "image"
READER_KEY = "mnist_cnn.reader"
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


def classify(reader: Reader, raw: bytes, name: str) -> dict:
    """Read the picture as the CLI does and return Reading.to_dict (every candidate, each
    with `is_digit`; `number` made of the digits; `size` [width, height], the pixels the boxes
    are in), each candidate with `preprocessed`, its 28x28 as a PNG data URL."""
    reading = reader.read(raw, name=name)
    result = reading.to_dict()
    for record, digit in zip(result["digits"], reading.digits, strict=True):
        record["preprocessed"] = png_data_url(digit.image)
    return result


def predict_route() -> Response:
    """POST /api/predict: an image (raw PNG body or multipart `image`) in, the digit out."""
    start = time.perf_counter()
    raw, name = read_upload()
    result = classify(current_app.extensions[READER_KEY], raw, name)
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


def warm_up(reader: Reader) -> None:
    """Read one drawn stroke (a 1) through the whole path, so the first visitor waits for
    neither the engine's first-call set-up nor OpenCV's and NumPy's first calls."""
    stroke = np.zeros((2 * IMAGE_SIZE, 2 * IMAGE_SIZE), np.uint8)
    stroke[IMAGE_SIZE // 2 : -IMAGE_SIZE // 2, IMAGE_SIZE - 2 : IMAGE_SIZE + 2] = 255
    reader.read(stroke, name="warm-up stroke")


def create_app(
    model: Reader | Classifier | Path | str | None = None,
    verbose: bool = False,
    shipped: bool = False,
) -> Flask:
    """The Flask app around a Reader; `model` is a Reader, a loaded Classifier, or a model
    path (.keras, .h5, .onnx or .tflite; None: the default model, `shipped`: the shipped one),
    loaded once here, its notes printed (and TensorFlow's log lines, if it loads, when
    `verbose`)."""
    if isinstance(model, Classifier):
        reader = Reader.from_classifier(model)
    elif isinstance(model, Reader):
        reader = model
    else:
        reader = Reader(model, shipped=shipped, verbose=verbose)
    for note in reader.notes:
        print(note, file=sys.stderr)
    warm_up(reader)
    app = Flask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")
    app.request_class = InMemoryRequest
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES
    app.extensions[READER_KEY] = reader
    app.add_url_rule("/", view_func=index_route, methods=["GET"])
    app.add_url_rule(PREDICT_URL, view_func=predict_route, methods=["POST"])
    app.register_error_handler(UserError, user_error)
    app.register_error_handler(HTTPException, http_error)
    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options: where to listen and which model to serve."""
    parser = argparse.ArgumentParser(
        prog=program_name("mnist_cnn.web"),
        description="Draw a digit in the browser and classify it.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    add_model_flags(parser)
    add_common_flags(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Load the model once, then serve the app with Flask's threaded development server."""
    args = parse_args(argv)
    app = create_app(args.model_path, args.verbose, args.shipped)
    reader = app.extensions[READER_KEY]
    print(
        f"Serving {reader.model_path} ({reader.engine}) at http://{args.host}:{args.port}/ "
        "(Ctrl-C to stop)"
    )
    app.run(host=args.host, port=args.port, threaded=True)
    return 0


def run() -> None:
    """The console command: main() with one-line errors and exit codes."""
    run_cli(main)


if __name__ == "__main__":
    run()
