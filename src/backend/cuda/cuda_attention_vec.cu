// The general attention kernel, used for decode (few query tokens, long cache) and for every shape
// the tensor-core kernel does not take. A block handles one token and up to 8 query heads of one
// KV head, so each K/V row read from memory serves the whole GQA group; the cells may be split
// across blocks (split-K), whose partial softmax states attention_combine merges.
//
// Per step of 32 cells (one per lane): visibility from pos/seq (a step nobody sees is skipped
// without touching K/V), its K and V rows into shared memory with 16-byte cp.async (double
// buffered: the next visible step loads while this one computes), one score per (head, cell)
// thread, an online-softmax update per head by one warp, then P V with each thread owning
// 16 bytes' worth of output columns of one head.
#include <cuda_fp16.h>

#include "backend/cuda/cuda_attention.cuh"

namespace sift::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;

template <typename T>
__device__ __forceinline__ void chunk_to_float(const uint4& c, float* f);  // 16 bytes -> floats
template <>
__device__ __forceinline__ void chunk_to_float<__half>(const uint4& c, float* f) {
    const __half2* h = reinterpret_cast<const __half2*>(&c);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const float2 v = __half22float2(h[i]);
        f[2 * i] = v.x;
        f[2 * i + 1] = v.y;
    }
}
template <>
__device__ __forceinline__ void chunk_to_float<float>(const uint4& c, float* f) {
    f[0] = __uint_as_float(c.x);
    f[1] = __uint_as_float(c.y);
    f[2] = __uint_as_float(c.z);
    f[3] = __uint_as_float(c.w);
}

// Shared memory: q [kVecRows][D] F32, p [kVecRows][32], alpha/l/m [kVecRows], then K and V steps
// [2 stages][32 cells][row bytes + 16] (padded: no bank conflicts).
size_t vec_header_bytes(int head_dim) {
    return (kVecRows * (head_dim + kVecTile + 3) * 4 + 15) / 16 * 16;
}
template <typename KT, typename VT>
size_t vec_smem_bytes(int head_dim) {
    return vec_header_bytes(head_dim) + 2 * kVecTile * (head_dim * (sizeof(KT) + sizeof(VT)) + 32);
}

template <typename KT, typename VT>
__global__ void __launch_bounds__(kThreads)
    attn_vec_kernel(AttnArgs a, int n_split, int tiles_per_split, int head_chunks, float* partial) {
    constexpr int kEK = 16 / sizeof(KT), kEV = 16 / sizeof(VT);   // elements per 16-byte chunk
    constexpr int kMaxItems = kVecRows * (256 / kEV) / kThreads;  // PV outputs per thread
    const int D = a.head_dim;
    const int k_stride = D * static_cast<int>(sizeof(KT)) + 16;
    const int v_stride = D * static_cast<int>(sizeof(VT)) + 16;

    extern __shared__ __align__(16) unsigned char smem[];
    float* q_s = reinterpret_cast<float*>(smem);  // [kVecRows][D], pre-scaled
    float* p_s = q_s + kVecRows * D;              // [kVecRows][kVecTile]
    float* alpha_s = p_s + kVecRows * kVecTile;   // [kVecRows]
    float* l_s = alpha_s + kVecRows;              // [kVecRows]
    float* m_s = l_s + kVecRows;                  // [kVecRows]
    unsigned char* k_s = smem + (kVecRows * (D + kVecTile + 3) * 4 + 15) / 16 * 16;
    unsigned char* v_s = k_s + 2 * kVecTile * k_stride;

    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int t = blockIdx.x / n_split, split = blockIdx.x % n_split;
    const int g = blockIdx.y / head_chunks, chunk = blockIdx.y % head_chunks;
    const int h0 = g * a.group + chunk * kVecRows;
    const int n_rows = min(kVecRows, a.group - chunk * kVecRows);

    for (int i = tid; i < kVecRows * D; i += kThreads) {
        const int r = i / D, d = i % D;
        q_s[i] = r < n_rows ? reinterpret_cast<const float*>(reinterpret_cast<const char*>(a.q) +
                                                             t * a.q_nb2 + (h0 + r) * a.q_nb1)[d] *
                                  a.scale
                            : 0.0f;
    }
    const int32_t tp = a.q_pos[t], ts = a.q_seq[t];
    const int32_t p0 = a.block_mask != nullptr ? a.q_pos[0] : 0;  // places the query blocks
    const float* mrow =
        a.mask != nullptr
            ? reinterpret_cast<const float*>(reinterpret_cast<const char*>(a.mask) + t * a.mask_nb1)
            : nullptr;

    const int64_t span = static_cast<int64_t>(tiles_per_split) * kVecTile;
    const int64_t c_lo = a.cell_begin + split * span;
    const int64_t c_hi = min(a.cell_end, c_lo + span);

    // The split's cell_seq/cell_pos into L2 up front: next_step's loads then wait on L2, not
    // DRAM, on the critical path of every step.
    for (int64_t c = c_lo + tid * 32; c < c_hi; c += kThreads * 32) {
        asm volatile("prefetch.global.L2 [%0];\n" ::"l"(a.cell_seq + c));
        asm volatile("prefetch.global.L2 [%0];\n" ::"l"(a.cell_pos + c));
    }
    // The next step at or after c0 that some cell of is visible (c_hi if none); this lane's
    // cell's visibility and mask term, and the step's ballot (the same in every warp).
    auto next_step = [&](int64_t c0, bool& vis, float& madd, unsigned& ballot) {
        for (; c0 < c_hi; c0 += kVecTile) {
            const int64_t c = c0 + lane;
            vis = false;
            madd = 0;
            if (c < c_hi) {
                vis = attn_visible(a.cell_seq[c], a.cell_pos[c], ts, tp, a.window);
                if (vis && mrow != nullptr) {
                    madd = mrow[c - a.cell_begin];
                    vis = madd != -INFINITY;
                }
            }
            ballot = __ballot_sync(0xffffffffu, vis);
            if (ballot != 0) return c0;
        }
        return c_hi;
    };
    const char* kbase = reinterpret_cast<const char*>(a.k) + g * a.k_nb1;
    const char* vbase = reinterpret_cast<const char*>(a.v) + g * a.v_nb1;
    const int k_chunks = D / kEK, v_chunks = D / kEV;
    auto load_step = [&](int64_t c0, int stage) {
        unsigned char* ks = k_s + stage * kVecTile * k_stride;
        unsigned char* vs = v_s + stage * kVecTile * v_stride;
        for (int i = tid; i < kVecTile * k_chunks; i += kThreads) {
            const int r = i / k_chunks, ch = i % k_chunks;
            const bool valid = c0 + r < c_hi;
            cp_async16(ks + r * k_stride + ch * 16,
                       kbase + (valid ? c0 + r : c0) * a.k_nb2 + ch * 16, valid);
        }
        for (int i = tid; i < kVecTile * v_chunks; i += kThreads) {
            const int r = i / v_chunks, ch = i % v_chunks;
            const bool valid = c0 + r < c_hi;
            cp_async16(vs + r * v_stride + ch * 16,
                       vbase + (valid ? c0 + r : c0) * a.v_nb2 + ch * 16, valid);
        }
    };

    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0, 0};  // rows warp and warp + 4
    float acc[kMaxItems][kEV];
