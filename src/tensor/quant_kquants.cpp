// Q4_K, Q5_K, Q6_K, Q8_K: super-blocks of 256 with per-sub-block scales. Quantization follows
// ggml's reference quantizers (quantize_row_*_ref, no importance matrix) operation for operation,
// so the float results, and hence the bytes, are the same.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "tensor/quant.h"
#include "tensor/quant_blocks.h"

namespace sift {
namespace {

constexpr float kGroupMaxEps = 1e-15f;  // below this a sub-block counts as all zero (ggml)

// Round to nearest, ties to even, as ggml's nearest_int: adding 1.5 * 2^23 leaves the rounded
// integer in the low mantissa bits. Exact for |v| < 2^22; defined (if meaningless) beyond.
int nearest_int(float v) {
    const float t = v + 12582912.0f;
    return static_cast<int>(std::bit_cast<uint32_t>(t) & 0x7FFFFF) - 0x400000;
}

int clamp_int(int v, int lo, int hi) {
    return std::max(lo, std::min(hi, v));
}

// Scale and min for one sub-block, x ~ scale * L - neg_min with L in [0, nmax] (ggml's
// make_qkx2_quants, squared error): start from the min..max grid, then try nstep + 1 grids
// stretched by rmin + rdelta * is levels, fit (scale, min) by weighted least squares on each, and
// keep the one of least weighted error. The min is clamped to <= 0 so the offset only subtracts.
float search_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float* neg_min,
                       float rmin, float rdelta, int nstep) {
    float min = x[0];
    float max = x[0];
    float sum_w = w[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        std::memset(L, 0, static_cast<size_t>(n));
        *neg_min = -min;
        return 0.0f;
    }
    float iscale = static_cast<float>(nmax) / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        L[i] = static_cast<uint8_t>(clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax));
        const float diff = scale * L[i] + min - x[i];
        best_error += w[i] * (diff * diff);
    }
    uint8_t trial[32];  // n <= 32
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            const int l = clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax);
            trial[i] = static_cast<uint8_t>(l);
            const float wl = w[i] * static_cast<float>(l);
            sum_l += wl;
            sum_l2 += wl * static_cast<float>(l);
            sum_xl += wl * x[i];
        }
        const float det = sum_w * sum_l2 - sum_l * sum_l;
        if (!(det > 0)) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
        if (this_min > 0) {
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float error = 0;
        for (int i = 0; i < n; ++i) {
            const float diff = this_scale * trial[i] + this_min - x[i];
            error += w[i] * (diff * diff);
        }
        if (error < best_error) {
            std::memcpy(L, trial, static_cast<size_t>(n));
            best_error = error;
            scale = this_scale;
            min = this_min;
        }
    }
    *neg_min = -min;
    return scale;
}

