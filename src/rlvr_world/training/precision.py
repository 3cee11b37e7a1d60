"""Which mixed precision a run can afford on the hardware it finds.

bf16 autocast is only a win where the hardware does bf16 arithmetic: CUDA GPUs that support it, and
CPUs with AVX512-BF16 or AMX. Elsewhere (an AMD EPYC without AVX512-BF16, say) torch emulates it and a
tiny tokenizer's step went from 0.95 s in fp32 to 23 s, so recipes say ``auto`` and get fp32 there.
"""

from __future__ import annotations

from pathlib import Path

import torch

NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags the kernel reports (empty where /proc/cpuinfo is missing)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_has_native_bf16(flags: set[str] | None = None) -> bool:
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in NATIVE_BF16_CPU_FLAGS)


def resolve_mixed_precision(value: str, use_cpu: bool = False, flags: set[str] | None = None) -> str:
    """``auto`` -> ``bf16`` where the device computes in bf16 natively, else ``no``; other values pass through."""
    if value != "auto":
        return value
    if not use_cpu and torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    return "bf16" if cpu_has_native_bf16(flags) else "no"
