// AVX2 integer kernels for Q4_K, Q5_K and Q6_K weights against Q8_K activations.
//
// The pattern (per 32 weights of one sub-block): maddubs(u8 weights, s8 activations) gives 16
// int16 pair sums, madd with the sub-block's scale broadcast as int16 widens them to 8 int32 and
// applies the scale, and an add accumulates a super-block's sums in int32. Per super-block the
// int32 lanes are converted once and scaled by d_w * d_x in F32. Bounds: |q * y| pairs stay
// below 2 * 63 * 128 = 16128 (int16 safe) and a super-block's int32 sums below 2^25.
//
// A tile holds R weight rows x C activation columns; the unpacked weight vectors are reused for
// the C columns and each activation vector for the R rows, so prefill reads weights from cache
// C times less often than a one-column loop.
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_kernels_avx2.h"
#include "tensor/quant_blocks.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#include "backend/cpu/cpu_avx2.h"

namespace sift::cpu::avx2 {
namespace {

// Shuffle control that broadcasts int16 element j of each 128-bit lane to the whole lane.
inline __m256i broadcast_ctrl(int j) {
    return _mm256_set1_epi16(static_cast<int16_t>(0x0100 + 0x0202 * j));
}

// The 8 six-bit scales and mins of a Q4_K/Q5_K super-block, unpacked from the 12 bytes with
// 32-bit word operations: scales 0-3 and mins 0-3 are the low 6 bits of bytes 0-3 and 4-7;
// scales/mins 4-7 take their low 4 bits from the nibbles of bytes 8-11 and their top 2 bits
// from the top 2 bits of bytes 0-3 (scales) and 4-7 (mins).
struct KScales {
    __m256i scale[8];  // scale j broadcast to 16 int16
    __m256 mins;       // dmin * min j in lane j (pairs with the activations' msums)
};

inline void unpack_kscales(const uint8_t* packed, float dmin, KScales* out) {
    uint32_t s[3];
    std::memcpy(s, packed, 12);
    const uint32_t sc_lo = s[0] & 0x3f3f3f3f;
    const uint32_t sc_hi = (s[2] & 0x0f0f0f0f) | (((s[0] >> 6) & 0x03030303) << 4);
    const uint32_t m_lo = s[1] & 0x3f3f3f3f;
    const uint32_t m_hi = ((s[2] >> 4) & 0x0f0f0f0f) | (((s[1] >> 6) & 0x03030303) << 4);
    const __m256i w16 =
        _mm256_cvtepu8_epi16(_mm_setr_epi32(static_cast<int>(sc_lo), static_cast<int>(sc_hi),
                                            static_cast<int>(m_lo), static_cast<int>(m_hi)));
    const __m256i sc = _mm256_permute2x128_si256(w16, w16, 0x00);  // scales in both lanes
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) out->scale[j] = _mm256_shuffle_epi8(sc, broadcast_ctrl(j));
    const __m256 m = _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(w16, 1)));
    out->mins = _mm256_mul_ps(m, _mm256_set1_ps(dmin));
}

template <typename Block>
inline const Block* row_block(const TileArgs& a, int r, int64_t b) {
    return reinterpret_cast<const Block*>(a.w + r * a.w_stride) + b;
}
inline const block_q8_Kx* col_block(const TileArgs& a, int c, int64_t b) {
    return reinterpret_cast<const block_q8_Kx*>(a.x + c * a.x_stride) + b;
}

// Q4_K and Q5_K share everything but the fifth bit.
template <bool kFive>
struct Q45KTile {
    template <int R, int C>
    static void run(const TileArgs& a) {
        using Block = std::conditional_t<kFive, block_q5_K, block_q4_K>;
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        const __m256i bit4 = _mm256_set1_epi8(0x10);
        __m256 facc[R][C];
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) facc[r][c] = _mm256_setzero_ps();
        }
        for (int64_t b = 0; b < a.n_blocks; ++b) {
            KScales ks[R];
            __m256 d[R];
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
                const Block* w = row_block<Block>(a, r, b);
                if constexpr (C == 1) prefetch_ahead(w, sizeof(Block));
                unpack_kscales(w->scales, f16_to_f32(w->dmin), &ks[r]);
                d[r] = _mm256_set1_ps(f16_to_f32(w->d));
            }
            __m256i acc[R][C];
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
                for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_si256();
            }
            // One 32-weight sub-block at a time (low nibbles of 32 bytes, then their high
            // nibbles): only R weight vectors and R scales are live next to the accumulators.
#pragma GCC unroll 8
            for (int j = 0; j < 8; ++j) {
                __m256i q[R];
#pragma GCC unroll 8
                for (int r = 0; r < R; ++r) {
                    const Block* w = row_block<Block>(a, r, b);
                    const __m256i raw = loadu256(w->qs + 32 * (j / 2));
                    q[r] = _mm256_and_si256(j % 2 == 0 ? raw : _mm256_srli_epi16(raw, 4), m4);
                    if constexpr (kFive) {  // bit j of qh[l] -> bit 4
                        const __m256i h = loadu256(w->qh);
                        const __m256i bit =
                            j <= 4 ? _mm256_slli_epi16(h, 4 - j) : _mm256_srli_epi16(h, j - 4);
                        q[r] = _mm256_or_si256(q[r], _mm256_and_si256(bit, bit4));
                    }
                }
#pragma GCC unroll 8
                for (int c = 0; c < C; ++c) {
                    const __m256i xv = loadu256(col_block(a, c, b)->qs + 32 * j);
#pragma GCC unroll 8
                    for (int r = 0; r < R; ++r) {
                        const __m256i p =
                            _mm256_madd_epi16(_mm256_maddubs_epi16(q[r], xv), ks[r].scale[j]);
                        acc[r][c] = _mm256_add_epi32(acc[r][c], p);
                        pin(acc[r][c]);
                    }
                }
            }
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) {
                const block_q8_Kx* x = col_block(a, c, b);
                const __m256 xd = _mm256_set1_ps(x->d);
                const __m256 msums = _mm256_loadu_ps(x->msums);
#pragma GCC unroll 8
                for (int r = 0; r < R; ++r) {
                    // d d_x sum_j sc_j (q . y)_j  -  sum_j (dmin m_j) (d_x sum_j y)
                    const __m256 s = _mm256_cvtepi32_ps(acc[r][c]);
                    facc[r][c] = _mm256_fmadd_ps(s, _mm256_mul_ps(d[r], xd), facc[r][c]);
                    facc[r][c] = _mm256_fnmadd_ps(ks[r].mins, msums, facc[r][c]);
                }
            }
        }
        store_tile<R, C>(a, facc);
    }
};

