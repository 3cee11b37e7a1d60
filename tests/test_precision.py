import pytest

from rlvr_world.training.precision import cpu_flags, cpu_has_native_bf16, resolve_mixed_precision


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags(info) == {"fpu", "sse2", "avx512f", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == set()


@pytest.mark.parametrize("flags, expected", [
    ({"avx2", "avx512f", "avx512_bf16"}, "bf16"),
    ({"avx2", "amx_bf16"}, "bf16"),
    ({"avx2", "avx512f"}, "no"),  # bf16 would be emulated: fp32 is the fast path
    (set(), "no"),
])
def test_auto_precision_on_cpu(flags, expected):
    assert cpu_has_native_bf16(flags) == (expected == "bf16")
    assert resolve_mixed_precision("auto", use_cpu=True, flags=flags) == expected


def test_explicit_precision_passes_through():
    assert resolve_mixed_precision("no", flags={"avx512_bf16"}) == "no"
    assert resolve_mixed_precision("bf16", use_cpu=True, flags=set()) == "bf16"
