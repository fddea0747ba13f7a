// Device dequantization of every computable weight type, bit-identical to the scalar CPU
// dequantizers (tensor/quant_legacy.cpp, quant_kquants.cpp): the same F32 operations in the same
// order, with explicit __fmul_rn/__fadd_rn so nvcc cannot contract d * q - m into one FMA (the
// CPU reference is compiled with -ffp-contract=off).
//
// The one primitive is dequant8<TYPE>(row, g, k, v): elements [8g, 8g + 8) of a row of k
// elements. Every block holds a whole number of such groups (32 or 256 elements), so get_rows,
// the bf16 dequantization for the GEMM path and the matvec kernels all walk rows in groups of 8.
// Float types (block of 1) mask the tail past k with zeros.
//
// Loads: a row starts at the tensor's data plus a multiple of its row stride, and
// quant_row_alignment() (checked by the callers on the host) guarantees each type's loads below are
// aligned: 8-byte loads for Q4_K/Q5_K (144- and 176-byte blocks), 2-byte loads for the others
// (18-, 20-, 22-, 24-, 34- and 210-byte blocks are only 2-byte aligned).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "tensor/dtype.h"

namespace sift::cuda {

// Member i < 3 of a kernel-parameter array without dynamic indexing (which would copy the
// array to local memory): the MatvecSegments (cuda_matmul.cuh) of grid row blockIdx.y.
template <typename T>
__device__ __forceinline__ T pick3(const T (&a)[3], unsigned i) {
    return i == 0 ? a[0] : (i == 1 ? a[1] : a[2]);
}

// The alignment (bytes) a row of `type` must have for the device loads of this file.
inline int64_t quant_row_alignment(DType type) {
    switch (type) {
        case DType::F32:
            return 4;
        case DType::Q4_K:
        case DType::Q5_K:
            return 8;
        default:
            return 2;
    }
}

// As fp16_to_fp32 on the CPU: inf/NaN rebuilt from the bits so NaN payloads survive exactly.
__device__ __forceinline__ float dq_half(uint16_t h) {
    const float f = __half2float(__ushort_as_half(h));
    const uint32_t special = (static_cast<uint32_t>(h & 0x8000) << 16) | 0x7F800000u |
                             (static_cast<uint32_t>(h & 0x3FF) << 13);
    return (h & 0x7C00) == 0x7C00 ? __uint_as_float(special) : f;
}

__device__ __forceinline__ uint16_t dq_u16(const uint8_t* p) {
    return *reinterpret_cast<const uint16_t*>(p);
}

// Four bytes from a 2-byte aligned address.
__device__ __forceinline__ uint32_t dq_u32_a2(const uint8_t* p) {
    const uint16_t* q = reinterpret_cast<const uint16_t*>(p);
    return static_cast<uint32_t>(q[0]) | static_cast<uint32_t>(q[1]) << 16;
}

// Eight bytes from a 2-byte aligned address, as two little-endian words: the aligned words that
// hold them (2, or 3 when p is 2 mod 4; every word read holds a byte of the field, so nothing
// past the buffer is touched) joined with funnel shifts. Fewer load instructions than four
// 2-byte loads, which is what bounds the decode kernels.
__device__ __forceinline__ uint2 dq_u64_a2(const uint8_t* p) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    const uint32_t* w = reinterpret_cast<const uint32_t*>(a & ~uintptr_t{3});
    const bool odd = (a & 2) != 0;
    const uint32_t w0 = w[0], w1 = w[1];
    const uint32_t w2 = odd ? w[2] : 0u;
    const uint32_t sh = odd ? 16u : 0u;
    return make_uint2(__funnelshift_r(w0, w1, sh), __funnelshift_r(w1, w2, sh));
}

// float(q) - bias for 0 <= q < 2^22, exactly: 2^23 + q is a float whose mantissa is q, and the
// subtraction of a nearby integer is exact. Cheaper than I2F (a quarter-rate unit on sm_80/90),
// which the matvec kernels would otherwise be bound by.
template <int BIAS>
__device__ __forceinline__ float dq_u2f(uint32_t q) {
    return __fsub_rn(__uint_as_float(0x4B000000u | q), 8388608.0f + BIAS);
}

