"""CPU features: the oneDNN switch TensorFlow reads at import, and native bfloat16."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO_ROOT

from mnist_cnn.cpu import choose_onednn, choose_precision, cpu_has_bf16, use_onednn


def test_onednn_auto_turns_it_on_for_x86_64_and_leaves_other_cpus_to_tensorflow():
    assert choose_onednn("auto", None, "x86_64")[0] == "1"
    assert choose_onednn("auto", None, "AMD64")[0] == "1"
    assert choose_onednn("auto", None, "aarch64")[0] is None


def test_onednn_auto_respects_the_environment_and_the_flag_overrides_it():
    value, reason = choose_onednn("auto", "0", "x86_64")
    assert value == "0" and "TF_ENABLE_ONEDNN_OPTS=0" in reason
    assert choose_onednn("on", "0", "aarch64")[0] == "1"
    assert choose_onednn("off", "1", "x86_64")[0] == "0"


@pytest.mark.parametrize(("mode", "enabled"), [("on", True), ("off", False)])
@pytest.mark.slow
def test_use_onednn_reaches_tensorflow_when_called_before_it_loads(mode, enabled):
    # A fresh interpreter: in this one TensorFlow is loaded already.
    code = (
        f"from mnist_cnn.cpu import use_onednn; print(use_onednn({mode!r})); "
        "from tensorflow.python.util import _pywrap_util_port as port; "
        "print(port.IsMklEnabled())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert result.returncode == 0, result.stderr[-2000:]
    line, reported = result.stdout.split("\n")[:2]
    assert line == f"oneDNN: {mode} (forced {mode} by --onednn {mode})"
    assert reported == str(enabled)


def test_use_onednn_refuses_once_tensorflow_is_loaded():
    import tensorflow  # noqa: F401

    with pytest.raises(RuntimeError, match="before TensorFlow is imported"):
        use_onednn("on")


def test_bf16_is_detected_from_the_cpu_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n")
    assert not cpu_has_bf16(cpuinfo)
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n")
    assert cpu_has_bf16(cpuinfo)
    assert not cpu_has_bf16(tmp_path / "absent")


def test_mixed_precision_is_chosen_only_where_it_pays_unless_forced():
    assert choose_precision("auto", has_bf16=True)[0] == "mixed_bfloat16"
    assert choose_precision("auto", has_bf16=False)[0] == "float32"
    assert choose_precision("on", has_bf16=False)[0] == "mixed_bfloat16"
    assert choose_precision("off", has_bf16=True)[0] == "float32"