// Scales, mins and levels of one Q4_K/Q5_K super-block [256]: per-32 search weighted by
// rms + |x|, 6-bit scales and mins relative to the largest of each (d, dmin), then x requantized
// against the stored (rounded) scales so the levels fit what dequantization will see.
void quantize_kx_block(const float* x, int nmax, float rmin, int nstep, uint16_t* d, uint16_t* dmin,
                       uint8_t* scales, uint8_t* L) {
    constexpr int n_sub = kQK_K / 32;
    float sub_scale[n_sub];
    float sub_min[n_sub];
    float w[32];
    float max_scale = 0;  // scales and (negated) mins are >= 0 since the min is deducted
    float max_min = 0;
    for (int j = 0; j < n_sub; ++j) {
        const float* xs = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
        const float av_x = std::sqrt(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) w[l] = av_x + std::fabs(xs[l]);
        sub_scale[j] =
            search_scale_min(32, nmax, xs, w, L + 32 * j, &sub_min[j], rmin, 0.1f, nstep);
        if (sub_scale[j] > max_scale) max_scale = sub_scale[j];
        if (sub_min[j] > max_min) max_min = sub_min[j];
    }
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    uint8_t ls[n_sub];
    uint8_t lm[n_sub];
    for (int j = 0; j < n_sub; ++j) {
        // Through uint8_t first, as ggml: a negative level wraps and then clamps to 63.
        ls[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * sub_scale[j])));
        lm[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * sub_min[j])));
    }
    // Bytes 0-3: scale j | high 2 bits of scale j+4; 4-7: min j | high 2 bits of min j+4;
    // 8-11: low 4 bits of scale j+4 | low 4 bits of min j+4 << 4.
    for (int j = 0; j < 4; ++j) {
        scales[j] = static_cast<uint8_t>(ls[j] | (ls[j + 4] >> 4) << 6);
        scales[j + 4] = static_cast<uint8_t>(lm[j] | (lm[j + 4] >> 4) << 6);
        scales[j + 8] = static_cast<uint8_t>((ls[j + 4] & 0xF) | (lm[j + 4] & 0xF) << 4);
    }
    *d = fp32_to_fp16(max_scale / 63.0f);
    *dmin = fp32_to_fp16(max_min / 63.0f);

    for (int j = 0; j < n_sub; ++j) {
        uint8_t sc, m;
        kquant_scale_min(j, scales, &sc, &m);
        const float dj = fp16_to_fp32(*d) * sc;
        if (dj == 0.0f) continue;  // keep the search's levels
        const float mj = fp16_to_fp32(*dmin) * m;
        for (int l = 0; l < 32; ++l) {
            const int q = nearest_int((x[32 * j + l] + mj) / dj);
            L[32 * j + l] = static_cast<uint8_t>(clamp_int(q, 0, nmax));
        }
    }
}

// Symmetric scale for one Q6_K sub-block, x ~ scale * (L - nmax) with L - nmax in
// [-nmax, nmax - 1] (ggml's make_qx_quants, weights x^2): absmax grid, then 18 grids perturbed by
// 0.1 * is levels, keeping the one whose least-squares scale explains most weighted energy.
float search_scale_sym(int n, int nmax, const float* x, int8_t* L) {
    float max = 0;
    float amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = std::fabs(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < kGroupMaxEps) {
        std::memset(L, 0, static_cast<size_t>(n));
        return 0.0f;
    }
    float iscale = static_cast<float>(-nmax) / max;
    float sum_lx = 0;
    float sum_l2 = 0;
    for (int i = 0; i < n; ++i) {
        const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = static_cast<int8_t>(l + nmax);
        const float w = x[i] * x[i];
        sum_lx += w * x[i] * static_cast<float>(l);
        sum_l2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    float scale = sum_l2 != 0 ? sum_lx / sum_l2 : 0.0f;
    float best = scale * sum_lx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
        sum_lx = 0;
        sum_l2 = 0;
        for (int i = 0; i < n; ++i) {
            const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
            const float w = x[i] * x[i];
            sum_lx += w * x[i] * static_cast<float>(l);
            sum_l2 += w * static_cast<float>(l) * static_cast<float>(l);
        }
        if (sum_l2 > 0 && sum_lx * sum_lx > best * sum_l2) {
            for (int i = 0; i < n; ++i) {
                const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
                L[i] = static_cast<int8_t>(l + nmax);
            }
            scale = sum_lx / sum_l2;
            best = scale * sum_lx;
        }
    }
    return scale;
}

}  // namespace

void quantize_q4_K(const float* x, block_q4_K* y, int64_t nb) {
    uint8_t L[kQK_K];
    for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
        quantize_kx_block(x, 15, -1.0f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
        // Per 64 elements: 32 bytes, element l in the low nibble, element l + 32 in the high.
        for (int c = 0; c < kQK_K / 64; ++c) {
            const uint8_t* Lc = L + 64 * c;
            for (int l = 0; l < 32; ++l) {
                y[i].qs[32 * c + l] = static_cast<uint8_t>(Lc[l] | Lc[l + 32] << 4);
            }
        }
    }
}

