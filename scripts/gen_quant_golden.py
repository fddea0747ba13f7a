#!/usr/bin/env python3
"""Writes the golden files of tests/tensor/quant_test.cpp to tests/data/quant/.

The oracle is the gguf package (gguf-py, pinned in requirements.txt) and numpy:
  float.in.f32            float32 inputs for F16/BF16 (specials, subnormals, rounding ties)
  legacy.in.f32           float32 inputs for Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 (awkward and random blocks)
  kquant.in.f32           float32 inputs for the K-quant round-trip tests (no golden output:
                          gguf-py cannot quantize K-quants)
  <type>.q                F16/BF16/legacy: gguf-py's quantization of the inputs (F16: numpy astype)
                          K-quants: random but valid blocks (finite fp16 scales)
  <type>.deq.f32          gguf-py's dequantization of <type>.q (Q8_K: d * q in numpy, as gguf-py has
                          no Q8_K)
  <ktype>.ggml.q          K-quants only: ggml's C reference quantizer (quantize_row_*_ref) run
                          on kquant.in.f32; only written with --ggml-src, else left as is
All files are raw little-endian arrays. Inputs are seeded, so the output is deterministic.

Regenerate (after changing this script or the gguf pin):
  scripts/setup.sh && .venv/bin/python scripts/gen_quant_golden.py
and, to refresh the *.ggml.q files too, point --ggml-src at a ggml source tree (the one used was
ggml 0.15.3, vendored in the ggml-python 0.0.45 sdist: pip download --no-deps ggml-python==0.0.45,
untar, then --ggml-src ggml_python-0.0.45/vendor/ggml); it needs a C compiler (cc).
"""

from __future__ import annotations

import argparse
import ctypes
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES
from gguf import GGMLQuantizationType as QT
from gguf import quants

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "quant"
QK_K = 256


def f32(bits: list[int] | np.ndarray) -> np.ndarray:
    """float32 array from raw bit patterns (keeps NaN payloads exactly)."""
    return np.asarray(bits, dtype=np.uint32).view(np.float32)


def float_inputs(rng: np.random.Generator) -> np.ndarray:
    specials = f32([
        0x00000000, 0x80000000, 0x7F800000, 0xFF800000,  # zeros, infinities
        0x7FC00000, 0xFFC00000, 0x7FC00001, 0x7F800001, 0xFF800001, 0x7FA00000, 0x7F801FFF,  # NaNs
        0x7FFFFFFF, 0xFFFFFFFF, 0x7F802000, 0x7FBFFFFF,
        0x7F7FFFFF, 0xFF7FFFFF, 0x00800000, 0x00000001, 0x807FFFFF, 0x00400000,  # f32 extremes
        0x477FE000, 0x477FEFFF, 0x477FF000, 0x477FF001, 0x47800000, 0xC77FF000,  # near f16 max
        0x33000000, 0x33000001, 0x32FFFFFF, 0xB3000000, 0x33C00000, 0x34200000,  # f16 subnormal
        0x387FC000, 0x387FE000, 0x387FF000, 0x38800000, 0x38000000, 0x387FFFFF,  # f16 min normal
        0x3F801000, 0x3F803000, 0x3F800FFF, 0x3F801001, 0xBF801000,  # f16 ties at 1.0
        0x3F808000, 0x3F818000, 0x3F807FFF, 0x3F808001, 0xBF818000, 0x7F7F8000,  # bf16 ties
    ])
    n = 4096
    out = np.empty(n, dtype=np.float32)
    out[: len(specials)] = specials
    pos = len(specials)
    # Every kind of half (normal, subnormal, inf, NaN with payload), exactly representable.
    k = 1024
    halves = rng.integers(0, 1 << 16, size=k, dtype=np.uint32).astype(np.uint16)
    out[pos : pos + k] = halves.view(np.float16).astype(np.float32)
    pos += k
    # Uniform random bit patterns: all exponents, signs and NaN kinds.
    out[pos : pos + k] = f32(rng.integers(0, 1 << 32, size=k, dtype=np.uint64).astype(np.uint32))
    pos += k
    # Exact f16 ties: midpoints of adjacent finite halves (all exact in float32).
    k = 512
    h = rng.integers(0, 0x7BFF, size=k, dtype=np.uint32).astype(np.uint16)
    lo = h.view(np.float16).astype(np.float64)
    hi = (h + 1).view(np.float16).astype(np.float64)
    sign = np.where(rng.random(k) < 0.5, -1.0, 1.0)
    out[pos : pos + k] = (sign * (lo + hi) / 2).astype(np.float32)
    pos += k
    # Exact bf16 ties: low 16 bits 0x8000.
    k = 512
    hi16 = rng.integers(0, 0xFF7F, size=k, dtype=np.uint32)
    out[pos : pos + k] = f32((hi16 << 16) | 0x8000)
    pos += k
    # Log-uniform magnitudes from 1e-10 to 1e10, both signs.
    k = n - pos
    mag = 10.0 ** rng.uniform(-10, 10, size=k)
    out[pos:] = (np.where(rng.random(k) < 0.5, -mag, mag)).astype(np.float32)
    return out


