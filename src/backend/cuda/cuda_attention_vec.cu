// The general attention kernel, used for decode (few query tokens, long cache) and for every shape
// the tensor-core kernel does not take. A block handles one token and up to 8 query heads of one
// KV head, so each K/V row read from memory serves the whole GQA group; the cells may be split
// across blocks (split-K), whose partial softmax states attention_combine merges.
//
// Per step of 32 cells (one per lane): visibility from pos/seq (a step nobody sees is skipped
// without touching K/V), the K rows into shared memory with 16-byte loads, one score per
// (head, cell) thread, an online-softmax update per head by one warp, then P V with each thread
// owning 16 bytes' worth of output columns of one head and reading V rows with 16-byte loads.
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

template <typename KT, typename VT>
__global__ void __launch_bounds__(kThreads)
    attn_vec_kernel(AttnArgs a, int n_split, int tiles_per_split, int head_chunks, float* partial) {
    constexpr int kEK = 16 / sizeof(KT), kEV = 16 / sizeof(VT);   // elements per 16-byte chunk
    constexpr int kMaxItems = kVecRows * (256 / kEV) / kThreads;  // PV outputs per thread
    const int D = a.head_dim;
    const int k_stride = D * static_cast<int>(sizeof(KT)) + 16;  // padded: no bank conflicts

    extern __shared__ __align__(16) unsigned char smem[];
    float* q_s = reinterpret_cast<float*>(smem);  // [kVecRows][D], pre-scaled
    float* p_s = q_s + kVecRows * D;              // [kVecRows][kVecTile]
    float* alpha_s = p_s + kVecRows * kVecTile;   // [kVecRows]
    float* l_s = alpha_s + kVecRows;              // [kVecRows]
    float* m_s = l_s + kVecRows;                  // [kVecRows]
    unsigned char* k_s = smem + (kVecRows * (D + kVecTile + 3) * 4 + 15) / 16 * 16;

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
    const float* mrow =
        a.mask != nullptr
            ? reinterpret_cast<const float*>(reinterpret_cast<const char*>(a.mask) + t * a.mask_nb1)
            : nullptr;

    const int64_t span = static_cast<int64_t>(tiles_per_split) * kVecTile;
    const int64_t c_lo = a.cell_begin + split * span;
    const int64_t c_hi = min(a.cell_end, c_lo + span);

    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0, 0};  // rows warp and warp + 4
    float acc[kMaxItems][kEV];
#pragma unroll
    for (int i = 0; i < kMaxItems; ++i)
#pragma unroll
        for (int e = 0; e < kEV; ++e) acc[i][e] = 0;
    const int k_chunks = D / kEK, v_chunks = D / kEV;
    const int n_items = n_rows * v_chunks;

    for (int64_t c0 = c_lo; c0 < c_hi; c0 += kVecTile) {
        const int64_t c = c0 + lane;
        bool vis = false;
        float madd = 0;
        if (c < c_hi) {
            vis = attn_visible(a.cell_seq[c], a.cell_pos[c], ts, tp, a.window);
            if (vis && mrow != nullptr) {
                madd = mrow[c - a.cell_begin];
                vis = madd != -INFINITY;
            }
        }
        const unsigned ballot = __ballot_sync(0xffffffffu, vis);  // the same in every warp
        if (ballot == 0) continue;
        const int n_valid = static_cast<int>(min(static_cast<int64_t>(kVecTile), c_hi - c0));

        __syncthreads();  // the previous step's k_s and p_s are consumed
        for (int i = tid; i < kVecTile * k_chunks; i += kThreads) {
            const int r = i / k_chunks, ch = i % k_chunks;
            if (r < n_valid && (ballot >> r & 1)) {
                const uint4 v =
                    *reinterpret_cast<const uint4*>(reinterpret_cast<const char*>(a.k) +
                                                    (c0 + r) * a.k_nb2 + g * a.k_nb1 + ch * 16);
                *reinterpret_cast<uint4*>(k_s + r * k_stride + ch * 16) = v;
            }
        }
        __syncthreads();

#pragma unroll
        for (int rr = 0; rr < 2; ++rr) {
            const int row = warp + kWarps * rr;
            if (row >= n_rows) break;  // warp-uniform
            float s = -INFINITY;
            if (vis) {
                const float* q = q_s + row * D;
                const unsigned char* kr = k_s + lane * k_stride;
                float dot = 0;
                for (int ch = 0; ch < k_chunks; ++ch) {
                    float kf[kEK];
                    chunk_to_float<KT>(*reinterpret_cast<const uint4*>(kr + ch * 16), kf);
#pragma unroll
                    for (int e = 0; e < kEK; ++e) dot += q[ch * kEK + e] * kf[e];
                }
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
            const char* vbase = reinterpret_cast<const char*>(a.v) + g * a.v_nb1 + ch * 16;
            const float* p = p_s + row * kVecTile;
#pragma unroll 8
            for (int j = 0; j < kVecTile; ++j) {
                if (j >= n_valid) break;
                if (!(ballot >> j & 1)) continue;  // never read an invisible (maybe unset) cell
                const uint4 raw = *reinterpret_cast<const uint4*>(vbase + (c0 + j) * a.v_nb2);
                float vf[kEV];
                chunk_to_float<VT>(raw, vf);
#pragma unroll
                for (int e = 0; e < kEV; ++e) acc[i][e] += p[j] * vf[e];
            }
        }
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
    const int head_chunks = (a.group + kVecRows - 1) / kVecRows;
    const dim3 grid(static_cast<unsigned>(a.n_tokens) * n_split, a.n_head_kv * head_chunks);
    const size_t smem = (kVecRows * (a.head_dim + kVecTile + 3) * 4 + 15) / 16 * 16 +
                        kVecTile * (a.head_dim * sizeof(KT) + 16);
    attn_vec_kernel<KT, VT>
        <<<grid, kThreads, smem, ctx.stream>>>(a, n_split, tiles_per_split, head_chunks, partial);
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
