// Row-wise access for the memory-bound CUDA ops (cuda_elementwise.cu, cuda_fused_norm.cu):
// tensors as rows over dims 1..3 (ne[0] contiguous), argument checks, float4 legality and a
// block-wide sum.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/cuda_context.h"
#include "core/check.h"
#include "tensor/tensor.h"

namespace sift::cuda {
namespace {

// Rows of a tensor over dims 1..3 (ne[0] contiguous); row i -> byte offset.
struct RowLayout {
    int64_t ne1 = 1, ne2 = 1;
    int64_t nb1 = 0, nb2 = 0, nb3 = 0;
};

inline RowLayout row_layout(const Tensor& t) {
    return {t.ne[1], t.ne[2], t.nb[1], t.nb[2], t.nb[3]};
}

__device__ __forceinline__ int64_t row_offset(const RowLayout& l, int64_t i) {
    const int64_t i1 = i % l.ne1, i2 = i / l.ne1 % l.ne2, i3 = i / (l.ne1 * l.ne2);
    return i1 * l.nb1 + i2 * l.nb2 + i3 * l.nb3;
}

template <typename T>
__device__ __forceinline__ T* at(void* base, int64_t offset) {
    return reinterpret_cast<T*>(static_cast<char*>(base) + offset);
}
template <typename T>
__device__ __forceinline__ const T* at(const void* base, int64_t offset) {
    return reinterpret_cast<const T*>(static_cast<const char*>(base) + offset);
}

inline void check_f32_rows(const Tensor& t, const char* op, const char* name) {
    SIFT_CHECK(t.type == DType::F32 && t.nb[0] == 4, "{}: {} must be F32 with contiguous rows", op,
               name);
}

inline void check_same_shape(const Tensor& a, const Tensor& b, const char* op) {
    SIFT_CHECK(a.ne == b.ne, "{}: shapes [{}, {}, {}, {}] and [{}, {}, {}, {}] differ", op, a.ne[0],
               a.ne[1], a.ne[2], a.ne[3], b.ne[0], b.ne[1], b.ne[2], b.ne[3]);
}

// float4 access is legal when the row length and every row start are 16-byte aligned.
inline bool rows_aligned16(const Tensor& t) {
    return reinterpret_cast<uintptr_t>(t.data) % 16 == 0 && t.ne[0] % 4 == 0 && t.nb[1] % 16 == 0 &&
           t.nb[2] % 16 == 0 && t.nb[3] % 16 == 0;
}

// Stores of F32 results into an F32 or a BF16 row (round to nearest even, as the GEMM input
// conversion of cuda_matmul.cu): ops that feed a GEMM write its input type directly.
__device__ __forceinline__ void store1(float* p, float v) {
    *p = v;
}
__device__ __forceinline__ void store1(__nv_bfloat16* p, float v) {
    *p = __float2bfloat16_rn(v);
}
__device__ __forceinline__ void store4(float* p, float4 v) {
    *reinterpret_cast<float4*>(p) = v;
}
__device__ __forceinline__ void store4(__nv_bfloat16* p, float4 v) {
    const __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
    uint2 u;
    u.x = *reinterpret_cast<const uint32_t*>(&lo);
    u.y = *reinterpret_cast<const uint32_t*>(&hi);
    *reinterpret_cast<uint2*>(p) = u;
}

// The normalizing pass of the RMS norms: dst[j] = (src[j] * inv) * w[j] (w may be null) for the
// j this thread owns: first, first + step, ... (kVec: 4 values each, from 4 * first by 4 * step).
template <bool kVec, typename OutT>
__device__ __forceinline__ void scale_row(const float* src, float inv, const float* w, OutT* dst,
                                          int64_t n, int first, int step) {
    if constexpr (kVec) {
        for (int64_t j = first * 4; j < n; j += step * 4) {
            float4 v = *reinterpret_cast<const float4*>(src + j);
            v.x *= inv, v.y *= inv, v.z *= inv, v.w *= inv;
            if (w != nullptr) {
                const float4 g = *reinterpret_cast<const float4*>(w + j);
                v.x *= g.x, v.y *= g.y, v.z *= g.z, v.w *= g.w;
            }
            store4(dst + j, v);
        }
    } else {
        for (int64_t j = first; j < n; j += step) {
            const float v = src[j] * inv;
            store1(dst + j, w != nullptr ? v * w[j] : v);
        }
    }
}

// RoPE's cos/sin of one token's angles into cs[2 i], cs[2 i + 1], i < n_rot / 2, by the block's
// threads, in double as the CPU computes them (at positions of 10^5 an F32 angle is off by ~0.01
// rad). The caller synchronizes before reading cs.
__device__ __forceinline__ void rope_angles(float* cs, double position, int n_rot, float freq_base,
                                            float freq_scale, const float* factors) {
    for (int i = threadIdx.x; i < n_rot / 2; i += blockDim.x) {
        const double inv_freq = freq_scale * pow(static_cast<double>(freq_base), -2.0 * i / n_rot) /
                                (factors != nullptr ? static_cast<double>(factors[i]) : 1.0);
        double s, c;
        sincos(position * inv_freq, &s, &c);
        cs[2 * i] = static_cast<float>(c);
        cs[2 * i + 1] = static_cast<float>(s);
    }
}

// An output row of F32 or BF16 (the types the row ops may write).
inline void check_out_rows(const Tensor& t, const char* op) {
    SIFT_CHECK((t.type == DType::F32 && t.nb[0] == 4) || (t.type == DType::BF16 && t.nb[0] == 2),
               "{}: out must be F32 or BF16 with contiguous rows", op);
}

// Whether a row of t may be written 4 values at a time (16 bytes of F32 or 8 of BF16).
inline bool out_rows_aligned(const Tensor& t) {
    const int64_t a = t.type == DType::F32 ? 16 : 8;
    return reinterpret_cast<uintptr_t>(t.data) % a == 0 && t.ne[0] % 4 == 0 && t.nb[1] % a == 0 &&
           t.nb[2] % a == 0 && t.nb[3] % a == 0;
}

// The gated FFN activations, as the CPU computes them: silu(g) * u, or gelu (tanh form) * u.
__device__ __forceinline__ float gated_act(float g, float u, bool gelu) {
    if (!gelu) return g / (1.0f + expf(-g)) * u;
    constexpr float kSqrt2OverPi = 0.7978845608028654f;
    return 0.5f * g * (1.0f + tanhf(kSqrt2OverPi * (g + 0.044715f * g * g * g))) * u;
}

// Sum over the block; every thread gets the result. `shared` holds 32 floats.
__device__ inline float block_sum(float v, float* shared) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int n_warps = blockDim.x / 32;
    if (n_warps == 1) return v;
    __syncthreads();  // `shared` may still be read from a previous call
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < n_warps ? shared[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

}  // namespace
}  // namespace sift::cuda