// Q4_0: 18-byte blocks of 32; group g < 2 are low nibbles of qs[8g..], g >= 2 the high ones.
__device__ __forceinline__ void dequant8_q4_0(const uint8_t* b, int g, float* v) {
    const float d = dq_half(dq_u16(b));
    const uint2 q = dq_u64_a2(b + 2 + 8 * (g & 1));
    const int sh = g >> 1 ? 4 : 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const uint32_t byte = ((i < 4 ? q.x : q.y) >> (8 * (i & 3))) & 0xFF;
        v[i] = __fmul_rn(d, dq_u2f<8>((byte >> sh) & 0xF));
    }
}

__device__ __forceinline__ void dequant8_q4_1(const uint8_t* b, int g, float* v) {
    const float d = dq_half(dq_u16(b));
    const float m = dq_half(dq_u16(b + 2));
    const uint2 q = dq_u64_a2(b + 4 + 8 * (g & 1));
    const int sh = g >> 1 ? 4 : 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const uint32_t byte = ((i < 4 ? q.x : q.y) >> (8 * (i & 3))) & 0xFF;
        v[i] = __fadd_rn(__fmul_rn(d, dq_u2f<0>((byte >> sh) & 0xF)), m);
    }
}

// Q5_0/Q5_1: bit 4 of element e is bit e of the little-endian qh word.
__device__ __forceinline__ void dequant8_q5_0(const uint8_t* b, int g, float* v) {
    const float d = dq_half(dq_u16(b));
    const uint32_t qh = dq_u32_a2(b + 2) >> (8 * g);
    const uint2 q = dq_u64_a2(b + 6 + 8 * (g & 1));
    const int sh = g >> 1 ? 4 : 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const uint32_t byte = ((i < 4 ? q.x : q.y) >> (8 * (i & 3))) & 0xFF;
        const uint32_t qv = ((byte >> sh) & 0xF) | ((qh >> i) & 1) << 4;
        v[i] = __fmul_rn(d, dq_u2f<16>(qv));
    }
}

__device__ __forceinline__ void dequant8_q5_1(const uint8_t* b, int g, float* v) {
    const float d = dq_half(dq_u16(b));
    const float m = dq_half(dq_u16(b + 2));
    const uint32_t qh = dq_u32_a2(b + 4) >> (8 * g);
    const uint2 q = dq_u64_a2(b + 8 + 8 * (g & 1));
    const int sh = g >> 1 ? 4 : 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const uint32_t byte = ((i < 4 ? q.x : q.y) >> (8 * (i & 3))) & 0xFF;
        const uint32_t qv = ((byte >> sh) & 0xF) | ((qh >> i) & 1) << 4;
        v[i] = __fadd_rn(__fmul_rn(d, dq_u2f<0>(qv)), m);
    }
}

__device__ __forceinline__ void dequant8_q8_0(const uint8_t* b, int g, float* v) {
    const float d = dq_half(dq_u16(b));
    const uint2 q = dq_u64_a2(b + 2 + 8 * g);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const uint32_t byte = ((i < 4 ? q.x : q.y) >> (8 * (i & 3))) & 0xFF;
        v[i] = __fmul_rn(d, dq_u2f<128>(byte ^ 0x80));  // int8 q + 128 = byte ^ 0x80
    }
}

// Q4_K/Q5_K scale and min j (6 bits each) of the 12 packed bytes (kquant_scale_min on the CPU).
__device__ __forceinline__ void dq_kscale(const uint8_t* s, int j, int* sc, int* m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// Q4_K: 144-byte blocks of 256. Group g: 64-chunk c = g / 8; within it groups 0-3 are the low
// nibbles of qs[32c + 8(g%4) ..] (sub-block 2c), groups 4-7 the high nibbles (sub-block 2c + 1).
__device__ __forceinline__ void dequant8_q4_K(const uint8_t* b, int g, float* v) {
    const uint32_t dd = *reinterpret_cast<const uint32_t*>(b);
    const float d = dq_half(static_cast<uint16_t>(dd & 0xFFFF));
    const float dmin = dq_half(static_cast<uint16_t>(dd >> 16));
    const int c = g >> 3, hi = (g >> 2) & 1;
    int sc, m;
    dq_kscale(b + 4, 2 * c + hi, &sc, &m);
    const float d1 = __fmul_rn(d, static_cast<float>(sc));
    const float m1 = __fmul_rn(dmin, static_cast<float>(m));
    const uint2 q = *reinterpret_cast<const uint2*>(b + 16 + 32 * c + 8 * (g & 3));
    const int sh = hi ? 4 : 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const uint32_t byte = ((i < 4 ? q.x : q.y) >> (8 * (i & 3))) & 0xFF;
        v[i] = __fsub_rn(__fmul_rn(d1, dq_u2f<0>((byte >> sh) & 0xF)), m1);
    }
}

