"""How close to the hardware: a Keras model's training FLOPs per image and the CPU's FP32 peak.

Nothing here imports TensorFlow at module level: the benchmark's workers import this module
before they set oneDNN, which must happen before TensorFlow loads.
"""

from __future__ import annotations

import math
import os
import subprocess
from pathlib import Path

# A training step is about 3 forward passes: the forward pass, then the gradients with respect
# to each layer's inputs and to its weights, each costing about as much as the forward pass.
TRAINING_PASSES = 3
FLOPS_PER_MAC = 2  # a multiply-add is two floating-point operations
# FP32 lanes of the widest vector unit, by /proc/cpuinfo flag, widest first.
VECTOR_UNITS = (("avx512f", "AVX-512", 16), ("avx2", "AVX2", 8))
SCALAR_UNIT = ("SSE", 4)  # every x86-64 CPU has 128-bit SSE
FMA_FLOPS = 2  # a fused multiply-add counts as two FLOPs per lane
FMA_UNITS = 2  # most server cores issue two vector FMAs per cycle
# The flags that say what the CPU can do for training, in the order the report lists them.
SHOWN_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")
AMD_VENDOR = "AuthenticAMD"
CPUINFO = Path("/proc/cpuinfo")
MHZ_PER_GHZ = 1e3
FLOPS_PER_MHZ = 1e6  # cycles per second in one MHz
GIGA = 1e9


def forward_flops(model) -> int:
    """FLOPs of one image's forward pass through a built Keras model, counted from its layers.

    Conv2D: 2 x kh x kw x cin/groups x cout x Hout x Wout; Dense: 2 x in x out (per position).
    Both are 2 x (weights in the kernel) x (output positions). Pooling, activations, dropout,
    batch normalisation and bias additions are a few operations per value: left out.
    """
    import keras  # only here: importing this module must not load TensorFlow

    total = 0
    for layer in model.layers:
        if hasattr(layer, "layers"):  # a nested model
            total += forward_flops(layer)
        elif isinstance(layer, keras.layers.Conv2D | keras.layers.Dense):
            positions = math.prod(layer.output.shape[1:-1])  # Hout x Wout, or 1 for Dense
            total += FLOPS_PER_MAC * math.prod(layer.kernel.shape) * positions
    return total


def training_flops(model) -> int:
    """FLOPs of one image's training step: about TRAINING_PASSES forward passes."""
    return TRAINING_PASSES * forward_flops(model)


def read_text(path: Path) -> str:
    """A file's text, or "" where it cannot be read (not Linux, no /proc)."""
    try:
        return path.read_text()
    except OSError:
        return ""


def lscpu_text() -> str:
    """`lscpu`'s output, or "" where it is not installed or fails."""
    try:
        return subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""


def field(text: str, name: str) -> str | None:
    """The value of the first `name: value` line of lscpu or /proc/cpuinfo text, if any."""
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if colon and key.strip() == name:
            return value.strip()
    return None


def cpu_flags(cpuinfo: str) -> set[str]:
    """The CPU's feature flags (the first processor's `flags` line)."""
    return set((field(cpuinfo, "flags") or "").split())


def clock_mhz(lscpu: str, cpuinfo: str) -> float | None:
    """The CPU clock in MHz: lscpu's `CPU max MHz` where given, else /proc/cpuinfo's `cpu MHz`
    (the current clock, which a virtual machine often reports as its nominal one)."""
    value = field(lscpu, "CPU max MHz") or field(cpuinfo, "cpu MHz")
    return float(value) if value else None


def vector_unit(flags: set[str]) -> tuple[str, int]:
    """The widest vector unit's name and its FP32 lanes."""
    return next(((name, lanes) for flag, name, lanes in VECTOR_UNITS if flag in flags), SCALAR_UNIT)


def fp32_flops_per_cycle(flags: set[str]) -> int:
    """FP32 FLOPs per cycle of one core: lanes x 2 for FMA (if it has FMA) x FMA_UNITS."""
    _, lanes = vector_unit(flags)
    return lanes * (FMA_FLOPS if "fma" in flags else 1) * FMA_UNITS


def describe_cpu(
    lscpu: str | None = None, cpuinfo: str | None = None, cores: int | None = None
) -> dict:
    """The CPU's name, flags, clock and estimated FP32 peak (FLOP/s), with the assumption made;
    by default read from this machine (lscpu, /proc/cpuinfo, os.cpu_count)."""
    lscpu = lscpu_text() if lscpu is None else lscpu
    cpuinfo = read_text(CPUINFO) if cpuinfo is None else cpuinfo
    cores = cores or os.cpu_count() or 1
    flags = cpu_flags(cpuinfo) or set((field(lscpu, "Flags") or "").split())
    mhz = clock_mhz(lscpu, cpuinfo)
    unit, lanes = vector_unit(flags)
    per_cycle = fp32_flops_per_cycle(flags)
    peak = mhz * FLOPS_PER_MHZ * cores * per_cycle if mhz else None
    fma = f" x {FMA_FLOPS} for FMA" if "fma" in flags else ""
    vendor = field(lscpu, "Vendor ID") or field(cpuinfo, "vendor_id")
    return {
        "model_name": field(lscpu, "Model name") or field(cpuinfo, "model name") or "unknown",
        "flags": [flag for flag in SHOWN_FLAGS if flag in flags],
        "cores": cores,
        "mhz": mhz,
        "fp32_flops_per_cycle": per_cycle,
        "peak_flops_per_second": peak,
        "assumption": f"{unit}: {lanes} FP32 lanes{fma} x {FMA_UNITS} FMA units per core",
        "note": (
            "AMD Zen 4 executes AVX-512 as two 256-bit halves, so its real peak is half: "
            f"{peak / 2 / GIGA:,.0f} GFLOP/s"
            if vendor == AMD_VENDOR and unit == "AVX-512" and peak
            else None
        ),
    }


def format_peak(cpu: dict) -> str:
    """`cores x GHz x FLOPs/cycle = GFLOP/s`, the peak estimate spelled out."""
    if cpu["peak_flops_per_second"] is None:
        return "unknown (no clock speed in lscpu or /proc/cpuinfo)"
    return (
        f"{cpu['cores']} cores x {cpu['mhz'] / MHZ_PER_GHZ:.2f} GHz x "
        f"{cpu['fp32_flops_per_cycle']} FP32 FLOPs/cycle ({cpu['assumption']}) = "
        f"{cpu['peak_flops_per_second'] / GIGA:,.0f} GFLOP/s"
    )
