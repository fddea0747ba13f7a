// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: one scale (and min) per block of 32. Quantization is bit-exact
// to gguf-py (numpy) and to ggml's quantize_row_*_ref; see the note on all-zero blocks below.
#include <cmath>
#include <cstring>

#include "tensor/quant.h"
#include "tensor/quant_blocks.h"

namespace sift {
namespace {

// The element of largest magnitude, the first on ties (numpy argmax). For an all-zero block
// this is x[0], possibly -0.0, where ggml takes +0.0: gguf-py is followed, so d's sign can differ.
float max_magnitude(const float* x, int n) {
    float amax = std::fabs(x[0]);
    float max = x[0];
    for (int j = 1; j < n; ++j) {
        if (std::fabs(x[j]) > amax) {
            amax = std::fabs(x[j]);
            max = x[j];
        }
    }
    return max;
}

void min_max(const float* x, int n, float* min, float* max) {
    *min = x[0];
    *max = x[0];
    for (int j = 1; j < n; ++j) {
        if (x[j] < *min) *min = x[j];
        if (x[j] > *max) *max = x[j];
    }
}

// trunc(v) clamped to [0, hi]; fmax maps NaN to 0 so odd inputs never reach an undefined cast.
int trunc_clamp(float v, float hi) {
    return static_cast<int>(std::fmin(std::fmax(std::trunc(v), 0.0f), hi));
}

uint32_t load_qh(const uint8_t* qh) {
    return static_cast<uint32_t>(qh[0]) | static_cast<uint32_t>(qh[1]) << 8 |
           static_cast<uint32_t>(qh[2]) << 16 | static_cast<uint32_t>(qh[3]) << 24;
}

void store_qh(uint8_t* qh, uint32_t v) {
    for (int k = 0; k < 4; ++k) qh[k] = static_cast<uint8_t>(v >> (8 * k));
}

}  // namespace

void quantize_q4_0(const float* x, block_q4_0* y, int64_t nb) {
    constexpr int half = kQK4_0 / 2;
    for (int64_t i = 0; i < nb; ++i, x += kQK4_0) {
        const float d = max_magnitude(x, kQK4_0) / -8.0f;  // the extreme value maps to q = 0
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < half; ++j) {
            const int q0 = trunc_clamp(x[j] * id + 8.5f, 15.0f);
            const int q1 = trunc_clamp(x[j + half] * id + 8.5f, 15.0f);
            y[i].qs[j] = static_cast<uint8_t>(q0 | q1 << 4);
        }
    }
}

void quantize_q4_1(const float* x, block_q4_1* y, int64_t nb) {
    constexpr int half = kQK4_1 / 2;
    for (int64_t i = 0; i < nb; ++i, x += kQK4_1) {
        float min, max;
        min_max(x, kQK4_1, &min, &max);
        const float d = (max - min) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        y[i].m = fp32_to_fp16(min);
        for (int j = 0; j < half; ++j) {
            const int q0 = trunc_clamp((x[j] - min) * id + 0.5f, 15.0f);
            const int q1 = trunc_clamp((x[j + half] - min) * id + 0.5f, 15.0f);
            y[i].qs[j] = static_cast<uint8_t>(q0 | q1 << 4);
        }
    }
}

void quantize_q5_0(const float* x, block_q5_0* y, int64_t nb) {
    constexpr int half = kQK5_0 / 2;
    for (int64_t i = 0; i < nb; ++i, x += kQK5_0) {
        const float d = max_magnitude(x, kQK5_0) / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < half; ++j) {
            const int q0 = trunc_clamp(x[j] * id + 16.5f, 31.0f);
            const int q1 = trunc_clamp(x[j + half] * id + 16.5f, 31.0f);
            y[i].qs[j] = static_cast<uint8_t>((q0 & 0xF) | (q1 & 0xF) << 4);
            qh |= static_cast<uint32_t>(q0 >> 4) << j;
            qh |= static_cast<uint32_t>(q1 >> 4) << (j + half);
        }
        store_qh(y[i].qh, qh);
    }
}

