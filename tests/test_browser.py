"""End to end: the real server in a subprocess, driven by headless Chromium through Selenium."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.actions import interaction
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.actions.pointer_input import PointerInput
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from test_segment import seven_two_with_dots

from mnist_cnn.own_digits import saved_pictures

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = REPO_ROOT / "plots" / "web_app.png"
WINDOW_SIZE = "1240,900"
SERVER_START_TIMEOUT_S = 180  # importing TensorFlow on a busy two-core machine is slow
ANSWER_TIMEOUT_S = 20
NO_ANSWER = "\N{EN DASH}"  # what the page shows before it has an answer
STEPS_PER_SEGMENT = 8  # intermediate pointer moves, so the page sees a stroke, not a jump

# Strokes as fractions (x, y) of a square cell as tall as the canvas, (0, 0) top-left: each list
# is one press-move-release. draw() puts the cell in the middle of the canvas unless told.
ONE = [[(0.50, 0.18), (0.50, 0.82)]]
SEVEN = [[(0.28, 0.22), (0.72, 0.22), (0.45, 0.82)]]
THREE = [[(0.3, 0.22), (0.65, 0.22), (0.45, 0.48), (0.68, 0.6), (0.65, 0.78), (0.3, 0.8)]]
FIVE = [
    [(0.68, 0.22), (0.35, 0.22), (0.32, 0.48), (0.6, 0.46), (0.7, 0.62), (0.62, 0.8), (0.3, 0.8)]
]

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} is not installed")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(url: str, process: subprocess.Popen, log: Path) -> None:
    """Poll `url` until the server answers, failing early with its log if it exits."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the server did not answer within {SERVER_START_TIMEOUT_S} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def own_digits_dir(tmp_path_factory) -> Path:
    """Where the server saves corrected digits."""
    return tmp_path_factory.mktemp("own-digits")


@pytest.fixture(scope="module")
def server_url(committed_model_path, own_digits_dir, tmp_path_factory):
    """The URL of `python -m mnist_cnn.web` serving the committed model on a free port."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    command = [sys.executable, "-m", "mnist_cnn.web", "--port", str(port)]
    command += ["--model-path", str(committed_model_path), "--own-digits", str(own_digits_dir)]
    with log.open("w") as sink:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Debian Chromium, with nothing that would reach the internet."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW_SIZE}",
        "--force-prefers-reduced-motion",  # no bar animation half-way through a screenshot
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path keeps Selenium Manager from trying to download one.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def page(browser, server_url):
    """The drawing page, freshly loaded, with the console log of earlier pages drained."""
    browser.get_log("browser")
    browser.get(server_url)
    return browser


def canvas_offset(canvas, point: tuple[float, float], left: float | None) -> tuple[int, int]:
    """Selenium's offset (from the element's centre) of a point in a cell (see ONE).

    `left` is where the cell's left edge is, as a fraction of the canvas width; None centres it.
    """
    width, height = canvas.size["width"], canvas.size["height"]
    cell = height / width  # the cell's width as a fraction of the canvas width
    left = 0.5 - cell / 2 if left is None else left
    return round((left + point[0] * cell - 0.5) * width), round((point[1] - 0.5) * height)


def interpolate(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points of a polyline after its first, with STEPS_PER_SEGMENT per segment."""
    path = []
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        for step in range(1, STEPS_PER_SEGMENT + 1):
            t = step / STEPS_PER_SEGMENT
            path.append((x0 + t * (x1 - x0), y0 + t * (y1 - y0)))
    return path


def draw(
    driver,
    strokes: list[list[tuple[float, float]]],
    pointer: str = "mouse",
    left: float | None = None,
) -> None:
    """Draw each stroke with a mouse, touch or pen pointer: press, move through it, release."""
    canvas = driver.find_element(By.ID, "pad")
    for points in strokes:
        actions = ActionBuilder(driver, mouse=PointerInput(pointer, pointer), duration=10)
        start = canvas_offset(canvas, points[0], left)
        actions.pointer_action.move_to(canvas, *start).pointer_down()
        for point in interpolate(points):
            actions.pointer_action.move_to(canvas, *canvas_offset(canvas, point, left))
        actions.pointer_action.pointer_up()
        actions.perform()


