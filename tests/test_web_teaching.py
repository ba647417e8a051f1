"""Correcting readings, the saved digits and teaching from the page, through Flask's test client.

The app serves the shipped model's ONNX export, so no test here needs TensorFlow; teaching runs
a small fake command (below) that follows the training command's progress-file contract.
"""

from __future__ import annotations

import base64
import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT
from PIL import Image
from test_web import free_port, post_to_server

from mnist_cnn import own_digits
from mnist_cnn.config import SHIPPED_MODEL_PATH
from mnist_cnn.engine import onnx_beside
from mnist_cnn.errors import UserError
from mnist_cnn.own_digits import ORIGINALS, load_own_digits
from mnist_cnn.reader import Reader
from mnist_cnn.teaching import ModelSwitch, Teacher, train_command
from mnist_cnn.web import MAX_UPLOAD_BYTES, TeachingSettings, create_app, is_loopback, same_origin

SHIPPED_ONNX = onnx_beside(SHIPPED_MODEL_PATH)
ORIGIN = {"Origin": "http://localhost"}  # the test client's requests go to http://localhost
WAIT_S = 60

# A stand-in for `python -m mnist_cnn.commands.train`: it writes the progress file as the
# contract says, waits for the test to create GATE, then "teaches" by copying the model it
# starts from (.keras, .onnx and statistics) to OUT, or fails when told to.
FAKE_TRAIN = r"""
import json, os, shutil, sys, time
from pathlib import Path
start, own, out, progress, gate, outcome = sys.argv[1:]
start, out, progress, gate = Path(start), Path(out), Path(progress), Path(gate)
def write(stage, epoch, error=None):
    state = {"stage": stage, "epoch": epoch, "epochs": 2, "seconds_left": 2.0 - epoch,
             "before": {"own": 0.5, "mnist": 0.99, "own_count": 2},
             "after": None if stage != "done" else {"own": 1.0, "mnist": 0.99, "own_count": 2},
             "model_path": str(out), "error": error}
    tmp = progress.with_name(progress.name + ".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, progress)
write("training", 1)
deadline = time.monotonic() + 60
while not gate.exists() and time.monotonic() < deadline:
    time.sleep(0.02)
if outcome == "fail":
    write("failed", 1, "no readable picture in the folder")
    print("error: no readable picture in the folder", file=sys.stderr)
    sys.exit(1)
for suffix in (".keras", ".onnx"):
    shutil.copy(start.with_suffix(suffix), out.with_suffix(suffix))
shutil.copy(start.with_name(start.stem + "_ood.json"), out.with_name(out.stem + "_ood.json"))
write("done", 2)
"""


