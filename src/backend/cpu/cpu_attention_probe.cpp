// The importance probe of speculative prefill on the CPU (ops.h attention_probe): few queries
// (the prompt's last tokens) against every cell, so the work is one pass over K. Three passes:
// logits per (query, head, cell) into scratch, each row's softmax max and sum, then the
// probabilities reduced by max over heads into the running maximum. Scratch grows with
// n_q x n_head x cells (64 MB at 8 queries, 16 heads, 128K cells), never with cells squared.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "core/check.h"
#include "tensor/quant.h"

namespace sift::cpu {
namespace {

constexpr int64_t kCellChunk = 256;

// Key row of (cell, kv head) as F32.
void load_key(const Tensor& k, int64_t cell, int64_t head, float* dst) {
    const uint8_t* src = static_cast<const uint8_t*>(k.data) + cell * k.nb[2] + head * k.nb[1];
    if (k.type == DType::F32) {
        std::memcpy(dst, src, static_cast<size_t>(k.ne[0]) * 4);
    } else {
        dequantize_row(k.type, src, dst, k.ne[0]);  // F16 or Q8_0
    }
}

// Rotates x (one head) by -pos: the inverse of rope at that position.
void unrotate(float* x, double pos, const RopeParams& p, const std::vector<double>& inv_freq) {
    const int half = p.n_rot / 2;
    const int64_t stride = p.neox ? 1 : 2, offset = p.neox ? half : 1;
    for (int i = 0; i < half; ++i) {
        const double theta = pos * inv_freq[static_cast<size_t>(i)];
        const float c = static_cast<float>(std::cos(theta)),
                    s = static_cast<float>(std::sin(theta));
        const int64_t i0 = i * stride, i1 = i0 + offset;
        const float x0 = x[i0], x1 = x[i1];
        x[i0] = x0 * c + x1 * s;
        x[i1] = -x0 * s + x1 * c;
    }
}

}  // namespace

void cpu_attention_probe(CpuContext& ctx, const AttentionInputs& in, const AttentionParams& params,
                         const RopeParams* unrope, Tensor probs_max) {
    const Tensor &q = in.q, &k = in.k;
    const int64_t head_dim = q.ne[0], n_head = q.ne[1], n_q = q.ne[2];
    const int64_t n_kv = k.ne[1], n_range = in.cell_end - in.cell_begin;
    SIFT_CHECK(q.type == DType::F32 && q.nb[0] == 4, "attention_probe: q must be F32");
    SIFT_CHECK((k.type == DType::F32 || k.type == DType::F16 || k.type == DType::Q8_0) &&
                   k.ne[0] == head_dim && k.nb[0] == dtype_traits(k.type).block_bytes &&
                   k.ne[2] >= in.cell_end,
               "attention_probe: K must be F32/F16/Q8_0 [head_dim, n_kv, cells]");
    SIFT_CHECK(n_kv > 0 && n_head % n_kv == 0, "attention_probe: {} heads over {} KV heads", n_head,
               n_kv);
    SIFT_CHECK(0 <= in.cell_begin && in.cell_begin <= in.cell_end, "attention_probe: cell range");
    SIFT_CHECK(probs_max.type == DType::F32 && probs_max.nb[0] == 4 && probs_max.ne[0] == n_range &&
                   probs_max.ne[1] == n_q,
               "attention_probe: probs_max must be F32 [cell_end - cell_begin, n_q]");
    SIFT_CHECK(in.q_pos.ne[0] == n_q && in.q_seq.ne[0] == n_q, "attention_probe: q_pos/q_seq");
    if (in.mask != nullptr) {
        SIFT_CHECK(
            in.mask->type == DType::F32 && in.mask->ne[0] == n_range && in.mask->ne[1] == n_q,
            "attention_probe: mask must be F32 [cell_end - cell_begin, n_q]");
    }
    if (unrope != nullptr) {
        SIFT_CHECK(unrope->n_rot > 0 && unrope->n_rot % 2 == 0 && unrope->n_rot <= head_dim,
                   "attention_probe: n_rot {}", unrope->n_rot);
    }
    if (n_range == 0 || n_q == 0) return;
    const int64_t group = n_head / n_kv;

    const std::vector<double> inv_freq =
        unrope == nullptr ? std::vector<double>{}
                          : rope_inv_freq(*unrope, unrope->freq_factors != nullptr
                                                       ? unrope->freq_factors->ptr<const float>()
                                                       : nullptr);
    std::vector<int32_t> qpos(static_cast<size_t>(n_q)), qseq(static_cast<size_t>(n_q));
    for (int64_t t = 0; t < n_q; ++t) {
        qpos[static_cast<size_t>(t)] = read_i32(in.q_pos, t);
        qseq[static_cast<size_t>(t)] = read_i32(in.q_seq, t);
    }
    auto visible = [&](int64_t t, int64_t c) {
        const int32_t cs = read_i32(in.cell_seq, c), cp = read_i32(in.cell_pos, c);
        const int32_t tp = qpos[static_cast<size_t>(t)];
        if (cs != qseq[static_cast<size_t>(t)] || cp > tp) return false;
        if (params.window > 0 && tp - cp >= params.window) return false;
        if (in.mask != nullptr) {
            const float m =
                *reinterpret_cast<const float*>(static_cast<const uint8_t*>(in.mask->data) +
                                                t * in.mask->nb[1] + (c - in.cell_begin) * 4);
            if (m != 0.0f) return false;
        }
        return true;
    };

    // Pass 1: logits [n_q * n_head][n_range], -inf where not visible.
    const int64_t n_rows = n_q * n_head;
    float* logits = ctx.shared_scratch.get<float>(n_rows * n_range);
    const int64_t n_chunks = (n_range + kCellChunk - 1) / kCellChunk;
    ctx.pool.parallel_for(n_chunks, 1, [&](int64_t b, int64_t e, int thread) {
        float* key = ctx.thread_scratch[thread].get<float>(head_dim);
        for (int64_t chunk = b; chunk < e; ++chunk) {
            const int64_t c0 = in.cell_begin + chunk * kCellChunk;
            const int64_t c1 = std::min(in.cell_end, c0 + kCellChunk);
            for (int64_t c = c0; c < c1; ++c) {
                bool any = false;
                for (int64_t t = 0; t < n_q; ++t) {
                    const bool vis = visible(t, c);
                    any = any || vis;
                    if (!vis)
                        for (int64_t h = 0; h < n_head; ++h)
                            logits[(t * n_head + h) * n_range + (c - in.cell_begin)] = -INFINITY;
                }
                if (!any) continue;
                for (int64_t g = 0; g < n_kv; ++g) {
                    load_key(k, c, g, key);
                    if (unrope != nullptr)
                        unrotate(key, read_i32(in.cell_pos, c), *unrope, inv_freq);
                    for (int64_t t = 0; t < n_q; ++t) {
                        if (!visible(t, c)) continue;
                        for (int64_t h = g * group; h < (g + 1) * group; ++h) {
                            const float* qv = reinterpret_cast<const float*>(
                                static_cast<const uint8_t*>(q.data) + h * q.nb[1] + t * q.nb[2]);
                            float dot = 0;
                            for (int64_t d = 0; d < head_dim; ++d) dot += qv[d] * key[d];
                            float s = dot * params.scale;
                            if (params.softcap > 0)
                                s = params.softcap * std::tanh(s / params.softcap);
                            logits[(t * n_head + h) * n_range + (c - in.cell_begin)] = s;
                        }
                    }
                }
            }
        }
    });
    // Pass 2: each (query, head) row's max and 1 / sum.
    std::vector<float> row_max(static_cast<size_t>(n_rows)), row_inv(static_cast<size_t>(n_rows));
    ctx.pool.parallel_for(n_rows, 1, [&](int64_t b, int64_t e, int) {
        for (int64_t r = b; r < e; ++r) {
            const float* l = logits + r * n_range;
            float m = -INFINITY;
            for (int64_t j = 0; j < n_range; ++j) m = std::max(m, l[j]);
            double sum = 0;
            if (m != -INFINITY)
                for (int64_t j = 0; j < n_range; ++j)
                    sum += std::exp(static_cast<double>(l[j] - m));
            row_max[static_cast<size_t>(r)] = m;
            row_inv[static_cast<size_t>(r)] = sum > 0 ? static_cast<float>(1.0 / sum) : 0.0f;
        }
    });
    // Pass 3: max over heads into the running maximum.
    ctx.pool.parallel_for(n_chunks, 1, [&](int64_t b, int64_t e, int) {
        for (int64_t chunk = b; chunk < e; ++chunk) {
            const int64_t j0 = chunk * kCellChunk, j1 = std::min(n_range, j0 + kCellChunk);
            for (int64_t t = 0; t < n_q; ++t) {
                float* out = reinterpret_cast<float*>(static_cast<uint8_t*>(probs_max.data) +
                                                      t * probs_max.nb[1]);
                for (int64_t j = j0; j < j1; ++j) {
                    float best = -1;
                    for (int64_t h = 0; h < n_head; ++h) {
                        const int64_t r = t * n_head + h;
                        const float l = logits[r * n_range + j];
                        if (l == -INFINITY) continue;
                        best = std::max(best, std::exp(l - row_max[static_cast<size_t>(r)]) *
                                                  row_inv[static_cast<size_t>(r)]);
                    }
                    if (best >= 0) out[j] = std::max(out[j], best);
                }
            }
        }
    });
}

}  // namespace sift::cpu
