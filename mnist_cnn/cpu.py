"""What the CPU can do for training: oneDNN kernels and native bfloat16, detected or forced."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

MODES = ("auto", "on", "off")
ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
X86_64 = ("x86_64", "amd64")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def choose_onednn(mode: str, environ_value: str | None, machine: str) -> tuple[str | None, str]:
    """TF_ENABLE_ONEDNN_OPTS for `mode` ("1", "0", or None for TensorFlow's default) and why."""
    if mode == "on":
        return "1", "forced on by --onednn on"
    if mode == "off":
        return "0", "forced off by --onednn off"
    if environ_value is not None:
        return environ_value, f"{ONEDNN_ENV}={environ_value} in the environment"
    if machine.lower() in X86_64:
        # TensorFlow turns oneDNN on by itself only on CPUs with AVX512-VNNI, AVX512-BF16 or
        # AMX, yet its kernels run on any x86-64 CPU: on an AMD EPYC without those, a training
        # step of the default CNN took 71 ms instead of 102 (python -m benchmarks.step_cost).
        return "1", "x86-64 CPU"
    return None, "not an x86-64 CPU: TensorFlow's own default"


def use_onednn(mode: str) -> str:
    """Set TensorFlow's oneDNN switch for `mode` (before it loads); returns a line to print."""
    if "tensorflow" in sys.modules:
        # TensorFlow reads the switch once, when it is imported; setting it later does nothing.
        raise RuntimeError("use_onednn() must run before TensorFlow is imported")
    value, reason = choose_onednn(mode, os.environ.get(ONEDNN_ENV), platform.machine())
    if value is None:
        return f"oneDNN: TensorFlow's default ({reason})"
    os.environ[ONEDNN_ENV] = value
    state = "off" if value.strip().lower() in ("0", "false") else "on"
    return f"oneDNN: {state} ({reason})"


def add_onednn_flag(parser: argparse.ArgumentParser) -> None:
    """The --onednn flag of train_model.py, applied with use_onednn() before TensorFlow loads."""
    parser.add_argument(
        "--onednn",
        choices=MODES,
        default="auto",
        help="TensorFlow's oneDNN CPU kernels; 'auto' turns them on for any x86-64 CPU, where "
        "they train faster, unless TF_ENABLE_ONEDNN_OPTS is set, and says which it chose",
    )


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX), the only case it pays."""
    try:
        flags = cpuinfo.read_text().split()
    except OSError:  # not Linux, or no /proc: assume the plain CPU
        return False
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def choose_precision(mode: str, has_bf16: bool) -> tuple[str, str]:
    """The Keras dtype policy for `mode` ("auto", "on" or "off") and the reason, for printing."""
    if mode == "on":
        return "mixed_bfloat16", "forced on by --mixed-precision on"
    if mode == "off":
        return "float32", "forced off by --mixed-precision off"
    if has_bf16:
        return "mixed_bfloat16", "this CPU has native bfloat16 (AVX512-BF16/AMX)"
    # Without native bfloat16 the casts are emulated and training gets slower, not faster.
    return "float32", "this CPU has no native bfloat16"
