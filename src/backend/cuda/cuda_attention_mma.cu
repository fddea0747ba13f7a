// Prefill attention on tensor cores, FlashAttention-2 style: a block owns 128 query tokens of one
// query head (8 warps x 16 rows); K/V tiles of kBc cells stream through shared memory with
// cp.async double buffering; S = Q K^T and O += P V are mma.sync m16n8k16 (F16 operands, F32
// accumulators) and the softmax is online, in registers, one row pair per thread.
//
// Tiles are classified from per-32-cell summaries (sequence, position range): tiles no query of
// the block sees are never loaded (for a causal prompt, the upper triangle: half the work), tiles
// every query sees skip the per-(row, cell) checks, and only the rest (the diagonal, window
// edges, mixed batches, masks) evaluate the visibility rule per element.
#include <cuda_fp16.h>

#include "backend/cuda/cuda_attention.cuh"
#include "backend/cuda/cuda_mma.cuh"

namespace sift::cuda {
namespace {

constexpr int kBr = 128;  // query rows per block: 8 warps x 16 rows share each K/V tile
constexpr int kThreads = 256;
constexpr float kLog2e = 1.4426950408889634f;

enum TileClass { TILE_NONE = 0, TILE_ALL = 1, TILE_PARTIAL = 2 };

struct QuerySpan {
    int32_t seq, pos_min, pos_max;
};

// The CPU's classify(), over the spans of one tile.
template <int kBc>
__device__ __forceinline__ int tile_class(const AttnArgs& a, int n_spans, int tile,
                                          const QuerySpan& q) {
    int32_t seq = kSeqNone, pos_min = INT32_MAX, pos_max = INT32_MIN;
    bool has_empty = false;
#pragma unroll
    for (int i = 0; i < kBc / kSpanCells; ++i) {
        const int si = tile * (kBc / kSpanCells) + i;
        if (si >= n_spans) {
            has_empty = true;
            continue;
        }
        const CellSpan s = a.spans[si];
        has_empty |= s.has_empty != 0;
        if (s.seq == kSeqNone) continue;
        seq = seq == kSeqNone ? s.seq : (seq == s.seq ? seq : kSeqMixed);
        pos_min = min(pos_min, s.pos_min);
        pos_max = max(pos_max, s.pos_max);
    }
    if (seq == kSeqNone) return TILE_NONE;
    if (q.seq != kSeqMixed && seq != kSeqMixed && q.seq != seq) return TILE_NONE;
    if (pos_min > q.pos_max) return TILE_NONE;  // every cell in every query's future
    if (a.window > 0 && q.pos_min - pos_max >= a.window) return TILE_NONE;  // all too old
    const bool all = a.mask == nullptr && !has_empty && q.seq != kSeqMixed && q.seq == seq &&
                     pos_max <= q.pos_min && (a.window == 0 || q.pos_max - pos_min < a.window);
    return all ? TILE_ALL : TILE_PARTIAL;
}

// Block-sparse: the first tile at or after `tile` whose key block the bitmask kept_s keeps
// (n_tiles if none); masked blocks are jumped over 32 at a time, never walked tile by tile.
template <int kBc>
__device__ __forceinline__ int next_kept(const uint32_t* kept_s, int n_words, int tile,
                                         int n_tiles) {
    constexpr int kTilesPerBlock = kBsaBlock / kBc;
    const int kb = tile / kTilesPerBlock;
    int w = kb >> 5;
    if (w >= n_words) return n_tiles;
    unsigned bits = kept_s[w] & (~0u << (kb & 31));
    while (bits == 0) {
        if (++w >= n_words) return n_tiles;
        bits = kept_s[w];
    }
    const int kb_next = w * 32 + __ffs(bits) - 1;
    return kb_next == kb ? tile : min(n_tiles, kb_next * kTilesPerBlock);
}

// The next tile at or after `tile` that someone sees (and, block-sparse, whose block is kept).
template <int kBc>
__device__ __forceinline__ int next_tile(const AttnArgs& a, int n_spans, int n_tiles, int tile,
                                         const QuerySpan& q, const uint32_t* kept_s, int& cls) {
    const int n_words = (a.n_kblocks + 31) / 32;
    for (; tile < n_tiles; ++tile) {
        if (kept_s != nullptr) {
            tile = next_kept<kBc>(kept_s, n_words, tile, n_tiles);
            if (tile >= n_tiles) break;
        }
        cls = tile_class<kBc>(a, n_spans, tile, q);
        if (cls != TILE_NONE) return tile;
    }
    return n_tiles;
}

template <int D, int kBc>
__global__ void __launch_bounds__(kThreads) attn_mma_kernel(AttnArgs a) {
    constexpr int kStride = D + 8;  // halves; 16 bytes of padding: conflict-free ldmatrix
    constexpr int kChunks = D / 8;  // 16-byte chunks per row
    extern __shared__ __align__(16) unsigned char smem[];
    __half* q_s = reinterpret_cast<__half*>(smem);                          // [kBr][kStride]
    __half* k_s = q_s + kBr * kStride;                                      // [2][kBc][kStride]
    __half* v_s = k_s + 2 * kBc * kStride;                                  // [2][kBc][kStride]
    int32_t* cpos_s = reinterpret_cast<int32_t*>(v_s + 2 * kBc * kStride);  // [2][kBc]
    int32_t* cseq_s = cpos_s + 2 * kBc;                                     // [2][kBc]
    uint32_t* kept_s = reinterpret_cast<uint32_t*>(cseq_s + 2 * kBc);       // block-sparse bits
    __shared__ int32_t span_s[4][kBr / 32];  // per warp of tokens: seq min/max, pos min/max
    __shared__ int32_t first_s, last_s;

    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    // The last token tiles see the most cells under a causal mask: start them first.
    // Block-sparse: block i owns query block i of the mask, the batch's tokens at positions
    // [(p0 / 128 + i) * 128, + 128), so t0 may be negative (rows t < 0 are padding).
    const int qblk = gridDim.x - 1 - blockIdx.x;
    const int t0 = a.block_mask != nullptr ? qblk * kBr - a.q_pos[0] % kBsaBlock : qblk * kBr;
    const int h = blockIdx.y, g = h / a.group;
    const int n_cells = static_cast<int>(a.cell_end - a.cell_begin);
    const int n_spans = (n_cells + kSpanCells - 1) / kSpanCells;
    const int n_tiles = (n_cells + kBc - 1) / kBc;

    // Query span of the block's tokens (one warp per 32 tokens).
    {
        const int t = t0 + tid;
        const bool valid = tid < kBr && t >= 0 && t < a.n_tokens;
        int32_t smin = valid ? a.q_seq[t] : INT32_MAX, smax = valid ? a.q_seq[t] : INT32_MIN;
        int32_t pmin = valid ? a.q_pos[t] : INT32_MAX, pmax = valid ? a.q_pos[t] : INT32_MIN;
        for (int o = 16; o > 0; o >>= 1) {
            smin = min(smin, __shfl_xor_sync(0xffffffffu, smin, o));
            smax = max(smax, __shfl_xor_sync(0xffffffffu, smax, o));
            pmin = min(pmin, __shfl_xor_sync(0xffffffffu, pmin, o));
            pmax = max(pmax, __shfl_xor_sync(0xffffffffu, pmax, o));
        }
        if (lane == 0 && warp < kBr / 32) {
            span_s[0][warp] = smin;
            span_s[1][warp] = smax;
            span_s[2][warp] = pmin;
            span_s[3][warp] = pmax;
        }
        if (tid == 0) {
            first_s = n_tiles;
            last_s = -1;
        }
    }
    // Block-sparse: this (query block, head)'s mask row as bits, one ballot per 32 key blocks.
    if (a.block_mask != nullptr) {
        const int8_t* row =
            a.block_mask + (static_cast<int64_t>(h) * a.n_qblocks + qblk) * a.n_kblocks;
        for (int w = warp; w < (a.n_kblocks + 31) / 32; w += kThreads / 32) {
            const int n = w * 32 + lane;
            const unsigned bits = __ballot_sync(0xffffffffu, n < a.n_kblocks && row[n] != 0);
            if (lane == 0) kept_s[w] = bits;
        }
    }
    const uint32_t* kept = a.block_mask != nullptr ? kept_s : nullptr;
    // Q tile, pre-scaled, to F16 (rows past n_tokens are zeros).
    for (int i = tid; i < kBr * (D / 4); i += kThreads) {
        const int r = i / (D / 4), c4 = i % (D / 4);
        float4 v = make_float4(0, 0, 0, 0);
        if (t0 + r >= 0 && t0 + r < a.n_tokens) {
            v = *reinterpret_cast<const float4*>(reinterpret_cast<const char*>(a.q) +
                                                 static_cast<int64_t>(t0 + r) * a.q_nb2 +
                                                 h * a.q_nb1 + c4 * 16);
        }
        __half2* dst = reinterpret_cast<__half2*>(q_s + r * kStride + c4 * 4);
        dst[0] = __floats2half2_rn(v.x * a.scale, v.y * a.scale);
        dst[1] = __floats2half2_rn(v.z * a.scale, v.w * a.scale);
    }
    __syncthreads();
    QuerySpan qs;
    {
        int32_t smin = INT32_MAX, smax = INT32_MIN;  // warps past n_tokens hold the identities
        qs.pos_min = INT32_MAX;
        qs.pos_max = INT32_MIN;
        for (int w = 0; w < kBr / 32; ++w) {
            smin = min(smin, span_s[0][w]);
            smax = max(smax, span_s[1][w]);
            qs.pos_min = min(qs.pos_min, span_s[2][w]);
            qs.pos_max = max(qs.pos_max, span_s[3][w]);
        }
        qs.seq = smin == smax ? smin : kSeqMixed;
    }
    // The first and last tiles anyone sees, classified by all threads at once, so the
    // sequential search for the next tile never walks the (causal) invisible tail.
    for (int i = tid; i < n_tiles; i += kThreads) {
        const int kb = i / (kBsaBlock / kBc);
        if (kept != nullptr && (kept[kb >> 5] >> (kb & 31) & 1) == 0) continue;
        if (tile_class<kBc>(a, n_spans, i, qs) != TILE_NONE) {
            atomicMin(&first_s, i);
            atomicMax(&last_s, i);
        }
    }
    __syncthreads();
    const int tile_end = last_s + 1;

    // Rows of this thread: r0 = warp * 16 + lane / 4 and r0 + 8.
    const int r0 = warp * 16 + lane / 4;
    int32_t tpos[2], tseq[2];
    const float* mrow[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int t = t0 + r0 + 8 * i;
        const bool valid = t >= 0 && t < a.n_tokens;
        tpos[i] = valid ? a.q_pos[t] : 0;
        tseq[i] = valid ? a.q_seq[t] : -2;  // never matches a cell: padding rows see nothing
        mrow[i] = a.mask != nullptr && valid
                      ? reinterpret_cast<const float*>(reinterpret_cast<const char*>(a.mask) +
                                                       static_cast<int64_t>(t) * a.mask_nb1)
                      : nullptr;
    }

    const char* kbase = reinterpret_cast<const char*>(a.k) + g * a.k_nb1;
    const char* vbase = reinterpret_cast<const char*>(a.v) + g * a.v_nb1;
    auto load_tile = [&](int tile, int stage) {
        const int64_t c0 = a.cell_begin + static_cast<int64_t>(tile) * kBc;
        __half* ks = k_s + stage * kBc * kStride;
        __half* vs = v_s + stage * kBc * kStride;
        for (int i = tid; i < kBc * kChunks; i += kThreads) {
            const int r = i / kChunks, ch = i % kChunks;
            const bool valid = c0 + r < a.cell_end;
            const int64_t c = valid ? c0 + r : a.cell_begin;
            cp_async16(ks + r * kStride + ch * 8, kbase + c * a.k_nb2 + ch * 16, valid);
            cp_async16(vs + r * kStride + ch * 8, vbase + c * a.v_nb2 + ch * 16, valid);
        }
        for (int i = tid; i < kBc; i += kThreads) {
            const int64_t c = c0 + i;
            const bool valid = c < a.cell_end;
            cpos_s[stage * kBc + i] = valid ? a.cell_pos[c] : 0;
            cseq_s[stage * kBc + i] = valid ? a.cell_seq[c] : -1;
        }
    };

    float o[D / 8][4];
#pragma unroll
    for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0, 0};  // m in log2 units; l per-thread partial

