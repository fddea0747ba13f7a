// CPU block-sparse selection (ops.h attention_block_select, ALGORITHMS.md 2): the reference the
// CUDA kernel is checked against, written for clarity; it also serves CPU prefills.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_context.h"
#include "backend/cpu/cpu_ops.h"
#include "core/check.h"
#include "tensor/quant.h"

namespace sift::cpu {

BlockGeometry block_geometry(const AttentionInputs& in, int32_t block) {
    SIFT_CHECK(block > 0, "block-sparse: block must be > 0, got {}", block);
    const int64_t n_tokens = in.q.ne[2];
    SIFT_CHECK(n_tokens > 0, "block-sparse: empty batch");
    BlockGeometry g;
    g.pos_first = read_i32(in.q_pos, 0);
    g.pos_last = read_i32(in.q_pos, n_tokens - 1);
    g.seq = read_i32(in.q_seq, 0);
    SIFT_CHECK(g.pos_first >= 0, "block-sparse: negative position {}", g.pos_first);
    for (int64_t t = 0; t < n_tokens; ++t) {
        SIFT_CHECK(read_i32(in.q_pos, t) == g.pos_first + t && read_i32(in.q_seq, t) == g.seq,
                   "block-sparse: the batch must be one sequence with contiguous positions");
    }
    g.m0 = g.pos_first / block;
    g.n_qblocks = g.pos_last / block - g.m0 + 1;
    g.n_kblocks = (in.cell_end - in.cell_begin + block - 1) / block;
    return g;
}

void check_block_mask(const Tensor& mask, const AttentionInputs& in, const BlockGeometry& g) {
    SIFT_CHECK(mask.type == DType::I8 && mask.nb[0] == 1 && mask.ne[0] == g.n_kblocks &&
                   mask.ne[1] == g.n_qblocks && mask.ne[2] == in.q.ne[1] && mask.ne[3] == 1,
               "block-sparse: mask must be I8 [{}, {}, {}], got [{}, {}, {}]", g.n_kblocks,
               g.n_qblocks, in.q.ne[1], mask.ne[0], mask.ne[1], mask.ne[2]);
}

void cpu_attention_block_select(CpuContext& ctx, const AttentionInputs& in,
                                const AttentionParams& params, const BlockSparseParams& bs,
                                int64_t n_qblocks_total, Tensor mask) {
    const Tensor &q = in.q, &k = in.k;
    SIFT_CHECK(q.type == DType::F32 && q.nb[0] == 4, "block-sparse: q must be F32");
    SIFT_CHECK((k.type == DType::F32 || k.type == DType::F16 || k.type == DType::Q8_0) &&
                   k.nb[0] == dtype_traits(k.type).block_bytes,
               "block-sparse: K must be F32/F16/Q8_0 with contiguous head rows");
    SIFT_CHECK(k.ne[0] == q.ne[0] && k.ne[1] > 0 && q.ne[1] % k.ne[1] == 0 &&
                   k.ne[2] >= in.cell_end && 0 <= in.cell_begin && in.cell_begin <= in.cell_end,
               "block-sparse: q/K shapes");
    SIFT_CHECK(bs.window >= 1 && bs.sink >= 0 && bs.last_full >= 0 && bs.alpha >= 0,
               "block-sparse: window >= 1, sink, last_full and alpha >= 0");
    const int64_t block = bs.block;
    const BlockGeometry g = block_geometry(in, bs.block);
    check_block_mask(mask, in, g);
    const int64_t hd = q.ne[0], n_head = q.ne[1], n_kv = k.ne[1], group = n_head / n_kv;

    // meanK [n_kblocks][n_kv][hd]: mean of the block's cells of the sequence up to pos_last.
    std::vector<float> mean_k(static_cast<size_t>(g.n_kblocks * n_kv * hd), 0.0f);
    ctx.pool.parallel_for(g.n_kblocks, 1, [&](int64_t begin, int64_t end, int thread) {
        float* key = ctx.thread_scratch[thread].get<float>(hd);
        for (int64_t n = begin; n < end; ++n) {
            float* dst = mean_k.data() + n * n_kv * hd;
            int64_t count = 0;
            const int64_t c_end = std::min(in.cell_end, in.cell_begin + (n + 1) * block);
            for (int64_t c = in.cell_begin + n * block; c < c_end; ++c) {
                if (read_i32(in.cell_seq, c) != g.seq || read_i32(in.cell_pos, c) > g.pos_last)
                    continue;
                ++count;
                for (int64_t h = 0; h < n_kv; ++h) {
                    dequantize_row(k.type,
                                   static_cast<const uint8_t*>(k.data) + c * k.nb[2] + h * k.nb[1],
                                   key, hd);
                    for (int64_t d = 0; d < hd; ++d) dst[h * hd + d] += key[d];
                }
            }
            if (count > 0) {
                for (int64_t i = 0; i < n_kv * hd; ++i) dst[i] /= static_cast<float>(count);
            }
        }
    });

    const int64_t n_tokens = q.ne[2];
    ctx.pool.parallel_for(n_head * g.n_qblocks, 1, [&](int64_t begin, int64_t end, int) {
        std::vector<float> s, score;
        for (int64_t item = begin; item < end; ++item) {
            const int64_t h = item / g.n_qblocks, m = item % g.n_qblocks, mg = g.m0 + m;
            int8_t* out = static_cast<int8_t*>(mask.data) + h * mask.nb[2] + m * mask.nb[1];
            std::fill(out, out + g.n_kblocks, int8_t{0});
            // Causal blocks n <= mg that the cache holds.
            const int64_t n_cand = std::min(mg + 1, g.n_kblocks);
            if (n_cand <= 0) continue;
            const bool full = mg >= n_qblocks_total - bs.last_full;
            const int64_t t_lo = std::max<int64_t>(0, mg * block - g.pos_first);
            const int64_t t_hi = std::min(n_tokens, (mg + 1) * block - g.pos_first);
            score.assign(static_cast<size_t>(n_cand), 0.0f);
            s.resize(static_cast<size_t>(n_cand));
            for (int64_t t = t_lo; t < t_hi && !full; ++t) {
                const float* qv = reinterpret_cast<const float*>(
                    static_cast<const uint8_t*>(q.data) + t * q.nb[2] + h * q.nb[1]);
                float mx = -INFINITY;
                for (int64_t n = 0; n < n_cand; ++n) {
                    const float* mk = mean_k.data() + (n * n_kv + h / group) * hd;
                    float dot = 0;
                    for (int64_t d = 0; d < hd; ++d) dot += qv[d] * mk[d];
                    s[static_cast<size_t>(n)] = dot * params.scale;
                    mx = std::max(mx, s[static_cast<size_t>(n)]);
                }
                for (int64_t n = 0; n < n_cand; ++n)
                    score[static_cast<size_t>(n)] += std::exp(s[static_cast<size_t>(n)] - mx);
            }
            const float best = *std::max_element(score.begin(), score.end());
            for (int64_t n = 0; n < n_cand; ++n) {
                const bool keep = full || n < bs.sink || mg - n < bs.window ||
                                  score[static_cast<size_t>(n)] >= bs.alpha * best;
                out[n] = keep ? 1 : 0;
            }
        }
    });
}

}  // namespace sift::cpu