def png(pixels: np.ndarray) -> bytes:
    """A uint8 array as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def pixels_of(data: bytes) -> np.ndarray:
    """The pixels of PNG bytes."""
    return np.asarray(Image.open(io.BytesIO(data)))


def data_url_pixels(url: str) -> np.ndarray:
    """The pixels of a `data:image/png;base64,...` URL."""
    return pixels_of(base64.b64decode(url.partition(",")[2]))


@pytest.fixture
def fake_train(tmp_path):
    """(command, gate, outcome): the fake training command, the file that lets it finish,
    and a one-item list to set to "fail" for a failing run."""
    script = tmp_path / "fake_train.py"
    script.write_text(FAKE_TRAIN)
    gate, outcome = tmp_path / "gate", ["succeed"]

    def command(start: Path, own: Path, out: Path, progress: Path) -> list[str]:
        args = (script, start, own, out, progress, gate, outcome[0])
        return [sys.executable, *map(str, args)]

    return command, gate, outcome


def make_app(tmp_path, command=train_command, **settings):
    """The app on the shipped ONNX model, saving in tmp_path/own, teaching in tmp_path/models."""
    teaching = TeachingSettings(tmp_path / "own", **settings)
    return create_app(
        SHIPPED_ONNX, teaching=teaching, teach_command=command, models_dir=tmp_path / "models"
    )


@pytest.fixture
def app(tmp_path, fake_train):
    """The app with the fake training command."""
    return make_app(tmp_path, fake_train[0])


@pytest.fixture
def client(app):
    """A test client of `app`."""
    return app.test_client()


def correct(client, pixels: np.ndarray, number: str, headers=ORIGIN):
    """POST a picture and the right number, as the page does (multipart)."""
    data = {"image": (io.BytesIO(png(pixels)), "drawing.png"), "number": number}
    return client.post("/api/own-digits", data=data, headers=headers)


def error_of(response, status: int) -> str:
    """The one-line JSON error of a response with `status`."""
    assert response.status_code == status, response.data
    return response.get_json()["error"]


def test_a_correction_saves_what_was_read_under_the_typed_labels(client, mnist, tmp_path):
    picture = np.hstack([mnist.x_test[0], mnist.x_test[1]])  # a 7 and a 2
    read = client.post("/api/predict", data=png(picture), content_type="image/png").get_json()
    response = correct(client, picture, "17")
    assert response.status_code == 200, response.data
    reply = response.get_json()
    assert [(s["label"], s["new"]) for s in reply["saved"]] == [(1, True), (7, True)]
    assert reply["counts"]["1"] == 1 and reply["counts"]["7"] == 1 and reply["total"] == 2
    folder = tmp_path / "own"
    assert sorted(load_own_digits(folder).labels.tolist()) == [1, 7]
    for saved, seen in zip(reply["saved"], read["digits"], strict=True):
        shown = client.get(f"/api/own-digits/{saved['name']}")
        assert shown.status_code == 200 and shown.mimetype == "image/png"
        np.testing.assert_array_equal(pixels_of(shown.data), data_url_pixels(seen["preprocessed"]))
        crop = Image.open(folder / ORIGINALS / saved["name"])
        assert crop.height <= 28 and crop.width < 56  # around one digit, not both
    # The same picture again adds nothing; corrected once more, it moves.
    again = correct(client, picture, "72").get_json()
    assert [s["new"] for s in again["saved"]] == [False, False]
    assert again["total"] == 2 and again["counts"]["2"] == 1 and again["counts"]["1"] == 0


def test_saved_digits_equal_the_readers_own(client, mnist, tmp_path):
    reading = Reader(SHIPPED_ONNX).read(png(mnist.x_test[3]))
    correct(client, mnist.x_test[3], "0")
    np.testing.assert_array_equal(
        load_own_digits(tmp_path / "own").images[0], reading.digits[0].image
    )


def test_a_correction_without_a_number_says_so(client, mnist):
    response = client.post("/api/own-digits", data=png(mnist.x_test[0]), headers=ORIGIN)
    assert "no 'number'" in error_of(response, 400)


@pytest.mark.parametrize(
    ("number", "words"),
    [("12", "12 has 2 digits but 1 digit"), ("", "not a number"),
     ("7a", "not a number"), ("-7", "not a number"),
     ("\N{ARABIC-INDIC DIGIT SEVEN}", "not a number")],
    ids=["too-long", "empty", "letter", "sign", "non-ascii-digit"],
)  # fmt: skip
def test_a_bad_number_is_refused_in_one_line(client, mnist, tmp_path, number, words):
    assert words in error_of(correct(client, mnist.x_test[0], number), 400)
    assert not (tmp_path / "own").exists() or not list(own_digits.saved_pictures(tmp_path / "own"))


def test_a_number_without_its_picture_is_refused(client):
    response = client.post(
        "/api/own-digits", data={"number": "7"}, content_type="multipart/form-data", headers=ORIGIN
    )
    assert "no file" in error_of(response, 400)


def test_a_json_correction_works_too(client, mnist):
    url = "data:image/png;base64," + base64.b64encode(png(mnist.x_test[0])).decode()
    response = client.post("/api/own-digits", json={"image": url, "number": "7"}, headers=ORIGIN)
    assert response.status_code == 200 and response.get_json()["counts"]["7"] == 1


def test_relabel_and_delete_a_saved_picture(client, mnist, tmp_path):
    (saved,) = correct(client, mnist.x_test[0], "1").get_json()["saved"]
    name, url = saved["name"], f"/api/own-digits/{saved['name']}"
    moved = client.patch(url, json={"label": "7"}, headers=ORIGIN)
    assert moved.status_code == 200 and moved.get_json()["pictures"] == [{"name": name, "label": 7}]
    assert (tmp_path / "own" / "7" / name).is_file()
    assert "not a digit label" in error_of(
        client.patch(url, json={"label": "x"}, headers=ORIGIN), 400
    )
    assert "not a digit label" in error_of(client.patch(url, json={}, headers=ORIGIN), 400)
    gone = client.delete(url, headers=ORIGIN)
    assert gone.status_code == 200 and gone.get_json()["total"] == 0
    assert not (tmp_path / "own" / ORIGINALS / name).exists()
    assert "no such saved picture" in error_of(client.delete(url, headers=ORIGIN), 404)
    assert "no such saved picture" in error_of(client.get(url), 404)


@pytest.mark.parametrize("name", ["..%2Fsecret.png", ".hidden.png", "a.txt"])
def test_names_that_are_not_saved_pictures_are_refused(client, name):
    assert client.get(f"/api/own-digits/{name}").status_code in (400, 404)


def test_the_list_of_an_empty_folder(client):
    reply = client.get("/api/own-digits").get_json()
    assert reply["total"] == 0 and reply["pictures"] == [] and reply["max"] == 20_000
    assert reply["counts"] == {str(digit): 0 for digit in range(10)}


def test_at_most_max_pictures(client, mnist, monkeypatch):
    monkeypatch.setattr(own_digits, "MAX_PICTURES", 1)
    assert correct(client, mnist.x_test[0], "7").status_code == 200
    assert "the most it may hold" in error_of(correct(client, mnist.x_test[1], "2"), 400)


def test_a_picture_over_the_upload_limit_is_refused(client):
    # Flask's 4 MB request limit keeps pictures within own_digits' 5 MB a picture.
    assert own_digits.MAX_PICTURE_BYTES > MAX_UPLOAD_BYTES
    big = {"image": (io.BytesIO(b"\0" * MAX_UPLOAD_BYTES), "big.png"), "number": "7"}
    response = client.post("/api/own-digits", data=big, headers=ORIGIN)
    assert response.status_code == 413 and response.is_json


# --- who may change what the server answers --------------------------------------------------


CHANGES = [
    ("post", "/api/own-digits"),
    ("patch", "/api/own-digits/0123456789abcdef.png"),
    ("delete", "/api/own-digits/0123456789abcdef.png"),
    ("post", "/api/teach"),
    ("post", "/api/model"),
]


@pytest.mark.parametrize(("method", "url"), CHANGES)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Origin": "http://evil.example"}, {"Origin": "https://localhost"},
     {"Origin": "http://localhost:8001"}, {"Origin": "null"}],
    ids=["no-origin", "other-site", "other-scheme", "other-port", "null"],
)  # fmt: skip
def test_changes_from_another_origin_are_refused(client, method, url, headers):
    assert "cross-origin" in error_of(getattr(client, method)(url, headers=headers), 403)


def test_a_page_reaching_the_loopback_under_another_name_is_refused(client):
    # DNS rebinding: evil.example resolves to 127.0.0.1, so Origin and Host agree.
    headers = {"Host": "evil.example:8000", "Origin": "http://evil.example:8000"}
    assert "only at 127.0.0.1" in error_of(client.post("/api/teach", headers=headers), 403)
    assert "only at 127.0.0.1" in error_of(client.get("/api/own-digits", headers=headers), 403)


@pytest.mark.parametrize("host", ["[::1", "evil.example", "127.0.0.1.evil.example"])
def test_hosts_not_naming_the_loopback_are_refused(client, host):
    headers = {"Host": host, "Origin": f"http://{host}"}
    assert error_of(client.get("/api/own-digits", headers=headers), 403)


def test_beyond_the_loopback_saving_and_teaching_are_off_without_the_flag(tmp_path, mnist):
    client = make_app(tmp_path, allowed=False, loopback_only=False).test_client()
    for method, url in [("get", "/api/own-digits"), ("get", "/api/teach"), *CHANGES]:
        response = getattr(client, method)(url, headers=ORIGIN)
        assert "--allow-teaching" in error_of(response, 403), url
    reply = client.get("/api/model").get_json()
    assert reply["teaching"] is False and "--allow-teaching" in reply["teaching_off"]
    assert (
        client.post("/api/predict", data=png(mnist.x_test[0]), content_type="image/png").status_code
        == 200
    )


def test_with_the_flag_a_public_server_takes_changes_from_its_own_pages(tmp_path, mnist):
    client = make_app(tmp_path, loopback_only=False).test_client()
    headers = {"Host": "digits.example", "Origin": "http://digits.example"}
    assert correct(client, mnist.x_test[0], "7", headers).status_code == 200


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.1.1", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False),
     ("example.com", False), ("", False)],
)  # fmt: skip
def test_which_hosts_are_the_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_same_origin_compares_scheme_host_and_port():
    assert same_origin("http://127.0.0.1:8000", "http", "127.0.0.1:8000")
    assert not same_origin("http://127.0.0.1:8000", "http", "localhost:8000")
    assert not same_origin(None, "http", "127.0.0.1:8000")


def test_the_server_says_at_start_up_whether_teaching_is_on(tmp_path):
    command = [sys.executable, "-m", "mnist_cnn.web", "--host", "0.0.0.0", "--port", "0",
               "--model-path", str(SHIPPED_ONNX), "--own-digits", str(tmp_path)]  # fmt: skip
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        command, cwd=REPO_ROOT, env=environment, stdout=subprocess.PIPE, text=True
    )
    try:
        lines = [server.stdout.readline() for _ in range(2)]
    finally:
        server.terminate()
        server.wait(timeout=WAIT_S)
    assert lines[1].startswith("Saving and teaching from the page: off") and "--allow" in lines[1]


# --- teaching -----------------------------------------------------------------------------------


def wait_for_run(app) -> dict:
    """Wait until the app's teaching run has ended; its status."""
    teacher = app.extensions["mnist_cnn.teacher"]
    assert teacher.run.finished.wait(WAIT_S), "the teaching run did not end"
    return teacher.status()