#pragma unroll
    for (int i = 0; i < kMaxItems; ++i)
#pragma unroll
        for (int e = 0; e < kEV; ++e) acc[i][e] = 0;
    const int n_items = n_rows * v_chunks;

    // Steps flow through two shared-memory stages: the next step's K and V are in flight
    // (cp.async) while this one is computed.
    bool vis;
    float madd;
    unsigned ballot;
    int64_t c0 = next_step(c_lo, vis, madd, ballot);
    if (c0 < c_hi) load_step(c0, 0);
    cp_async_commit();
    int stage = 0;
    while (c0 < c_hi) {
        bool vis_n;
        float madd_n;
        unsigned ballot_n;
        const int64_t c0_n = next_step(c0 + kVecTile, vis_n, madd_n, ballot_n);
        if (c0_n < c_hi) load_step(c0_n, stage ^ 1);
        cp_async_commit();
        cp_async_wait_1();
        __syncthreads();
        const unsigned char* ks = k_s + stage * kVecTile * k_stride;
        const unsigned char* vs = v_s + stage * kVecTile * v_stride;
        const int n_valid = static_cast<int>(min(static_cast<int64_t>(kVecTile), c_hi - c0));

#pragma unroll
        for (int rr = 0; rr < 2; ++rr) {
            const int row = warp + kWarps * rr;
            if (row >= n_rows) break;  // warp-uniform
            float s = -INFINITY;
            // Steps are 32 cells from cell_begin, so a step lies in one 128-cell key block.
            if (vis && (a.block_mask == nullptr || bsa_kept(a, c0, h0 + row, tp, p0))) {
                const float* q = q_s + row * D;
                const unsigned char* kr = ks + lane * k_stride;
                float dots[4] = {0, 0, 0, 0};  // 4 chains: FMA latency, not throughput
                for (int ch = 0; ch < k_chunks; ++ch) {
                    float kf[kEK];
                    chunk_to_float<KT>(*reinterpret_cast<const uint4*>(kr + ch * 16), kf);
#pragma unroll
                    for (int e = 0; e < kEK; ++e) dots[e % 4] += q[ch * kEK + e] * kf[e];
                }
                float dot = (dots[0] + dots[1]) + (dots[2] + dots[3]);
                if (a.softcap > 0) dot = a.softcap * tanhf(dot / a.softcap);
                s = dot + madd;
            }
            float mx = s;
            for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
            const float m_new = fmaxf(m[rr], mx);
            const float m_use = m_new == -INFINITY ? 0.0f : m_new;  // avoids -inf - -inf = NaN
            const float p = expf(s - m_use);
            float sum = p;
            for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
            const float alpha = expf(m[rr] - m_use);
            l[rr] = l[rr] * alpha + sum;
            m[rr] = m_new;
            p_s[row * kVecTile + lane] = p;
            if (lane == 0) alpha_s[row] = alpha;
        }
        __syncthreads();

#pragma unroll
        for (int i = 0; i < kMaxItems; ++i) {
            const int item = tid + i * kThreads;
            if (item >= n_items) break;
            const int row = item / v_chunks, ch = item % v_chunks;
            const float alpha = alpha_s[row];
#pragma unroll
            for (int e = 0; e < kEV; ++e) acc[i][e] *= alpha;
            const float* p = p_s + row * kVecTile;
            auto accumulate = [&](int j) {
                float vf[kEV];
                chunk_to_float<VT>(*reinterpret_cast<const uint4*>(vs + j * v_stride + ch * 16),
                                   vf);
#pragma unroll
                for (int e = 0; e < kEV; ++e) acc[i][e] += p[j] * vf[e];
            };
            if (ballot == 0xffffffffu) {  // a full step every cell of which is visible
#pragma unroll 8
                for (int j = 0; j < kVecTile; ++j) accumulate(j);
            } else {
                for (int j = 0; j < n_valid; ++j) {
                    if (ballot >> j & 1) accumulate(j);  // never read an invisible (unset) cell
                }
            }
        }
        __syncthreads();  // this stage is overwritten by the load two steps ahead
        c0 = c0_n;
        vis = vis_n;
        madd = madd_n;
        ballot = ballot_n;
        stage ^= 1;
    }

