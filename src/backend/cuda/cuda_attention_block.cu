// Block-sparse selection on the GPU (ops.h attention_block_select, ALGORITHMS.md 2; the CPU
// reference is cpu_attention_block.cpp). Two kernels:
//   mean_k_kernel: meanK per (key block, KV head) over the batch's causal prefix, F16.
//   select_kernel: one block per (query block, query head); its 128 query rows are scored
//     against every earlier block mean on tensor cores (the attention kernel's mma layout) in
//     two passes over the means: row maxima, then column sums of exp(s - row max). Then the
//     threshold and the forced blocks give the mask row.
// Cost: 1/128 of the dense QK^T per pass (2/128 in all), plus one read of the K prefix.
#include <cuda_fp16.h>

#include "backend/cuda/cuda_attention.cuh"
#include "backend/cuda/cuda_kv_quant.cuh"
#include "backend/cuda/cuda_mma.cuh"
#include "backend/cuda/cuda_ops.h"

namespace sift::cuda {
namespace {

constexpr int kThreads = 256;  // 8 warps x 16 rows = the 128 rows of a query block
constexpr int kRows = kBsaBlock;
constexpr int kNb = 64;  // block means per shared-memory tile
constexpr float kLog2e = 1.4426950408889634f;

struct SelectArgs {
    const float* q;  // [head_dim, n_head, n_tokens]
    int64_t q_nb1, q_nb2;
    const void* k;  // [head_dim, n_head_kv, n_cells] F16/F32
    int64_t k_nb1, k_nb2;
    bool k_f16;
    const int32_t *q_pos, *q_seq, *cell_pos, *cell_seq;
    int64_t cell_begin, cell_end;
    int n_tokens, head_dim, n_head, group;
    int n_kblocks, n_qblocks;
    int64_t n_qblocks_total;
    float scale, alpha;
    int sink, window, last_full;
    __half* mean_k;  // [n_head_kv][n_kblocks][head_dim]
    int8_t* mask;    // [n_head][n_qblocks][n_kblocks]
};

// One block per (key block, KV head): threads = (cell lane, 16-byte chunk of the row), each
// lane sums every (256 / chunks)-th cell, then the lanes are added in shared memory. Blocks
// past the batch's last query block are never read and left unset.
__global__ void __launch_bounds__(kThreads) mean_k_kernel(SelectArgs a) {
    __shared__ float sum_s[kThreads * 8];
    __shared__ int count_s[kThreads];
    const int n = blockIdx.x, g = blockIdx.y, tid = threadIdx.x;
    const int32_t p_last = a.q_pos[a.n_tokens - 1], seq = a.q_seq[0];
    if (n > p_last / kBsaBlock) return;
    const int per_chunk = a.k_f16 ? 8 : 4;  // elements per 16 bytes
    const int chunks = a.head_dim / per_chunk, lanes = kThreads / chunks;
    const int ch = tid % chunks, lane = tid / chunks;
    const int64_t c_begin = a.cell_begin + static_cast<int64_t>(n) * kBsaBlock;
    const int64_t c_end = min(a.cell_end, c_begin + kBsaBlock);
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int count = 0;
    if (lane < lanes) {
        for (int64_t c = c_begin + lane; c < c_end; c += lanes) {
            if (a.cell_seq[c] != seq || a.cell_pos[c] > p_last) continue;
            ++count;
            const uint4 raw = *reinterpret_cast<const uint4*>(reinterpret_cast<const char*>(a.k) +
                                                              c * a.k_nb2 + g * a.k_nb1 + ch * 16);
            if (a.k_f16) {
                const __half2* hv = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    const float2 f = __half22float2(hv[i]);
                    acc[2 * i] += f.x;
                    acc[2 * i + 1] += f.y;
                }
            } else {
                acc[0] += __uint_as_float(raw.x);
                acc[1] += __uint_as_float(raw.y);
                acc[2] += __uint_as_float(raw.z);
                acc[3] += __uint_as_float(raw.w);
            }
        }
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) sum_s[tid * 8 + i] = acc[i];
    count_s[tid] = count;
    __syncthreads();
    int total = 0;
    for (int l = 0; l < lanes; ++l) total += count_s[l * chunks];
    const float inv = total > 0 ? 1.0f / static_cast<float>(total) : 0.0f;
    __half* dst = a.mean_k + (static_cast<int64_t>(g) * a.n_kblocks + n) * a.head_dim;
    for (int d = tid; d < a.head_dim; d += kThreads) {
        const int c = d / per_chunk, e = d % per_chunk;
        float s = 0;
        for (int l = 0; l < lanes; ++l) s += sum_s[(l * chunks + c) * 8 + e];
        dst[d] = __float2half(s * inv);
    }
}

// S = Q meanK^T for the warp's 16 rows and the tile's kNb means (layouts as attn_mma_kernel).
template <int D>
__device__ __forceinline__ void tile_scores(const __half* q_s, const __half* k_s, int warp,
                                            int lane, float (&s)[kNb / 8][4]) {
    constexpr int kStride = D + 8;
#pragma unroll
    for (int n = 0; n < kNb / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t qa[4];
        ldmatrix_x4(qa, q_s + (warp * 16 + (lane % 16)) * kStride + kk * 16 + (lane / 16) * 8);
#pragma unroll
        for (int nn = 0; nn < kNb / 16; ++nn) {
            uint32_t kb[4];
            ldmatrix_x4(kb, k_s + (nn * 16 + (lane & 7) + ((lane >> 4) << 3)) * kStride + kk * 16 +
                                ((lane >> 3) & 1) * 8);
            mma_16816(s[2 * nn], qa, kb[0], kb[1]);
            mma_16816(s[2 * nn + 1], qa, kb[2], kb[3]);
        }
    }
}

template <int D>
__global__ void __launch_bounds__(kThreads) select_kernel(SelectArgs a) {
    constexpr int kStride = D + 8;
    extern __shared__ __align__(16) unsigned char smem[];
    __half* q_s = reinterpret_cast<__half*>(smem);                   // [kRows][kStride]
    __half* k_s = q_s + kRows * kStride;                             // [kNb][kStride]
    float* score_s = reinterpret_cast<float*>(k_s + kNb * kStride);  // [n_kblocks]
    __shared__ float red_s[kThreads / 32];

    const int m = blockIdx.x, h = blockIdx.y, g = h / a.group;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int32_t p0 = a.q_pos[0];
    const int64_t mg = p0 / kBsaBlock + m;  // global query block
    const int t0 = m * kRows - p0 % kBsaBlock;
    int8_t* out = a.mask + (static_cast<int64_t>(h) * a.n_qblocks + m) * a.n_kblocks;
    const int n_cand = static_cast<int>(min(mg + 1, static_cast<int64_t>(a.n_kblocks)));
    if (mg >= a.n_qblocks_total - a.last_full || n_cand <= 0) {  // full (or nothing cached)
        for (int n = tid; n < a.n_kblocks; n += kThreads) out[n] = n < n_cand ? 1 : 0;
        return;
    }

    for (int n = tid; n < n_cand; n += kThreads) score_s[n] = 0;
    for (int i = tid; i < kRows * (D / 4); i += kThreads) {
        const int r = i / (D / 4), c4 = i % (D / 4), t = t0 + r;
        float4 v = make_float4(0, 0, 0, 0);
        if (t >= 0 && t < a.n_tokens) {
            v = *reinterpret_cast<const float4*>(reinterpret_cast<const char*>(a.q) +
                                                 static_cast<int64_t>(t) * a.q_nb2 + h * a.q_nb1 +
                                                 c4 * 16);
        }
        __half2* dst = reinterpret_cast<__half2*>(q_s + r * kStride + c4 * 4);
        dst[0] = __floats2half2_rn(v.x * a.scale, v.y * a.scale);
        dst[1] = __floats2half2_rn(v.z * a.scale, v.w * a.scale);
    }
    bool row_valid[2];
#pragma unroll
    for (int ri = 0; ri < 2; ++ri) {
        const int t = t0 + warp * 16 + lane / 4 + 8 * ri;
        row_valid[ri] = t >= 0 && t < a.n_tokens;
    }
    const __half* means = a.mean_k + static_cast<int64_t>(g) * a.n_kblocks * D;
    auto load_means = [&](int n0) {
        __syncthreads();  // the previous tile is no longer read
        for (int i = tid; i < kNb * (D / 8); i += kThreads) {
            const int r = i / (D / 8), ch = i % (D / 8);
            uint4 v = make_uint4(0, 0, 0, 0);
            if (n0 + r < n_cand)
                v = *reinterpret_cast<const uint4*>(means + static_cast<int64_t>(n0 + r) * D +
                                                    ch * 8);
            *reinterpret_cast<uint4*>(k_s + r * kStride + ch * 8) = v;
        }
        __syncthreads();
    };

    // Pass 1: each row's maximum over the candidate blocks (log2 units).
    float mx[2] = {-INFINITY, -INFINITY};
    float s[kNb / 8][4];
    for (int n0 = 0; n0 < n_cand; n0 += kNb) {
        load_means(n0);
        tile_scores<D>(q_s, k_s, warp, lane, s);
#pragma unroll
        for (int n = 0; n < kNb / 8; ++n) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                if (n0 + n * 8 + 2 * (lane & 3) + (e & 1) < n_cand)
                    mx[e >> 1] = fmaxf(mx[e >> 1], s[n][e] * kLog2e);
            }
        }
    }
