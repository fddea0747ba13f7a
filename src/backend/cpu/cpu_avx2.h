// AVX2 helpers shared by the AVX2 translation units. Include every standard header first, then
// `#pragma GCC target("avx2,fma,f16c")`, then this: the helpers are static (internal linkage),
// so AVX2 code never lands in an inline symbol the linker could hand to the baseline build.
#pragma once

#include <immintrin.h>

#include "backend/cpu/cpu_kernels.h"

namespace sift::cpu::avx2 {

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float f16_to_f32(uint16_t h) {
    return _cvtsh_ss(h);
}

// 8 F16 / BF16 values at p to F32 (BF16 is the high half of an F32).
static inline __m256 load_f16x8(const void* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(static_cast<const __m128i*>(p)));
}
static inline __m256 load_bf16x8(const void* p) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(static_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

static inline __m256i loadu256(const void* p) {
    return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}
static inline __m128i loadu128(const void* p) {
    return _mm_loadu_si128(static_cast<const __m128i*>(p));
}

// Sum over pairs of u8 * s8 products widened to 8 int32 lanes (u8 operand first).
static inline __m256i dot_u8s8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// An empty asm that "modifies" v: GCC treats int32 vector adds as associative and would rebuild a
// tile's accumulation into a tree of partial sums, spilling dozens of them to the stack. Passing
// each accumulator through this once per step pins the chain as written.
static inline void pin(__m256i& v) {
    __asm__("" : "+x"(v));
}

// Decode streams weights once; prefetching this far ahead (a few hundred ns of reading at ~10
// GB/s per core) covers DRAM latency at the end of short rows where the hardware prefetcher
// restarts.
inline constexpr int kPrefetchBytes = 1024;

// Prefetches the cache lines of `bytes` bytes that start kPrefetchBytes after p.
static inline void prefetch_ahead(const void* p, int bytes) {
    const char* q = static_cast<const char*>(p) + kPrefetchBytes;
    for (int off = 0; off < bytes; off += 64) _mm_prefetch(q + off, _MM_HINT_T0);
}

// The 8 horizontal sums of v[0..7], in order, as one vector.
static inline __m256 hsum8(const __m256 v[8]) {
    const __m256 a = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
    const __m256 b = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}

static inline void store_out(float* out, float v, bool accumulate) {
    *out = accumulate ? *out + v : v;
}

// out[c * out_stride + r] (+)= the horizontal sum of facc[r][c].
template <int R, int C>
static inline void store_tile(const TileArgs& a, __m256 (&facc)[R][C]) {
    for (int r = 0; r < R; ++r) {
        if constexpr (C == 8) {  // the integer prefill shape: all 8 sums at once
            alignas(32) float sums[8];
            _mm256_store_ps(sums, hsum8(facc[r]));
            for (int c = 0; c < C; ++c)
                store_out(a.out + c * a.out_stride + r, sums[c], a.accumulate);
        } else {
            for (int c = 0; c < C; ++c) {
                store_out(a.out + c * a.out_stride + r, hsum(facc[r][c]), a.accumulate);
            }
        }
    }
}

// Runs K::run<r, c> for the tile's actual shape (r <= R, c <= C): the full shape almost always,
// the smaller ones at the matrix edges.
template <typename K, int R, int C, int I = 0>
static inline void dispatch_tile(const TileArgs& a) {
    if constexpr (I < R * C) {
        constexpr int r = I / C + 1, c = I % C + 1;
        if (a.n_rows == r && a.n_cols == c) {
            K::template run<r, c>(a);
            return;
        }
        dispatch_tile<K, R, C, I + 1>(a);
    }
}

}  // namespace sift::cpu::avx2