// Q5_K: 176-byte blocks; as Q4_K, bit 4 of element 64c + 32h + l is bit 2c + h of qh[l].
__device__ __forceinline__ void dequant8_q5_K(const uint8_t* b, int g, float* v) {
    const uint32_t dd = *reinterpret_cast<const uint32_t*>(b);
    const float d = dq_half(static_cast<uint16_t>(dd & 0xFFFF));
    const float dmin = dq_half(static_cast<uint16_t>(dd >> 16));
    const int c = g >> 3, hi = (g >> 2) & 1, l0 = 8 * (g & 3);
    int sc, m;
    dq_kscale(b + 4, 2 * c + hi, &sc, &m);
    const float d1 = __fmul_rn(d, static_cast<float>(sc));
    const float m1 = __fmul_rn(dmin, static_cast<float>(m));
    const uint2 h = *reinterpret_cast<const uint2*>(b + 16 + l0);
    const uint2 q = *reinterpret_cast<const uint2*>(b + 48 + 32 * c + l0);
    const int sh = hi ? 4 : 0, hb = 2 * c + hi;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const uint32_t byte = ((i < 4 ? q.x : q.y) >> (8 * (i & 3))) & 0xFF;
        const uint32_t hbyte = ((i < 4 ? h.x : h.y) >> (8 * (i & 3))) & 0xFF;
        const uint32_t qv = ((byte >> sh) & 0xF) | ((hbyte >> hb) & 1) << 4;
        v[i] = __fsub_rn(__fmul_rn(d1, dq_u2f<0>(qv)), m1);
    }
}

// Q6_K: 210-byte blocks (ql[128], qh[64], scales[16], d). Group g: 128-chunk c = g / 16, quarter
// qq = (g % 16) / 4 (which nibble of ql[64c + l (+32)] and which 2 bits of qh[32c + l]),
// l = 8 * (g % 4) + i, scale 8c + 2qq + l / 16.
__device__ __forceinline__ void dequant8_q6_K(const uint8_t* b, int g, float* v) {
    const float d = dq_half(dq_u16(b + 208));
    const int c = g >> 4, qq = (g >> 2) & 3, l0 = 8 * (g & 3);
    const int8_t s = static_cast<int8_t>(b[192 + 8 * c + 2 * qq + (l0 >> 4)]);
    const float ds = __fmul_rn(d, static_cast<float>(s));
    const uint2 ql = dq_u64_a2(b + 64 * c + (qq & 1) * 32 + l0);
    const uint2 qh = dq_u64_a2(b + 128 + 32 * c + l0);
    const int lsh = (qq >> 1) * 4, hsh = 2 * qq;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const uint32_t lb = ((i < 4 ? ql.x : ql.y) >> (8 * (i & 3))) & 0xFF;
        const uint32_t hbyte = ((i < 4 ? qh.x : qh.y) >> (8 * (i & 3))) & 0xFF;
        const uint32_t qv = ((lb >> lsh) & 0xF) | ((hbyte >> hsh) & 3) << 4;
        v[i] = __fmul_rn(ds, dq_u2f<32>(qv));
    }
}

// Quant types: block elements and bytes.
template <DType TYPE>
struct QuantTraits;
#define SIFT_QUANT_TRAITS(T, ELEMS, BYTES, FN)                                               \
    template <>                                                                              \
    struct QuantTraits<DType::T> {                                                           \
        static constexpr int kElems = ELEMS;                                                 \
        static constexpr int kBytes = BYTES;                                                 \
        static __device__ __forceinline__ void dequant8(const uint8_t* b, int g, float* v) { \
            FN(b, g, v);                                                                     \
        }                                                                                    \
    };