def legacy_inputs(rng: np.random.Generator) -> np.ndarray:
    bs = 32
    blocks: list[np.ndarray] = []
    blocks.append(np.zeros(bs))
    blocks.append(-np.zeros(bs))  # all -0.0: gguf-py's d takes x[0]'s sign, ggml's does not
    blocks.append(np.full(bs, 1.5))
    blocks.append(np.full(bs, -2.25))
    blocks.append(-np.abs(rng.standard_normal(bs)))
    blocks.append(np.abs(rng.standard_normal(bs)) + 5.0)
    ties = np.array([(k + 0.5) * (-1) ** k for k in range(bs)])
    ties[0] = 127.0  # Q8_0: d = 1 exactly, so x * id keeps the .5 ties
    blocks.append(ties)
    grid = rng.integers(-32, 33, size=bs) / 4.0
    grid[5] = -8.0  # Q4_0: d = 1 exactly
    blocks.append(grid)
    spike = rng.standard_normal(bs) * 1e-3
    spike[17] = 1000.0
    blocks.append(spike)
    blocks.append(rng.standard_normal(bs) * 1e-30)  # scales underflow f16 to zero
    blocks.append(rng.standard_normal(bs) * 1e-6)  # scales are f16 subnormals
    blocks.append(rng.standard_normal(bs) * 3e4)
    blocks.append(rng.standard_normal(bs) * 6e5)  # scales overflow f16 to inf
    mixed = rng.standard_normal(bs)
    mixed[:16] *= 1e-3
    mixed[16:] *= 1e3
    blocks.append(mixed)
    sym = rng.standard_normal(bs)
    sym[3], sym[20] = -5.0, 5.0  # equal magnitudes: the first one sets d's sign
    blocks.append(sym)
    while len(blocks) < 160:
        scale = 10.0 ** rng.uniform(-4, 4) if len(blocks) % 2 else 1.0
        blocks.append(rng.standard_normal(bs) * scale)
    return np.concatenate(blocks).astype(np.float32)


