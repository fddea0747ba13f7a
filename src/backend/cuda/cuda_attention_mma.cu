// Prefill attention on tensor cores, FlashAttention-2 style: a block owns 128 query tokens of one
// query head; K/V tiles of kBc cells stream through shared memory with cp.async double
// buffering; S = Q K^T and O += P V are mma.sync m16n8k16 (F16 operands, F32 accumulators) and
// the softmax is online, in registers. Each warp owns kMt row tiles of 16 rows (head_dim 64/128:
// 4 warps x 32 rows, as FlashAttention-2), so every K/V fragment loaded from shared memory feeds
// kMt mma's: with one row tile per warp the kernel is bound by ldmatrix traffic, not the tensor
// cores. head_dim 256 keeps 8 warps x 16 rows (its O alone takes 128 registers a row tile).
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

constexpr int kBr = 128;  // query rows per block: all warps share each K/V tile
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// 4 bytes global -> shared without registers (sizes under 16 bytes need .ca, through L1).
__device__ __forceinline__ void cp_async4(void* dst, const void* src) {
    const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(d), "l"(src));
}

__device__ __forceinline__ void prefetch_l1(const void* p) {
    asm volatile("prefetch.global.L1 [%0];\n" ::"l"(p));
}

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
        if (a.block_mask != nullptr) {
            tile = next_kept<kBc>(kept_s, n_words, tile, n_tiles);
            if (tile >= n_tiles) break;
        }
        cls = tile_class<kBc>(a, n_spans, tile, q);
        if (cls != TILE_NONE) return tile;
    }
    return n_tiles;
}

// Threads of a block with kMt row tiles (16 rows each) per warp.
constexpr int mma_threads(int kMt) {
    return kBr / (16 * kMt) * 32;
}

// Dynamic shared memory: Q, two stages of K and V, cell pos/seq per stage, token pos/seq.
template <int D, int kBc>
constexpr size_t mma_smem_bytes() {
    return static_cast<size_t>(kBr + 4 * kBc) * (D + 8) * 2 + 4 * kBc * 4 + 2 * kBr * 4;
}