    int cls = TILE_NONE;
    int tile = next_tile<kBc>(a, n_spans, tile_end, first_s, qs, kept, cls);
    if (tile < tile_end) load_tile(tile, 0);
    cp_async_commit();
    int stage = 0;
    while (tile < tile_end) {
        int next_cls = TILE_NONE;
        const int next = next_tile<kBc>(a, n_spans, tile_end, tile + 1, qs, kept, next_cls);
        if (next < tile_end) load_tile(next, stage ^ 1);
        cp_async_commit();
        cp_async_wait_1();
        __syncthreads();

        const __half* ks = k_s + stage * kBc * kStride;
        const __half* vs = v_s + stage * kBc * kStride;
        // S = Q K^T: 16 rows x kBc cells per warp.
        float s[kBc / 8][4];
#pragma unroll
        for (int n = 0; n < kBc / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0;
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
            uint32_t qa[4];
            ldmatrix_x4(qa, q_s + (warp * 16 + (lane % 16)) * kStride + kk * 16 + (lane / 16) * 8);
#pragma unroll
            for (int nn = 0; nn < kBc / 16; ++nn) {
                uint32_t kb[4];
                ldmatrix_x4(kb, ks + (nn * 16 + (lane & 7) + ((lane >> 4) << 3)) * kStride +
                                    kk * 16 + ((lane >> 3) & 1) * 8);
                mma_16816(s[2 * nn], qa, kb[0], kb[1]);
                mma_16816(s[2 * nn + 1], qa, kb[2], kb[3]);
            }
        }

        // Softcap, visibility (only on tiles that need it), online softmax (log2 domain).
        if (a.softcap > 0) {
#pragma unroll
            for (int n = 0; n < kBc / 8; ++n)
#pragma unroll
                for (int e = 0; e < 4; ++e) s[n][e] = a.softcap * tanhf(s[n][e] / a.softcap);
        }
        if (cls == TILE_PARTIAL) {
#pragma unroll
            for (int n = 0; n < kBc / 8; ++n) {
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int cell = n * 8 + 2 * (lane & 3) + (e & 1), ri = e >> 1;
                    const int32_t cs = cseq_s[stage * kBc + cell], cp = cpos_s[stage * kBc + cell];
                    if (!attn_visible(cs, cp, tseq[ri], tpos[ri], a.window)) {
                        s[n][e] = -INFINITY;
                    } else if (mrow[ri] != nullptr) {
                        s[n][e] += mrow[ri][static_cast<int64_t>(tile) * kBc + cell];
                    }
                }
            }
        }
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int n = 0; n < kBc / 8; ++n) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                s[n][e] *= kLog2e;
                mx[e >> 1] = fmaxf(mx[e >> 1], s[n][e]);
            }
        }
        float alpha[2], m_use[2];