def test_teaching_runs_one_at_a_time_then_serves_the_new_model(app, client, mnist, fake_train):
    _, gate, _ = fake_train
    assert "correct a reading first" in error_of(client.post("/api/teach", headers=ORIGIN), 400)
    correct(client, mnist.x_test[0], "7")
    started = client.post("/api/teach", headers=ORIGIN)
    assert started.status_code == 202 and started.get_json()["state"] == "running"
    assert "already under way" in error_of(client.post("/api/teach", headers=ORIGIN), 409)
    progress = client.get("/api/teach").get_json()
    assert progress["state"] == "running" and progress["model"]["served"] == "original"
    # Readings still answer while it runs.
    assert (
        client.post("/api/predict", data=png(mnist.x_test[0]), content_type="image/png").status_code
        == 200
    )
    gate.touch()
    status = wait_for_run(app)
    assert status["state"] == "done" and status["progress"]["after"]["own"] == 1.0
    model = client.get("/api/model").get_json()
    assert model["served"] == "taught" and model["model"].startswith("taught-")
    assert model["model"].endswith(".onnx") and model["engine"] == "ONNX Runtime"
    assert Path(status["model_path"]).parent == app.extensions["mnist_cnn.teacher"].models_dir
    back = client.post("/api/model", json={"use": "original"}, headers=ORIGIN).get_json()
    assert back["served"] == "original" and back["model"] == SHIPPED_ONNX.name
    assert (
        client.post("/api/model", json={"use": "taught"}, headers=ORIGIN).get_json()["served"]
        == "taught"
    )
    assert "not a model" in error_of(
        client.post("/api/model", json={"use": "x"}, headers=ORIGIN), 400
    )
    # A second run may start once the first has ended, and teaches from the model served.
    assert client.post("/api/teach", headers=ORIGIN).status_code == 202
    gate.touch()
    assert wait_for_run(app)["state"] == "done"


