// CPU attention: flash-style (online softmax over blocks of cells), so memory does not grow with
// the context, with GQA handled by processing all query heads of one KV head together.
//
// Work item = (query block, KV head, cell split). A query block is up to 64 query rows (tokens x
// the KV head's query heads). Its cells are visited in blocks of 64; each block is first
// classified against the query block from per-block summaries (sequence, position range): blocks
// nobody sees are skipped without touching K/V, blocks everybody sees skip the per-cell checks,
// and only the rest (the causal diagonal, window edges, mixed batches, masks) test each pair.
// With few items (decode) the cells are split across threads and the partial softmax states
// merged at the end. A block-sparse mask (ops.h) skips a cell block when no row of the item keeps
// its key block, and masks the rows that do not.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/cpu_attention_kernels.h"
#include "backend/cpu/cpu_ops.h"
#include "core/check.h"
#include "tensor/quant.h"

namespace sift::cpu {
namespace {

constexpr int64_t kCellBlock = 64;
constexpr int64_t kQueryRows = 128;
constexpr int32_t kSeqMixed = INT32_MIN;  // span holds several sequences
constexpr int32_t kSeqNone = -1;          // span holds no filled cell

void qk_scalar(const float* qt, const float* kb, int64_t n, int64_t head_dim, int64_t rows_pad,
               float* st) {
    for (int64_t j = 0; j < n; ++j) {
        for (int64_t i = 0; i < rows_pad; ++i) {
            float s = 0;
            for (int64_t d = 0; d < head_dim; ++d) s += kb[j * head_dim + d] * qt[d * rows_pad + i];
            st[j * rows_pad + i] = s;
        }
    }
}

void softmax_scalar(float* st, int64_t n, int64_t rows_pad, float* m, float* l, float* alpha) {
    for (int64_t i = 0; i < rows_pad; ++i) {
        float mx = -INFINITY;
        for (int64_t j = 0; j < n; ++j) mx = std::max(mx, st[j * rows_pad + i]);
        const float m_new = std::max(m[i], mx);
        const float m_use = m_new == -INFINITY ? 0.0f : m_new;  // avoids -inf - -inf = NaN
        float sum = 0;
        for (int64_t j = 0; j < n; ++j) {
            const float p = std::exp(st[j * rows_pad + i] - m_use);
            st[j * rows_pad + i] = p;
            sum += p;
        }
        alpha[i] = std::exp(m[i] - m_use);
        l[i] = l[i] * alpha[i] + sum;
        m[i] = m_new;
    }
}

void pv_scalar(const float* st, const float* vb, int64_t n, int64_t head_dim, int64_t rows,
               int64_t rows_pad, const float* alpha, float* o) {
    for (int64_t i = 0; i < rows; ++i) {
        for (int64_t d = 0; d < head_dim; ++d) {
            float s = o[i * head_dim + d] * alpha[i];
            for (int64_t j = 0; j < n; ++j) s += st[j * rows_pad + i] * vb[j * head_dim + d];
            o[i * head_dim + d] = s;
        }
    }
}

void f16_to_f32_scalar(const uint16_t* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(src[i]);
}

// What a group of tokens or cells covers, for whole-block visibility decisions.
struct Span {
    int32_t seq = kSeqNone;  // the one sequence, kSeqMixed or kSeqNone
    int32_t pos_min = INT32_MAX;
    int32_t pos_max = INT32_MIN;
    bool has_empty = false;  // cells only: some cell in the block is empty

