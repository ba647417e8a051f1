"""Draw a digit in the browser: a small Flask app around the trained model.

Run `python -m mnist_cnn.web` and open http://127.0.0.1:8000/. It uses Flask's built-in
server, which is fine for a local demo but is not meant to face the internet.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import ipaddress
import json
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from flask import (
    Blueprint,
    Flask,
    Request,
    Response,
    abort,
    current_app,
    jsonify,
    request,
    send_file,
)
from PIL import Image
from werkzeug.exceptions import HTTPException

from mnist_cnn.cli import add_common_flags, add_model_flags, program_name
from mnist_cnn.config import user_own_digits_dir
from mnist_cnn.data import IMAGE_SIZE
from mnist_cnn.errors import UserError, run_cli
from mnist_cnn.own_digits import (
    LABELS,
    MAX_PICTURES,
    check_number,
    checked_name,
    delete,
    find_saved,
    relabel,
    save_correction,
    saved_pictures,
)
from mnist_cnn.predict import Classifier
from mnist_cnn.reader import Reader, as_image
from mnist_cnn.teaching import (
    Command,
    ModelSwitch,
    Teacher,
    TeachingBusyError,
    load_onnx_export,
    train_command,
)

STATIC_DIR = Path(__file__).resolve().parent / "static"
API_PREFIX = "/api/"
PREDICT_URL = API_PREFIX + "predict"
MAX_UPLOAD_BYTES = 4 * 1024 * 1024  # a canvas PNG is a few kB; phone photos fit too
UPLOAD_FIELD = "image"
OWN_DIGITS_URL = API_PREFIX + "own-digits"
TEACH_URL = API_PREFIX + "teach"
MODEL_URL = API_PREFIX + "model"
SWITCH_KEY = "mnist_cnn.model_switch"
TEACHER_KEY = "mnist_cnn.teacher"
SETTINGS_KEY = "mnist_cnn.teaching_settings"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
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


def json_payload(body: bytes) -> dict:
    """A JSON request body as a dict. Raises UserError when it is not a JSON object."""
    try:
        payload = json.loads(body)
    except ValueError:  # also UnicodeDecodeError
        raise UserError("the request body is not valid JSON") from None
    return payload if isinstance(payload, dict) else {}


def image_from_json(payload: dict) -> bytes:
    """The image in a JSON body `{"image": "data:image/png;base64,..."}`, as canvas clients send.

    Raises UserError for a body with no `image`, or whose data URL is not base64; what the
    bytes hold is checked later, like any upload.
    """
    url = payload.get(UPLOAD_FIELD)
    if not isinstance(url, str):
        raise UserError(f"no '{UPLOAD_FIELD}' in the JSON body: send {JSON_EXAMPLE}")
    header, comma, data = url.partition(",")
    if not (comma and header.startswith("data:") and header.endswith(";base64")):
        raise UserError(f"'{UPLOAD_FIELD}' is not a base64 data URL: send {JSON_EXAMPLE}")
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error:
        raise UserError(f"'{UPLOAD_FIELD}' is a data URL whose data is not valid base64") from None


def read_upload() -> tuple[bytes, str, Mapping]:
    """The posted image, a name for messages, and the request's other fields: a form field
    (and the form), a JSON data URL (and the JSON object), or the body (and the query)."""
    if request.is_json:
        payload = json_payload(request.get_data(cache=False))
        return image_from_json(payload), "JSON image", payload
    if request.mimetype == "multipart/form-data":
        upload = request.files.get(UPLOAD_FIELD)
        if upload is None:
            raise UserError(f"no file in the form field '{UPLOAD_FIELD}'")
        return upload.read(), upload.filename or "upload", request.form
    raw = request.get_data(cache=False)
    if not raw:
        raise UserError(f"empty request: send a PNG body or a form field '{UPLOAD_FIELD}'")
    return raw, "request body", request.args


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
    raw, name, _ = read_upload()
    result = classify(switch().served.reader, raw, name)
    result["elapsed_ms"] = round((time.perf_counter() - start) * 1000.0, 2)
    return jsonify(result)


def index_route() -> Response:
    """GET /: the drawing page."""
    return current_app.send_static_file("index.html")


# --- a person's own digits and teaching (docs/web.md#teach-it-your-handwriting) ----------------


@dataclass(frozen=True)
class TeachingSettings:
    """Where corrections are saved, whether saving and teaching are on, and whether the
    server listens on the loopback interface only (then requests must name it as Host)."""

    own_digits: Path
    allowed: bool = True
    loopback_only: bool = True


def switch() -> ModelSwitch:
    """The app's model switch: which reader answers."""
    return current_app.extensions[SWITCH_KEY]


