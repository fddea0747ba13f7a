// AVX2 integer kernels for the legacy 32-weight formats (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) against
// block_q8_0x activations.
//
// Unsigned formats keep q in [0, 15] / [0, 31] for maddubs and move the offset (-8, -16) or the
// min into a zero-point term times the activation block's sum s; Q8_0 (signed weights) uses
// |w| and sign(x, w). Each block has its own scales, so every block ends in F32: convert, then
// fma with d_w * d_x. |q * y| pairs stay below 2 * 127 * 127 (int16 safe).
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

enum class Legacy { L_Q8_0, L_Q4_0, L_Q4_1, L_Q5_0, L_Q5_1 };

template <Legacy L>
struct LegacyTraits;
template <>
struct LegacyTraits<Legacy::L_Q8_0> {
    using Block = block_q8_0;
};
template <>
struct LegacyTraits<Legacy::L_Q4_0> {
    using Block = block_q4_0;
};
template <>
struct LegacyTraits<Legacy::L_Q4_1> {
    using Block = block_q4_1;
};
template <>
struct LegacyTraits<Legacy::L_Q5_0> {
    using Block = block_q5_0;
};
template <>
struct LegacyTraits<Legacy::L_Q5_1> {
    using Block = block_q5_1;
};

// 16 bytes of nibbles -> 32 values in element order: low nibbles (elements 0-15) in the low
// lane, high nibbles (16-31) in the high lane.
inline __m256i unpack_nibbles(const uint8_t* qs) {
    const __m256i v = _mm256_broadcastsi128_si256(loadu128(qs));
    return _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 0, 4, 4)),
                            _mm256_set1_epi8(0x0F));
}

// Bit j of the 32-bit qh -> 0x10 in byte j.
inline __m256i unpack_bit4(const uint8_t* qh_bytes) {
    uint32_t qh;
    std::memcpy(&qh, qh_bytes, 4);
    const __m256i spread =
        _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(qh)),
                            _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2,
                                             2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// One weight block: the values (unsigned, or signed for Q8_0), d, and the zero-point
// coefficient z so that dot = d * d_x * sum(q * y) + z * s_x.
template <Legacy L>
inline __m256i unpack_block(const typename LegacyTraits<L>::Block* w, float* d, float* z) {
    *d = f16_to_f32(w->d);
    if constexpr (L == Legacy::L_Q8_0) {
        *z = 0;
        return loadu256(w->qs);
    } else if constexpr (L == Legacy::L_Q4_0) {
        *z = -8 * *d;
        return unpack_nibbles(w->qs);
    } else if constexpr (L == Legacy::L_Q4_1) {
        *z = f16_to_f32(w->m);
        return unpack_nibbles(w->qs);
    } else if constexpr (L == Legacy::L_Q5_0) {
        *z = -16 * *d;
        return _mm256_or_si256(unpack_nibbles(w->qs), unpack_bit4(w->qh));
    } else {
        *z = f16_to_f32(w->m);
        return _mm256_or_si256(unpack_nibbles(w->qs), unpack_bit4(w->qh));
    }
}

template <Legacy L>
struct LegacyTile {
    template <int R, int C>
    static void run(const TileArgs& a) {
        using Block = typename LegacyTraits<L>::Block;
        constexpr bool kSigned = L == Legacy::L_Q8_0;
        __m256 facc[R][C];
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) facc[r][c] = _mm256_setzero_ps();
        }
        for (int64_t b = 0; b < a.n_blocks; ++b) {
            __m256i q[R];
            __m256 d[R], z[R];
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
                float dr, zr;
                // Blocks are 18-34 bytes: one prefetch per block covers every line.
                if constexpr (C == 1) prefetch_ahead(a.w + r * a.w_stride + b * sizeof(Block), 1);
                q[r] = unpack_block<L>(reinterpret_cast<const Block*>(a.w + r * a.w_stride) + b,
                                       &dr, &zr);
                d[r] = _mm256_set1_ps(dr);
                z[r] = _mm256_set1_ps(zr);
            }
            __m256i abs_q[R];
            if constexpr (kSigned) {
#pragma GCC unroll 8
                for (int r = 0; r < R; ++r) abs_q[r] = _mm256_abs_epi8(q[r]);
            }
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) {
                const block_q8_0x* x =
                    reinterpret_cast<const block_q8_0x*>(a.x + c * a.x_stride) + b;
                const __m256i xv = loadu256(x->qs);
                const __m256 xd = _mm256_set1_ps(x->d);
                // s_x in lane 0 only: the lanes are summed at the end, so one lane carries it.
                const __m256 xs = _mm256_zextps128_ps256(_mm_load_ss(&x->s));
#pragma GCC unroll 8
                for (int r = 0; r < R; ++r) {
                    const __m256i p = kSigned ? dot_u8s8(abs_q[r], _mm256_sign_epi8(xv, q[r]))
                                              : dot_u8s8(q[r], xv);
                    facc[r][c] =
                        _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(d[r], xd), facc[r][c]);
                    if constexpr (!kSigned) facc[r][c] = _mm256_fmadd_ps(z[r], xs, facc[r][c]);
                }
            }
        }
        store_tile<R, C>(a, facc);
    }
};

}  // namespace

void tile_q8_0_prefill(const TileArgs& a) {
    dispatch_tile<LegacyTile<Legacy::L_Q8_0>, kQuantRows, kQuantCols>(a);
}
void tile_q8_0_decode(const TileArgs& a) {
    dispatch_tile<LegacyTile<Legacy::L_Q8_0>, kDecodeRows, 1>(a);
}
void tile_q4_0_prefill(const TileArgs& a) {
    dispatch_tile<LegacyTile<Legacy::L_Q4_0>, kQuantRows, kQuantCols>(a);
}
void tile_q4_0_decode(const TileArgs& a) {
    dispatch_tile<LegacyTile<Legacy::L_Q4_0>, kDecodeRows, 1>(a);
}
void tile_q4_1_prefill(const TileArgs& a) {
    dispatch_tile<LegacyTile<Legacy::L_Q4_1>, kQuantRows, kQuantCols>(a);
}
void tile_q4_1_decode(const TileArgs& a) {
    dispatch_tile<LegacyTile<Legacy::L_Q4_1>, kDecodeRows, 1>(a);
}
void tile_q5_0_prefill(const TileArgs& a) {
    dispatch_tile<LegacyTile<Legacy::L_Q5_0>, kQuantRows, kQuantCols>(a);
}
void tile_q5_0_decode(const TileArgs& a) {
    dispatch_tile<LegacyTile<Legacy::L_Q5_0>, kDecodeRows, 1>(a);
}
void tile_q5_1_prefill(const TileArgs& a) {
    dispatch_tile<LegacyTile<Legacy::L_Q5_1>, kQuantRows, kQuantCols>(a);
}
void tile_q5_1_decode(const TileArgs& a) {
    dispatch_tile<LegacyTile<Legacy::L_Q5_1>, kDecodeRows, 1>(a);
}

}  // namespace sift::cpu::avx2

#pragma GCC pop_options
