"""Teaching from the page: one fine-tuning run at a time in a child process, and the served
model swapped whole when it is done.

The server never imports TensorFlow: the run is the training command in a separate process
(`train_command`), started at a lower priority so that readings keep answering, and the taught
model is served on its ONNX export. The command reports through a progress file that it
writes atomically (mnist_cnn.commands.train, `--progress-file`):

    {"stage": "loading"|"before"|"training"|"after"|"exporting"|"done"|"failed",
     "epoch": 1-based (0 before training), "epochs": int, "seconds_left": float|null,
     "before": null|{"own": acc, "mnist": acc, "own_count": int}, "after": the same,
     "model_path": OUT.keras, "error": str|null}

and exits 0 only when OUT.keras, its ONNX export and its not-a-digit statistics are written.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mnist_cnn.config import KERAS_SUFFIX, user_data_dir
from mnist_cnn.engine import ONNX_SUFFIX, keras_beside, onnx_beside
from mnist_cnn.errors import UserError
from mnist_cnn.own_digits import saved_pictures
from mnist_cnn.reader import Reader

TRAIN_MODULE = "mnist_cnn.commands.train"
# Training shares the cores with the server: a lower priority lets a reading take a core
# when it needs one, and the run takes the rest.
NICENESS = 10
ORIGINAL, TAUGHT = "original", "taught"
IDLE, RUNNING, DONE, FAILED = "idle", "running", "done", "failed"
LOG_TAIL_BYTES = 4096  # the end of a failed run's log holds its error line

# How a run is started: (start from, own digits, model to write, progress file) -> argv.
Command = Callable[[Path, Path, Path, Path], list[str]]
# How a finished run's model is loaded for serving: the .keras it wrote -> a ready Reader.
Loader = Callable[[Path], Reader]


class TeachingBusyError(UserError):
    """A teaching run was asked for while another one runs."""


def train_command(
    start_from: Path, own_digits: Path, model_path: Path, progress: Path
) -> list[str]:
    """The fine-tuning command: this Python, the training module, the contract's flags."""
    return [
        sys.executable, "-m", TRAIN_MODULE,
        "--start-from", str(start_from),
        "--own-digits", str(own_digits),
        "--model-path", str(model_path),
        "--progress-file", str(progress),
    ]  # fmt: skip


def load_onnx_export(model_path: Path) -> Reader:
    """A Reader on the ONNX export of a taught `.keras`: the server stays free of TensorFlow."""
    return Reader(onnx_beside(model_path))


def taught_models_dir() -> Path:
    """Where the models taught from the page go: a subfolder of the user's models, so that
    the reading commands do not take one for the user's latest trained model on their own."""
    return user_data_dir() / "models" / "taught"


def keras_source(reader: Reader) -> Path:
    """The `.keras` file a served model was made from, to fine-tune from. Raises UserError
    when there is none (a model served from an export without its `.keras` beside it)."""
    path = reader.model_path
    source = (keras_beside(path) if path.suffix in (ONNX_SUFFIX, ".tflite") else path).resolve()
    if source.suffix != KERAS_SUFFIX or not source.is_file():
        raise UserError(f"teaching starts from a .keras model, and {path} has none beside it")
    return source


def read_progress(path: Path) -> dict | None:
    """The progress file's contents, or None before the run wrote it (or if it is not JSON)."""
    try:
        progress = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return progress if isinstance(progress, dict) else None