def test_a_failed_run_says_why_and_keeps_the_model(app, client, mnist, fake_train):
    _, gate, outcome = fake_train
    outcome[0] = "fail"
    correct(client, mnist.x_test[0], "7")
    assert client.post("/api/teach", headers=ORIGIN).status_code == 202
    gate.touch()
    status = wait_for_run(app)
    assert status["state"] == "failed" and "no readable picture" in status["error"]
    assert status["model"]["served"] == "original" and status["model"]["taught"] is None
    assert "teach it first" in error_of(
        client.post("/api/model", json={"use": "taught"}, headers=ORIGIN), 400
    )


def test_the_switch_is_atomic_for_requests_in_flight(mnist):
    # Readings in other threads while the model switches back and forth: each gets a whole
    # reader, never a half-switched one.
    original, taught = Reader(SHIPPED_ONNX), Reader(SHIPPED_ONNX)
    switch = ModelSwitch(original)
    switch.serve_taught(taught)
    errors: list[BaseException] = []

    def read_many():
        try:
            for _ in range(30):
                served = switch.served
                assert served.reader is (original if served.which == "original" else taught)
                served.reader.read(mnist.x_test[0])
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    readers = [threading.Thread(target=read_many) for _ in range(2)]
    for thread in readers:
        thread.start()
    for n in range(200):
        switch.use("original" if n % 2 else "taught")
    for thread in readers:
        thread.join()
    assert errors == []


