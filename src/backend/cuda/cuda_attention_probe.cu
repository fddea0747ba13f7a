// The importance probe of speculative prefill on the GPU (ops.h attention_probe): the same three
// passes as the CPU reference (cpu_attention_probe.cpp): logits of the few queries against every
// cell into scratch, each (query, head) row's softmax max and sum, then max over heads into the
// running maximum. One pass over K per layer; scratch is n_q x n_head x cells floats.
#include <cuda_fp16.h>

#include <cmath>
#include <vector>

#include "backend/cuda/cuda_ops.h"

namespace sift::cuda {
namespace {

constexpr int kMaxHeadDim = 256;

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

// One thread per (cell, kv head): the key row in registers/local memory, un-rotated if asked,
// dotted with every query head of the group for every query.
__global__ void probe_logits(ProbeArgs a) {
    const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    const int g = blockIdx.y;
    if (j >= a.n_range) return;
    const int64_t c = a.cell_begin + j;
    const int group = a.n_head / a.n_kv;
    bool any = false;
    for (int t = 0; t < a.n_q; ++t) any = any || visible(a, t, c);
    if (!any) {
        for (int t = 0; t < a.n_q; ++t)
            for (int h = g * group; h < (g + 1) * group; ++h)
                a.logits[(static_cast<int64_t>(t) * a.n_head + h) * a.n_range + j] = -INFINITY;
        return;
    }
    float key[kMaxHeadDim];
    const uint8_t* row = a.k + c * a.k_nb2 + g * a.k_nb1;
    for (int d = 0; d < a.head_dim; ++d)
        key[d] = a.k_f16 ? __half2float(reinterpret_cast<const __half*>(row)[d])
                         : reinterpret_cast<const float*>(row)[d];
    if (a.inv_freq != nullptr) {
        const double pos = a.cell_pos[c];
        const int half = a.n_rot / 2;
        const int stride = a.neox ? 1 : 2, offset = a.neox ? half : 1;
        for (int i = 0; i < half; ++i) {
            const double theta = pos * static_cast<double>(a.inv_freq[i]);
            const float cs = static_cast<float>(cos(theta)), sn = static_cast<float>(sin(theta));
            const int i0 = i * stride, i1 = i0 + offset;
            const float x0 = key[i0], x1 = key[i1];
            key[i0] = x0 * cs + x1 * sn;
            key[i1] = -x0 * sn + x1 * cs;
        }
    }
    for (int t = 0; t < a.n_q; ++t) {
        const bool vis = visible(a, t, c);
        for (int h = g * group; h < (g + 1) * group; ++h) {
            float s = -INFINITY;
            if (vis) {
                const float* qv = reinterpret_cast<const float*>(
                    reinterpret_cast<const uint8_t*>(a.q) + h * a.q_nb1 + t * a.q_nb2);
                float dot = 0;
                for (int d = 0; d < a.head_dim; ++d) dot = fmaf(qv[d], key[d], dot);
                s = dot * a.scale;
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
    const Tensor &q = in.q, &k = in.k;
    const int64_t head_dim = q.ne[0], n_head = q.ne[1], n_q = q.ne[2];
    const int64_t n_range = in.cell_end - in.cell_begin;
    SIFT_CHECK(q.type == DType::F32 && q.nb[0] == 4, "attention_probe: q must be F32");
    SIFT_CHECK((k.type == DType::F32 || k.type == DType::F16) && k.ne[0] == head_dim &&
                   k.ne[2] >= in.cell_end && head_dim <= kMaxHeadDim,
               "attention_probe: K must be F16/F32 [head_dim <= 256, n_kv, cells]");
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
    probe_logits<<<dim3(grid_1d(n_range, block), static_cast<unsigned>(k.ne[1])), block, 0,
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
