// The general attention kernel, used for decode (few query tokens, long cache) and for every shape
// the tensor-core kernel does not take. A block handles one token and up to 8 query heads of one
// KV head, so each K/V row read from memory serves the whole GQA group; the cells may be split
// across blocks (split-K), whose partial softmax states attention_combine merges.
//
// Per step of 32 cells (one per lane): visibility from pos/seq (a step nobody sees is skipped
// without touching K/V), its K and V rows into shared memory with 16-byte cp.async (double
// buffered: the next visible step loads while this one computes), one score per (head, cell)
// thread, an online-softmax update per head by one warp, then P V with each thread owning
// 16 bytes' worth of output columns of one head (shared by 2-4 threads, each summing a share of
// the step's cells, where a GQA group has too few columns to occupy the block).
//
// At short contexts the kernel is bound by the latency of its instruction chains, not by
// memory: a 0.6B decode at ~40 cells (8 blocks, one warp per scheduler) issued an instruction
// every 8.2 cycles, ~2,800 per warp, 13.8 us under ncu; P V on one warp was the longest chain.
//
// A Q8_0 K or V (a q8_0 KV cache: half the bytes of F16 per decoded token) arrives raw: its rows
// (34 bytes per 32 values, only 2-byte aligned) as the 16-byte aligned chunks that cover them,
// the chunk past the row's end trimmed by cp.async's source size. Each step is then unpacked
// once, for all the block's query heads, into F32 d * q: exactly the CPU's dequantized values
// (an F16 scale times an int8 is exact in F32). The dot products run the F32 code, which needs
// no conversion per head and, at 4 values per 16 bytes, spreads P V over all four warps.
#include <cuda_fp16.h>

#include "backend/cuda/cuda_attention.cuh"
#include "backend/cuda/cuda_launch.cuh"

namespace sift::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kQ8Block = 32;  // values per Q8_0 block
constexpr int kQ8Bytes = 34;  // F16 scale + 32 int8

// K or V held as Q8_0 blocks (a template argument beside __half and float).
struct q8_0_kv {};

// How one of K and V is staged: Elem is the element type of the shared-memory rows the dot
// products read (a Q8_0 side reads its unpacked F32 values).
template <typename T>
struct VecSide {
    using Elem = T;
    static constexpr bool kQ8 = false;
};
template <>
struct VecSide<q8_0_kv> {
    using Elem = float;
    static constexpr bool kQ8 = true;
};

// The 16-byte chunks that cover a Q8_0 row at any even offset from a 16-byte boundary (the raw
// row stride in shared memory is 16 bytes each).
__host__ __device__ inline int q8_row_bytes(int head_dim) {
    return head_dim / kQ8Block * kQ8Bytes;
}
__host__ __device__ inline int q8_chunks(int head_dim) {
    return (q8_row_bytes(head_dim) + 30) / 16;
}

// 16 bytes global -> shared, of which only the first `bytes` are read (the rest zero-filled).
__device__ __forceinline__ void cp_async16_n(void* dst, const void* src, int bytes) {
    const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src), "r"(bytes));
}

// Byte k of u (an int8 biased by 0x80) as F32, exactly: 0x4B0000XX is 2^23 + XX.
__device__ __forceinline__ float i8_to_float(uint32_t u, int k) {
    return __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7540 | k)) - 8388736.0f;  // 2^23 + 128
}

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

// Shared memory: q [kVecRows][D] F32, p [kVecRows][32], alpha/l/m [kVecRows], then the K and V
// sides (vec_side_bytes): F16/F32 steps [2 stages][32 cells][row bytes + 16] (padded: no bank
// conflicts); Q8_0 raw steps [2 stages][32 cells][16 q8_chunks bytes] and the unpacked step
// [32 cells][D F32 + 16 bytes].
size_t vec_header_bytes(int head_dim) {
    return (kVecRows * (head_dim + kVecTile + 3) * 4 + 15) / 16 * 16;
}
template <typename T>
size_t vec_side_bytes(int head_dim) {
    using Elem = typename VecSide<T>::Elem;
    const size_t row = head_dim * sizeof(Elem) + 16;
    if constexpr (VecSide<T>::kQ8) {
        return 2 * kVecTile * 16 * q8_chunks(head_dim) + kVecTile * row;
    } else {
        return 2 * kVecTile * row;
    }
}
template <typename KT, typename VT>
size_t vec_smem_bytes(int head_dim) {
    return vec_header_bytes(head_dim) + vec_side_bytes<KT>(head_dim) + vec_side_bytes<VT>(head_dim);
}

