// The importance probe of speculative prefill on the GPU (ops.h attention_probe): the same three
// passes as the CPU reference (cpu_attention_probe.cpp): logits of the few queries against every
// cell into scratch, each (query, head) row's softmax max and sum, then max over heads into the
// running maximum. One pass over K per layer (16-byte loads, queries in shared memory: ~0.1 ms
// per 0.6B layer at 128K on an H200, was 3.1 ms with a key row per thread in local memory);
// scratch is n_q x n_head x cells floats.
#include <cuda_fp16.h>

#include <cmath>
#include <vector>

#include "backend/cuda/cuda_kv_quant.cuh"
#include "backend/cuda/cuda_ops.h"

namespace sift::cuda {
namespace {

struct ProbeArgs {
    const float* q;  // [n_q][n_head][head_dim] with strides
    int64_t q_nb1, q_nb2;
    const uint8_t* k;
    int64_t k_nb1, k_nb2;
    bool k_f16;
    const int32_t* q_pos;
    const int32_t* q_seq;
    const int32_t* cell_pos;
    const int32_t* cell_seq;
    const float* mask;  // [n_q][n_range] or null
    int64_t mask_nb1;
    int64_t cell_begin, n_range;
    int head_dim, n_head, n_kv, n_q;
    float scale, softcap;
    int window;
    const float* inv_freq;  // [n_rot / 2] or null (no unrope)
    int n_rot;
    bool neox;
    float* logits;  // [n_q * n_head][n_range]
};

__device__ bool visible(const ProbeArgs& a, int t, int64_t c) {
    const int32_t cs = a.cell_seq[c], cp = a.cell_pos[c], tp = a.q_pos[t];
    if (cs != a.q_seq[t] || cp > tp) return false;
    if (a.window > 0 && tp - cp >= a.window) return false;
    if (a.mask != nullptr) {
        const float m = *reinterpret_cast<const float*>(reinterpret_cast<const uint8_t*>(a.mask) +
                                                        t * a.mask_nb1 + (c - a.cell_begin) * 4);
        if (m != 0.0f) return false;
    }
    return true;
}

constexpr int kPairs = 16;  // (query, head) dot products accumulated per pass over a key

// Eight consecutive key elements from `row` at element d (F16: one 16-byte load).
__device__ __forceinline__ void load8(const uint8_t* row, int d, bool f16, float (&v)[8]) {
    if (f16) {
        const uint4 raw = *reinterpret_cast<const uint4*>(row + d * 2);
        const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const float2 f = __half22float2(h[i]);
            v[2 * i] = f.x;
            v[2 * i + 1] = f.y;
        }
    } else {
        const float4 a = *reinterpret_cast<const float4*>(row + d * 4);
        const float4 b = *reinterpret_cast<const float4*>(row + d * 4 + 16);
        v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w;
        v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
    }
}

// Rotates (x0, x1) back by angle pos * inv_freq[i] (the inverse of RoPE's rotation).
__device__ __forceinline__ void unrotate(float& x0, float& x1, double pos, const float* inv_freq,
                                         int i) {
    double sn, cs;
    sincos(pos * static_cast<double>(inv_freq[i]), &sn, &cs);
    const float c = static_cast<float>(cs), s = static_cast<float>(sn);
    const float a = x0, b = x1;
    x0 = a * c + b * s;
    x1 = -a * s + b * c;
}

// acc[p] += q_s[pair p0 + p][d..d+8) . v for the tile's pairs.
__device__ __forceinline__ void accumulate(const float* q_s, int head_dim, int p0, int n_pairs,
                                           int d, const float (&v)[8], float (&acc)[kPairs]) {
#pragma unroll
    for (int p = 0; p < kPairs; ++p) {
        if (p0 + p >= n_pairs) break;
        const float* qv = q_s + (p0 + p) * head_dim + d;
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[p] = fmaf(qv[e], v[e], acc[p]);
    }
}

// One thread per (cell, kv head). The group's queries sit in shared memory (pair p = query
// p / group, head g * group + p % group); the key row is read 8 elements (16 bytes) at a time,
// un-rotated per pair of dimensions when asked, and dotted with kPairs queries per pass (a
// second pass re-reads the row from cache). Needs head_dim and n_rot multiples of 16.
__global__ void probe_logits(ProbeArgs a) {
    extern __shared__ float q_s[];  // [n_q * group][head_dim]
    const int g = blockIdx.y;
    const int group = a.n_head / a.n_kv, n_pairs = a.n_q * group;
    for (int i = threadIdx.x; i < n_pairs * a.head_dim; i += blockDim.x) {
        const int p = i / a.head_dim, d = i % a.head_dim;
        const int t = p / group, h = g * group + p % group;
        q_s[i] = *reinterpret_cast<const float*>(reinterpret_cast<const uint8_t*>(a.q) +
                                                 h * a.q_nb1 + t * a.q_nb2 + d * 4);
    }
    __syncthreads();
    const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (j >= a.n_range) return;
    const int64_t c = a.cell_begin + j;
    const uint8_t* row = a.k + c * a.k_nb2 + g * a.k_nb1;
    const double pos = a.cell_pos[c];
    const int half = a.n_rot / 2;
    for (int p0 = 0; p0 < n_pairs; p0 += kPairs) {
        bool any = false;  // some query of the tile's pairs sees the cell
        for (int t = p0 / group; t <= (min(n_pairs, p0 + kPairs) - 1) / group; ++t)
            any = any || visible(a, t, c);
        float acc[kPairs];
#pragma unroll
        for (int p = 0; p < kPairs; ++p) acc[p] = 0;
        if (any) {
            int d = 0;
            if (a.inv_freq != nullptr && a.neox) {
                // Pairs (i, i + half): chunks d and d + half together.
                for (; d < half; d += 8) {
                    float lo[8], hi[8];
                    load8(row, d, a.k_f16, lo);
                    load8(row, d + half, a.k_f16, hi);
#pragma unroll
                    for (int e = 0; e < 8; ++e) unrotate(lo[e], hi[e], pos, a.inv_freq, d + e);
                    accumulate(q_s, a.head_dim, p0, n_pairs, d, lo, acc);
                    accumulate(q_s, a.head_dim, p0, n_pairs, d + half, hi, acc);
                }
                d = a.n_rot;
            }
            for (; d < a.head_dim; d += 8) {
                float v[8];
                load8(row, d, a.k_f16, v);
                if (a.inv_freq != nullptr && !a.neox && d < a.n_rot) {
#pragma unroll
                    for (int e = 0; e < 8; e += 2)
                        unrotate(v[e], v[e + 1], pos, a.inv_freq, (d + e) / 2);
                }
                accumulate(q_s, a.head_dim, p0, n_pairs, d, v, acc);
            }
        }
#pragma unroll
        for (int p = 0; p < kPairs; ++p) {
            if (p0 + p >= n_pairs) break;
            const int t = (p0 + p) / group, h = g * group + (p0 + p) % group;
            float s = -INFINITY;
            if (any && visible(a, t, c)) {
                s = acc[p] * a.scale;
                if (a.softcap > 0) s = a.softcap * tanhf(s / a.softcap);
            }
            a.logits[(static_cast<int64_t>(t) * a.n_head + h) * a.n_range + j] = s;
        }
    }
}

// One block per (query, head) row: max, then 1 / sum of exp(l - max).
__global__ void probe_row_stats(const float* logits, int64_t n_range, float* row_max,
                                float* row_inv) {
    __shared__ float red[32];
    const float* l = logits + blockIdx.x * n_range;
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < n_range; j += blockDim.x) m = fmaxf(m, l[j]);
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = m;
    __syncthreads();
    m = -INFINITY;
    for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) m = fmaxf(m, red[w]);
    __syncthreads();
    float sum = 0;
    if (m != -INFINITY)
        for (int64_t j = threadIdx.x; j < n_range; j += blockDim.x) sum += expf(l[j] - m);
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = sum;
    __syncthreads();
    if (threadIdx.x == 0) {
        float total = 0;
        for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) total += red[w];
        row_max[blockIdx.x] = m;
        row_inv[blockIdx.x] = total > 0 ? 1.0f / total : 0.0f;
    }
}