#pragma unroll
    for (int ri = 0; ri < 2; ++ri) {
        mx[ri] = fmaxf(mx[ri], __shfl_xor_sync(0xffffffffu, mx[ri], 1));
        mx[ri] = fmaxf(mx[ri], __shfl_xor_sync(0xffffffffu, mx[ri], 2));
    }
    // Pass 2: score[n] = sum over the block's rows of exp(s - row max).
    for (int n0 = 0; n0 < n_cand; n0 += kNb) {
        load_means(n0);
        tile_scores<D>(q_s, k_s, warp, lane, s);
#pragma unroll
        for (int n = 0; n < kNb / 8; ++n) {
            float col[2];
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const float p0r = row_valid[0] ? exp2f(s[n][e] * kLog2e - mx[0]) : 0.0f;
                const float p1r = row_valid[1] ? exp2f(s[n][2 + e] * kLog2e - mx[1]) : 0.0f;
                col[e] = p0r + p1r;
                // Lanes with the same lane & 3 hold the same columns: sum the warp's 16 rows.
                col[e] += __shfl_xor_sync(0xffffffffu, col[e], 4);
                col[e] += __shfl_xor_sync(0xffffffffu, col[e], 8);
                col[e] += __shfl_xor_sync(0xffffffffu, col[e], 16);
            }
            if (lane < 4) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int c = n0 + n * 8 + 2 * lane + e;
                    if (c < n_cand) atomicAdd(&score_s[c], col[e]);
                }
            }
        }
    }
    __syncthreads();
    float best = 0;
    for (int n = tid; n < n_cand; n += kThreads) best = fmaxf(best, score_s[n]);
    for (int o = 16; o > 0; o >>= 1) best = fmaxf(best, __shfl_xor_sync(0xffffffffu, best, o));
    if (lane == 0) red_s[warp] = best;
    __syncthreads();
    best = red_s[0];
    for (int w = 1; w < kThreads / 32; ++w) best = fmaxf(best, red_s[w]);
    const float threshold = a.alpha * best;
    for (int n = tid; n < a.n_kblocks; n += kThreads) {
        const bool keep =
            n < n_cand && (n < a.sink || mg - n < a.window || score_s[n] >= threshold);
        out[n] = keep ? 1 : 0;
    }
}