template <typename KT, typename VT>
__global__ void __launch_bounds__(kThreads)
    attn_vec_kernel(AttnArgs a, int n_split, int tiles_per_split, int head_chunks, float* partial) {
    pdl_prologue();
    using KE = typename VecSide<KT>::Elem;
    using VE = typename VecSide<VT>::Elem;
    constexpr bool kKQ8 = VecSide<KT>::kQ8, kVQ8 = VecSide<VT>::kQ8;
    constexpr int kEK = 16 / sizeof(KE), kEV = 16 / sizeof(VE);   // elements per 16-byte chunk
    constexpr int kMaxItems = kVecRows * (256 / kEV) / kThreads;  // PV outputs per thread
    const int D = a.head_dim;
    const int k_stride = D * static_cast<int>(sizeof(KE)) + 16;
    const int v_stride = D * static_cast<int>(sizeof(VE)) + 16;
    const int raw_stride = 16 * q8_chunks(D);

    extern __shared__ __align__(16) unsigned char smem[];
    float* q_s = reinterpret_cast<float*>(smem);  // [kVecRows][D], pre-scaled
    float* p_s = q_s + kVecRows * D;              // [kVecRows][kVecTile]
    float* alpha_s = p_s + kVecRows * kVecTile;   // [kVecRows]
    float* l_s = alpha_s + kVecRows;              // [kVecRows]
    float* m_s = l_s + kVecRows;                  // [kVecRows]
    // Per side: the stages (F16/F32 rows, or Q8_0 raw rows), then for Q8_0 the unpacked step
    // (k_u, v_u: F32 values).
    unsigned char* k_s = smem + (kVecRows * (D + kVecTile + 3) * 4 + 15) / 16 * 16;
    unsigned char* k_u = k_s + 2 * kVecTile * (kKQ8 ? raw_stride : k_stride);
    unsigned char* v_s =
        k_s + (kKQ8 ? 2 * kVecTile * raw_stride + kVecTile * k_stride : 2 * kVecTile * k_stride);
    unsigned char* v_u = v_s + 2 * kVecTile * (kVQ8 ? raw_stride : v_stride);

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
    // Raw Q8_0 rows: a warp per row, a lane per 16-byte chunk of the aligned span covering it.
    // The span may start up to 14 bytes before the row (inside the cache: its base is 16-byte
    // aligned); the chunk at the row's end reads only up to it; an invalid row reads nothing.
    const int q8_bytes = q8_row_bytes(D), n_chunks = q8_chunks(D);
    auto q8_row = [&](const char* base, int64_t nb2, int64_t c0, int r) {
        return base + (c0 + r < c_hi ? c0 + r : c0) * nb2;
    };
    auto load_raw = [&](const char* base, int64_t nb2, unsigned char* dst, int64_t c0) {
        for (int r = warp; r < kVecTile; r += kWarps) {
            const char* row = q8_row(base, nb2, c0, r);
            const int shift = static_cast<int>(reinterpret_cast<uintptr_t>(row) & 15);
            const int bytes = c0 + r < c_hi ? min(16, max(0, shift + q8_bytes - lane * 16)) : 0;
            if (lane < n_chunks)
                cp_async16_n(dst + r * raw_stride + lane * 16,
                             row - shift + (bytes > 0 ? lane * 16 : 0), bytes);
        }
    };
    // F16/F32 rows: `chunks` 16-byte chunks per cell, `stride` bytes apart in shared memory.
    auto load_rows = [&](const char* base, int64_t nb2, unsigned char* dst, int stride, int chunks,
                         int64_t c0) {
        for (int i = tid; i < kVecTile * chunks; i += kThreads) {
            const int r = i / chunks, ch = i % chunks;
            const bool valid = c0 + r < c_hi;
            cp_async16(dst + r * stride + ch * 16, base + (valid ? c0 + r : c0) * nb2 + ch * 16,
                       valid);
        }
    };
    auto load_step = [&](int64_t c0, int stage) {
        if constexpr (kKQ8) {
            load_raw(kbase, a.k_nb2, k_s + stage * kVecTile * raw_stride, c0);
        } else {
            load_rows(kbase, a.k_nb2, k_s + stage * kVecTile * k_stride, k_stride, k_chunks, c0);
        }
        if constexpr (kVQ8) {
            load_raw(vbase, a.v_nb2, v_s + stage * kVecTile * raw_stride, c0);
        } else {
            load_rows(vbase, a.v_nb2, v_s + stage * kVecTile * v_stride, v_stride, v_chunks, c0);
        }
    };
    // A raw Q8_0 step -> F32 d * q [32 cells][D] (row stride `stride`): 4 threads per cell, each
    // 16 values (half a block) at a time, read as 5 aligned words shifted into place (bytes read
    // past the block are shared memory of this block, and discarded).
    auto unpack = [&](const char* base, int64_t nb2, const unsigned char* raw, unsigned char* vals,
                      int stride, int64_t c0) {
        const int r = tid / 4;
        const int shift =
            static_cast<int>(reinterpret_cast<uintptr_t>(q8_row(base, nb2, c0, r)) & 15);
        const unsigned char* row = raw + r * raw_stride + shift;
        float* out = reinterpret_cast<float*>(vals + r * stride);
        for (int h = tid % 4; h < D / 16; h += 4) {
            const unsigned char* block = row + (h / 2) * kQ8Bytes;
            const float d = __half2float(*reinterpret_cast<const __half*>(block));
            const uintptr_t qs = reinterpret_cast<uintptr_t>(block + 2 + (h % 2) * 16);
            const uint32_t* w = reinterpret_cast<const uint32_t*>(qs & ~uintptr_t{3});
            const unsigned sh = static_cast<unsigned>(qs & 3) * 8;  // 0 or 16
            uint32_t word[5];
#pragma unroll
            for (int i = 0; i < 5; ++i) word[i] = w[i];
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const uint32_t u = __funnelshift_r(word[i], word[i + 1], sh) ^ 0x80808080u;
                const float4 f = make_float4(i8_to_float(u, 0) * d, i8_to_float(u, 1) * d,
                                             i8_to_float(u, 2) * d, i8_to_float(u, 3) * d);
                *reinterpret_cast<float4*>(out + h * 16 + i * 4) = f;
            }
        }
    };

    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0, 0};  // rows warp and warp + 4
    float acc[kMaxItems][kEV];