__global__ void probe_reduce_heads(const float* logits, const float* row_max, const float* row_inv,
                                   int64_t n_range, int n_head, float* out, int64_t out_nb1) {
    const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    const int t = blockIdx.y;
    if (j >= n_range) return;
    float best = -1;
    for (int h = 0; h < n_head; ++h) {
        const int64_t r = static_cast<int64_t>(t) * n_head + h;
        const float l = logits[r * n_range + j];
        if (l == -INFINITY) continue;
        best = fmaxf(best, expf(l - row_max[r]) * row_inv[r]);
    }
    if (best >= 0) {
        float* o = reinterpret_cast<float*>(reinterpret_cast<uint8_t*>(out) + t * out_nb1) + j;
        *o = fmaxf(*o, best);
    }
}

}  // namespace

void cuda_attention_probe(CudaContext& ctx, const AttentionInputs& in,
                          const AttentionParams& params, const RopeParams* unrope,
                          Tensor probs_max) {
    if (in.k.type == DType::Q8_0) {  // a Q8_0 cache: the kernel below on an F16 copy of K
        return cuda_attention_probe(ctx, kv_q8_0_to_f16(ctx, in, false), params, unrope, probs_max);
    }
    const Tensor &q = in.q, &k = in.k;
    const int64_t head_dim = q.ne[0], n_head = q.ne[1], n_q = q.ne[2];
    const int64_t n_range = in.cell_end - in.cell_begin;
    SIFT_CHECK(q.type == DType::F32 && q.nb[0] == 4, "attention_probe: q must be F32");
    SIFT_CHECK((k.type == DType::F32 || k.type == DType::F16) && k.ne[0] == head_dim &&
                   k.ne[2] >= in.cell_end && head_dim % 16 == 0 && k.nb[1] % 16 == 0 &&
                   k.nb[2] % 16 == 0 && reinterpret_cast<uintptr_t>(k.data) % 16 == 0,
               "attention_probe: K must be F16/F32 [head_dim (a multiple of 16), n_kv, cells] "
               "with 16-byte aligned rows");
    SIFT_CHECK(unrope == nullptr || (unrope->n_rot % 16 == 0 && unrope->n_rot <= head_dim),
               "attention_probe: unrope needs n_rot a multiple of 16, <= head_dim");
    SIFT_CHECK(k.ne[1] > 0 && n_head % k.ne[1] == 0, "attention_probe: GQA");
    SIFT_CHECK(probs_max.type == DType::F32 && probs_max.nb[0] == 4 && probs_max.ne[0] == n_range &&
                   probs_max.ne[1] == n_q,
               "attention_probe: probs_max must be F32 [cell_end - cell_begin, n_q]");
    if (n_range == 0 || n_q == 0) return;

    const int64_t n_rows = n_q * n_head;
    // Scratch layout: logits, row max, row 1/sum, inverse frequencies.
    const size_t logits_bytes = static_cast<size_t>(n_rows * n_range) * 4;
    const size_t stats_bytes = static_cast<size_t>(n_rows) * 4;
    const int half = unrope != nullptr ? unrope->n_rot / 2 : 0;
    auto* base = static_cast<uint8_t*>(
        ctx.scratch_b.get(logits_bytes + 2 * stats_bytes + static_cast<size_t>(half) * 4 + 256));
    ProbeArgs a{};
    a.logits = reinterpret_cast<float*>(base);
    float* row_max = reinterpret_cast<float*>(base + logits_bytes);
    float* row_inv = row_max + n_rows;
    if (unrope != nullptr) {
        std::vector<float> host(static_cast<size_t>(half));
        std::vector<float> factors(static_cast<size_t>(half), 1.0f);
        if (unrope->freq_factors != nullptr) {
            SIFT_CUDA_CHECK(cudaMemcpyAsync(factors.data(), unrope->freq_factors->data,
                                            static_cast<size_t>(half) * 4, cudaMemcpyDeviceToHost,
                                            ctx.stream));
            SIFT_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
        }
        const std::vector<double> inv_freq = rope_inv_freq(*unrope, factors.data());
        for (int i = 0; i < half; ++i)
            host[static_cast<size_t>(i)] = static_cast<float>(inv_freq[static_cast<size_t>(i)]);
        float* dev = row_inv + n_rows;
        SIFT_CUDA_CHECK(cudaMemcpyAsync(dev, host.data(), static_cast<size_t>(half) * 4,
                                        cudaMemcpyHostToDevice, ctx.stream));
        SIFT_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));  // host buffer dies here
        a.inv_freq = dev;
        a.n_rot = unrope->n_rot;
        a.neox = unrope->neox;
    }
    a.q = static_cast<const float*>(q.data);
    a.q_nb1 = q.nb[1];
    a.q_nb2 = q.nb[2];
    a.k = static_cast<const uint8_t*>(k.data);
    a.k_nb1 = k.nb[1];
    a.k_nb2 = k.nb[2];
    a.k_f16 = k.type == DType::F16;
    a.q_pos = static_cast<const int32_t*>(in.q_pos.data);
    a.q_seq = static_cast<const int32_t*>(in.q_seq.data);
    a.cell_pos = static_cast<const int32_t*>(in.cell_pos.data);
    a.cell_seq = static_cast<const int32_t*>(in.cell_seq.data);
    a.mask = in.mask != nullptr ? static_cast<const float*>(in.mask->data) : nullptr;
    a.mask_nb1 = in.mask != nullptr ? in.mask->nb[1] : 0;
    a.cell_begin = in.cell_begin;
    a.n_range = n_range;
    a.head_dim = static_cast<int>(head_dim);
    a.n_head = static_cast<int>(n_head);
    a.n_kv = static_cast<int>(k.ne[1]);
    a.n_q = static_cast<int>(n_q);
    a.scale = params.scale;
    a.softcap = params.softcap;
    a.window = params.window;

    const int block = 128;
    const size_t q_bytes = static_cast<size_t>(n_q * n_head / k.ne[1] * head_dim) * 4;
    SIFT_CHECK(q_bytes <= ctx.smem_optin,
               "attention_probe: {} queries x {} heads per KV head need {} bytes of shared memory",
               n_q, n_head / k.ne[1], q_bytes);
    if (q_bytes > 48 * 1024)
        SIFT_CUDA_CHECK(cudaFuncSetAttribute(
            probe_logits, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(q_bytes)));
    probe_logits<<<dim3(grid_1d(n_range, block), static_cast<unsigned>(k.ne[1])), block, q_bytes,
                   ctx.stream>>>(a);
    SIFT_CUDA_LAUNCH_CHECK();
    probe_row_stats<<<static_cast<unsigned>(n_rows), 256, 0, ctx.stream>>>(a.logits, n_range,
                                                                           row_max, row_inv);
    SIFT_CUDA_LAUNCH_CHECK();
    probe_reduce_heads<<<dim3(grid_1d(n_range, 256), static_cast<unsigned>(n_q)), 256, 0,
                         ctx.stream>>>(a.logits, row_max, row_inv, n_range,
                                       static_cast<int>(n_head),
                                       static_cast<float*>(probs_max.data), probs_max.nb[1]);
    SIFT_CUDA_LAUNCH_CHECK();
}

}  // namespace sift::cuda