void quantize_q5_K(const float* x, block_q5_K* y, int64_t nb) {
    uint8_t L[kQK_K];
    for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
        quantize_kx_block(x, 31, -0.5f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        std::memset(y[i].qh, 0, sizeof(y[i].qh));
        for (int c = 0; c < kQK_K / 64; ++c) {
            const uint8_t* Lc = L + 64 * c;
            for (int l = 0; l < 32; ++l) {
                y[i].qs[32 * c + l] = static_cast<uint8_t>((Lc[l] & 0xF) | (Lc[l + 32] & 0xF) << 4);
                y[i].qh[l] |= static_cast<uint8_t>((Lc[l] >> 4) << (2 * c));
                y[i].qh[l] |= static_cast<uint8_t>((Lc[l + 32] >> 4) << (2 * c + 1));
            }
        }
    }
}

void quantize_q6_K(const float* x, block_q6_K* y, int64_t nb) {
    constexpr int n_sub = kQK_K / 16;
    int8_t L[kQK_K];  // levels + 32, in [0, 63]
    float scales[n_sub];
    for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
        float max_scale = 0;
        float max_abs_scale = 0;
        for (int j = 0; j < n_sub; ++j) {
            scales[j] = search_scale_sym(16, 32, x + 16 * j, L + 16 * j);
            if (std::fabs(scales[j]) > max_abs_scale) {
                max_abs_scale = std::fabs(scales[j]);
                max_scale = scales[j];
            }
        }
        if (max_abs_scale < kGroupMaxEps) {
            std::memset(&y[i], 0, sizeof(block_q6_K));
            continue;
        }
        // -128 maps the largest scale to the int8 extreme; its sign moves into d.
        const float iscale = -128.0f / max_scale;
        y[i].d = fp32_to_fp16(1 / iscale);
        for (int j = 0; j < n_sub; ++j) {
            y[i].scales[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[j])));
        }
        for (int j = 0; j < n_sub; ++j) {
            const float dj = fp16_to_fp32(y[i].d) * y[i].scales[j];
            if (dj == 0.0f) continue;  // keep the search's levels
            for (int l = 0; l < 16; ++l) {
                const int q = clamp_int(nearest_int(x[16 * j + l] / dj), -32, 31);
                L[16 * j + l] = static_cast<int8_t>(q + 32);
            }
        }
        // Per 128 elements: ql[64] holds low nibbles (elements l, l + 32 low; l + 64, l + 96 high),
        // qh[32] the 2 high bits of elements l, l + 32, l + 64, l + 96 at bits 0, 2, 4, 6.
        for (int c = 0; c < kQK_K / 128; ++c) {
            const int8_t* Lc = L + 128 * c;
            uint8_t* ql = y[i].ql + 64 * c;
            uint8_t* qh = y[i].qh + 32 * c;
            for (int l = 0; l < 32; ++l) {
                const int q0 = Lc[l], q1 = Lc[l + 32], q2 = Lc[l + 64], q3 = Lc[l + 96];
                ql[l] = static_cast<uint8_t>((q0 & 0xF) | (q2 & 0xF) << 4);
                ql[l + 32] = static_cast<uint8_t>((q1 & 0xF) | (q3 & 0xF) << 4);
                qh[l] = static_cast<uint8_t>((q0 >> 4) | (q1 >> 4) << 2 | (q2 >> 4) << 4 |
                                             (q3 >> 4) << 6);
            }
        }
    }
}