SIFT_QUANT_TRAITS(Q4_0, 32, 18, dequant8_q4_0)
SIFT_QUANT_TRAITS(Q4_1, 32, 20, dequant8_q4_1)
SIFT_QUANT_TRAITS(Q5_0, 32, 22, dequant8_q5_0)
SIFT_QUANT_TRAITS(Q5_1, 32, 24, dequant8_q5_1)
SIFT_QUANT_TRAITS(Q8_0, 32, 34, dequant8_q8_0)
SIFT_QUANT_TRAITS(Q4_K, 256, 144, dequant8_q4_K)
SIFT_QUANT_TRAITS(Q5_K, 256, 176, dequant8_q5_K)
SIFT_QUANT_TRAITS(Q6_K, 256, 210, dequant8_q6_K)
#undef SIFT_QUANT_TRAITS

// Elements [8g, 8g + 8) of a row of k elements (zeros past k for the float types). kVec: the
// caller guarantees 8g + 8 <= k and a 16-byte aligned row, so float types load 16 bytes at a time
// without a per-group check (no branch: the loads of several groups can be issued together).
template <DType TYPE, bool kVec = false>
__device__ __forceinline__ void dequant8(const uint8_t* row, int64_t g, int64_t k, float* v) {
    if constexpr (TYPE == DType::F32 || TYPE == DType::F16 || TYPE == DType::BF16) {
        const int64_t e0 = 8 * g;
        constexpr int kSize = TYPE == DType::F32 ? 4 : 2;
        const uint8_t* p = row + e0 * kSize;
        if (kVec || (e0 + 8 <= k && (reinterpret_cast<uintptr_t>(p) & 15) == 0)) {
            if constexpr (TYPE == DType::F32) {
                const float4 a = reinterpret_cast<const float4*>(p)[0];
                const float4 b = reinterpret_cast<const float4*>(p)[1];
                v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w;
                v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
            } else {
                const uint4 a = *reinterpret_cast<const uint4*>(p);
                const uint32_t w[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    if constexpr (TYPE == DType::F16) {
                        v[2 * i] = dq_half(static_cast<uint16_t>(w[i] & 0xFFFF));
                        v[2 * i + 1] = dq_half(static_cast<uint16_t>(w[i] >> 16));
                    } else {
                        v[2 * i] = __uint_as_float(w[i] << 16);
                        v[2 * i + 1] = __uint_as_float(w[i] & 0xFFFF0000u);
                    }
                }
            }
        } else {
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                if (e0 + i < k) {
                    if constexpr (TYPE == DType::F32) {
                        v[i] = reinterpret_cast<const float*>(p)[i];
                    } else if constexpr (TYPE == DType::F16) {
                        v[i] = dq_half(reinterpret_cast<const uint16_t*>(p)[i]);
                    } else {
                        v[i] = __uint_as_float(
                            static_cast<uint32_t>(reinterpret_cast<const uint16_t*>(p)[i]) << 16);
                    }
                } else {
                    v[i] = 0.0f;
                }
            }
        }
    } else {
        using Q = QuantTraits<TYPE>;
        constexpr int kGroups = Q::kElems / 8;
        Q::dequant8(row + g / kGroups * Q::kBytes, static_cast<int>(g % kGroups), v);
    }
}

template <DType TYPE>
using TypeTag = std::integral_constant<DType, TYPE>;

// Calls f(TypeTag<TYPE>{}) for a computable weight type; false for any other type. The one
// place that lists the types the CUDA kernels are instantiated for.
template <typename F>
bool dispatch_weight_type(DType type, F&& f) {
    switch (type) {
        case DType::F32:
            f(TypeTag<DType::F32>{});
            return true;
        case DType::F16:
            f(TypeTag<DType::F16>{});
            return true;
        case DType::BF16:
            f(TypeTag<DType::BF16>{});
            return true;
        case DType::Q4_0:
            f(TypeTag<DType::Q4_0>{});
            return true;
        case DType::Q4_1:
            f(TypeTag<DType::Q4_1>{});
            return true;
        case DType::Q5_0:
            f(TypeTag<DType::Q5_0>{});
            return true;
        case DType::Q5_1:
            f(TypeTag<DType::Q5_1>{});
            return true;
        case DType::Q8_0:
            f(TypeTag<DType::Q8_0>{});
            return true;
        case DType::Q4_K:
            f(TypeTag<DType::Q4_K>{});
            return true;
        case DType::Q5_K:
            f(TypeTag<DType::Q5_K>{});
            return true;
        case DType::Q6_K:
            f(TypeTag<DType::Q6_K>{});
            return true;
        default:
            return false;
    }
}

}  // namespace sift::cuda
