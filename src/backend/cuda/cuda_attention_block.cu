// Block-sparse selection on the GPU (ops.h attention_block_select, ALGORITHMS.md 2; the CPU
// reference is cpu_attention_block.cpp). Two kernels:
//   mean_k_kernel: meanK per (key block, KV head) over the batch's causal prefix, F16.
//   select_kernel: one block per (query block, query head); its 128 query rows are scored
//     against every earlier block mean on tensor cores (the attention kernel's mma layout) in
//     two passes over the means: row maxima, then column sums of exp(s - row max). Then the
//     threshold and the forced blocks give the mask row.
// Cost: 1/128 of the dense QK^T per pass (2/128 in all), plus one read of the K cells whose
// block means the caller's KeyMeansCache does not hold (without one: the whole prefix).
#include <cuda_fp16.h>

#include <algorithm>

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
    __half* mean_k;               // [n_head_kv][mean_stride][head_dim]
    int mean_stride, mean_first;  // blocks per KV head; the first block mean_k_kernel computes
    int8_t* mask;                 // [n_head][n_qblocks][n_kblocks]
};

// One block per (key block, KV head): threads = (cell lane, 16-byte chunk of the row), each
// lane sums every (256 / chunks)-th cell, then the lanes are added in shared memory. Blocks
// past the batch's last query block are never read and left unset.
__global__ void __launch_bounds__(kThreads) mean_k_kernel(SelectArgs a) {
    __shared__ float sum_s[kThreads * 8];
    __shared__ int count_s[kThreads];
    const int n = a.mean_first + blockIdx.x, g = blockIdx.y, tid = threadIdx.x;
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
    __half* dst = a.mean_k + (static_cast<int64_t>(g) * a.mean_stride + n) * a.head_dim;
    for (int d = tid; d < a.head_dim; d += kThreads) {
        const int c = d / per_chunk, e = d % per_chunk;
        float s = 0;
        for (int l = 0; l < lanes; ++l) s += sum_s[(l * chunks + c) * 8 + e];
        dst[d] = __float2half(s * inv);
    }
}

// select_kernel: 4 warps x 32 query rows (two m16 row tiles per warp), so each mean fragment
// read from shared memory feeds two mma's (with 16 rows per warp the kernel was bound by
// shared-memory reads, as the attention kernel was).
constexpr int kSelThreads = 128;
constexpr int kMt = 2;  // row tiles per warp
static_assert(kSelThreads / 32 * 16 * kMt == kRows, "the warps cover the query block");

// S = Q meanK^T for the warp's 32 rows and the tile's kNb means (layouts as attn_mma_kernel).
template <int D>
__device__ __forceinline__ void tile_scores(const __half* q_s, const __half* k_s, int warp,
                                            int lane, float (&s)[kMt][kNb / 8][4]) {
    constexpr int kStride = D + 8;
#pragma unroll
    for (int mt = 0; mt < kMt; ++mt)
#pragma unroll
        for (int n = 0; n < kNb / 8; ++n) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t qa[kMt][4];
#pragma unroll
        for (int mt = 0; mt < kMt; ++mt)
            ldmatrix_x4(qa[mt], q_s + (warp * 16 * kMt + mt * 16 + (lane % 16)) * kStride +
                                    kk * 16 + (lane / 16) * 8);
#pragma unroll
        for (int nn = 0; nn < kNb / 16; ++nn) {
            uint32_t kb[4];
            ldmatrix_x4(kb, k_s + (nn * 16 + (lane & 7) + ((lane >> 4) << 3)) * kStride + kk * 16 +
                                ((lane >> 3) & 1) * 8);
#pragma unroll
            for (int mt = 0; mt < kMt; ++mt) {
                mma_16816(s[mt][2 * nn], qa[mt], kb[0], kb[1]);
                mma_16816(s[mt][2 * nn + 1], qa[mt], kb[2], kb[3]);
            }
        }
    }
}