#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
        const int row = warp + kWarps * rr;
        if (row < n_rows && lane == 0) {
            l_s[row] = l[rr];
            m_s[row] = m[rr];
        }
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kMaxItems; ++i) {
        const int item = tid + i * kThreads;
        if (item >= n_items) break;
        const int row = item / v_chunks, ch = item % v_chunks;
        const int h = h0 + row;
        if (n_split == 1) {
            const float inv = l_s[row] > 0 ? 1.0f / l_s[row] : 0.0f;  // no visible key: zeros
            float* o = reinterpret_cast<float*>(reinterpret_cast<char*>(a.out) + t * a.out_nb2 +
                                                h * a.out_nb1) +
                       ch * kEV;
#pragma unroll
            for (int e = 0; e < kEV; ++e) o[e] = acc[i][e] * inv;
        } else {
            float* part =
                partial + ((static_cast<int64_t>(t) * a.n_head + h) * n_split + split) * (D + 2);
            if (ch == 0) {
                part[0] = m_s[row];
                part[1] = l_s[row];
            }
#pragma unroll
            for (int e = 0; e < kEV; ++e) part[2 + ch * kEV + e] = acc[i][e];
        }
    }
}

template <typename KT, typename VT>
void launch(CudaContext& ctx, const AttnArgs& a, int n_split, int tiles_per_split, float* partial) {
    static bool configured = false;  // once per instantiation: room for head_dim 256
    if (!configured) {
        SIFT_CUDA_CHECK(cudaFuncSetAttribute(attn_vec_kernel<KT, VT>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             static_cast<int>(vec_smem_bytes<KT, VT>(256))));
        configured = true;
    }
    const int head_chunks = (a.group + kVecRows - 1) / kVecRows;
    const dim3 grid(static_cast<unsigned>(a.n_tokens) * n_split, a.n_head_kv * head_chunks);
    attn_vec_kernel<KT, VT><<<grid, kThreads, vec_smem_bytes<KT, VT>(a.head_dim), ctx.stream>>>(
        a, n_split, tiles_per_split, head_chunks, partial);
    SIFT_CUDA_LAUNCH_CHECK();
}

}  // namespace

void attention_vec_launch(CudaContext& ctx, const AttnArgs& a, bool k_f16, bool v_f16, int n_split,
                          int tiles_per_split, float* partial) {
    if (k_f16 && v_f16) {
        launch<__half, __half>(ctx, a, n_split, tiles_per_split, partial);
    } else if (k_f16) {
        launch<__half, float>(ctx, a, n_split, tiles_per_split, partial);
    } else if (v_f16) {
        launch<float, __half>(ctx, a, n_split, tiles_per_split, partial);
    } else {
        launch<float, float>(ctx, a, n_split, tiles_per_split, partial);
    }
}

}  // namespace sift::cuda
