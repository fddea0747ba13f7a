// GGML quant block layouts, byte for byte as in GGUF files (ggml-common.h), and typed row
// functions over them. Half-precision fields are raw IEEE fp16 bits (fp16_to_fp32 in quant.h).
#pragma once

#include <cstdint>

namespace sift {

inline constexpr int kQK4_0 = 32;
inline constexpr int kQK4_1 = 32;
inline constexpr int kQK5_0 = 32;
inline constexpr int kQK5_1 = 32;
inline constexpr int kQK8_0 = 32;
inline constexpr int kQK_K = 256;       // super-block of the K-quants
inline constexpr int kKScaleSize = 12;  // 8 six-bit scales + 8 six-bit mins of Q4_K/Q5_K

// x = d * (q - 8), q in [0, 15]. qs[j] holds element j (low nibble) and j + 16 (high nibble).
struct block_q4_0 {
    uint16_t d;
    uint8_t qs[kQK4_0 / 2];
};
static_assert(sizeof(block_q4_0) == 2 + kQK4_0 / 2);

// x = d * q + m, q in [0, 15]; nibbles as in q4_0.
struct block_q4_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qs[kQK4_1 / 2];
};
static_assert(sizeof(block_q4_1) == 2 * 2 + kQK4_1 / 2);

// x = d * (q - 16), q in [0, 31]: low 4 bits as in q4_0, bit 4 of element j is bit j of qh
// (qh is a little-endian uint32 stored as bytes so the block stays 2-byte aligned).
struct block_q5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[kQK5_0 / 2];
};
static_assert(sizeof(block_q5_0) == 2 + 4 + kQK5_0 / 2);

// x = d * q + m, q in [0, 31]; bits as in q5_0.
struct block_q5_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[kQK5_1 / 2];
};
static_assert(sizeof(block_q5_1) == 2 * 2 + 4 + kQK5_1 / 2);

// x = d * q, q in [-127, 127].
struct block_q8_0 {
    uint16_t d;
    int8_t qs[kQK8_0];
};
static_assert(sizeof(block_q8_0) == 2 + kQK8_0);

// 8 sub-blocks of 32: x = d * sc[j] * q - dmin * m[j], q in [0, 15], sc/m 6-bit packed in
// scales (see quant_kquants.cpp). qs: per 64 elements, 32 bytes, low nibbles the first 32.
struct block_q4_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[kKScaleSize];
    uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(block_q4_K) == 2 * 2 + kKScaleSize + kQK_K / 2);

// As q4_K with q in [0, 31]: bit 4 of element 64*i + 32*h + l is bit 2*i + h of qh[l].
struct block_q5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[kKScaleSize];
    uint8_t qh[kQK_K / 8];
    uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(block_q5_K) == 2 * 2 + kKScaleSize + kQK_K / 8 + kQK_K / 2);

// 16 sub-blocks of 16: x = d * scales[j] * (q - 32), q in [0, 63] (low 4 bits in ql, high 2 in qh).
struct block_q6_K {
    uint8_t ql[kQK_K / 2];
    uint8_t qh[kQK_K / 4];
    int8_t scales[kQK_K / 16];
    uint16_t d;
};
static_assert(sizeof(block_q6_K) == kQK_K / 2 + kQK_K / 4 + kQK_K / 16 + 2);

// Activations for K-quant dot products: x = d * q; bsums[j] = sum of qs[16j .. 16j + 15].
struct block_q8_K {
    float d;
    int8_t qs[kQK_K];
    int16_t bsums[kQK_K / 16];
};
static_assert(sizeof(block_q8_K) == 4 + kQK_K + kQK_K / 16 * 2);

// Typed rows: nb blocks of x [nb * block size] to/from y [nb]. Reference (ggml *_ref) algorithms.
void quantize_q4_0(const float* x, block_q4_0* y, int64_t nb);
void quantize_q4_1(const float* x, block_q4_1* y, int64_t nb);
void quantize_q5_0(const float* x, block_q5_0* y, int64_t nb);
void quantize_q5_1(const float* x, block_q5_1* y, int64_t nb);
void quantize_q8_0(const float* x, block_q8_0* y, int64_t nb);
void quantize_q4_K(const float* x, block_q4_K* y, int64_t nb);
void quantize_q5_K(const float* x, block_q5_K* y, int64_t nb);
void quantize_q6_K(const float* x, block_q6_K* y, int64_t nb);
void quantize_q8_K(const float* x, block_q8_K* y, int64_t nb);

void dequantize_q4_0(const block_q4_0* x, float* y, int64_t nb);
void dequantize_q4_1(const block_q4_1* x, float* y, int64_t nb);
void dequantize_q5_0(const block_q5_0* x, float* y, int64_t nb);
void dequantize_q5_1(const block_q5_1* x, float* y, int64_t nb);
void dequantize_q8_0(const block_q8_0* x, float* y, int64_t nb);
void dequantize_q4_K(const block_q4_K* x, float* y, int64_t nb);
void dequantize_q5_K(const block_q5_K* x, float* y, int64_t nb);
void dequantize_q6_K(const block_q6_K* x, float* y, int64_t nb);
void dequantize_q8_K(const block_q8_K* x, float* y, int64_t nb);

// Q4_K/Q5_K scale j and min j (6 bits each) from the 12 packed bytes, j in [0, 8).
inline void kquant_scale_min(int j, const uint8_t* scales, uint8_t* sc, uint8_t* m) {
    if (j < 4) {
        *sc = scales[j] & 63;
        *m = scales[j + 4] & 63;
    } else {
        *sc = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
        *m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

}  // namespace sift