#pragma unroll
        for (int ri = 0; ri < 2; ++ri) {
            mx[ri] = fmaxf(mx[ri], __shfl_xor_sync(0xffffffffu, mx[ri], 1));
            mx[ri] = fmaxf(mx[ri], __shfl_xor_sync(0xffffffffu, mx[ri], 2));
            const float m_new = fmaxf(m[ri], mx[ri]);
            m_use[ri] = m_new == -INFINITY ? 0.0f : m_new;  // avoids -inf - -inf = NaN
            alpha[ri] = exp2f(m[ri] - m_use[ri]);
            m[ri] = m_new;
            l[ri] *= alpha[ri];
        }
#pragma unroll
        for (int n = 0; n < kBc / 8; ++n) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const float p = exp2f(s[n][e] - m_use[e >> 1]);
                s[n][e] = p;
                l[e >> 1] += p;
            }
        }
#pragma unroll
        for (int i = 0; i < D / 8; ++i) {
            o[i][0] *= alpha[0];
            o[i][1] *= alpha[0];
            o[i][2] *= alpha[1];
            o[i][3] *= alpha[1];
        }

        // O += P V: P's accumulators are already the A fragments of the next mma.
#pragma unroll
        for (int kk = 0; kk < kBc / 16; ++kk) {
            uint32_t pa[4];
            pa[0] = pack_half2(s[2 * kk][0], s[2 * kk][1]);
            pa[1] = pack_half2(s[2 * kk][2], s[2 * kk][3]);
            pa[2] = pack_half2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            pa[3] = pack_half2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
            for (int dn = 0; dn < D / 16; ++dn) {
                uint32_t vb[4];
                ldmatrix_x4_trans(vb, vs +
                                          (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kStride +
                                          dn * 16 + (lane >> 4) * 8);
                mma_16816(o[2 * dn], pa, vb[0], vb[1]);
                mma_16816(o[2 * dn + 1], pa, vb[2], vb[3]);
            }
        }
        __syncthreads();  // this stage is overwritten by the load two tiles ahead
        tile = next;
        cls = next_cls;
        stage ^= 1;
    }