def teacher() -> Teacher:
    """The app's teaching job manager."""
    return current_app.extensions[TEACHER_KEY]


def settings() -> TeachingSettings:
    """The app's teaching settings."""
    return current_app.extensions[SETTINGS_KEY]


def is_loopback(host: str | None) -> bool:
    """Whether a host name or address (a Host header's, without its port) is this machine's
    loopback interface only: localhost, 127.0.0.0/8 or ::1."""
    name = (host or "").strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(host: str) -> str | None:
    """A Host header's name without its port (None when it is not a host name at all)."""
    try:
        return urlsplit(f"//{host}").hostname
    except ValueError:  # such as an unclosed "[::1"
        return None


def same_origin(origin: str | None, scheme: str, host: str) -> bool:
    """Whether an Origin header names this server as the request reached it: the same
    scheme and the same host and port as the Host header."""
    return bool(origin) and origin.rstrip("/").lower() == f"{scheme}://{host}".lower()


def off_reason() -> str | None:
    """Why saving and teaching are refused to this request (None: they are not): off for
    this server, or a Host that is not the loopback while the server listens only there
    (a DNS-rebinding page would reach it under its own name)."""
    if not settings().allowed:
        return (
            "saving and teaching are off: this server listens beyond the loopback interface; "
            "start it with --allow-teaching to allow them"
        )
    if settings().loopback_only and not is_loopback(host_name(request.host)):
        return f"saving and teaching answer only at 127.0.0.1 or localhost, not {request.host}"
    return None


def check_teaching_request() -> None:
    """Refuse (403) what may not use saving and teaching: see off_reason; and any change
    (every method but GET) whose Origin header is not this server's (cross-site requests)."""
    reason = off_reason()
    is_change = request.method not in SAFE_METHODS
    origin = request.headers.get("Origin")
    if reason is None and is_change and not same_origin(origin, request.scheme, request.host):
        reason = (
            f"cross-origin request refused: a change needs the Origin "
            f"{request.scheme}://{request.host}"
        )
    if reason is not None:
        abort(403, description=reason)


def saved_list(folder: Path) -> dict:
    """GET /api/own-digits's answer: the folder, the counts per digit and every saved
    picture (name, label), newest first."""
    pictures = sorted(saved_pictures(folder), key=lambda path: -path.stat().st_mtime)
    counts = {label: 0 for label in LABELS}
    for path in pictures:
        counts[path.parent.name] += 1
    return {
        "folder": str(folder),
        "total": len(pictures),
        "max": MAX_PICTURES,
        "counts": counts,
        "pictures": [{"name": path.name, "label": int(path.parent.name)} for path in pictures],
    }


def saved_path(name: str) -> Path:
    """The saved picture a URL names, or 404."""
    path = find_saved(settings().own_digits, checked_name(name))
    if path is None:
        abort(404, description=f"{name}: no such saved picture")
    return path


def list_route() -> Response:
    """GET /api/own-digits: what is saved."""
    return jsonify(saved_list(settings().own_digits))


def save_route() -> Response:
    """POST /api/own-digits: a picture (as /api/predict takes it) and `number`, the right
    number. The server reads the picture again and saves the 28x28s it made, each under its
    digit of the number: what is taught is what was read, never pixels the client sends."""
    raw, name, fields = read_upload()
    number = fields.get("number")
    if not isinstance(number, str):
        raise UserError("no 'number': send the right number with the picture")
    number = check_number(number.strip())  # before reading: a bad number costs no reading
    image = as_image(raw, name)
    reading = switch().served.reader.read(image, name=name)
    folder = settings().own_digits
    saved = save_correction(folder, image, reading.digits, number, name)
    listed = [{"name": p.name, "label": int(p.parent.name), "new": new} for p, new in saved]
    return jsonify(saved=listed, **saved_list(folder))