template <int D>
void launch_select(CudaContext& ctx, const SelectArgs& a) {
    const size_t smem = static_cast<size_t>(kRows + kNb) * (D + 8) * 2 +
                        static_cast<size_t>(a.n_kblocks) * sizeof(float);
    SIFT_CHECK(smem <= ctx.smem_optin, "block-sparse: {} key blocks exceed shared memory",
               a.n_kblocks);
    static size_t configured = 0;  // per instantiation (and per process: one device)
    if (smem > configured) {
        SIFT_CUDA_CHECK(cudaFuncSetAttribute(
            select_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
        configured = smem;
    }
    select_kernel<D><<<dim3(a.n_qblocks, a.n_head), kThreads, smem, ctx.stream>>>(a);
    SIFT_CUDA_LAUNCH_CHECK();
}

bool aligned16(const void* p, int64_t nb1, int64_t nb2) {
    return reinterpret_cast<uintptr_t>(p) % 16 == 0 && nb1 % 16 == 0 && nb2 % 16 == 0;
}

}  // namespace

void cuda_attention_block_select(CudaContext& ctx, const AttentionInputs& in,
                                 const AttentionParams& params, const BlockSparseParams& bs,
                                 int64_t n_qblocks_total, Tensor block_mask) {
    if (in.k.type == DType::Q8_0) {  // a Q8_0 cache: the kernels below on an F16 copy of K
        return cuda_attention_block_select(ctx, kv_q8_0_to_f16(ctx, in, false), params, bs,
                                           n_qblocks_total, block_mask);
    }
    const Tensor &q = in.q, &k = in.k, &bm = block_mask;
    SIFT_CHECK(q.type == DType::F32 && q.nb[0] == 4 && aligned16(q.data, q.nb[1], q.nb[2]),
               "block-sparse (CUDA): q must be F32 with 16-byte aligned rows");
    SIFT_CHECK((k.type == DType::F16 || k.type == DType::F32) &&
                   k.nb[0] == dtype_traits(k.type).block_bytes &&
                   aligned16(k.data, k.nb[1], k.nb[2]),
               "block-sparse (CUDA): K must be F16/F32 with 16-byte aligned rows");
    SIFT_CHECK(q.ne[0] == 64 || q.ne[0] == 128 || q.ne[0] == 256,
               "block-sparse (CUDA): head_dim {} (64, 128 or 256)", q.ne[0]);
    SIFT_CHECK(k.ne[0] == q.ne[0] && k.ne[1] > 0 && q.ne[1] % k.ne[1] == 0 &&
                   k.ne[2] >= in.cell_end && 0 <= in.cell_begin && in.cell_begin <= in.cell_end,
               "block-sparse: q/K shapes");
    SIFT_CHECK(bs.block == kBsaBlock, "block-sparse (CUDA): block must be {}, got {}", kBsaBlock,
               bs.block);
    SIFT_CHECK(bs.window >= 1 && bs.sink >= 0 && bs.last_full >= 0 && bs.alpha >= 0,
               "block-sparse: window >= 1, sink, last_full and alpha >= 0");
    for (const Tensor* t : {&in.q_pos, &in.q_seq, &in.cell_pos, &in.cell_seq})
        SIFT_CHECK(t->type == DType::I32 && t->nb[0] == 4, "block-sparse: I32 pos/seq");
    const int64_t n_kblocks = (in.cell_end - in.cell_begin + kBsaBlock - 1) / kBsaBlock;
    SIFT_CHECK(bm.type == DType::I8 && bm.nb[0] == 1 && bm.nb[1] == bm.ne[0] &&
                   bm.nb[2] == bm.ne[0] * bm.ne[1] && bm.ne[3] == 1 && bm.ne[0] == n_kblocks &&
                   bm.ne[1] > 0 && bm.ne[1] <= (q.ne[2] + 2 * kBsaBlock - 2) / kBsaBlock &&
                   bm.ne[2] == q.ne[1],
               "block-sparse: block_mask must be contiguous I8 [n_kblocks, n_qblocks, n_head]");
    if (q.ne[2] == 0 || n_kblocks == 0) return;

    SelectArgs a{};
    a.q = q.ptr<const float>();
    a.q_nb1 = q.nb[1];
    a.q_nb2 = q.nb[2];
    a.k = k.data;
    a.k_nb1 = k.nb[1];
    a.k_nb2 = k.nb[2];
    a.k_f16 = k.type == DType::F16;
    a.q_pos = in.q_pos.ptr<const int32_t>();
    a.q_seq = in.q_seq.ptr<const int32_t>();
    a.cell_pos = in.cell_pos.ptr<const int32_t>();
    a.cell_seq = in.cell_seq.ptr<const int32_t>();
    a.cell_begin = in.cell_begin;
    a.cell_end = in.cell_end;
    a.n_tokens = static_cast<int>(q.ne[2]);
    a.head_dim = static_cast<int>(q.ne[0]);
    a.n_head = static_cast<int>(q.ne[1]);
    a.group = static_cast<int>(q.ne[1] / k.ne[1]);
    a.n_kblocks = static_cast<int>(n_kblocks);
    a.n_qblocks = static_cast<int>(bm.ne[1]);
    a.n_qblocks_total = n_qblocks_total;
    a.scale = params.scale;
    a.alpha = bs.alpha;
    a.sink = bs.sink;
    a.window = bs.window;
    a.last_full = bs.last_full;
    a.mean_k = static_cast<__half*>(
        ctx.scratch_a.get(static_cast<size_t>(k.ne[1] * n_kblocks * q.ne[0]) * sizeof(__half)));
    a.mask = bm.ptr<int8_t>();

    mean_k_kernel<<<dim3(a.n_kblocks, static_cast<unsigned>(k.ne[1])), kThreads, 0, ctx.stream>>>(
        a);
    SIFT_CUDA_LAUNCH_CHECK();
    switch (a.head_dim) {
        case 64:
            return launch_select<64>(ctx, a);
        case 128:
            return launch_select<128>(ctx, a);
        default:
            return launch_select<256>(ctx, a);
    }
}

}  // namespace sift::cuda
