// AVX2 kernels for F32/F16/BF16 weights (F32 FMA, F16C conversion on load), the activation
// quantizers, and the AVX2 kernel table. Compiled for AVX2 by pragma; called only after
// cpu_isa_detect() found AVX2, FMA and F16C.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_kernels_avx2.h"
#include "tensor/quant_blocks.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#include "backend/cpu/cpu_avx2.h"

namespace sift::cpu::avx2 {
namespace {

enum class WeightKind { W_F32, W_F16, W_BF16 };

template <WeightKind W>
inline __m256 load_w8(const uint8_t* row, int64_t i) {
    if constexpr (W == WeightKind::W_F32)
        return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + i);
    if constexpr (W == WeightKind::W_F16) return load_f16x8(row + 2 * i);
    return load_bf16x8(row + 2 * i);
}

template <WeightKind W>
inline float load_w1(const uint8_t* row, int64_t i) {
    if constexpr (W == WeightKind::W_F32) {
        float v;
        std::memcpy(&v, row + 4 * i, 4);
        return v;
    }
    uint16_t h;
    std::memcpy(&h, row + 2 * i, 2);
    if constexpr (W == WeightKind::W_F16) return f16_to_f32(h);
    uint32_t u = static_cast<uint32_t>(h) << 16;
    float v;
    std::memcpy(&v, &u, 4);
    return v;
}

// acc[u][r][c] += w[r][i..i+8] * x[c][i..i+8]: the weights are converted once per 8 and reused
// for every column; a small tile (decode) keeps U = 4 partial sums per output so 4 FMA chains
// cover the FMA latency. Lanes and partial sums are added at the end, and a scalar loop takes
// the k % 8U tail.
template <WeightKind W>
struct FloatTile {
    template <int R, int C>
    static void run(const TileArgs& a) {
        constexpr int U = R * C >= 4 ? 1 : 4;
        constexpr int kBytes = W == WeightKind::W_F32 ? 4 : 2;
        const int64_t k = a.n_blocks;
        const float* x[C];
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) x[c] = reinterpret_cast<const float*>(a.x + c * a.x_stride);
        __m256 acc[U][R][C];
#pragma GCC unroll 4
        for (int u = 0; u < U; ++u) {
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
                for (int c = 0; c < C; ++c) acc[u][r][c] = _mm256_setzero_ps();
            }
        }
        int64_t i = 0;
        for (; i + 8 * U <= k; i += 8 * U) {
            if constexpr (C == 1) {
#pragma GCC unroll 8
                for (int r = 0; r < R; ++r)
                    prefetch_ahead(a.w + r * a.w_stride + i * kBytes, 8 * U * kBytes);
            }
#pragma GCC unroll 4
            for (int u = 0; u < U; ++u) {
                __m256 w[R];
#pragma GCC unroll 8
                for (int r = 0; r < R; ++r) w[r] = load_w8<W>(a.w + r * a.w_stride, i + 8 * u);
#pragma GCC unroll 8
                for (int c = 0; c < C; ++c) {
                    const __m256 xv = _mm256_loadu_ps(x[c] + i + 8 * u);
#pragma GCC unroll 8
                    for (int r = 0; r < R; ++r)
                        acc[u][r][c] = _mm256_fmadd_ps(w[r], xv, acc[u][r][c]);
                }
            }
        }
        for (int r = 0; r < R; ++r) {
            for (int c = 0; c < C; ++c) {
                __m256 v = acc[0][r][c];
                for (int u = 1; u < U; ++u) v = _mm256_add_ps(v, acc[u][r][c]);
                float s = hsum(v);
                for (int64_t j = i; j < k; ++j) s += load_w1<W>(a.w + r * a.w_stride, j) * x[c][j];
                store_out(a.out + c * a.out_stride + r, s, a.accumulate);
            }
        }
    }
};

inline float max_abs(const float* x, int n) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8)
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

// 32 values times id, rounded to nearest-even (the MXCSR default) and packed to int8 in order.
// v receives the four int32 vectors (elements 0-7, 8-15, 16-23, 24-31) for the block sums.
inline __m256i quantize32(const float* x, __m256 id, __m256i v[4]) {
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j)
        v[j] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * j), id));
    // packs work within 128-bit lanes; the permute restores element order.
    const __m256i p =
        _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

inline int32_t hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

}  // namespace

void quantize_act_q8_0x(const float* x, void* dst, int64_t k) {
    auto* y = static_cast<block_q8_0x*>(dst);
    for (int64_t b = 0; b < k / kQK8_0; ++b, x += kQK8_0) {
        // The same d and 1/d as the scalar quantizer, so both produce identical blocks.
        const float d = max_abs(x, kQK8_0) / 127.0f;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        __m256i v[4];
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs),
                            quantize32(x, _mm256_set1_ps(id), v));
        const int32_t s =
            hsum_i32(_mm256_add_epi32(_mm256_add_epi32(v[0], v[1]), _mm256_add_epi32(v[2], v[3])));
        y[b].d = d;
        y[b].s = d * static_cast<float>(s);
    }
}