def picture_route(name: str) -> Response:
    """GET /api/own-digits/NAME: a saved 28x28 as PNG, for the thumbnails."""
    return send_file(saved_path(name), mimetype="image/png")


def relabel_route(name: str) -> Response:
    """PATCH /api/own-digits/NAME with JSON {"label": "3"}: move it to another digit."""
    path = saved_path(name)
    label = (request.get_json(silent=True) or {}).get("label")
    relabel(settings().own_digits, path, str(label))
    return jsonify(saved_list(settings().own_digits))


def delete_route(name: str) -> Response:
    """DELETE /api/own-digits/NAME: delete it and its original crop."""
    saved_path(name)
    delete(settings().own_digits, name)
    return jsonify(saved_list(settings().own_digits))


def teach_status_route() -> Response:
    """GET /api/teach: the last teaching run (state, progress, before and after) and the
    model served."""
    return jsonify(teacher().status())


def teach_route() -> tuple[Response, int]:
    """POST /api/teach: start fine-tuning the served model on the saved digits (202), or 409
    while a run is under way."""
    teacher().start()
    return jsonify(teacher().status()), 202


def model_route() -> Response:
    """GET /api/model: which model answers, and whether saving and teaching are on here."""
    reason = off_reason()
    return jsonify({**switch().to_dict(), "teaching": reason is None, "teaching_off": reason})


def use_model_route() -> Response:
    """POST /api/model with JSON {"use": "original"} or {"use": "taught"}: switch."""
    switch().use(str((request.get_json(silent=True) or {}).get("use")))
    return model_route()


def user_error(error: UserError) -> tuple[Response, int]:
    """Bad input is the client's fault: 400 with the one-line message (409 for a second
    teaching run while one runs)."""
    return jsonify(error=str(error)), 409 if isinstance(error, TeachingBusyError) else 400


def http_error(error: HTTPException) -> Response | HTTPException:
    """JSON errors under /api/ (404, 405, 413, 500...), Flask's own pages elsewhere."""
    if not request.path.startswith(API_PREFIX):
        return error
    response = error.get_response()  # keeps headers such as 405's Allow
    response.data = current_app.json.dumps({"error": f"{error.name}: {error.description}"})
    response.content_type = "application/json"
    return response