// Q6_K: q in [0, 63] (maddubs needs the unsigned operand), the -32 offset applied per super-block
// as 32 * sum_j scale_j * bsum_j, with one int8 scale per 16 weights.
struct Q6KTile {
    template <int R, int C>
    static void run(const TileArgs& a) {
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        const __m256i m30 = _mm256_set1_epi8(0x30);
        // Scales reordered to evens then odds, so one in-lane shuffle puts scale 2t in the low
        // lane and 2t+1 in the high lane: the two 16-weight halves of a 32-byte vector.
        const __m128i evens_odds =
            _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
        __m256 facc[R][C];
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) facc[r][c] = _mm256_setzero_ps();
        }
        for (int64_t b = 0; b < a.n_blocks; ++b) {
            __m256i scale[R][8], sc16[R];
            __m256 d[R];
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
                const block_q6_K* w = row_block<block_q6_K>(a, r, b);
                if constexpr (C == 1) prefetch_ahead(w, sizeof(block_q6_K));
                const __m128i s8 = loadu128(w->scales);
                sc16[r] = _mm256_cvtepi8_epi16(s8);
                const __m256i eo = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s8, evens_odds));
#pragma GCC unroll 8
                for (int t = 0; t < 8; ++t)
                    scale[r][t] = _mm256_shuffle_epi8(eo, broadcast_ctrl(t));
                d[r] = _mm256_set1_ps(f16_to_f32(w->d));
            }
            __m256i acc[R][C];
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
                for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_si256();
            }
#pragma GCC unroll 8
            for (int t = 0; t < 8; ++t) {  // weights 32t .. 32t+31
                const int h = t / 4, u = t % 4;
                __m256i q[R];
#pragma GCC unroll 8
                for (int r = 0; r < R; ++r) {
                    const block_q6_K* w = row_block<block_q6_K>(a, r, b);
                    const __m256i ql = loadu256(w->ql + 64 * h + 32 * (u % 2));
                    const __m256i qh = loadu256(w->qh + 32 * h);
                    const __m256i low = u < 2 ? ql : _mm256_srli_epi16(ql, 4);
                    // bits 2u, 2u+1 of qh -> bits 4, 5
                    const __m256i high = u == 0   ? _mm256_slli_epi16(qh, 4)
                                         : u == 1 ? _mm256_slli_epi16(qh, 2)
                                         : u == 2 ? qh
                                                  : _mm256_srli_epi16(qh, 2);
                    q[r] = _mm256_or_si256(_mm256_and_si256(low, m4), _mm256_and_si256(high, m30));
                }
#pragma GCC unroll 8
                for (int c = 0; c < C; ++c) {
                    const __m256i xv = loadu256(col_block(a, c, b)->qs + 32 * t);
#pragma GCC unroll 8
                    for (int r = 0; r < R; ++r) {
                        const __m256i p =
                            _mm256_madd_epi16(_mm256_maddubs_epi16(q[r], xv), scale[r][t]);
                        acc[r][c] = _mm256_add_epi32(acc[r][c], p);
                        pin(acc[r][c]);
                    }
                }
            }
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) {
                const block_q8_Kx* x = col_block(a, c, b);
                const __m256 xd = _mm256_set1_ps(x->d);
                const __m256i bsums = loadu256(x->bsums);
#pragma GCC unroll 8
                for (int r = 0; r < R; ++r) {
                    const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(sc16[r], bsums), 5);
                    const __m256 s = _mm256_cvtepi32_ps(_mm256_sub_epi32(acc[r][c], offset));
                    facc[r][c] = _mm256_fmadd_ps(_mm256_mul_ps(s, d[r]), xd, facc[r][c]);
                }
            }
        }
        store_tile<R, C>(a, facc);
    }
};

}  // namespace

void tile_q4_K_prefill(const TileArgs& a) {
    dispatch_tile<Q45KTile<false>, kQuantRows, kQuantCols>(a);
}
void tile_q4_K_decode(const TileArgs& a) {
    dispatch_tile<Q45KTile<false>, kDecodeRows, 1>(a);
}
void tile_q5_K_prefill(const TileArgs& a) {
    dispatch_tile<Q45KTile<true>, kQuantRows, kQuantCols>(a);
}
void tile_q5_K_decode(const TileArgs& a) {
    dispatch_tile<Q45KTile<true>, kDecodeRows, 1>(a);
}
void tile_q6_K_prefill(const TileArgs& a) {
    dispatch_tile<Q6KTile, kQuantRows, kQuantCols>(a);
}
void tile_q6_K_decode(const TileArgs& a) {
    dispatch_tile<Q6KTile, kDecodeRows, 1>(a);
}

}  // namespace sift::cpu::avx2

#pragma GCC pop_options
