// AVX2 inner loops of CPU attention (see cpu_attention_kernels.h for the layouts). Scores are
// kept transposed so the softmax runs on 8 query rows per vector, and both products are register
// tiles of 4 x 16 with 8 accumulators: one load or broadcast per 2 FMAs.
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "backend/cpu/cpu_attention_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#include "backend/cpu/cpu_avx2.h"

namespace sift::cpu {
namespace {

// e^x for F32 lanes: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-6 polynomial (relative
// error ~2e-7), 2^n through the exponent bits. Below -87.3 (where e^x is denormal) the result
// is exactly 0, so exp(-inf) = 0 as the masking relies on.
inline __m256 exp_ps(__m256 x) {
    const __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_GE_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // ln2 split in two so n * ln2_hi is exact.
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), underflow);
}

// st[j][i..i+8W) for J cells j, W vectors of rows.
template <int J, int W>
inline void qk_tile(const float* qt, const float* kb, int64_t head_dim, int64_t rows_pad, int64_t j,
                    int64_t i, float* st) {
    __m256 acc[J][W];
#pragma GCC unroll 8
    for (int a = 0; a < J; ++a) {
#pragma GCC unroll 2
        for (int w = 0; w < W; ++w) acc[a][w] = _mm256_setzero_ps();
    }
    for (int64_t d = 0; d < head_dim; ++d) {
        __m256 q[W];
#pragma GCC unroll 2
        for (int w = 0; w < W; ++w) q[w] = _mm256_loadu_ps(qt + d * rows_pad + i + 8 * w);
#pragma GCC unroll 8
        for (int a = 0; a < J; ++a) {
            const __m256 k = _mm256_broadcast_ss(kb + (j + a) * head_dim + d);
#pragma GCC unroll 2
            for (int w = 0; w < W; ++w) acc[a][w] = _mm256_fmadd_ps(k, q[w], acc[a][w]);
        }
    }
#pragma GCC unroll 8
    for (int a = 0; a < J; ++a) {
#pragma GCC unroll 2
        for (int w = 0; w < W; ++w)
            _mm256_storeu_ps(st + (j + a) * rows_pad + i + 8 * w, acc[a][w]);
    }
}

// Tiles of 4 cells x 16 rows, or 8 cells x 8 rows when only 8 rows remain (decode): either way 8
// independent FMA chains, enough to cover the FMA latency.
void qk(const float* qt, const float* kb, int64_t n, int64_t head_dim, int64_t rows_pad,
        float* st) {
    int64_t i = 0;
    for (; i + 16 <= rows_pad; i += 16) {
        int64_t j = 0;
        for (; j + 6 <= n; j += 6) qk_tile<6, 2>(qt, kb, head_dim, rows_pad, j, i, st);
        for (; j + 4 <= n; j += 4) qk_tile<4, 2>(qt, kb, head_dim, rows_pad, j, i, st);
        for (; j < n; ++j) qk_tile<1, 2>(qt, kb, head_dim, rows_pad, j, i, st);
    }
    for (; i < rows_pad; i += 8) {
        int64_t j = 0;
        for (; j + 8 <= n; j += 8) qk_tile<8, 1>(qt, kb, head_dim, rows_pad, j, i, st);
        for (; j + 4 <= n; j += 4) qk_tile<4, 1>(qt, kb, head_dim, rows_pad, j, i, st);
        for (; j < n; ++j) qk_tile<1, 1>(qt, kb, head_dim, rows_pad, j, i, st);
    }
}

void softmax(float* st, int64_t n, int64_t rows_pad, float* m, float* l, float* alpha) {
    const __m256 neg_inf = _mm256_set1_ps(-INFINITY);
    for (int64_t i = 0; i < rows_pad; i += 8) {
        __m256 mx = neg_inf;
        for (int64_t j = 0; j < n; ++j)
            mx = _mm256_max_ps(mx, _mm256_loadu_ps(st + j * rows_pad + i));
        const __m256 m_old = _mm256_loadu_ps(m + i);
        const __m256 m_new = _mm256_max_ps(m_old, mx);
        // Rows with nothing visible yet subtract 0 instead of -inf (which would give NaN).
        const __m256 m_use =
            _mm256_blendv_ps(m_new, _mm256_setzero_ps(), _mm256_cmp_ps(m_new, neg_inf, _CMP_EQ_OQ));
        __m256 sum = _mm256_setzero_ps();
        for (int64_t j = 0; j < n; ++j) {
            const __m256 p = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(st + j * rows_pad + i), m_use));
            _mm256_storeu_ps(st + j * rows_pad + i, p);
            sum = _mm256_add_ps(sum, p);
        }
        const __m256 a = exp_ps(_mm256_sub_ps(m_old, m_use));
        _mm256_storeu_ps(alpha + i, a);
        _mm256_storeu_ps(l + i, _mm256_fmadd_ps(_mm256_loadu_ps(l + i), a, sum));
        _mm256_storeu_ps(m + i, m_new);
    }
}