#pragma unroll
    for (int i = 0; i < kMaxItems; ++i)
#pragma unroll
        for (int e = 0; e < kEV; ++e) acc[i][e] = 0;
    const int n_items = n_rows * v_chunks;
    // P V: output item tid + i kThreads of a thread. With few items (GQA groups of 2-4 at head
    // dim 128: 32-64, one or two warps' worth) `parts` threads share each item, thread part p
    // summing the step's cells p, p + parts, ...; the parts are added after the last step. The
    // P V chain of a step is then 8-16 cells long, not 32, and every warp takes a share.
    const int n_pad = (n_items + 31) / 32 * 32;
    const int parts = n_pad <= kThreads / 2 ? kThreads / n_pad : 1;  // 4, 2 or 1
    const int part = parts > 1 ? tid / n_pad : 0, item0 = parts > 1 ? tid % n_pad : tid;

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
        if constexpr (kKQ8 || kVQ8) {
            // The previous step's reads of the unpacked buffers ended at its last barrier.
            if constexpr (kKQ8)
                unpack(kbase, a.k_nb2, k_s + stage * kVecTile * raw_stride, k_u, k_stride, c0);
            if constexpr (kVQ8)
                unpack(vbase, a.v_nb2, v_s + stage * kVecTile * raw_stride, v_u, v_stride, c0);
            __syncthreads();
        }
        const unsigned char* ks = kKQ8 ? k_u : k_s + stage * kVecTile * k_stride;
        const unsigned char* vs = kVQ8 ? v_u : v_s + stage * kVecTile * v_stride;
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
                    chunk_to_float<KE>(*reinterpret_cast<const uint4*>(kr + ch * 16), kf);
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
            const int item = item0 + i * kThreads;
            if (item >= n_items) break;
            const int row = item / v_chunks, ch = item % v_chunks;
            const float alpha = alpha_s[row];