def last_line(path: Path) -> str | None:
    """The last non-empty line of a text file (a failed run's error), or None."""
    try:
        with Path(path).open("rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - LOG_TAIL_BYTES))
            lines = handle.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return None
    return lines[-1].strip() if lines else None


def lower_priority(pid: int, niceness: int) -> None:
    """Make a just-started child nicer. Linux keeps niceness per thread and a new thread
    takes its creator's, so this, done before the child starts TensorFlow's threads, holds
    for all of them. Nothing to do where the OS has no such call."""
    if niceness and hasattr(os, "setpriority"):
        # OSError: the child already ended, and its exit status will say why.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, pid, os.getpriority(os.PRIO_PROCESS, pid) + niceness)


@dataclass(frozen=True)
class Served:
    """The reader that answers and which it is: ORIGINAL or TAUGHT."""

    reader: Reader
    which: str


class ModelSwitch:
    """The model the server reads with, swapped whole between two requests.

    A request takes `served` once and reads with it to the end; a switch replaces that one
    reference under a lock, with a Reader built and warmed up beforehand.
    """

    def __init__(self, original: Reader):
        self.original = original
        self.taught: Reader | None = None
        self._lock = threading.Lock()
        self._served = Served(original, ORIGINAL)

    @property
    def served(self) -> Served:
        """The reader that answers now, and which it is."""
        return self._served

    def serve_taught(self, reader: Reader) -> None:
        """Serve a newly taught model, ready to read, from the next request on."""
        with self._lock:
            self.taught = reader
            self._served = Served(reader, TAUGHT)

    def use(self, which: str) -> Served:
        """Serve the ORIGINAL model or the last TAUGHT one. Raises UserError for another
        name, or for TAUGHT before any teaching run finished."""
        with self._lock:
            if which == ORIGINAL:
                self._served = Served(self.original, ORIGINAL)
            elif which == TAUGHT and self.taught is not None:
                self._served = Served(self.taught, TAUGHT)
            elif which == TAUGHT:
                raise UserError("no taught model yet: teach it first")
            else:
                raise UserError(f"{which!r} is not a model to serve: '{ORIGINAL}' or '{TAUGHT}'")
            return self._served

    def to_dict(self) -> dict:
        """JSON-ready: which model serves, its file and engine, and whether a taught one exists."""
        served = self.served
        return {
            "served": served.which,
            "model": served.reader.model_path.name,
            "engine": served.reader.engine,
            "original": self.original.model_path.name,
            "taught": None if self.taught is None else self.taught.model_path.name,
        }


@dataclass
class Run:
    """One teaching run: its files, its child process, and how it ended."""

    model_path: Path
    progress_path: Path
    log_path: Path
    process: subprocess.Popen
    started: float = field(default_factory=time.monotonic)
    state: str = RUNNING
    error: str | None = None
    finished: threading.Event = field(default_factory=threading.Event)

    def to_dict(self) -> dict:
        """JSON-ready: state, error, seconds since it started, model_path, and `progress`,
        the progress file as last written (None before the first write)."""
        return {
            "state": self.state,
            "error": self.error,
            "elapsed_s": round(time.monotonic() - self.started, 1),
            "model_path": str(self.model_path),
            "progress": read_progress(self.progress_path),
        }


def run_paths(folder: Path, now: float) -> tuple[Path, Path, Path]:
    """A new run's model, progress file and log in `folder`, named after the time: a new
    file each run, never an earlier run's nor a shipped model."""
    stem = "taught-" + time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    stem += f"-{int(now * 1000) % 1000:03d}"  # two runs in one second stay apart
    folder = Path(folder)
    return folder / f"{stem}.keras", folder / f"{stem}_progress.json", folder / f"{stem}.log"


class Teacher:
    """Starts teaching runs one at a time and serves each one's model when it succeeds.

    `command` builds the run's argv (default `train_command`; tests pass a small fake),
    `load` turns the `.keras` a run wrote into a ready Reader (default `load_onnx_export`),
    `models_dir` is where runs write (default `taught_models_dir()`), `niceness` how much
    lower the child's priority is.
    """

    def __init__(
        self,
        switch: ModelSwitch,
        own_digits: Path,
        *,
        command: Command = train_command,
        load: Loader = load_onnx_export,
        models_dir: Path | None = None,
        niceness: int = NICENESS,
    ):
        self.switch = switch
        self.own_digits = Path(own_digits).resolve()  # the child may not share our cwd
        self.command = command
        self.load = load
        self.models_dir = (Path(models_dir) if models_dir else taught_models_dir()).resolve()
        self.niceness = niceness
        self.run: Run | None = None
        self._lock = threading.Lock()
        atexit.register(self.stop)  # a run must not outlive the server that shows it

    def start(self) -> Run:
        """Start a run from the served model on the saved digits. Raises TeachingBusyError
        while one runs, UserError when no digit is saved or the served model has no .keras."""
        with self._lock:
            if self.run is not None and self.run.state == RUNNING:
                raise TeachingBusyError("a teaching run is already under way: wait for it to end")
            if next(saved_pictures(self.own_digits), None) is None:
                raise UserError("no saved digits to teach: correct a reading first")
            start_from = keras_source(self.switch.served.reader)
            self.models_dir.mkdir(parents=True, exist_ok=True)
            model, progress, log = run_paths(self.models_dir, time.time())
            argv = self.command(start_from, self.own_digits, model, progress)
            with log.open("wb") as sink:
                try:
                    process = subprocess.Popen(
                        argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT
                    )
                except OSError as error:
                    raise UserError(f"cannot start the teaching run {argv[0]}: {error}") from None
            lower_priority(process.pid, self.niceness)
            self.run = Run(model, progress, log, process)
        threading.Thread(target=self.finish, args=(self.run,), daemon=True).start()
        return self.run

    def finish(self, run: Run) -> None:
        """Wait for a run to end, then serve its model (loaded before the switch) or record
        why it failed."""
        status = run.process.wait()
        error = None
        if status != 0:
            progress = read_progress(run.progress_path) or {}
            error = progress.get("error") or last_line(run.log_path) or f"exit status {status}"
        else:
            try:
                self.switch.serve_taught(self.load(run.model_path))
            except Exception as problem:  # whatever goes wrong, the run must not stay "running"
                error = str(problem) or type(problem).__name__
        with self._lock:
            run.state, run.error = (FAILED, error) if error else (DONE, None)
        run.finished.set()

    def status(self) -> dict:
        """JSON-ready: the last run (`Run.to_dict`, or state IDLE) and the served model."""
        run = self.run
        state = {"state": IDLE} if run is None else run.to_dict()
        return {**state, "model": self.switch.to_dict()}

    def stop(self) -> None:
        """End a run still going (the server is stopping)."""
        run = self.run
        if run is not None and run.process.poll() is None:
            run.process.terminate()