def warm_up(reader: Reader) -> Reader:
    """Read one drawn stroke (a 1) through the whole path, so the first visitor waits for
    neither the engine's first-call set-up nor OpenCV's and NumPy's first calls, and load the
    second model pieces refused at a number's ends are asked of; returns it."""
    stroke = np.zeros((2 * IMAGE_SIZE, 2 * IMAGE_SIZE), np.uint8)
    stroke[IMAGE_SIZE // 2 : -IMAGE_SIZE // 2, IMAGE_SIZE - 2 : IMAGE_SIZE + 2] = 255
    reader.read(stroke, name="warm-up stroke")
    reader.second_classifier()
    return reader


def load_taught(model_path: Path) -> Reader:
    """A taught model as the server serves it: on its ONNX export, notes printed, warmed up."""
    reader = load_onnx_export(model_path)
    for note in reader.notes:
        print(note, file=sys.stderr)
    return warm_up(reader)


def teaching_blueprint() -> Blueprint:
    """The routes of a person's own digits and of teaching, each request checked first
    (check_teaching_request)."""
    blueprint = Blueprint("teaching", __name__)
    blueprint.before_request(check_teaching_request)
    routes = [
        (OWN_DIGITS_URL, list_route, "GET"),
        (OWN_DIGITS_URL, save_route, "POST"),
        (f"{OWN_DIGITS_URL}/<name>", picture_route, "GET"),
        (f"{OWN_DIGITS_URL}/<name>", relabel_route, "PATCH"),
        (f"{OWN_DIGITS_URL}/<name>", delete_route, "DELETE"),
        (TEACH_URL, teach_status_route, "GET"),
        (TEACH_URL, teach_route, "POST"),
        (MODEL_URL, use_model_route, "POST"),
    ]
    for url, view, method in routes:
        blueprint.add_url_rule(url, view_func=view, methods=[method])
    return blueprint


def create_app(
    model: Reader | Classifier | Path | str | None = None,
    verbose: bool = False,
    shipped: bool = False,
    *,
    teaching: TeachingSettings | None = None,
    teach_command: Command = train_command,
    models_dir: Path | None = None,
) -> Flask:
    """The Flask app around a Reader; `model` is a Reader, a loaded Classifier, or a model
    path (.keras, .h5, .onnx or .tflite; None: the default model, `shipped`: the shipped one),
    loaded once here, its notes printed (and TensorFlow's log lines, if it loads, when
    `verbose`). `teaching` says where corrections go and who may save and teach (None: the
    user's own-digits folder, on, for requests to the loopback); teaching runs
    `teach_command` (teaching.train_command) and writes into `models_dir` (None:
    teaching.taught_models_dir())."""
    if isinstance(model, Classifier):
        reader = Reader.from_classifier(model)
    elif isinstance(model, Reader):
        reader = model
    else:
        reader = Reader(model, shipped=shipped, verbose=verbose)
    for note in reader.notes:
        print(note, file=sys.stderr)
    settings = teaching or TeachingSettings(user_own_digits_dir())
    model_switch = ModelSwitch(warm_up(reader))
    app = Flask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")
    app.request_class = InMemoryRequest
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES
    app.extensions[SWITCH_KEY] = model_switch
    app.extensions[SETTINGS_KEY] = settings
    app.extensions[TEACHER_KEY] = Teacher(
        model_switch,
        settings.own_digits,
        command=teach_command,
        load=load_taught,
        models_dir=models_dir,
    )
    app.add_url_rule("/", view_func=index_route, methods=["GET"])
    app.add_url_rule(PREDICT_URL, view_func=predict_route, methods=["POST"])
    app.add_url_rule(MODEL_URL, view_func=model_route, methods=["GET"])
    app.register_blueprint(teaching_blueprint())
    app.register_error_handler(UserError, user_error)
    app.register_error_handler(HTTPException, http_error)
    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options: where to listen, which model to serve, where corrections go."""
    parser = argparse.ArgumentParser(
        prog=program_name("mnist_cnn.web"),
        description="Draw a digit in the browser and classify it; correct a reading and "
        "teach the model your handwriting.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    add_model_flags(parser)
    parser.add_argument(
        "--own-digits",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder where corrected digits are saved, DIR/0 ... DIR/9 "
        f"(default: {user_own_digits_dir()})",
    )
    parser.add_argument(
        "--allow-teaching",
        action="store_true",
        help="allow saving and teaching from the page when --host is not the loopback "
        "(they change what the server answers for everyone)",
    )
    add_common_flags(parser)
    return parser.parse_args(argv)


def teaching_line(settings: TeachingSettings, host: str) -> str:
    """The start-up line saying whether saving and teaching are on, and where digits go."""
    if settings.allowed:
        return f"Saving and teaching from the page: on, digits saved in {settings.own_digits}"
    return (
        f"Saving and teaching from the page: off, as {host} is beyond the loopback "
        "interface (--allow-teaching turns them on)"
    )


def main(argv: list[str] | None = None) -> int:
    """Load the model once, then serve the app with Flask's threaded development server."""
    args = parse_args(argv)
    loopback = is_loopback(args.host)
    teaching = TeachingSettings(
        own_digits=args.own_digits or user_own_digits_dir(),
        allowed=loopback or args.allow_teaching,
        loopback_only=loopback,
    )
    app = create_app(args.model_path, args.verbose, args.shipped, teaching=teaching)
    reader = app.extensions[SWITCH_KEY].served.reader
    print(
        f"Serving {reader.model_path} ({reader.engine}) at http://{args.host}:{args.port}/ "
        "(Ctrl-C to stop)"
    )
    print(teaching_line(teaching, args.host))
    # SIGTERM (a service manager's stop) ends the server as Ctrl-C does, through the exit
    # handlers, so a teaching run under way is ended with it rather than left training.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    app.run(host=args.host, port=args.port, threaded=True)
    return 0


def run() -> None:
    """The console command: main() with one-line errors and exit codes."""
    run_cli(main)


if __name__ == "__main__":
    run()