#pragma unroll
            for (int e = 0; e < kEV; ++e) acc[i][e] *= alpha;
            const float* p = p_s + row * kVecTile;
            auto accumulate = [&](int j) {
                float vf[kEV];
                chunk_to_float<VE>(*reinterpret_cast<const uint4*>(vs + j * v_stride + ch * 16),
                                   vf);
#pragma unroll
                for (int e = 0; e < kEV; ++e) acc[i][e] += p[j] * vf[e];
            };
            if (ballot == 0xffffffffu) {  // a full step every cell of which is visible
#pragma unroll 8
                for (int j = part; j < kVecTile; j += parts) accumulate(j);
            } else {
                for (int j = part; j < n_valid; j += parts) {
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
    if (parts > 1) {  // the other parts' sums to shared memory (the K stages, done with)
        float* red = reinterpret_cast<float*>(k_s);  // [parts - 1][n_items][kEV]
        if (part > 0 && item0 < n_items) {
#pragma unroll
            for (int e = 0; e < kEV; ++e) red[((part - 1) * n_items + item0) * kEV + e] = acc[0][e];
        }
        __syncthreads();
        if (part == 0 && item0 < n_items) {
            for (int p = 1; p < parts; ++p) {
#pragma unroll
                for (int e = 0; e < kEV; ++e)
                    acc[0][e] += red[((p - 1) * n_items + item0) * kEV + e];
            }
        }
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kMaxItems; ++i) {
        const int item = item0 + i * kThreads;
        if (part > 0 || item >= n_items) break;
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
    launch_pdl(ctx, &attn_vec_kernel<KT, VT>, dim3(grid), dim3(kThreads),
               vec_smem_bytes<KT, VT>(a.head_dim), a, n_split, tiles_per_split, head_chunks,
               partial);
}

}  // namespace

bool attention_vec_reads(DType k, DType v, const AttnArgs& a) {
    // Q8_0 rows are read from the 16-byte boundary at or before them: the cache's base must be
    // one (cudaMalloc gives 256), its rows whole blocks (even offsets).
    auto q8_ok = [&](const void* p, int64_t nb1, int64_t nb2) {
        return a.head_dim % kQ8Block == 0 && reinterpret_cast<uintptr_t>(p) % 16 == 0 &&
               nb1 % 2 == 0 && nb2 % 2 == 0;
    };
    auto plain = [](DType t) { return t == DType::F16 || t == DType::F32; };
    if (plain(k) && plain(v)) return true;
    // Q8_0 beside Q8_0 or F16 (F32 beside Q8_0 would add instantiations for a rare mix).
    const bool types =
        (k == DType::Q8_0 || k == DType::F16) && (v == DType::Q8_0 || v == DType::F16);
    return types && (k != DType::Q8_0 || q8_ok(a.k, a.k_nb1, a.k_nb2)) &&
           (v != DType::Q8_0 || q8_ok(a.v, a.v_nb1, a.v_nb2));
}

void attention_vec_launch(CudaContext& ctx, const AttnArgs& a, DType k, DType v, int n_split,
                          int tiles_per_split, float* partial) {
    SIFT_CHECK(attention_vec_reads(k, v, a), "attention (CUDA): vec kernel cannot read {}/{} K/V",
               dtype_name(k), dtype_name(v));
    const bool k_f16 = k == DType::F16, v_f16 = v == DType::F16;
    if (k == DType::Q8_0 && v == DType::Q8_0) {
        launch<q8_0_kv, q8_0_kv>(ctx, a, n_split, tiles_per_split, partial);
    } else if (k == DType::Q8_0) {
        launch<q8_0_kv, __half>(ctx, a, n_split, tiles_per_split, partial);
    } else if (v == DType::Q8_0) {
        launch<__half, q8_0_kv>(ctx, a, n_split, tiles_per_split, partial);
    } else if (k_f16 && v_f16) {
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