void quantize_act_q8_K(const float* x, void* dst, int64_t k) {
    auto* y = static_cast<block_q8_Kx*>(dst);
    for (int64_t b = 0; b < k / kQK_K; ++b, x += kQK_K) {
        const float d = max_abs(x, kQK_K) / 127.0f;
        const __m256 id = _mm256_set1_ps(d != 0 ? 1.0f / d : 0.0f);
        y[b].d = d;
        for (int g = 0; g < kQK_K / 32; ++g) {
            __m256i v[4];
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs + 32 * g),
                                quantize32(x + 32 * g, id, v));
            // Sums of elements 0-15 and 16-31 of the group: two horizontal adds then the lanes.
            __m256i h =
                _mm256_hadd_epi32(_mm256_add_epi32(v[0], v[1]), _mm256_add_epi32(v[2], v[3]));
            h = _mm256_hadd_epi32(h, h);
            const __m128i s =
                _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
            const int s0 = _mm_extract_epi32(s, 0), s1 = _mm_extract_epi32(s, 1);
            y[b].bsums[2 * g] = static_cast<int16_t>(s0);
            y[b].bsums[2 * g + 1] = static_cast<int16_t>(s1);
            y[b].msums[g] = d * static_cast<float>(s0 + s1);
        }
    }
}

void tile_f32_prefill(const TileArgs& a) {
    dispatch_tile<FloatTile<WeightKind::W_F32>, kFloatRows, kFloatCols>(a);
}
void tile_f32_decode(const TileArgs& a) {
    dispatch_tile<FloatTile<WeightKind::W_F32>, kDecodeRows, 1>(a);
}
void tile_f16_prefill(const TileArgs& a) {
    dispatch_tile<FloatTile<WeightKind::W_F16>, kFloatRows, kFloatCols>(a);
}
void tile_f16_decode(const TileArgs& a) {
    dispatch_tile<FloatTile<WeightKind::W_F16>, kDecodeRows, 1>(a);
}
void tile_bf16_prefill(const TileArgs& a) {
    dispatch_tile<FloatTile<WeightKind::W_BF16>, kFloatRows, kFloatCols>(a);
}
void tile_bf16_decode(const TileArgs& a) {
    dispatch_tile<FloatTile<WeightKind::W_BF16>, kDecodeRows, 1>(a);
}

}  // namespace sift::cpu::avx2

#pragma GCC pop_options

namespace sift::cpu {

// Compiled without AVX2: the table only holds pointers into the AVX2 code above.
const MatmulKernel* matmul_kernel_avx2(DType type, bool decode) {
    using enum ActFormat;
    using namespace avx2;
    static const MatmulKernel prefill[] = {
        {ACT_F32, kFloatRows, kFloatCols, tile_f32_prefill, nullptr},
        {ACT_F32, kFloatRows, kFloatCols, tile_f16_prefill, nullptr},
        {ACT_F32, kFloatRows, kFloatCols, tile_bf16_prefill, nullptr},
        {ACT_Q8_0X, kQuantRows, kQuantCols, tile_q8_0_prefill, quantize_act_q8_0x},
        {ACT_Q8_0X, kQuantRows, kQuantCols, tile_q4_0_prefill, quantize_act_q8_0x},
        {ACT_Q8_0X, kQuantRows, kQuantCols, tile_q4_1_prefill, quantize_act_q8_0x},
        {ACT_Q8_0X, kQuantRows, kQuantCols, tile_q5_0_prefill, quantize_act_q8_0x},
        {ACT_Q8_0X, kQuantRows, kQuantCols, tile_q5_1_prefill, quantize_act_q8_0x},
        {ACT_Q8_K, kQuantRows, kQuantCols, tile_q4_K_prefill, quantize_act_q8_K},
        {ACT_Q8_K, kQuantRows, kQuantCols, tile_q5_K_prefill, quantize_act_q8_K},
        {ACT_Q8_K, kQuantRows, kQuantCols, tile_q6_K_prefill, quantize_act_q8_K},
    };
    static const MatmulKernel one_col[] = {
        {ACT_F32, kDecodeRows, 1, tile_f32_decode, nullptr},
        {ACT_F32, kDecodeRows, 1, tile_f16_decode, nullptr},
        {ACT_F32, kDecodeRows, 1, tile_bf16_decode, nullptr},
        {ACT_Q8_0X, kDecodeRows, 1, tile_q8_0_decode, quantize_act_q8_0x},
        {ACT_Q8_0X, kDecodeRows, 1, tile_q4_0_decode, quantize_act_q8_0x},
        {ACT_Q8_0X, kDecodeRows, 1, tile_q4_1_decode, quantize_act_q8_0x},
        {ACT_Q8_0X, kDecodeRows, 1, tile_q5_0_decode, quantize_act_q8_0x},
        {ACT_Q8_0X, kDecodeRows, 1, tile_q5_1_decode, quantize_act_q8_0x},
        {ACT_Q8_K, kDecodeRows, 1, tile_q4_K_decode, quantize_act_q8_K},
        {ACT_Q8_K, kDecodeRows, 1, tile_q5_K_decode, quantize_act_q8_K},
        {ACT_Q8_K, kDecodeRows, 1, tile_q6_K_decode, quantize_act_q8_K},
    };
    int index;
    switch (type) {
        case DType::F32:
            index = 0;
            break;
        case DType::F16:
            index = 1;
            break;
        case DType::BF16:
            index = 2;
            break;
        case DType::Q8_0:
            index = 3;
            break;
        case DType::Q4_0:
            index = 4;
            break;
        case DType::Q4_1:
            index = 5;
            break;
        case DType::Q5_0:
            index = 6;
            break;
        case DType::Q5_1:
            index = 7;
            break;
        case DType::Q4_K:
            index = 8;
            break;
        case DType::Q5_K:
            index = 9;
            break;
        case DType::Q6_K:
            index = 10;
            break;
        default:
            return nullptr;
    }
    return decode ? &one_col[index] : &prefill[index];
}

}  // namespace sift::cpu