template <int D, int kBc, int kMt>
__global__ void __launch_bounds__(mma_threads(kMt)) attn_mma_kernel(AttnArgs a, MmaSplit sp) {
    constexpr int kThreads = mma_threads(kMt);
    constexpr int kStride = D + 8;  // halves; 16 bytes of padding: conflict-free ldmatrix
    constexpr int kChunks = D / 8;  // 16-byte chunks per row
    // Q's A fragments stay in registers across tiles where they fit (16 per row tile at D = 64).
    constexpr bool kQRegs = kMt * D <= 128;
    extern __shared__ __align__(16) unsigned char smem[];
    __half* q_s = reinterpret_cast<__half*>(smem);                          // [kBr][kStride]
    __half* k_s = q_s + kBr * kStride;                                      // [2][kBc][kStride]
    __half* v_s = k_s + 2 * kBc * kStride;                                  // [2][kBc][kStride]
    int32_t* cpos_s = reinterpret_cast<int32_t*>(v_s + 2 * kBc * kStride);  // [2][kBc]
    int32_t* cseq_s = cpos_s + 2 * kBc;                                     // [2][kBc]
    int32_t* tpos_s = cseq_s + 2 * kBc;                                     // [kBr]
    int32_t* tseq_s = tpos_s + kBr;                                         // [kBr]
    uint32_t* kept_s = reinterpret_cast<uint32_t*>(tseq_s + kBr);           // block-sparse bits
    __shared__ int32_t span_s[4][kBr / 32];  // per warp of tokens: seq min/max, pos min/max
    __shared__ int32_t first_s, last_s;
    __shared__ QuerySpan qs_s;  // read from here in the main loop: registers go to O and S

    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    // The last token tiles see the most cells under a causal mask: start them first.
    // Block-sparse: block i owns query block i of the mask, the batch's tokens at positions
    // [(p0 / 128 + i) * 128, + 128), so t0 may be negative (rows t < 0 are padding).
    // Query blocks from sp.split_from on have sp.n_split blocks each, one per range of the
    // tiles they see (split-KV); they come last in the grid, so they start first.
    const int b = gridDim.x - 1 - blockIdx.x;
    const int qblk = b < sp.split_from ? b : sp.split_from + (b - sp.split_from) / sp.n_split;
    const int split = b < sp.split_from ? -1 : (b - sp.split_from) % sp.n_split;
    const int t0 = a.block_mask != nullptr ? qblk * kBr - a.q_pos[0] % kBsaBlock : qblk * kBr;
    const int h = blockIdx.y, g = h / a.group;
    const int n_cells = static_cast<int>(a.cell_end - a.cell_begin);
    const int n_spans = (n_cells + kSpanCells - 1) / kSpanCells;
    const int n_tiles = (n_cells + kBc - 1) / kBc;

    // Query span of the block's tokens (one warp per 32 tokens), and each token's pos/seq.
    static_assert(kThreads >= kBr, "one thread per query row");
    {
        const int t = t0 + tid;
        const bool valid = tid < kBr && t >= 0 && t < a.n_tokens;
        const int32_t ts = valid ? a.q_seq[t] : -2, tp = valid ? a.q_pos[t] : 0;
        int32_t smin = valid ? ts : INT32_MAX, smax = valid ? ts : INT32_MIN;
        int32_t pmin = valid ? tp : INT32_MAX, pmax = valid ? tp : INT32_MIN;
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
        if (tid < kBr) {
            tpos_s[tid] = tp;
            tseq_s[tid] = ts;  // -2 never matches a cell: padding rows see nothing
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
    // Q tile to F16, pre-scaled by scale log2 e (the softmax runs on exp2); rows past n_tokens
    // are zeros.
    const float qscale = a.scale * kLog2e;
    for (int i = tid; i < kBr * (D / 4); i += kThreads) {
        const int r = i / (D / 4), c4 = i % (D / 4);
        float4 v = make_float4(0, 0, 0, 0);
        if (t0 + r >= 0 && t0 + r < a.n_tokens) {
            v = *reinterpret_cast<const float4*>(reinterpret_cast<const char*>(a.q) +
                                                 static_cast<int64_t>(t0 + r) * a.q_nb2 +
                                                 h * a.q_nb1 + c4 * 16);
        }
        __half2* dst = reinterpret_cast<__half2*>(q_s + r * kStride + c4 * 4);
        dst[0] = __floats2half2_rn(v.x * qscale, v.y * qscale);
        dst[1] = __floats2half2_rn(v.z * qscale, v.w * qscale);
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
        if (tid == 0) qs_s = qs;
    }
    // The first and last tiles anyone sees, classified by all threads at once, so the
    // sequential search for the next tile never walks the (causal) invisible tail.
    for (int i = tid; i < n_tiles; i += kThreads) {
        const int kb = i / (kBsaBlock / kBc);
        if (a.block_mask != nullptr && (kept_s[kb >> 5] >> (kb & 31) & 1) == 0) continue;
        if (tile_class<kBc>(a, n_spans, i, qs) != TILE_NONE) {
            atomicMin(&first_s, i);
            atomicMax(&last_s, i);
        }
    }
    __syncthreads();
    int tile_begin = first_s, tile_end = last_s + 1;
    if (split >= 0) {  // an equal share of [first_s, last_s] (dense rows: of the work too)
        const int64_t len = max(0, tile_end - tile_begin);
        tile_end = tile_begin + static_cast<int>(len * (split + 1) / sp.n_split);
        tile_begin += static_cast<int>(len * split / sp.n_split);
    }

    // Rows of this thread: row0 + 16 mt + 8 ri for row tile mt < kMt and ri < 2.
    const int row0 = warp * 16 * kMt + lane / 4;
    uint32_t qf[kQRegs ? kMt : 1][kQRegs ? D / 16 : 1][4];
    if constexpr (kQRegs) {
#pragma unroll
        for (int mt = 0; mt < kMt; ++mt)
#pragma unroll
            for (int kk = 0; kk < D / 16; ++kk)
                ldmatrix_x4(qf[mt][kk], q_s + (warp * 16 * kMt + mt * 16 + (lane % 16)) * kStride +
                                            kk * 16 + (lane / 16) * 8);
    }

    // Each thread copies one 16-byte chunk column of rows r_ld + kLdRows j: one base pointer per
    // tile and constant steps, so no per-row addresses stay live across the loop.
    constexpr int kLdRows = kThreads / kChunks;  // rows per pass of the block
    static_assert(kThreads % kChunks == 0 && kBc % kLdRows == 0, "whole passes");
    const int r_ld = tid / kChunks, ch_ld = tid % kChunks;
    // Cell pos/seq only for tiles checked per element, asynchronously too: a plain load here
    // would stall the block at every tile.
    auto load_tile = [&](int tile, int stage, int tile_cls) {
        const int64_t c0 = a.cell_begin + static_cast<int64_t>(tile) * kBc + r_ld;
        const int64_t n_left = a.cell_end - c0;  // row r_ld + kLdRows j is a cell iff < n_left
        const char* kp = reinterpret_cast<const char*>(a.k) + g * a.k_nb1 + ch_ld * 16;
        const char* vp = reinterpret_cast<const char*>(a.v) + g * a.v_nb1 + ch_ld * 16;
        const char* k0 = kp + a.cell_begin * a.k_nb2;  // any readable address: src-size 0
        const char* v0 = vp + a.cell_begin * a.v_nb2;
        kp += c0 * a.k_nb2;
        vp += c0 * a.v_nb2;
        __half* ks = k_s + (stage * kBc + r_ld) * kStride + ch_ld * 8;
        __half* vs = v_s + (stage * kBc + r_ld) * kStride + ch_ld * 8;
#pragma unroll
        for (int j = 0; j < kBc / kLdRows; ++j) {
            const bool valid = j * kLdRows < n_left;
            cp_async16(ks + j * kLdRows * kStride, valid ? kp + j * kLdRows * a.k_nb2 : k0, valid);
            cp_async16(vs + j * kLdRows * kStride, valid ? vp + j * kLdRows * a.v_nb2 : v0, valid);
        }
        if (tile_cls != TILE_PARTIAL) return;
        for (int i = tid; i < kBc; i += kThreads) {
            const int64_t c = a.cell_begin + static_cast<int64_t>(tile) * kBc + i;
            if (c < a.cell_end) {
                cp_async4(cpos_s + stage * kBc + i, a.cell_pos + c);
                cp_async4(cseq_s + stage * kBc + i, a.cell_seq + c);
            } else {
                cpos_s[stage * kBc + i] = 0;
                cseq_s[stage * kBc + i] = -1;  // empty: never visible
            }
        }
    };

    float o[kMt][D / 8][4];
#pragma unroll
    for (int mt = 0; mt < kMt; ++mt)
#pragma unroll
        for (int i = 0; i < D / 8; ++i) o[mt][i][0] = o[mt][i][1] = o[mt][i][2] = o[mt][i][3] = 0;
    // Per row (mt, ri): m in log2 units; l a per-thread partial sum.
    float m[kMt][2], l[kMt][2];
#pragma unroll
    for (int mt = 0; mt < kMt; ++mt) {
        m[mt][0] = m[mt][1] = -INFINITY;
        l[mt][0] = l[mt][1] = 0;
    }

    int cls = TILE_NONE;
    int tile = next_tile<kBc>(a, n_spans, tile_end, tile_begin, qs_s, kept_s, cls);
    if (tile < tile_end) load_tile(tile, 0, cls);
    cp_async_commit();
    int stage = 0;
    while (tile < tile_end) {
        int next_cls = TILE_NONE;
        const int next = next_tile<kBc>(a, n_spans, tile_end, tile + 1, qs_s, kept_s, next_cls);
        // The spans the next search reads first, into L1 while this tile computes.
        if (lane == 0 && next + 1 < tile_end)
            prefetch_l1(a.spans + (next + 1) * (kBc / kSpanCells));
        if (next < tile_end) load_tile(next, stage ^ 1, next_cls);
        cp_async_commit();
        cp_async_wait_1();
        __syncthreads();

        const __half* ks = k_s + stage * kBc * kStride;
        const __half* vs = v_s + stage * kBc * kStride;
        // S = Q K^T: 16 kMt rows x kBc cells per warp; each K fragment feeds kMt mma's.
        float s[kMt][kBc / 8][4];
#pragma unroll
        for (int mt = 0; mt < kMt; ++mt)
#pragma unroll
            for (int n = 0; n < kBc / 8; ++n)
                s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0;
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
            uint32_t qa[kMt][4];
#pragma unroll
            for (int mt = 0; mt < kMt; ++mt) {
                if constexpr (kQRegs) {
#pragma unroll
                    for (int j = 0; j < 4; ++j) qa[mt][j] = qf[mt][kk][j];
                } else {
                    ldmatrix_x4(qa[mt], q_s + (warp * 16 * kMt + mt * 16 + (lane % 16)) * kStride +
                                            kk * 16 + (lane / 16) * 8);
                }
            }
#pragma unroll
            for (int nn = 0; nn < kBc / 16; ++nn) {
                uint32_t kb[4];
                ldmatrix_x4(kb, ks + (nn * 16 + (lane & 7) + ((lane >> 4) << 3)) * kStride +
                                    kk * 16 + ((lane >> 3) & 1) * 8);
#pragma unroll
                for (int mt = 0; mt < kMt; ++mt) {
                    mma_16816(s[mt][2 * nn], qa[mt], kb[0], kb[1]);
                    mma_16816(s[mt][2 * nn + 1], qa[mt], kb[2], kb[3]);
                }
            }
        }

        // Softcap, visibility (only on tiles that need it), online softmax; S is in log2 units
        // (Q carries log2 e), so softcap c becomes c log2 e and a mask value m becomes m log2 e.
        if (a.softcap > 0) {
            const float cap = a.softcap * kLog2e, inv_cap = 1.0f / cap;
#pragma unroll
            for (int mt = 0; mt < kMt; ++mt)
#pragma unroll
                for (int n = 0; n < kBc / 8; ++n)
#pragma unroll
                    for (int e = 0; e < 4; ++e) s[mt][n][e] = cap * tanhf(s[mt][n][e] * inv_cap);
        }
        if (cls == TILE_PARTIAL) {
            // Per cell column, then per row: the rows' pos/seq are the only state kept.
            int32_t tp[kMt][2], ts[kMt][2];
#pragma unroll
            for (int mt = 0; mt < kMt; ++mt) {
#pragma unroll
                for (int ri = 0; ri < 2; ++ri) {
                    tp[mt][ri] = tpos_s[row0 + 16 * mt + 8 * ri];
                    ts[mt][ri] = tseq_s[row0 + 16 * mt + 8 * ri];
                }
            }
#pragma unroll
            for (int n = 0; n < kBc / 8; ++n) {
#pragma unroll
                for (int e1 = 0; e1 < 2; ++e1) {
                    const int cell = stage * kBc + n * 8 + 2 * (lane & 3) + e1;
                    const int32_t cs = cseq_s[cell], cp = cpos_s[cell];
#pragma unroll
                    for (int mt = 0; mt < kMt; ++mt)
#pragma unroll
                        for (int ri = 0; ri < 2; ++ri)
                            if (!attn_visible(cs, cp, ts[mt][ri], tp[mt][ri], a.window))
                                s[mt][n][2 * ri + e1] = -INFINITY;
                }
            }
            if (a.mask != nullptr) {
                // Visible cells only (those past cell_end never are): S is finite there.
#pragma unroll
                for (int mt = 0; mt < kMt; ++mt) {
#pragma unroll
                    for (int ri = 0; ri < 2; ++ri) {
                        const int t = t0 + row0 + 16 * mt + 8 * ri;
                        if (t < 0 || t >= a.n_tokens) continue;
                        const float* mrow =
                            reinterpret_cast<const float*>(reinterpret_cast<const char*>(a.mask) +
                                                           static_cast<int64_t>(t) * a.mask_nb1) +
                            static_cast<int64_t>(tile) * kBc + 2 * (lane & 3);
#pragma unroll
                        for (int n = 0; n < kBc / 8; ++n) {
#pragma unroll
                            for (int e1 = 0; e1 < 2; ++e1) {
                                float& x = s[mt][n][2 * ri + e1];
                                if (x != -INFINITY) x += mrow[n * 8 + e1] * kLog2e;
                            }
                        }
                    }
                }
            }
        }
        float alpha[kMt][2], m_use[kMt][2];
#pragma unroll
        for (int mt = 0; mt < kMt; ++mt) {
            float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
            for (int n = 0; n < kBc / 8; ++n)
#pragma unroll
                for (int e = 0; e < 4; ++e) mx[e >> 1] = fmaxf(mx[e >> 1], s[mt][n][e]);
#pragma unroll
            for (int ri = 0; ri < 2; ++ri) {
                mx[ri] = fmaxf(mx[ri], __shfl_xor_sync(0xffffffffu, mx[ri], 1));
                mx[ri] = fmaxf(mx[ri], __shfl_xor_sync(0xffffffffu, mx[ri], 2));
                const float m_new = fmaxf(m[mt][ri], mx[ri]);
                m_use[mt][ri] = m_new == -INFINITY ? 0.0f : m_new;  // avoids -inf - -inf = NaN
                alpha[mt][ri] = exp2_ftz(m[mt][ri] - m_use[mt][ri]);
                m[mt][ri] = m_new;
                l[mt][ri] *= alpha[mt][ri];
            }
        }
        // O needs no rescaling when no row max of the warp moved (common once the max settles).
        bool same = true;
#pragma unroll
        for (int mt = 0; mt < kMt; ++mt)
            same = same && alpha[mt][0] == 1.0f && alpha[mt][1] == 1.0f;
        const bool rescale = !__all_sync(0xffffffffu, same);
        // P = exp2(S - m), straight into F16 A fragments (P's accumulator layout is the A
        // layout of the next mma); l sums the F32 values.
        uint32_t pa[kMt][kBc / 16][4];
#pragma unroll
        for (int mt = 0; mt < kMt; ++mt) {
#pragma unroll
            for (int n = 0; n < kBc / 8; ++n) {
                float p[4];
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    p[e] = exp2_ftz(s[mt][n][e] - m_use[mt][e >> 1]);
                    l[mt][e >> 1] += p[e];
                }
                pa[mt][n / 2][(n & 1) * 2] = pack_half2(p[0], p[1]);
                pa[mt][n / 2][(n & 1) * 2 + 1] = pack_half2(p[2], p[3]);
            }
            if (rescale) {
#pragma unroll
                for (int i = 0; i < D / 8; ++i) {
                    o[mt][i][0] *= alpha[mt][0];
                    o[mt][i][1] *= alpha[mt][0];
                    o[mt][i][2] *= alpha[mt][1];
                    o[mt][i][3] *= alpha[mt][1];
                }
            }
        }

        // O += P V; each V fragment feeds kMt mma's.
#pragma unroll
        for (int kk = 0; kk < kBc / 16; ++kk) {
#pragma unroll
            for (int dn = 0; dn < D / 16; ++dn) {
                uint32_t vb[4];
                ldmatrix_x4_trans(vb, vs +
                                          (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kStride +
                                          dn * 16 + (lane >> 4) * 8);
#pragma unroll
                for (int mt = 0; mt < kMt; ++mt) {
                    mma_16816(o[mt][2 * dn], pa[mt][kk], vb[0], vb[1]);
                    mma_16816(o[mt][2 * dn + 1], pa[mt][kk], vb[2], vb[3]);
                }
            }
        }
        __syncthreads();  // this stage is overwritten by the load two tiles ahead
        tile = next;
        cls = next_cls;
        stage ^= 1;
    }

#pragma unroll
    for (int mt = 0; mt < kMt; ++mt) {
#pragma unroll
        for (int ri = 0; ri < 2; ++ri) {
            float lr = l[mt][ri];
            lr += __shfl_xor_sync(0xffffffffu, lr, 1);
            lr += __shfl_xor_sync(0xffffffffu, lr, 2);
            const int r = row0 + 16 * mt + 8 * ri, t = t0 + r;
            if (split >= 0) {
                // The partial softmax state attention_combine merges: m (natural log units),
                // l, then the unnormalised O; rows outside the batch too (combine skips them).
                float* part =
                    sp.partial +
                    ((static_cast<int64_t>(qblk - sp.split_from) * kBr + r) * a.n_head + h) *
                        sp.n_split * (D + 2) +
                    static_cast<int64_t>(split) * (D + 2);
                if ((lane & 3) == 0) {
                    part[0] = m[mt][ri] * kLn2;  // -inf stays -inf: no visible key here
                    part[1] = lr;
                }
#pragma unroll
                for (int n = 0; n < D / 8; ++n) {
                    *reinterpret_cast<float2*>(part + 2 + n * 8 + 2 * (lane & 3)) =
                        make_float2(o[mt][n][2 * ri], o[mt][n][2 * ri + 1]);
                }
                continue;
            }
            if (t < 0 || t >= a.n_tokens) continue;
            const float inv = lr > 0 ? 1.0f / lr : 0.0f;  // no visible key: zeros
            float* out =
                reinterpret_cast<float*>(reinterpret_cast<char*>(a.out) +
                                         static_cast<int64_t>(t) * a.out_nb2 + h * a.out_nb1);
#pragma unroll
            for (int n = 0; n < D / 8; ++n) {
                *reinterpret_cast<float2*>(out + n * 8 + 2 * (lane & 3)) =
                    make_float2(o[mt][n][2 * ri] * inv, o[mt][n][2 * ri + 1] * inv);
            }
        }
    }
}

template <int D, int kBc, int kMt>
void launch(CudaContext& ctx, const AttnArgs& a, const MmaSplit& sp) {
    static_assert(kBr == kBsaBlock && kBsaBlock % kBc == 0, "block-sparse needs kBr = block");
    // + the block-sparse bitmask: 4 bytes per 32 key blocks (128 bytes at 128K cells).
    const size_t smem =
        mma_smem_bytes<D, kBc>() +
        (a.block_mask != nullptr ? static_cast<size_t>(a.n_kblocks + 31) / 32 * 4 : 0);
    SIFT_CHECK(smem <= ctx.smem_optin, "attention: {} key blocks exceed shared memory",
               a.n_kblocks);
    static size_t configured = 0;  // per instantiation (and per process: one device)
    if (smem > configured) {
        SIFT_CUDA_CHECK(cudaFuncSetAttribute(attn_mma_kernel<D, kBc, kMt>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             static_cast<int>(smem)));
        configured = smem;
    }
    const int n_blocks = attention_mma_qblocks(a);
    SIFT_CHECK(sp.n_split >= 1 && 0 <= sp.split_from && sp.split_from <= n_blocks &&
                   (sp.split_from == n_blocks || sp.partial != nullptr),
               "attention: bad split-KV plan");
    const dim3 grid(static_cast<unsigned>(sp.split_from + (n_blocks - sp.split_from) * sp.n_split),
                    a.n_head);
    attn_mma_kernel<D, kBc, kMt><<<grid, mma_threads(kMt), smem, ctx.stream>>>(a, sp);
    SIFT_CUDA_LAUNCH_CHECK();
}

}  // namespace

bool attention_mma_supported(int head_dim) {
    return head_dim == 64 || head_dim == 128 || head_dim == 256;
}

int attention_mma_qblocks(const AttnArgs& a) {
    return a.block_mask != nullptr ? a.n_qblocks : (a.n_tokens + kBr - 1) / kBr;
}

void attention_mma_launch(CudaContext& ctx, const AttnArgs& a, const MmaSplit& sp) {
    // 64-cell tiles and two row tiles per warp (4 warps: ~104 KB of shared memory and up to 255
    // registers a thread at head_dim 128, two blocks per SM). head_dim 256: one row tile per warp
    // (8 warps) and 32-cell tiles, where O alone takes 128 registers a thread and two 64-cell
    // stages of K and V would leave one block per SM.
    switch (a.head_dim) {
        case 64:
            return launch<64, 64, 2>(ctx, a, sp);
        case 128:
            return launch<128, 64, 2>(ctx, a, sp);
        case 256:
            return launch<256, 32, 1>(ctx, a, sp);
        default:
            SIFT_CHECK(false, "attention: no tensor-core kernel for head_dim {}", a.head_dim);
    }
}

}  // namespace sift::cuda