template <int D>
__global__ void __launch_bounds__(kSelThreads) select_kernel(SelectArgs a) {
    constexpr int kStride = D + 8;
    extern __shared__ __align__(16) unsigned char smem[];
    __half* q_s = reinterpret_cast<__half*>(smem);                       // [kRows][kStride]
    __half* k_s = q_s + kRows * kStride;                                 // [2][kNb][kStride]
    float* score_s = reinterpret_cast<float*>(k_s + 2 * kNb * kStride);  // [n_kblocks]
    __shared__ float red_s[kSelThreads / 32];

    const int m = blockIdx.x, h = blockIdx.y, g = h / a.group;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int32_t p0 = a.q_pos[0];
    const int64_t mg = p0 / kBsaBlock + m;  // global query block
    const int t0 = m * kRows - p0 % kBsaBlock;
    int8_t* out = a.mask + (static_cast<int64_t>(h) * a.n_qblocks + m) * a.n_kblocks;
    const int n_cand = static_cast<int>(min(mg + 1, static_cast<int64_t>(a.n_kblocks)));
    if (mg >= a.n_qblocks_total - a.last_full || n_cand <= 0) {  // full (or nothing cached)
        for (int n = tid; n < a.n_kblocks; n += kSelThreads) out[n] = n < n_cand ? 1 : 0;
        return;
    }

    for (int n = tid; n < n_cand; n += kSelThreads) score_s[n] = 0;
    for (int i = tid; i < kRows * (D / 4); i += kSelThreads) {
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
    // Rows of this thread: warp * 32 + 16 mt + lane / 4 + 8 ri.
    bool row_valid[kMt][2];
#pragma unroll
    for (int mt = 0; mt < kMt; ++mt) {
#pragma unroll
        for (int ri = 0; ri < 2; ++ri) {
            const int t = t0 + warp * 16 * kMt + mt * 16 + lane / 4 + 8 * ri;
            row_valid[mt][ri] = t >= 0 && t < a.n_tokens;
        }
    }
    const __half* means = a.mean_k + static_cast<int64_t>(g) * a.mean_stride * D;
    // Tiles of kNb means stream through two shared-memory stages (cp.async): tile i + 1 loads
    // while tile i is scored. Means past n_cand are zeros.
    auto load_means = [&](int n0, int stage) {
        __half* dst = k_s + stage * kNb * kStride;
        for (int i = tid; i < kNb * (D / 8); i += kSelThreads) {
            const int r = i / (D / 8), ch = i % (D / 8);
            const bool valid = n0 + r < n_cand;
            cp_async16(dst + r * kStride + ch * 8,
                       means + (valid ? static_cast<int64_t>(n0 + r) * D + ch * 8 : 0), valid);
        }
    };
    // Calls score(n0, tile) for every tile of candidates, in order.
    auto for_tiles = [&](auto&& score) {
        load_means(0, 0);
        cp_async_commit();
        int stage = 0;
        for (int n0 = 0; n0 < n_cand; n0 += kNb) {
            if (n0 + kNb < n_cand) load_means(n0 + kNb, stage ^ 1);
            cp_async_commit();
            cp_async_wait_1();
            __syncthreads();
            score(n0, k_s + stage * kNb * kStride);
            __syncthreads();  // this stage is overwritten by the load two tiles ahead
            stage ^= 1;
        }
    };

    // Pass 1: each row's maximum over the candidate blocks (log2 units).
    float mx[kMt][2] = {{-INFINITY, -INFINITY}, {-INFINITY, -INFINITY}};
    float s[kMt][kNb / 8][4];
    __syncthreads();  // q_s written
    for_tiles([&](int n0, const __half* tile) {
        tile_scores<D>(q_s, tile, warp, lane, s);
#pragma unroll
        for (int mt = 0; mt < kMt; ++mt)
#pragma unroll
            for (int n = 0; n < kNb / 8; ++n)
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    if (n0 + n * 8 + 2 * (lane & 3) + (e & 1) < n_cand)
                        mx[mt][e >> 1] = fmaxf(mx[mt][e >> 1], s[mt][n][e] * kLog2e);
                }
    });
#pragma unroll
    for (int mt = 0; mt < kMt; ++mt) {
#pragma unroll
        for (int ri = 0; ri < 2; ++ri) {
            mx[mt][ri] = fmaxf(mx[mt][ri], __shfl_xor_sync(0xffffffffu, mx[mt][ri], 1));
            mx[mt][ri] = fmaxf(mx[mt][ri], __shfl_xor_sync(0xffffffffu, mx[mt][ri], 2));
        }
    }
    // Pass 2: score[n] = sum over the block's rows of exp(s - row max).
    for_tiles([&](int n0, const __half* tile) {
        tile_scores<D>(q_s, tile, warp, lane, s);
#pragma unroll
        for (int n = 0; n < kNb / 8; ++n) {
            float col[2] = {0, 0};
#pragma unroll
            for (int e = 0; e < 2; ++e) {
#pragma unroll
                for (int mt = 0; mt < kMt; ++mt) {
                    if (row_valid[mt][0]) col[e] += exp2_ftz(s[mt][n][e] * kLog2e - mx[mt][0]);
                    if (row_valid[mt][1]) col[e] += exp2_ftz(s[mt][n][2 + e] * kLog2e - mx[mt][1]);
                }
                // Lanes with the same lane & 3 hold the same columns: sum the warp's 32 rows.
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
    });
    __syncthreads();
    float best = 0;
    for (int n = tid; n < n_cand; n += kSelThreads) best = fmaxf(best, score_s[n]);
    for (int o = 16; o > 0; o >>= 1) best = fmaxf(best, __shfl_xor_sync(0xffffffffu, best, o));
    if (lane == 0) red_s[warp] = best;
    __syncthreads();
    best = red_s[0];
    for (int w = 1; w < kSelThreads / 32; ++w) best = fmaxf(best, red_s[w]);
    const float threshold = a.alpha * best;
    for (int n = tid; n < a.n_kblocks; n += kSelThreads) {
        const bool keep =
            n < n_cand && (n < a.sink || mg - n < a.window || score_s[n] >= threshold);
        out[n] = keep ? 1 : 0;
    }
}

template <int D>
void launch_select(CudaContext& ctx, const SelectArgs& a) {
    const size_t smem = static_cast<size_t>(kRows + 2 * kNb) * (D + 8) * 2 +
                        static_cast<size_t>(a.n_kblocks) * sizeof(float);
    SIFT_CHECK(smem <= ctx.smem_optin, "block-sparse: {} key blocks exceed shared memory",
               a.n_kblocks);
    static size_t configured = 0;  // per instantiation (and per process: one device)
    if (smem > configured) {
        SIFT_CUDA_CHECK(cudaFuncSetAttribute(
            select_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
        configured = smem;
    }
    select_kernel<D><<<dim3(a.n_qblocks, a.n_head), kSelThreads, smem, ctx.stream>>>(a);
    SIFT_CUDA_LAUNCH_CHECK();
}

bool aligned16(const void* p, int64_t nb1, int64_t nb2) {
    return reinterpret_cast<uintptr_t>(p) % 16 == 0 && nb1 % 16 == 0 && nb2 % 16 == 0;
}

}  // namespace

size_t cuda_key_means_bytes(int64_t head_dim, int64_t n_head_kv, int64_t n_kblocks) {
    return static_cast<size_t>(head_dim * n_head_kv * n_kblocks) * sizeof(__half);
}

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
    // The means: in the caller's cache (reusing its finished blocks) when it is large enough,
    // else in scratch.
    const size_t per_block = static_cast<size_t>(k.ne[1] * q.ne[0]) * sizeof(__half);
    const KeyMeansCache* cache = in.key_means;
    if (cache != nullptr && cache->data != nullptr &&
        cache->bytes >= per_block * static_cast<size_t>(n_kblocks)) {
        a.mean_k = static_cast<__half*>(cache->data);
        a.mean_stride = static_cast<int>(cache->bytes / per_block);
        a.mean_first = static_cast<int>(std::clamp<int64_t>(cache->valid, 0, n_kblocks));
    } else {
        a.mean_k =
            static_cast<__half*>(ctx.scratch_a.get(per_block * static_cast<size_t>(n_kblocks)));
        a.mean_stride = a.n_kblocks;
        a.mean_first = 0;
    }
    a.mask = bm.ptr<int8_t>();

    if (a.mean_first < a.n_kblocks) {
        mean_k_kernel<<<dim3(a.n_kblocks - a.mean_first, static_cast<unsigned>(k.ne[1])), kThreads,
                        0, ctx.stream>>>(a);
        SIFT_CUDA_LAUNCH_CHECK();
    }
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