void quantize_q8_K(const float* x, block_q8_K* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
        float max = 0;
        float amax = 0;
        for (int j = 0; j < kQK_K; ++j) {
            if (std::fabs(x[j]) > amax) {
                amax = std::fabs(x[j]);
                max = x[j];
            }
        }
        if (amax == 0) {
            std::memset(&y[i], 0,
                        sizeof(block_q8_K));  // ggml leaves bsums unset here; zero is their sum
            continue;
        }
        const float iscale = -127.0f / max;  // 127, not 128: q stays in [-127, 127] (ggml's choice)
        for (int j = 0; j < kQK_K; ++j) {
            y[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
        }
        for (int j = 0; j < kQK_K / 16; ++j) {
            int sum = 0;
            for (int l = 0; l < 16; ++l) sum += y[i].qs[16 * j + l];
            y[i].bsums[j] = static_cast<int16_t>(sum);
        }
        y[i].d = 1 / iscale;
    }
}

void dequantize_q4_K(const block_q4_K* x, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        const float dmin = fp16_to_fp32(x[i].dmin);
        for (int c = 0; c < kQK_K / 64; ++c, y += 64) {
            uint8_t sc0, m0, sc1, m1;
            kquant_scale_min(2 * c, x[i].scales, &sc0, &m0);
            kquant_scale_min(2 * c + 1, x[i].scales, &sc1, &m1);
            const float d0 = d * sc0, dm0 = dmin * m0;
            const float d1 = d * sc1, dm1 = dmin * m1;
            const uint8_t* q = x[i].qs + 32 * c;
            for (int l = 0; l < 32; ++l) y[l] = d0 * static_cast<float>(q[l] & 0xF) - dm0;
            for (int l = 0; l < 32; ++l) y[l + 32] = d1 * static_cast<float>(q[l] >> 4) - dm1;
        }
    }
}

void dequantize_q5_K(const block_q5_K* x, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        const float dmin = fp16_to_fp32(x[i].dmin);
        const uint8_t* qh = x[i].qh;
        for (int c = 0; c < kQK_K / 64; ++c, y += 64) {
            uint8_t sc0, m0, sc1, m1;
            kquant_scale_min(2 * c, x[i].scales, &sc0, &m0);
            kquant_scale_min(2 * c + 1, x[i].scales, &sc1, &m1);
            const float d0 = d * sc0, dm0 = dmin * m0;
            const float d1 = d * sc1, dm1 = dmin * m1;
            const uint8_t* q = x[i].qs + 32 * c;
            for (int l = 0; l < 32; ++l) {
                const int q0 = (q[l] & 0xF) | ((qh[l] >> (2 * c)) & 1) << 4;
                y[l] = d0 * static_cast<float>(q0) - dm0;
            }
            for (int l = 0; l < 32; ++l) {
                const int q1 = (q[l] >> 4) | ((qh[l] >> (2 * c + 1)) & 1) << 4;
                y[l + 32] = d1 * static_cast<float>(q1) - dm1;
            }
        }
    }
}

void dequantize_q6_K(const block_q6_K* x, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        float ds[kQK_K / 16];  // per-16 scale
        for (int j = 0; j < kQK_K / 16; ++j) ds[j] = d * static_cast<float>(x[i].scales[j]);
        for (int c = 0; c < kQK_K / 128; ++c, y += 128) {
            const uint8_t* ql = x[i].ql + 64 * c;
            const uint8_t* qh = x[i].qh + 32 * c;
            const float* dc = ds + 8 * c;
            for (int l = 0; l < 32; ++l) {
                const int q0 = ((ql[l] & 0xF) | (qh[l] & 3) << 4) - 32;
                const int q1 = ((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32;
                const int q2 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                const int q3 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                const int s = l / 16;
                y[l] = dc[s] * static_cast<float>(q0);
                y[l + 32] = dc[2 + s] * static_cast<float>(q1);
                y[l + 64] = dc[4 + s] * static_cast<float>(q2);
                y[l + 96] = dc[6 + s] * static_cast<float>(q3);
            }
        }
    }
}

void dequantize_q8_K(const block_q8_K* x, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += kQK_K) {
        for (int j = 0; j < kQK_K; ++j) y[j] = x[i].d * static_cast<float>(x[i].qs[j]);
    }
}

}  // namespace sift
