// Tile functions and activation quantizers of the AVX2 translation units (declarations only, so
// including this header compiles no AVX2 code). Call them only when cpu_isa_detect() says AVX2.
#pragma once

#include "backend/cpu/cpu_kernels.h"

namespace sift::cpu::avx2 {

// Tile shapes. Prefill: the accumulators (R x C int32 or F32 vectors) plus the unpacked weights
// must fit 16 ymm registers. Integer kernels use one weight row x 8 columns: a row's scales are
// unpacked once per super-block for 8 tokens and each unpacked weight vector feeds 8 maddubs
// (measured faster than 2 x 4 or 3 x 4, which unpack scales for more rows per column).
// Decode (one column): one row at a time, so each thread reads its weights strictly in address
// order (rows are contiguous), which the hardware prefetcher follows best, plus a software
// prefetch kPrefetchBytes ahead; 4 interleaved rows reached only 1/2 to 2/3 of that bandwidth on
// 0.9-3 KB rows.
inline constexpr int kFloatRows = 3, kFloatCols = 4;  // 12 F32 accumulators + 3 weights
inline constexpr int kQuantRows = 1, kQuantCols = 8;  // 8 int32 accumulators + 1 weight vector
inline constexpr int kDecodeRows = 1;

void quantize_act_q8_0x(const float* x, void* dst, int64_t k);
void quantize_act_q8_K(const float* x, void* dst, int64_t k);

void tile_f32_prefill(const TileArgs& a);
void tile_f32_decode(const TileArgs& a);
void tile_f16_prefill(const TileArgs& a);
void tile_f16_decode(const TileArgs& a);
void tile_bf16_prefill(const TileArgs& a);
void tile_bf16_decode(const TileArgs& a);

void tile_q8_0_prefill(const TileArgs& a);
void tile_q8_0_decode(const TileArgs& a);
void tile_q4_0_prefill(const TileArgs& a);
void tile_q4_0_decode(const TileArgs& a);
void tile_q4_1_prefill(const TileArgs& a);
void tile_q4_1_decode(const TileArgs& a);
void tile_q5_0_prefill(const TileArgs& a);
void tile_q5_0_decode(const TileArgs& a);
void tile_q5_1_prefill(const TileArgs& a);
void tile_q5_1_decode(const TileArgs& a);

void tile_q4_K_prefill(const TileArgs& a);
void tile_q4_K_decode(const TileArgs& a);
void tile_q5_K_prefill(const TileArgs& a);
void tile_q5_K_decode(const TileArgs& a);
void tile_q6_K_prefill(const TileArgs& a);
void tile_q6_K_decode(const TileArgs& a);

}  // namespace sift::cpu::avx2
