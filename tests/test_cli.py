"""What every script shares: fast --help and --version, TensorFlow's logs hidden, folders."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

import pytest
from conftest import REPO_ROOT

from mnist_cnn import __version__
from mnist_cnn.cli import (
    expand_image_folders,
    filtered_stderr,
    format_duration,
    is_below_log_level,
)
from mnist_cnn.errors import UserError

SCRIPTS = {
    "train_model.py": "runpy.run_path('train_model.py', run_name='__main__')",
    "evaluate_model.py": "runpy.run_path('evaluate_model.py', run_name='__main__')",
    "test_model.py": "runpy.run_path('test_model.py', run_name='__main__')",
    "mnist_cnn.web": "runpy.run_module('mnist_cnn.web', run_name='__main__')",
    "mnist_cnn.ensemble": "runpy.run_module('mnist_cnn.ensemble', run_name='__main__')",
    "mnist_cnn.export": "runpy.run_module('mnist_cnn.export', run_name='__main__')",
    "mnist_cnn.figure": "runpy.run_module('mnist_cnn.figure', run_name='__main__')",
}
# What TensorFlow logs on import with oneDNN on, before it reads TF_CPP_MIN_LOG_LEVEL.
ABSL_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796003704.021034    3162 port.cc:153] oneDNN custom operations are on. You "
    "may see slightly different numerical results due to floating-point round-off errors.\n",
]


def run_python(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -c code` in the repository, with its output."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, env=env,
        timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize("flag", ["--help", "--version"])
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_help_and_version_answer_without_loading_tensorflow(script, flag):
    code = (
        f"import runpy, sys; sys.argv = [{script!r}, {flag!r}]\n"
        f"try:\n    {SCRIPTS[script]}\nexcept SystemExit as done:\n    code = done.code\n"
        "print('exit', code, 'tensorflow' in sys.modules)"
    )
    result = run_python(code)
    assert result.stderr == ""
    assert result.stdout.splitlines()[-1] == "exit 0 False"
    if flag == "--version":
        assert result.stdout.splitlines()[0].endswith(f" {__version__}")


def test_the_version_is_the_same_in_the_package_and_pyproject():
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == __version__


def test_tensorflow_log_lines_are_hidden_below_the_level_and_nothing_else():
    assert all(is_below_log_level(line, 2) for line in ABSL_LINES)
    assert not any(is_below_log_level(line, 0) for line in ABSL_LINES)
    assert not is_below_log_level("error: models/m.keras: no model here\n", 2)
    assert not is_below_log_level("E0000 00:00:1796003704.021034 3162 x.cc:1] a real error\n", 2)


def test_filtered_stderr_drops_lines_written_by_cpp_and_keeps_the_rest(capfd):
    with filtered_stderr(lambda line: is_below_log_level(line, 2)):
        os.write(2, "".join([*ABSL_LINES, "a real problem\n"]).encode())
    assert capfd.readouterr().err == "a real problem\n"


@pytest.mark.parametrize(
    ("verbose", "level", "shown"), [(False, None, False), (False, "2", False), (True, None, True),
                                    (False, "0", True)]
)  # fmt: skip
@pytest.mark.slow
def test_tensorflow_logs_show_only_when_asked(verbose, level, shown):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    env["TF_ENABLE_ONEDNN_OPTS"] = "1"  # makes TensorFlow log its oneDNN notice at import
    code = f"from mnist_cnn.cli import start_tensorflow; start_tensorflow({verbose})"
    result = run_python(code, env)
    assert result.returncode == 0, result.stderr
    assert ("oneDNN custom operations are on" in result.stderr) is shown
    if not shown:
        assert result.stderr == ""


def test_a_folder_expands_to_its_images_in_name_order(tmp_path, capsys):
    for name in ("b.png", "a.JPG", "notes.txt", ".DS_Store"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    single = tmp_path / "named.dat"
    assert expand_image_folders([tmp_path, single]) == [
        tmp_path / "a.JPG",
        tmp_path / "b.png",
        single,
    ]
    assert capsys.readouterr().err == f"{tmp_path}: skipped 2 files that are not images\n"


def test_a_folder_without_images_is_a_user_error(tmp_path):
    (tmp_path / "notes.txt").write_text("no digits here")
    with pytest.raises(UserError, match="no image files"):
        expand_image_folders([tmp_path])


def test_durations_read_like_the_readme():
    assert format_duration(12.34) == "12.3 s"
    assert format_duration(351.4) == "5 min 51 s"


def test_ctrl_c_ends_the_process_at_once_with_what_it_printed():
    code = (
        "import atexit\n"
        "from mnist_cnn.errors import run_cli\n"
        "atexit.register(print, 'shut down')\n"  # Python's shutdown is skipped, not output
        "def main():\n"
        "    print('read 3 of 5', end='')\n"
        "    raise KeyboardInterrupt('interrupted after 3 of 5')\n"
        "run_cli(main)\n"
    )
    result = run_python(code)
    assert result.returncode == 130
    assert result.stdout == "read 3 of 5"
    assert result.stderr.strip().splitlines()[-1] == "interrupted after 3 of 5"