    void add(int32_t s, int32_t p) {
        seq = seq == kSeqNone ? s : (seq == s ? s : kSeqMixed);
        pos_min = std::min(pos_min, p);
        pos_max = std::max(pos_max, p);
    }
};

enum class Visibility { VIS_NONE, VIS_ALL, VIS_PARTIAL };

Visibility classify(const Span& q, const Span& c, int32_t window, bool masked) {
    if (c.seq == kSeqNone) return Visibility::VIS_NONE;
    if (q.seq != kSeqMixed && c.seq != kSeqMixed && q.seq != c.seq) return Visibility::VIS_NONE;
    if (c.pos_min > q.pos_max) return Visibility::VIS_NONE;  // all cells in every query's future
    if (window > 0 && q.pos_min - c.pos_max >= window) return Visibility::VIS_NONE;  // all too old
    const bool all = !masked && !c.has_empty && q.seq != kSeqMixed && q.seq == c.seq &&
                     c.pos_max <= q.pos_min && (window == 0 || q.pos_max - c.pos_min < window);
    return all ? Visibility::VIS_ALL : Visibility::VIS_PARTIAL;
}

struct AttentionJob {
    const AttentionInputs* in;
    const AttentionParams* params;
    Tensor out;
    const AttentionKernels* kern;
    int64_t head_dim, n_head_kv, group, n_tokens;
    int64_t query_tokens;  // tokens per query block
    int64_t n_cell_blocks, blocks_per_split, n_split;
    const std::vector<Span>* query_spans;
    const std::vector<Span>* cell_spans;
    float* partial;  // n_split > 1: per item, m, l [max_rows] then o [max_rows, head_dim]
    int64_t max_rows;
    int64_t partial_stride;
    const BlockGeometry* bsa;  // block-sparse geometry when in->block_mask is set
};

// Whether the block mask keeps key block n for query head h of batch token t.
bool block_kept(const AttentionJob& job, int64_t n, int64_t t, int64_t h) {
    const Tensor& mask = *job.in->block_mask;
    const int64_t m = (job.bsa->pos_first + t) / job.in->mask_block - job.bsa->m0;
    return static_cast<const int8_t*>(mask.data)[h * mask.nb[2] + m * mask.nb[1] + n] != 0;
}

const uint8_t* kv_row(const Tensor& t, int64_t cell, int64_t head) {
    return static_cast<const uint8_t*>(t.data) + cell * t.nb[2] + head * t.nb[1];
}

// Converts rows [c0, c0 + n) of one KV head to F32 and prefetches the same rows of the next
// block: the head's rows are strided in the cache (the other heads sit between them), a pattern
// the hardware prefetcher follows poorly, and long-context decode is bound by this read.
void load_rows(const AttentionJob& job, const Tensor& t, int64_t c0, int64_t n, int64_t head,
               float* dst) {
    const int64_t row_bytes =
        job.head_dim / dtype_traits(t.type).block_size * dtype_traits(t.type).block_bytes;
    const int64_t next_end = std::min(job.in->cell_end, c0 + n + kCellBlock);
    for (int64_t j = 0; j < n; ++j) {
        if (c0 + n + j < next_end) {
            const uint8_t* next = kv_row(t, c0 + n + j, head);
            for (int64_t off = 0; off < row_bytes; off += 64) __builtin_prefetch(next + off);
        }
        const uint8_t* src = kv_row(t, c0 + j, head);
        if (t.type == DType::F32) {
            std::memcpy(dst + j * job.head_dim, src, static_cast<size_t>(job.head_dim) * 4);
        } else if (t.type == DType::F16) {
            job.kern->f16_to_f32(reinterpret_cast<const uint16_t*>(src), dst + j * job.head_dim,
                                 job.head_dim);
        } else {
            dequantize_row(DType::Q8_0, src, dst + j * job.head_dim, job.head_dim);
        }
    }
}

void run_item(const AttentionJob& job, int64_t qb, int64_t g, int64_t split,
              ScratchBuffer& scratch) {
    const AttentionInputs& in = *job.in;
    const AttentionParams& params = *job.params;
    const int64_t hd = job.head_dim, group = job.group;
    const int64_t t0 = qb * job.query_tokens;
    const int64_t nt = std::min(job.query_tokens, job.n_tokens - t0);
    const int64_t rows = nt * group;
    const int64_t rows_pad = (rows + 7) / 8 * 8;

    float* qt =
        scratch.get<float>(rows_pad * hd * 2 + kCellBlock * (rows_pad + 2 * hd) + 3 * rows_pad);
    float* o = qt + rows_pad * hd;
    float* st = o + rows_pad * hd;
    float* kb = st + kCellBlock * rows_pad;
    float* vb = kb + kCellBlock * hd;
    float* m = vb + kCellBlock * hd;
    float* l = m + rows_pad;
    float* alpha = l + rows_pad;

    // Query rows i = token (t0 + i / group), head (g * group + i % group), pre-scaled, transposed.
    for (int64_t i = 0; i < rows_pad; ++i) {
        const float* src = nullptr;
        if (i < rows) {
            src = reinterpret_cast<const float*>(static_cast<const uint8_t*>(in.q.data) +
                                                 (t0 + i / group) * in.q.nb[2] +
                                                 (g * group + i % group) * in.q.nb[1]);
        }
        for (int64_t d = 0; d < hd; ++d)
            qt[d * rows_pad + i] = src != nullptr ? src[d] * params.scale : 0.0f;
        m[i] = -INFINITY;
        l[i] = 0;
    }
    std::fill(o, o + rows_pad * hd, 0.0f);

    int32_t tok_seq[kQueryRows], tok_pos[kQueryRows];
    for (int64_t t = 0; t < nt; ++t) {
        tok_seq[t] = read_i32(in.q_seq, t0 + t);
        tok_pos[t] = read_i32(in.q_pos, t0 + t);
    }
    const Span& qspan = (*job.query_spans)[static_cast<size_t>(qb)];
    // Block-sparse: per row, whether the cell block's key block is kept.
    std::vector<uint8_t> row_kept(job.bsa != nullptr ? static_cast<size_t>(rows) : 0);
    const int64_t mblock = in.mask_block;
    const int64_t b_end = std::min(job.n_cell_blocks, (split + 1) * job.blocks_per_split);
    for (int64_t b = split * job.blocks_per_split; b < b_end; ++b) {
        const Visibility vis = classify(qspan, (*job.cell_spans)[static_cast<size_t>(b)],
                                        params.window, in.mask != nullptr);
        if (vis == Visibility::VIS_NONE) continue;
        const int64_t c0 = in.cell_begin + b * kCellBlock;
        const int64_t nc = std::min(kCellBlock, in.cell_end - c0);
        // One key block: decide per row, and skip the cell block when no row keeps it; a cell
        // block over several key blocks (block < 64 or not a multiple) decides per cell below.
        const int64_t kb_lo = b * kCellBlock / mblock, kb_hi = (b * kCellBlock + nc - 1) / mblock;
        bool rows_mixed = false;
        if (job.bsa != nullptr && kb_lo == kb_hi) {
            bool any = false, all = true;
            for (int64_t i = 0; i < rows; ++i) {
                const bool kept = block_kept(job, kb_lo, t0 + i / group, g * group + i % group);
                row_kept[static_cast<size_t>(i)] = kept;
                any |= kept;
                all &= kept;
            }
            if (!any) continue;
            rows_mixed = !all;
        }
        load_rows(job, in.k, c0, nc, g, kb);
        load_rows(job, in.v, c0, nc, g, vb);
        job.kern->qk(qt, kb, nc, hd, rows_pad, st);
        if (params.softcap > 0) {
            for (int64_t j = 0; j < nc; ++j) {
                for (int64_t i = 0; i < rows; ++i) {
                    float& s = st[j * rows_pad + i];
                    s = params.softcap * std::tanh(s / params.softcap);
                }
            }
        }
        if (vis == Visibility::VIS_PARTIAL) {
            for (int64_t j = 0; j < nc; ++j) {
                const int64_t c = c0 + j;
                const int32_t cs = read_i32(in.cell_seq, c), cp = read_i32(in.cell_pos, c);
                for (int64_t t = 0; t < nt; ++t) {
                    // Empty cells (seq < 0) are never visible, even to a token of sequence -1.
                    const bool visible = cs >= 0 && cs == tok_seq[t] && cp <= tok_pos[t] &&
                                         (params.window == 0 || tok_pos[t] - cp < params.window);
                    float add = visible ? 0.0f : -INFINITY;
                    if (visible && in.mask != nullptr) {
                        const auto* mrow = reinterpret_cast<const float*>(
                            static_cast<const uint8_t*>(in.mask->data) + (t0 + t) * in.mask->nb[1]);
                        add = mrow[c - in.cell_begin];
                    }
                    if (add != 0.0f) {
                        for (int64_t h = 0; h < group; ++h) st[j * rows_pad + t * group + h] += add;
                    }
                }
            }
        }
        if (rows_mixed) {
            for (int64_t i = 0; i < rows; ++i) {
                if (row_kept[static_cast<size_t>(i)]) continue;
                for (int64_t j = 0; j < nc; ++j) st[j * rows_pad + i] = -INFINITY;
            }
        } else if (job.bsa != nullptr && kb_lo != kb_hi) {
            for (int64_t j = 0; j < nc; ++j) {
                for (int64_t i = 0; i < rows; ++i) {
                    if (!block_kept(job, (c0 + j - in.cell_begin) / mblock, t0 + i / group,
                                    g * group + i % group))
                        st[j * rows_pad + i] = -INFINITY;
                }
            }
        }
        job.kern->softmax(st, nc, rows_pad, m, l, alpha);
        job.kern->pv(st, vb, nc, hd, rows, rows_pad, alpha, o);
    }

    if (job.n_split == 1) {
        for (int64_t i = 0; i < rows; ++i) {
            auto* dst = reinterpret_cast<float*>(static_cast<uint8_t*>(job.out.data) +
                                                 (t0 + i / group) * job.out.nb[2] +
                                                 (g * group + i % group) * job.out.nb[1]);
            const float inv = l[i] > 0 ? 1.0f / l[i] : 0.0f;  // no visible key: zeros
            for (int64_t d = 0; d < hd; ++d) dst[d] = o[i * hd + d] * inv;
        }
        return;
    }
    float* part =
        job.partial + ((qb * job.n_head_kv + g) * job.n_split + split) * job.partial_stride;
    std::memcpy(part, m, static_cast<size_t>(rows) * 4);
    std::memcpy(part + job.max_rows, l, static_cast<size_t>(rows) * 4);
    std::memcpy(part + 2 * job.max_rows, o, static_cast<size_t>(rows * hd) * 4);
}

// Combines the splits' (m, l, o): weights e^(m_s - M) with M the largest m.
void merge_item(const AttentionJob& job, int64_t qb, int64_t g) {
    const int64_t hd = job.head_dim, group = job.group;
    const int64_t t0 = qb * job.query_tokens;
    const int64_t rows = std::min(job.query_tokens, job.n_tokens - t0) * group;
    const float* base = job.partial + (qb * job.n_head_kv + g) * job.n_split * job.partial_stride;
    for (int64_t i = 0; i < rows; ++i) {
        auto* dst = reinterpret_cast<float*>(static_cast<uint8_t*>(job.out.data) +
                                             (t0 + i / group) * job.out.nb[2] +
                                             (g * group + i % group) * job.out.nb[1]);
        float mx = -INFINITY;
        for (int64_t s = 0; s < job.n_split; ++s)
            mx = std::max(mx, base[s * job.partial_stride + i]);
        std::fill(dst, dst + hd, 0.0f);
        if (mx == -INFINITY) continue;
        float l = 0;
        for (int64_t s = 0; s < job.n_split; ++s) {
            const float* part = base + s * job.partial_stride;
            const float w = std::exp(part[i] - mx);
            if (w == 0) continue;
            l += part[job.max_rows + i] * w;
            for (int64_t d = 0; d < hd; ++d) dst[d] += part[2 * job.max_rows + i * hd + d] * w;
        }
        for (int64_t d = 0; d < hd; ++d) dst[d] /= l;
    }
}

const AttentionKernels& scalar_kernels() {
    static const AttentionKernels kernels{qk_scalar, softmax_scalar, pv_scalar, f16_to_f32_scalar};
    return kernels;
}

void check_inputs(const AttentionInputs& in, const Tensor& out) {
    const Tensor &q = in.q, &k = in.k, &v = in.v;
    SIFT_CHECK(q.type == DType::F32 && q.nb[0] == 4 && q.ne[3] == 1,
               "attention: q must be F32 [hd, heads, T]");
    SIFT_CHECK(out.type == DType::F32 && out.nb[0] == 4 && out.ne == q.ne,
               "attention: out must match q");
    for (const Tensor* t : {&k, &v}) {
        SIFT_CHECK(t->type == DType::F32 || t->type == DType::F16 || t->type == DType::Q8_0,
                   "attention: K/V must be F32, F16 or Q8_0");
        SIFT_CHECK(t->nb[0] == dtype_traits(t->type).block_bytes,
                   "attention: K/V head rows must be contiguous");
        SIFT_CHECK(t->ne[0] == q.ne[0] && t->ne[1] == k.ne[1] && t->ne[2] >= in.cell_end,
                   "attention: K/V shape");
    }
    SIFT_CHECK(k.ne[1] > 0 && q.ne[1] % k.ne[1] == 0, "attention: {} heads over {} KV heads",
               q.ne[1], k.ne[1]);
    SIFT_CHECK(0 <= in.cell_begin && in.cell_begin <= in.cell_end, "attention: cell range");
    for (const Tensor* t : {&in.q_pos, &in.q_seq}) {
        SIFT_CHECK(t->type == DType::I32 && t->ne[0] == q.ne[2],
                   "attention: q_pos/q_seq must be I32 [T]");
    }
    for (const Tensor* t : {&in.cell_pos, &in.cell_seq}) {
        SIFT_CHECK(t->type == DType::I32 && t->ne[0] >= in.cell_end,
                   "attention: cell_pos/cell_seq too short");
    }
    if (in.mask != nullptr) {
        SIFT_CHECK(in.mask->type == DType::F32 && in.mask->nb[0] == 4 &&
                       in.mask->ne[0] == in.cell_end - in.cell_begin && in.mask->ne[1] == q.ne[2],
                   "attention: mask must be F32 [cell_end - cell_begin, T]");
    }
}

// The one place attention picks its kernels and work split.
void attention_select(AttentionJob& job, CpuIsa isa, int n_threads) {
    // AVX2 inner loops where the CPU has them (cpu_isa_detect); the scalar ones are the reference.
    job.kern = isa == CpuIsa::ISA_AVX2 ? &attention_kernels_avx2() : &scalar_kernels();
    // ~64 query rows per item: the 64-cell K/V block converted to F32 is then reused by 64 rows
    // (8 vectors of 8), and the item's buffers (rows x head_dim, 64 x rows) stay in L2.
    job.query_tokens = std::clamp<int64_t>(kQueryRows / job.group, 1, job.n_tokens);
    const int64_t n_qb = (job.n_tokens + job.query_tokens - 1) / job.query_tokens;
    // Fewer (query block, KV head) items than 2 per thread (decode, verify): also split the
    // cells, into runs of at least 4 blocks so merging the partial softmax states stays cheap.
    const int64_t base_items = n_qb * job.n_head_kv;
    int64_t n_split = 1;
    if (base_items < 2 * n_threads && job.n_cell_blocks >= 8) {
        n_split = std::clamp<int64_t>((4 * n_threads + base_items - 1) / base_items, 1,
                                      job.n_cell_blocks / 4);
    }
    job.blocks_per_split = std::max<int64_t>(1, (job.n_cell_blocks + n_split - 1) / n_split);
    job.n_split =
        std::max<int64_t>(1, (job.n_cell_blocks + job.blocks_per_split - 1) / job.blocks_per_split);
}

}  // namespace

const AttentionKernels& attention_kernels_scalar() {
    return scalar_kernels();
}

void cpu_attention(CpuContext& ctx, const AttentionInputs& in, const AttentionParams& params,
                   Tensor out) {
    check_inputs(in, out);
    AttentionJob job{};
    job.in = &in;
    job.params = &params;
    job.out = out;
    job.head_dim = in.q.ne[0];
    job.n_head_kv = in.k.ne[1];
    job.group = in.q.ne[1] / job.n_head_kv;
    job.n_tokens = in.q.ne[2];
    if (job.n_tokens == 0) return;
    const int64_t n_cells = in.cell_end - in.cell_begin;
    job.n_cell_blocks = (n_cells + kCellBlock - 1) / kCellBlock;
    attention_select(job, ctx.isa, ctx.pool.size());
    const int64_t n_qb = (job.n_tokens + job.query_tokens - 1) / job.query_tokens;

    std::vector<Span> query_spans(static_cast<size_t>(n_qb)),
        cell_spans(static_cast<size_t>(job.n_cell_blocks));
    for (int64_t t = 0; t < job.n_tokens; ++t) {
        query_spans[static_cast<size_t>(t / job.query_tokens)].add(read_i32(in.q_seq, t),
                                                                   read_i32(in.q_pos, t));
    }
    for (int64_t c = 0; c < n_cells; ++c) {
        Span& span = cell_spans[static_cast<size_t>(c / kCellBlock)];
        const int32_t seq = read_i32(in.cell_seq, in.cell_begin + c);
        if (seq < 0) {
            span.has_empty = true;
        } else {
            span.add(seq, read_i32(in.cell_pos, in.cell_begin + c));
        }
    }
    job.query_spans = &query_spans;
    job.cell_spans = &cell_spans;
    BlockGeometry bsa;
    if (in.block_mask != nullptr) {
        bsa = block_geometry(in, in.mask_block);
        check_block_mask(*in.block_mask, in, bsa);
        job.bsa = &bsa;
    }

    const int64_t base_items = n_qb * job.n_head_kv;
    if (job.n_split > 1) {
        job.max_rows = job.query_tokens * job.group;
        job.partial_stride = job.max_rows * (2 + job.head_dim);
        job.partial = ctx.shared_scratch.get<float>(base_items * job.n_split * job.partial_stride);
    }

    const int64_t per_qb = job.n_head_kv * job.n_split;
    ctx.pool.parallel_for(n_qb * per_qb, 1, [&](int64_t begin, int64_t end, int thread) {
        for (int64_t item = begin; item < end; ++item) {
            // Last query blocks first: under a causal mask they see the most cells, and starting
            // the longest items first balances the threads at the end.
            const int64_t qb = n_qb - 1 - item / per_qb;
            run_item(job, qb, item / job.n_split % job.n_head_kv, item % job.n_split,
                     ctx.thread_scratch[thread]);
        }
    });
    if (job.n_split > 1) {
        ctx.pool.parallel_for(base_items, 1, [&](int64_t begin, int64_t end, int) {
            for (int64_t item = begin; item < end; ++item)
                merge_item(job, item / job.n_head_kv, item % job.n_head_kv);
        });
    }
}

}  // namespace sift::cpu