// o[i..i+R)[d..d+8W) rescaled by alpha, plus sum_j p[j][i] vb[j][d].
template <int R, int W>
inline void pv_tile(const float* st, const float* vb, int64_t n, int64_t head_dim, int64_t rows_pad,
                    const float* alpha, int64_t i, int64_t d, float* o) {
    __m256 acc[R][W];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
        const __m256 a = _mm256_broadcast_ss(alpha + i + r);
#pragma GCC unroll 8
        for (int w = 0; w < W; ++w)
            acc[r][w] = _mm256_mul_ps(_mm256_loadu_ps(o + (i + r) * head_dim + d + 8 * w), a);
    }
    for (int64_t j = 0; j < n; ++j) {
        __m256 v[W];
#pragma GCC unroll 8
        for (int w = 0; w < W; ++w) v[w] = _mm256_loadu_ps(vb + j * head_dim + d + 8 * w);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            const __m256 p = _mm256_broadcast_ss(st + j * rows_pad + i + r);
#pragma GCC unroll 8
            for (int w = 0; w < W; ++w) acc[r][w] = _mm256_fmadd_ps(p, v[w], acc[r][w]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
        for (int w = 0; w < W; ++w) _mm256_storeu_ps(o + (i + r) * head_dim + d + 8 * w, acc[r][w]);
    }
}

// R rows x W vectors of head dims per tile, with R x W = 8 accumulators where head_dim allows.
template <int R, int W>
inline void pv_rows(const float* st, const float* vb, int64_t n, int64_t head_dim, int64_t rows_pad,
                    const float* alpha, int64_t i, float* o) {
    int64_t d = 0;
    for (; d + 8 * W <= head_dim; d += 8 * W)
        pv_tile<R, W>(st, vb, n, head_dim, rows_pad, alpha, i, d, o);
    for (; d + 8 <= head_dim; d += 8) pv_tile<R, 1>(st, vb, n, head_dim, rows_pad, alpha, i, d, o);
    for (; d < head_dim; ++d) {  // head_dim % 8 tail
        for (int r = 0; r < R; ++r) {
            float s = o[(i + r) * head_dim + d] * alpha[i + r];
            for (int64_t j = 0; j < n; ++j) s += st[j * rows_pad + i + r] * vb[j * head_dim + d];
            o[(i + r) * head_dim + d] = s;
        }
    }
}

void pv(const float* st, const float* vb, int64_t n, int64_t head_dim, int64_t rows,
        int64_t rows_pad, const float* alpha, float* o) {
    int64_t i = 0;
    for (; i + 6 <= rows; i += 6) pv_rows<6, 2>(st, vb, n, head_dim, rows_pad, alpha, i, o);
    for (; i + 4 <= rows; i += 4) pv_rows<4, 2>(st, vb, n, head_dim, rows_pad, alpha, i, o);
    for (; i + 2 <= rows; i += 2) pv_rows<2, 4>(st, vb, n, head_dim, rows_pad, alpha, i, o);
    for (; i < rows; ++i) pv_rows<1, 8>(st, vb, n, head_dim, rows_pad, alpha, i, o);
}

void f16_to_f32(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, avx2::load_f16x8(src + i));
    for (; i < n; ++i) dst[i] = avx2::f16_to_f32(src[i]);
}

}  // namespace

#pragma GCC pop_options

const AttentionKernels& attention_kernels_avx2() {
    static const AttentionKernels kernels{qk, softmax, pv, f16_to_f32};
    return kernels;
}

}  // namespace sift::cpu