def test_the_teaching_command_follows_the_contract(tmp_path):
    argv = train_command(Path("a.keras"), Path("own"), Path("out.keras"), Path("p.json"))
    assert argv[:3] == [sys.executable, "-m", "mnist_cnn.commands.train"]
    assert argv[3:] == ["--start-from", "a.keras", "--own-digits", "own",
                        "--model-path", "out.keras", "--progress-file", "p.json"]  # fmt: skip


def test_a_command_that_cannot_start_is_one_line(tmp_path, mnist):
    def missing(*paths: Path) -> list[str]:
        return [str(tmp_path / "no-such-program")]

    switch = ModelSwitch(Reader(SHIPPED_ONNX))
    teacher = Teacher(switch, tmp_path / "own", command=missing, models_dir=tmp_path / "models")
    own_digits.save_digit(tmp_path / "own", 7, mnist.x_test[0])
    with pytest.raises(UserError, match="cannot start the teaching run"):
        teacher.start()
    assert teacher.status()["state"] == "idle"


def test_a_served_export_without_its_keras_cannot_be_taught(tmp_path, mnist):
    lonely = tmp_path / "alone.onnx"
    lonely.write_bytes(SHIPPED_ONNX.read_bytes())
    teacher = Teacher(ModelSwitch(Reader(lonely)), tmp_path / "own")
    own_digits.save_digit(tmp_path / "own", 7, mnist.x_test[0])
    with pytest.raises(UserError, match=r"teaching starts from a \.keras model"):
        teacher.start()