def kquant_inputs(rng: np.random.Generator) -> np.ndarray:
    blocks: list[np.ndarray] = []
    for _ in range(16):
        blocks.append(rng.standard_normal(QK_K))
    blocks.append(np.zeros(QK_K))
    blocks.append(np.full(QK_K, 0.75))
    blocks.append(np.full(QK_K, -0.75))
    blocks.append(-np.abs(rng.standard_normal(QK_K)))
    blocks.append(rng.uniform(3.0, 4.0, size=QK_K))  # offset: exercises the mins
    spike = rng.standard_normal(QK_K) * 1e-2
    spike[100] = 50.0
    blocks.append(spike)
    hole = rng.standard_normal(QK_K)
    hole[64:96] = 0.0  # one all-zero sub-block
    blocks.append(hole)
    blocks.append(rng.laplace(size=QK_K))  # heavy tails, like real weights
    sub_scales = np.repeat(10.0 ** rng.uniform(-2, 1, size=QK_K // 32), 32)
    blocks.append(rng.standard_normal(QK_K) * sub_scales)  # sub-blocks of very different size
    while len(blocks) < 32:
        blocks.append(rng.standard_normal(QK_K) * 10.0 ** rng.uniform(-3, 3))
    return np.concatenate(blocks).astype(np.float32)


def random_f16(rng: np.random.Generator, n: int) -> np.ndarray:
    """Finite f16 scales as raw bytes: mostly typical, plus zero, subnormal, negative, large."""
    v = (10.0 ** rng.uniform(-4, -1, size=n)).astype(np.float16)
    v[0] = 0.0
    v[1] = np.float16(3e-6)  # subnormal
    v[2] = -v[2]
    v[3] = np.float16(1000.0)
    return v.reshape(n, 1).view(np.uint8)


def rand_bytes(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, k), dtype=np.uint16).astype(np.uint8)


def kquant_blocks(rng: np.random.Generator, qtype: QT, n: int) -> np.ndarray:
    if qtype == QT.Q4_K:  # d, dmin, scales[12], qs[128]
        return np.concatenate(
            [random_f16(rng, n), random_f16(rng, n), rand_bytes(rng, n, 12 + 128)], axis=1)
    if qtype == QT.Q5_K:  # d, dmin, scales[12], qh[32], qs[128]
        return np.concatenate(
            [random_f16(rng, n), random_f16(rng, n), rand_bytes(rng, n, 12 + 32 + 128)], axis=1)
    if qtype == QT.Q6_K:  # ql[128], qh[64], scales[16] (int8), d
        return np.concatenate([rand_bytes(rng, n, 128 + 64 + 16), random_f16(rng, n)], axis=1)
    if qtype == QT.Q8_K:  # d (f32), qs[256] (int8), bsums[16] (int16, sums of 16 qs)
        d = (10.0 ** rng.uniform(-4, 0, size=(n, 1))).astype(np.float32)
        d[1] = -d[1]
        d[2] = 0.0
        qs = rng.integers(-128, 128, size=(n, QK_K), dtype=np.int16).astype(np.int8)
        bsums = qs.astype(np.int16).reshape(n, QK_K // 16, 16).sum(axis=-1, dtype=np.int16)
        return np.concatenate([d.view(np.uint8), qs.view(np.uint8), bsums.view(np.uint8)], axis=1)
    raise ValueError(qtype)


def dequantize(q: np.ndarray, qtype: QT) -> np.ndarray:
    if qtype == QT.Q8_K:  # gguf-py has no Q8_K; ggml's dequantize_row_q8_K is y = d * q
        d = q[:, :4].copy().view(np.float32)
        qs = q[:, 4 : 4 + QK_K].copy().view(np.int8).astype(np.float32)
        return (d * qs).reshape(-1)
    return quants.dequantize(q, qtype).reshape(-1).astype(np.float32, copy=False)


# ggml-quants.c needs these from ggml.c only on paths the reference quantizers never take.
GGML_STUBS = r"""
#include <stdio.h>
#include <stdlib.h>
void ggml_abort(const char* file, int line, const char* fmt, ...) {
    fprintf(stderr, "ggml_abort %s:%d\n", file, line);
    abort();
}
size_t ggml_row_size(int type, long long n) { abort(); }
size_t ggml_type_size(int type) { abort(); }
const char* ggml_type_name(int type) { return "?"; }
"""


def ggml_quantize(src: Path, x: np.ndarray) -> dict[QT, np.ndarray]:
    """Quantizes x with ggml's C reference K-quant quantizers, compiled from the tree at src."""
    with tempfile.TemporaryDirectory() as tmp:
        stubs = Path(tmp) / "stubs.c"
        stubs.write_text(GGML_STUBS)
        lib = Path(tmp) / "libggmlq.so"
        # Release flags as shipped (NDEBUG), and no fused multiply-add, like sift's build.
        cmd = ["cc", "-O2", "-DNDEBUG", "-ffp-contract=off", "-std=c11", "-fPIC", "-shared",
               f"-I{src / 'include'}", f"-I{src / 'src'}", str(src / "src" / "ggml-quants.c"),
               str(stubs), "-lm", "-o", str(lib)]
        subprocess.run(cmd, check=True)
        dll = ctypes.CDLL(str(lib))
        out = {}
        x = np.ascontiguousarray(x, dtype=np.float32)
        for qtype in (QT.Q4_K, QT.Q5_K, QT.Q6_K, QT.Q8_K):
            block_size, type_size = GGML_QUANT_SIZES[qtype]
            y = np.zeros(x.size // block_size * type_size, dtype=np.uint8)  # zeroed: see Q8_K
            fn = getattr(dll, f"quantize_row_q{qtype.name[1:]}_ref")  # q4_K: the K is upper case
            fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
            fn(x.ctypes.data, y.ctypes.data, x.size)
            out[qtype] = y
        return out


def write(name: str, arr: np.ndarray) -> None:
    path = OUT / name
    data = np.ascontiguousarray(arr).tobytes()
    path.write_bytes(data)
    print(f"  {path.relative_to(OUT.parent.parent.parent)}: {len(data)} bytes")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--ggml-src", type=Path, help="ggml source tree: also write <ktype>.ggml.q")
    args = parser.parse_args()
    assert sys.byteorder == "little", "golden files are little-endian"
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240611)

    x = float_inputs(rng)
    write("float.in.f32", x)
    with np.errstate(over="ignore", invalid="ignore"):
        f16 = x.astype(np.float16)  # what gguf-py writes for F16 (quants.quantize)
    write("f16.q", f16.view(np.uint8))
    write("f16.deq.f32", quants.dequantize(f16.view(np.uint8), QT.F16))
    bf16 = quants.quantize(x, QT.BF16)
    write("bf16.q", bf16)
    write("bf16.deq.f32", quants.dequantize(bf16, QT.BF16))

    x = legacy_inputs(rng)
    write("legacy.in.f32", x)
    for qtype in (QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.Q8_0):
        with np.errstate(over="ignore", invalid="ignore"):
            q = quants.quantize(x.reshape(-1, 32), qtype)
            deq = dequantize(q, qtype)
        write(f"{qtype.name.lower()}.q", q)
        write(f"{qtype.name.lower()}.deq.f32", deq)

    x = kquant_inputs(rng)
    write("kquant.in.f32", x)
    if args.ggml_src:
        for qtype, q in ggml_quantize(args.ggml_src, x).items():
            write(f"{qtype.name.lower()}.ggml.q", q)
    else:
        print("  (no --ggml-src: *.ggml.q left as they are)")
    for qtype in (QT.Q4_K, QT.Q5_K, QT.Q6_K, QT.Q8_K):
        q = kquant_blocks(rng, qtype, 16)
        write(f"{qtype.name.lower()}.q", q)
        write(f"{qtype.name.lower()}.deq.f32", dequantize(q, qtype))
    return 0


if __name__ == "__main__":
    sys.exit(main())