def shown_digit(driver) -> str:
    """The digit the page currently shows as its answer."""
    return driver.find_element(By.ID, "digit").text


def wait_for_digit(driver, expected: str) -> None:
    """Wait until the page shows `expected`, failing with what it shows instead."""
    try:
        WebDriverWait(driver, ANSWER_TIMEOUT_S).until(lambda d: shown_digit(d) == expected)
    except TimeoutException:
        bars = driver.find_element(By.ID, "bars").text.replace("\n", " ")
        pytest.fail(f"expected {expected}, the page shows {shown_digit(driver)!r}; bars: {bars}")


def screenshot_path(tmp_path: Path) -> Path:
    """Where the screenshot goes: plots/ only when asked to, so tests never dirty the repo."""
    return SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / "web_app.png"


def severe_logs(driver) -> list[str]:
    """Console errors the page produced (failed requests, exceptions)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_drawing_a_one_then_a_seven(page):
    draw(page, ONE)
    wait_for_digit(page, "1")
    page.find_element(By.ID, "clear").click()
    assert shown_digit(page) == NO_ANSWER
    draw(page, SEVEN)
    wait_for_digit(page, "7")
    assert len(page.find_elements(By.CSS_SELECTOR, "#bars li")) == 10
    assert page.find_element(By.ID, "preprocessed").get_attribute("src").startswith("data:image")
    assert severe_logs(page) == []


@pytest.mark.slow
def test_drawing_thirty_five_reads_the_number_and_boxes_each_digit(page, tmp_path):
    draw(page, THREE, left=0.12)
    draw(page, FIVE, left=0.5)
    wait_for_digit(page, "35")
    found = page.find_elements(By.CSS_SELECTOR, "#digits .found")
    assert [f.text for f in found] == ["3", "5"]
    found[1].click()  # the bars and the 28x28 follow the digit chosen
    assert found[1].get_attribute("aria-pressed") == "true"
    best = page.find_element(By.CSS_SELECTOR, "#bars li.best .name").text
    assert best == "5"
    boxes = page.execute_script(
        "const c = document.getElementById('boxes');"
        "const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 3; i < px.length; i += 4) n += px[i] > 0; return n;"
    )
    assert boxes > 0  # a box is drawn around the digits, over the drawing
    assert severe_logs(page) == []
    # The readings sent while drawing share the two cores with Chromium's drawing; the one
    # shown is asked again with the page idle, as a reader who stopped drawing sees it.
    status = page.find_element(By.ID, "status")
    page.execute_script("arguments[0].textContent = ''; predictCanvas()", status)
    WebDriverWait(page, ANSWER_TIMEOUT_S).until(lambda _: "ms on the server" in status.text)
    path = screenshot_path(tmp_path)
    page.execute_script("window.scrollTo(0, 0)")  # the click may have scrolled the page
    page.save_screenshot(str(path))
    assert Image.open(path).size[0] > 0


@pytest.mark.parametrize("pointer", [interaction.POINTER_TOUCH, interaction.POINTER_PEN])
@pytest.mark.slow
def test_touch_and_pen_draw_too(page, pointer):
    draw(page, ONE, pointer)
    wait_for_digit(page, "1")


@pytest.mark.slow
def test_uploading_an_image_file(page, mnist, tmp_path):
    # Black ink on white, like a scan: the server must flip it to MNIST's polarity.
    upload = tmp_path / "seven.png"
    Image.fromarray(255 - mnist.x_test[0]).resize((112, 112)).save(upload)
    assert mnist.y_test[0] == 7
    page.find_element(By.ID, "upload").send_keys(str(upload))
    wait_for_digit(page, "7")


@pytest.mark.slow
def test_what_the_reader_left_out_is_shown_beside_the_number(page, mnist, tmp_path):
    # A 7 and a 2 with a colon between them: read 72, and the page says why not 7.2.
    upload = tmp_path / "colon.png"
    seven_two_with_dots(mnist, (74, 54)).save(upload)
    page.find_element(By.ID, "upload").send_keys(str(upload))
    wait_for_digit(page, "72")
    notes = page.find_elements(By.CSS_SELECTOR, "#notes li")
    assert [note.text for note in notes] == [
        "two marks between digits 1 and 2, one above the other, may be a colon: read without them"
    ]
    page.find_element(By.ID, "clear").click()
    assert page.find_elements(By.CSS_SELECTOR, "#notes li") == []
    page.find_element(By.ID, "upload").send_keys(str(upload))
    wait_for_digit(page, "72")
    draw(page, ONE)  # a new reading with nothing left out clears them
    wait_for_digit(page, "1")
    assert page.find_elements(By.CSS_SELECTOR, "#notes li") == []


@pytest.mark.slow
def test_blank_upload_shows_the_error(page, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("L", (64, 64), 255).save(blank)
    page.find_element(By.ID, "upload").send_keys(str(blank))
    confidence = page.find_element(By.ID, "confidence")
    WebDriverWait(page, ANSWER_TIMEOUT_S).until(lambda _: "no digit found" in confidence.text)
    assert shown_digit(page) == NO_ANSWER


def test_correcting_a_reading_saves_its_digit(page, own_digits_dir):
    draw(page, ONE)
    wait_for_digit(page, "1")
    number = page.find_element(By.ID, "right-number")
    WebDriverWait(page, ANSWER_TIMEOUT_S).until(lambda _: number.is_displayed())
    number.send_keys("7")  # as if the writer's 1 were a 7: any label is saved as typed
    number.submit()
    group = (By.CSS_SELECTOR, "#own-groups .own-group")
    WebDriverWait(page, ANSWER_TIMEOUT_S).until(lambda d: d.find_elements(*group))
    (saved,) = page.find_elements(*group)
    assert saved.find_element(By.TAG_NAME, "h3").text == "7 \N{MIDDLE DOT} 1"
    thumbnail = saved.find_element(By.TAG_NAME, "img")
    WebDriverWait(page, ANSWER_TIMEOUT_S).until(
        lambda _: page.execute_script("return arguments[0].naturalWidth", thumbnail) == 28
    )
    assert "saved 1 digit as 7" in page.find_element(By.ID, "status").text
    assert [path.parent.name for path in saved_pictures(own_digits_dir)] == ["7"]
    assert "original model" in page.find_element(By.ID, "served").text
    assert severe_logs(page) == []


TEACH_TIMEOUT_S = 1200  # fine-tuning on two shared cores, with TensorFlow's start


def correct_drawing(driver, strokes, read: str, right: str) -> None:
    """Draw, wait for the reading `read`, and save it as the number `right`."""
    driver.find_element(By.ID, "clear").click()
    draw(driver, strokes)
    wait_for_digit(driver, read)
    number = driver.find_element(By.ID, "right-number")
    WebDriverWait(driver, ANSWER_TIMEOUT_S).until(lambda _: number.is_displayed())
    number.send_keys(right)
    number.submit()
    status = driver.find_element(By.ID, "status")
    WebDriverWait(driver, ANSWER_TIMEOUT_S).until(lambda _: "saved" in status.text)


@pytest.mark.slow
def test_teaching_from_the_page_serves_the_taught_model_and_back(page):
    correct_drawing(page, ONE, "1", "1")
    correct_drawing(page, SEVEN, "7", "7")
    page.find_element(By.ID, "teach").click()
    teach_status = page.find_element(By.ID, "teach-status")
    WebDriverWait(page, ANSWER_TIMEOUT_S).until(lambda _: "teaching" in teach_status.text)
    page.find_element(By.ID, "teach").click()  # a second click while it runs says so
    note = page.find_element(By.ID, "teach-note")
    WebDriverWait(page, ANSWER_TIMEOUT_S).until(lambda _: "already under way" in note.text)
    WebDriverWait(page, TEACH_TIMEOUT_S, poll_frequency=2).until(
        lambda _: teach_status.text.startswith(("taught", "teaching failed"))
    )
    assert teach_status.text.startswith("taught: your digits"), teach_status.text
    served = page.find_element(By.ID, "served")
    assert served.text.startswith("taught-") and "taught your digits" in served.text
    wait_for_digit(page, "7")  # the drawing, read again by the taught model
    page.find_element(By.ID, "use-original").click()
    WebDriverWait(page, ANSWER_TIMEOUT_S).until(lambda _: "original model" in served.text)
    assert page.find_element(By.ID, "use-taught").is_displayed()
    assert [m for m in severe_logs(page) if "409" not in m] == []