#pragma unroll
    for (int ri = 0; ri < 2; ++ri) {
        l[ri] += __shfl_xor_sync(0xffffffffu, l[ri], 1);
        l[ri] += __shfl_xor_sync(0xffffffffu, l[ri], 2);
        const int t = t0 + r0 + 8 * ri;
        if (t < 0 || t >= a.n_tokens) continue;
        const float inv = l[ri] > 0 ? 1.0f / l[ri] : 0.0f;  // no visible key: zeros
        float* out = reinterpret_cast<float*>(reinterpret_cast<char*>(a.out) +
                                              static_cast<int64_t>(t) * a.out_nb2 + h * a.out_nb1);
#pragma unroll
        for (int n = 0; n < D / 8; ++n) {
            *reinterpret_cast<float2*>(out + n * 8 + 2 * (lane & 3)) =
                make_float2(o[n][2 * ri] * inv, o[n][2 * ri + 1] * inv);
        }
    }
}

template <int D, int kBc>
void launch(CudaContext& ctx, const AttnArgs& a) {
    static_assert(kBr == kBsaBlock && kBsaBlock % kBc == 0, "block-sparse needs kBr = block");
    constexpr size_t kSmem = static_cast<size_t>(kBr + 4 * kBc) * (D + 8) * 2 + 4 * kBc * 4;
    // + the block-sparse bitmask: 4 bytes per 32 key blocks (128 bytes at 128K cells).
    const size_t smem =
        kSmem + (a.block_mask != nullptr ? static_cast<size_t>(a.n_kblocks + 31) / 32 * 4 : 0);
    SIFT_CHECK(smem <= ctx.smem_optin, "attention: {} key blocks exceed shared memory",
               a.n_kblocks);
    static size_t configured = 0;  // per instantiation (and per process: one device)
    if (smem > configured) {
        SIFT_CUDA_CHECK(cudaFuncSetAttribute(attn_mma_kernel<D, kBc>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             static_cast<int>(smem)));
        configured = smem;
    }
    const unsigned n_blocks =
        a.block_mask != nullptr ? static_cast<unsigned>(a.n_qblocks) : (a.n_tokens + kBr - 1) / kBr;
    const dim3 grid(n_blocks, a.n_head);
    attn_mma_kernel<D, kBc><<<grid, kThreads, smem, ctx.stream>>>(a);
    SIFT_CUDA_LAUNCH_CHECK();
}

}  // namespace

bool attention_mma_supported(int head_dim) {
    return head_dim == 64 || head_dim == 128 || head_dim == 256;
}

void attention_mma_launch(CudaContext& ctx, const AttnArgs& a) {
    // 64-cell tiles; 32 at head_dim 256, where O alone takes 128 registers a thread and two
    // 64-cell stages of K and V would leave one block per SM.
    switch (a.head_dim) {
        case 64:
            return launch<64, 64>(ctx, a);
        case 128:
            return launch<128, 64>(ctx, a);
        case 256:
            return launch<256, 32>(ctx, a);
        default:
            SIFT_CHECK(false, "attention: no tensor-core kernel for head_dim {}", a.head_dim);
    }
}

}  // namespace sift::cuda