@pytest.mark.slow
def test_teaching_with_the_real_command_serves_the_taught_export(tmp_path, mnist):
    # The training command itself (mnist_cnn.commands.train --start-from ...), on 30 digits.
    app = make_app(tmp_path)
    for digit, label in zip(mnist.x_test[:30], mnist.y_test[:30], strict=True):
        own_digits.save_digit(tmp_path / "own", int(label), digit)
    shipped = SHIPPED_MODEL_PATH.read_bytes()
    client = app.test_client()
    assert client.post("/api/teach", headers=ORIGIN).status_code == 202
    teacher = app.extensions["mnist_cnn.teacher"]
    assert teacher.run.finished.wait(1200), "the teaching run did not end in 20 minutes"
    status = teacher.status()
    assert status["state"] == "done", status
    progress = status["progress"]
    assert progress["stage"] == "done" and progress["epoch"] == progress["epochs"] > 0
    assert progress["before"]["mnist"] > 0.98 and progress["after"]["mnist"] > 0.98
    model = Path(status["model_path"])
    assert model.parent == tmp_path / "models" and onnx_beside(model).is_file()
    assert client.get("/api/model").get_json()["model"] == onnx_beside(model).name
    reading = client.post("/api/predict", data=png(mnist.x_test[0]), content_type="image/png")
    assert reading.get_json()["number"] == "7"
    assert SHIPPED_MODEL_PATH.read_bytes() == shipped


def children_of(pid: int) -> list[int]:
    """The pids of a process's children, started by any of its threads (Linux's /proc)."""
    tasks = Path(f"/proc/{pid}/task").glob("*/children")
    return [int(child) for task in tasks for child in task.read_text().split()]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
def test_stopping_the_server_ends_its_teaching_run(tmp_path, mnist):
    # 30 digits: a run that takes far longer than the 10 s allowed for it to end.
    for digit, label in zip(mnist.x_test[:30], mnist.y_test[:30], strict=True):
        own_digits.save_digit(tmp_path / "own", int(label), digit)
    port = free_port()
    command = [sys.executable, "-m", "mnist_cnn.web", "--port", str(port), "--model-path",
               str(SHIPPED_ONNX), "--own-digits", str(tmp_path / "own")]  # fmt: skip
    environment = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    server = subprocess.Popen(command, cwd=REPO_ROOT, env=environment, stdout=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/api/teach"
        status, reply = post_to_server(url, b"", {"Origin": f"http://127.0.0.1:{port}"})
        assert status == 202, reply
        # The request's thread started the run: while that thread ends, /proc may list the
        # child under none of the server's threads for a moment.
        deadline = time.monotonic() + 10
        while not (children := children_of(server.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        (child,) = children
    finally:
        server.terminate()
        server.wait(timeout=WAIT_S)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = Path(f"/proc/{child}").exists()
    if alive:
        os.kill(child, signal.SIGKILL)  # not left training after the test
    assert not alive, "the teaching run outlived the server"


# The app in a process of its own, teaching with the fake command: TensorFlow must not load.
SERVER_TEACHES = r"""
import sys
from pathlib import Path
from mnist_cnn.web import TeachingSettings, create_app
model, own, models, script, gate = map(Path, sys.argv[1:])
def command(start, own, out, progress):
    return [sys.executable, *map(str, (script, start, own, out, progress, gate, "succeed"))]
app = create_app(model, teaching=TeachingSettings(own), teach_command=command, models_dir=models)
client = app.test_client()
assert client.post("/api/teach", headers={"Origin": "http://localhost"}).status_code == 202
assert app.extensions["mnist_cnn.teacher"].run.finished.wait(60)
assert client.get("/api/model").get_json()["served"] == "taught"
picture = next(own.glob("7/*.png")).read_bytes()
assert client.post("/api/predict", data=picture, content_type="image/png").status_code == 200
print("tensorflow" in sys.modules)
"""


def test_the_server_never_imports_tensorflow_even_when_it_teaches(tmp_path, fake_train, mnist):
    # This test process has TensorFlow loaded (conftest), so the server runs in a child.
    gate = fake_train[1]
    gate.touch()
    own_digits.save_digit(tmp_path / "own", 7, mnist.x_test[0])
    script = tmp_path / "fake_train.py"
    args = (SHIPPED_ONNX, tmp_path / "own", tmp_path / "models", script, gate)
    result = subprocess.run(
        [sys.executable, "-c", SERVER_TEACHES, *map(str, args)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False"]