void quantize_q5_1(const float* x, block_q5_1* y, int64_t nb) {
    constexpr int half = kQK5_1 / 2;
    for (int64_t i = 0; i < nb; ++i, x += kQK5_1) {
        float min, max;
        min_max(x, kQK5_1, &min, &max);
        const float d = (max - min) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        y[i].m = fp32_to_fp16(min);
        uint32_t qh = 0;
        for (int j = 0; j < half; ++j) {
            const int q0 = trunc_clamp((x[j] - min) * id + 0.5f, 31.0f);
            const int q1 = trunc_clamp((x[j + half] - min) * id + 0.5f, 31.0f);
            y[i].qs[j] = static_cast<uint8_t>((q0 & 0xF) | (q1 & 0xF) << 4);
            qh |= static_cast<uint32_t>(q0 >> 4) << j;
            qh |= static_cast<uint32_t>(q1 >> 4) << (j + half);
        }
        store_qh(y[i].qh, qh);
    }
}

void quantize_q8_0(const float* x, block_q8_0* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < kQK8_0; ++j) amax = std::fmax(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < kQK8_0; ++j) {
            // Halves round away from zero (roundf; gguf-py's np_roundf is the same function).
            const float q = std::round(x[j] * id);
            y[i].qs[j] = static_cast<int8_t>(std::fmin(std::fmax(q, -128.0f), 127.0f));
        }
    }
}

void dequantize_q4_0(const block_q4_0* x, float* y, int64_t nb) {
    constexpr int half = kQK4_0 / 2;
    for (int64_t i = 0; i < nb; ++i, y += kQK4_0) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < half; ++j) {
            y[j] = d * static_cast<float>((x[i].qs[j] & 0xF) - 8);
            y[j + half] = d * static_cast<float>((x[i].qs[j] >> 4) - 8);
        }
    }
}

void dequantize_q4_1(const block_q4_1* x, float* y, int64_t nb) {
    constexpr int half = kQK4_1 / 2;
    for (int64_t i = 0; i < nb; ++i, y += kQK4_1) {
        const float d = fp16_to_fp32(x[i].d);
        const float m = fp16_to_fp32(x[i].m);
        for (int j = 0; j < half; ++j) {
            y[j] = d * static_cast<float>(x[i].qs[j] & 0xF) + m;
            y[j + half] = d * static_cast<float>(x[i].qs[j] >> 4) + m;
        }
    }
}

void dequantize_q5_0(const block_q5_0* x, float* y, int64_t nb) {
    constexpr int half = kQK5_0 / 2;
    for (int64_t i = 0; i < nb; ++i, y += kQK5_0) {
        const float d = fp16_to_fp32(x[i].d);
        const uint32_t qh = load_qh(x[i].qh);
        for (int j = 0; j < half; ++j) {
            const int q0 = (x[i].qs[j] & 0xF) | static_cast<int>((qh >> j) & 1) << 4;
            const int q1 = (x[i].qs[j] >> 4) | static_cast<int>((qh >> (j + half)) & 1) << 4;
            y[j] = d * static_cast<float>(q0 - 16);
            y[j + half] = d * static_cast<float>(q1 - 16);
        }
    }
}

void dequantize_q5_1(const block_q5_1* x, float* y, int64_t nb) {
    constexpr int half = kQK5_1 / 2;
    for (int64_t i = 0; i < nb; ++i, y += kQK5_1) {
        const float d = fp16_to_fp32(x[i].d);
        const float m = fp16_to_fp32(x[i].m);
        const uint32_t qh = load_qh(x[i].qh);
        for (int j = 0; j < half; ++j) {
            const int q0 = (x[i].qs[j] & 0xF) | static_cast<int>((qh >> j) & 1) << 4;
            const int q1 = (x[i].qs[j] >> 4) | static_cast<int>((qh >> (j + half)) & 1) << 4;
            y[j] = d * static_cast<float>(q0) + m;
            y[j + half] = d * static_cast<float>(q1) + m;
        }
    }
}

void dequantize_q8_0(const block_q8_0* x, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += kQK8_0) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < kQK8_0; ++j) y[j] = d * static_cast<float>(x[i].qs[j]);
    }
}

}  // namespace sift
