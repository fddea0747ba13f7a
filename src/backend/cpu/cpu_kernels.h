// CPU matmul kernels: one tile function per (weight type, ISA), described by a small table so the
// driver (cpu_matmul.cpp) stays type-agnostic. A tile is up to max_rows weight rows times up to
// max_cols activation columns over a range of k.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"

namespace sift::cpu {

enum class CpuIsa { ISA_SCALAR, ISA_AVX2 };

// AVX2 + FMA + F16C when the running CPU has them (checked once, at run time).
CpuIsa cpu_isa_detect();
const char* cpu_isa_name(CpuIsa isa);

// Activations for legacy-quant dot products: 32 values q with x ~ d * q, q in [-127, 127], and
// s = d * sum(q) for the zero-point term of Q4_0/Q4_1/Q5_0/Q5_1. An F32 scale (unlike Q8_0's
// F16) because it costs nothing here and keeps activation rounding at 1/254 of the block max.
struct block_q8_0x {
    float d;
    float s;
    int8_t qs[32];
};
static_assert(sizeof(block_q8_0x) == 40);

// Activations for K-quant dot products: Q8_K-style values (x ~ d * q over 256) with the int16
// sums per 16 (for Q6_K's -32 offset) and, for the min term of Q4_K/Q5_K, d * (sum per 32) in
// F32 so that term is one FMA per super-block against the weights' F32 mins.
struct block_q8_Kx {
    float d;
    int8_t qs[256];
    int16_t bsums[16];
    float msums[8];  // d * (bsums[2j] + bsums[2j + 1])
};
static_assert(sizeof(block_q8_Kx) == 324);

// How activation columns are stored for a kernel: F32 as given, or quantized once per matmul.
enum class ActFormat { ACT_F32, ACT_Q8_0X, ACT_Q8_K };

// Bytes of one quantized activation column of k values (k a multiple of the format's block).
int64_t act_row_bytes(ActFormat format, int64_t k);
// Elements per activation block (1 for F32).
int64_t act_block_size(ActFormat format);

// One tile: out[c * out_stride + r] (=, or += when accumulate) dot(w row r, x column c) over
// n_blocks weight blocks, for r < n_rows, c < n_cols. w points at the first weight row's first
// block of the k range, x at the matching activation block of the first column.
struct TileArgs {
    const uint8_t* w;  // [k, n_rows] weight rows, w_stride bytes apart
    int64_t w_stride;
    const uint8_t* x;  // [k, n_cols] activation columns in the kernel's ActFormat
    int64_t x_stride;
    float* out;  // [n_rows, n_cols] out_stride floats between columns
    int64_t out_stride;
    int64_t n_blocks;  // weight blocks along k (elements for F32/F16/BF16)
    int n_rows;
    int n_cols;
    bool accumulate;
};
using TileFn = void (*)(const TileArgs& args);

// Quantizes k floats (a multiple of the format's block) into the activation format.
using QuantizeActFn = void (*)(const float* x, void* dst, int64_t k);

struct MatmulKernel {
    ActFormat act;
    int max_rows;  // tile shape the kernel is tuned for (it accepts any smaller tile)
    int max_cols;
    TileFn tile;
    QuantizeActFn quantize;  // null for ACT_F32
};

// Integer/FMA kernels by weight type, or null when the type has none on that ISA. `decode` asks
// for the tile shape that streams weights for one column (T = 1) instead of the prefill shape.
const MatmulKernel* matmul_kernel_scalar(DType type);
const MatmulKernel* matmul_kernel_avx2(DType type, bool decode);

// Scalar activation quantizers (also the reference for the AVX2 ones).
void quantize_act_q8_0x_scalar(const float* x, void* dst, int64_t k);
void quantize_act_q8_K_scalar(const float* x, void* dst, int64_t k);

}  // namespace sift::cpu
