// Block-sparse attention on the CPU (ops.h attention_block_select and AttentionInputs::
// block_mask): selection hand-checked on small caches (sink, window, diagonal, last-full, alpha
// 0 and 1, the argmax), against a double-precision reference of the scores on random data, and
// masked attention against dense attention under the equivalent per-cell F32 mask (one run per
// query head: the F32 mask is per token, the block mask per head), which must agree to F32
// rounding (the same cells are summed in the same order).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "tests/backend/backend_test_util.h"

namespace sift {
namespace {

// A prefill under the ops.h contract: cells [cell_begin, cell_begin + n_pos) hold positions
// 0..n_pos-1 of sequence 0, then `n_future` cells of later positions whose K/V hold a large
// stale value (placed, not yet computed: must not reach the block means). Cells before cell_begin
// are empty. The batch: positions [pos_first, pos_first + n_tokens).
struct Prefill {
    int64_t hd = 8, n_head = 2, n_kv = 1;
    int64_t cell_begin = 0, n_pos = 16, n_future = 0;
    int32_t pos_first = 0;
    int64_t n_tokens = 16;
    bool f16 = false;

    std::vector<float> q, k, v;  // q [hd, n_head, T]; k, v F32 [hd, n_kv, n_cells]
    std::vector<uint16_t> k16, v16;
    std::vector<int32_t> q_pos, q_seq, cell_pos, cell_seq;

    int64_t n_cells() const { return cell_begin + n_pos + n_future; }
    void init(uint64_t seed) {
        const int64_t nc = n_cells();
        q = test::random_floats(hd * n_head * n_tokens, seed);
        k = test::random_floats(hd * n_kv * nc, seed + 1);
        v = test::random_floats(hd * n_kv * nc, seed + 2);
        cell_pos.assign(static_cast<size_t>(nc), 0);
        cell_seq.assign(static_cast<size_t>(nc), -1);
        for (int64_t c = cell_begin; c < nc; ++c) {
            cell_pos[static_cast<size_t>(c)] = static_cast<int32_t>(c - cell_begin);
            cell_seq[static_cast<size_t>(c)] = 0;
        }
        for (int64_t c = cell_begin + n_pos; c < nc; ++c) {
            for (int64_t i = 0; i < hd * n_kv; ++i) {
                k[static_cast<size_t>(c * hd * n_kv + i)] = 300;
                v[static_cast<size_t>(c * hd * n_kv + i)] = 300;
            }
        }
        q_pos.resize(static_cast<size_t>(n_tokens));
        q_seq.assign(static_cast<size_t>(n_tokens), 0);
        for (int64_t t = 0; t < n_tokens; ++t)
            q_pos[static_cast<size_t>(t)] = pos_first + static_cast<int32_t>(t);
        k16.resize(k.size());
        v16.resize(v.size());
        for (size_t i = 0; i < k.size(); ++i) {
            k16[i] = fp32_to_fp16(k[i]);
            v16[i] = fp32_to_fp16(v[i]);
        }
    }
    AttentionInputs inputs() {
        const int64_t nc = n_cells();
        const DType kv = f16 ? DType::F16 : DType::F32;
        AttentionInputs in;
        in.q = Tensor::view(q.data(), DType::F32, {hd, n_head, n_tokens});
        in.k = Tensor::view(f16 ? static_cast<void*>(k16.data()) : k.data(), kv, {hd, n_kv, nc});
        in.v = Tensor::view(f16 ? static_cast<void*>(v16.data()) : v.data(), kv, {hd, n_kv, nc});
        in.q_pos = Tensor::view(q_pos.data(), DType::I32, {n_tokens});
        in.q_seq = Tensor::view(q_seq.data(), DType::I32, {n_tokens});
        in.cell_pos = Tensor::view(cell_pos.data(), DType::I32, {nc});
        in.cell_seq = Tensor::view(cell_seq.data(), DType::I32, {nc});
        in.cell_begin = cell_begin;
        in.cell_end = nc;
        return in;
    }
    float kv_value(const std::vector<float>& x, int64_t cell, int64_t head, int64_t d) const {
        const float f = x[static_cast<size_t>((cell * n_kv + head) * hd + d)];
        return f16 ? fp16_to_fp32(fp32_to_fp16(f)) : f;
    }
};

struct Mask {
    int64_t n_kb = 0, n_qb = 0, n_head = 0;
    std::vector<int8_t> bits;
    Tensor tensor() { return Tensor::view(bits.data(), DType::I8, {n_kb, n_qb, n_head}); }
    int8_t at(int64_t n, int64_t m, int64_t h) const {
        return bits[static_cast<size_t>((h * n_qb + m) * n_kb + n)];
    }
};

Mask make_mask(const Prefill& p, int64_t block) {
    Mask m;
    m.n_kb = (p.n_cells() - p.cell_begin + block - 1) / block;
    m.n_qb = (p.pos_first + p.n_tokens - 1) / block - p.pos_first / block + 1;
    m.n_head = p.n_head;
    m.bits.assign(static_cast<size_t>(m.n_kb * m.n_qb * m.n_head), 7);  // unwritten: 7
    return m;
}

Mask select(Prefill& p, const BlockSparseParams& bs, int64_t n_qblocks_total) {
    cpu::CpuContext ctx(2, false, cpu::CpuIsa::ISA_SCALAR);
    Mask m = make_mask(p, bs.block);
    AttentionParams params;
    params.scale = 1.0f / std::sqrt(static_cast<float>(p.hd));
    const AttentionInputs in = p.inputs();
    cpu::cpu_attention_block_select(ctx, in, params, bs, n_qblocks_total, m.tensor());
    return m;
}

// The ops.h selection scores in double: score[h][m][n] for n <= m (global m).
std::vector<double> ref_scores(const Prefill& p, int64_t block, int64_t h, int64_t mg) {
    const int64_t group = p.n_head / p.n_kv, g = h / group;
    const int32_t p_last = p.pos_first + static_cast<int32_t>(p.n_tokens) - 1;
    const double scale = 1.0 / std::sqrt(static_cast<double>(p.hd));
    std::vector<std::vector<double>> mean(static_cast<size_t>(mg + 1),
                                          std::vector<double>(static_cast<size_t>(p.hd), 0.0));
    for (int64_t n = 0; n <= mg; ++n) {
        int64_t count = 0;
        for (int64_t pos = n * block; pos < (n + 1) * block && pos <= p_last; ++pos) {
            ++count;
            for (int64_t d = 0; d < p.hd; ++d)
                mean[static_cast<size_t>(n)][static_cast<size_t>(d)] +=
                    p.kv_value(p.k, p.cell_begin + pos, g, d);
        }
        for (double& x : mean[static_cast<size_t>(n)]) x /= static_cast<double>(count);
    }
    std::vector<double> score(static_cast<size_t>(mg + 1), 0.0), s(score.size());
    for (int64_t t = 0; t < p.n_tokens; ++t) {
        if ((p.pos_first + t) / block != mg) continue;
        double mx = -INFINITY;
        for (int64_t n = 0; n <= mg; ++n) {
            double dot = 0;
            for (int64_t d = 0; d < p.hd; ++d)
                dot +=
                    static_cast<double>(p.q[static_cast<size_t>((t * p.n_head + h) * p.hd + d)]) *
                    mean[static_cast<size_t>(n)][static_cast<size_t>(d)];
            s[static_cast<size_t>(n)] = dot * scale;
            mx = std::max(mx, s[static_cast<size_t>(n)]);
        }
        for (int64_t n = 0; n <= mg; ++n)
            score[static_cast<size_t>(n)] += std::exp(s[static_cast<size_t>(n)] - mx);
    }
    return score;
}

TEST(AttentionBlockSelect, ForcedBlocksAndArgmax) {
    // 8 blocks of 4 cells; every key is 0 except block 2's keys (5 e_0); queries are e_0: each
    // query block m >= 2 scores block 2 at 4 (its 4 rows x e^0) and the rest at 4 e^-5*scale.
    Prefill p;
    p.hd = 4;
    p.n_head = 1;
    p.n_pos = 32;
    p.n_tokens = 32;
    p.init(1);
    for (float& x : p.k) x = 0;
    for (float& x : p.q) x = 0;
    for (int64_t c = 8; c < 12; ++c) p.k[static_cast<size_t>(c * 4)] = 10;  // scale 1/2: 5
    for (int64_t t = 0; t < 32; ++t) p.q[static_cast<size_t>(t * 4)] = 1;
    BlockSparseParams bs;
    bs.block = 4;
    bs.alpha = 0.12f;
    bs.sink = 1;
    bs.window = 2;
    bs.last_full = 2;
    const Mask m = select(p, bs, 8);
    for (int64_t mq = 0; mq < 8; ++mq) {
        for (int64_t n = 0; n < 8; ++n) {
            const bool expect = n <= mq && (n < 1 || mq - n < 2 || n == 2 || mq >= 6);
            EXPECT_EQ(m.at(n, mq, 0), expect ? 1 : 0) << "m " << mq << " n " << n;
        }
    }
    bs.alpha = 0;  // keeps every causal block
    const Mask all = select(p, bs, 8);
    for (int64_t mq = 0; mq < 8; ++mq)
        for (int64_t n = 0; n < 8; ++n) EXPECT_EQ(all.at(n, mq, 0), n <= mq ? 1 : 0);
}

TEST(AttentionBlockSelect, MatchesReferenceScores) {
    // GQA, a later micro-batch of the prompt (positions 40..99, blocks of 16), cells from 3,
    // stale keys in placed-but-future cells; alpha 1 keeps only the argmax and forced blocks.
    for (const float alpha : {0.3f, 0.85f, 1.0f}) {
        for (const bool f16 : {false, true}) {
            Prefill p;
            p.hd = 16;
            p.n_head = 4;
            p.n_kv = 2;
            p.cell_begin = 3;
            p.n_pos = 100;
            p.n_future = 20;
            p.pos_first = 40;
            p.n_tokens = 60;
            p.f16 = f16;
            p.init(7);
            BlockSparseParams bs;
            bs.block = 16;
            bs.alpha = alpha;
            bs.sink = 1;
            bs.window = 1;
            bs.last_full = 1;
            const int64_t total = 8;  // the prompt is 120 tokens: blocks 0..7, 7 full
            const Mask m = select(p, bs, total);
            ASSERT_EQ(m.n_qb, 5);  // blocks 2..6
            ASSERT_EQ(m.n_kb, 8);  // 120 cells past cell_begin
            for (int64_t h = 0; h < p.n_head; ++h) {
                for (int64_t mi = 0; mi < m.n_qb; ++mi) {
                    const int64_t mg = 2 + mi;
                    const std::vector<double> score = ref_scores(p, 16, h, mg);
                    const double best = *std::max_element(score.begin(), score.end());
                    for (int64_t n = 0; n < m.n_kb; ++n) {
                        const int8_t got = m.at(n, mi, h);
                        if (n > mg) {
                            EXPECT_EQ(got, 0);
                            continue;
                        }
                        const double r = score[static_cast<size_t>(n)] / best;
                        const bool forced = n < 1 || mg - n < 1 || mg >= total - 1;
                        if (!forced && std::fabs(r - alpha) < 1e-5) continue;  // a tie
                        EXPECT_EQ(got, forced || r >= alpha ? 1 : 0)
                            << "alpha " << alpha << " h " << h << " m " << mg << " n " << n;
                    }
                }
            }
        }
    }
}

// Masked attention == dense attention with the F32 mask of one head's block mask.
struct MaskedCase {
    std::string name;
    int64_t hd, n_head, n_kv, block, cell_begin, n_pos, n_future, pos_first, n_tokens;
    bool f16;
};

class MaskedAttention : public ::testing::TestWithParam<MaskedCase> {};

TEST_P(MaskedAttention, MatchesDenseWithCellMask) {
    const MaskedCase& c = GetParam();
    Prefill p;
    p.hd = c.hd;
    p.n_head = c.n_head;
    p.n_kv = c.n_kv;
    p.cell_begin = c.cell_begin;
    p.n_pos = c.n_pos;
    p.n_future = c.n_future;
    p.pos_first = static_cast<int32_t>(c.pos_first);
    p.n_tokens = c.n_tokens;
    p.f16 = c.f16;
    p.init(11);
    Mask m = make_mask(p, c.block);
    std::mt19937 rng(5);
    for (int64_t h = 0; h < m.n_head; ++h) {
        for (int64_t mi = 0; mi < m.n_qb; ++mi) {
            const int64_t mg = p.pos_first / c.block + mi;
            for (int64_t n = 0; n < m.n_kb; ++n) {
                // Diagonal kept (every row sees something); some rows all kept, some sparse.
                const bool keep = n == mg || (mi + h) % 3 == 0 || rng() % 2 == 0;
                m.bits[static_cast<size_t>((h * m.n_qb + mi) * m.n_kb + n)] = keep ? 1 : 0;
            }
        }
    }
    AttentionParams params;
    params.scale = 1.0f / std::sqrt(static_cast<float>(p.hd));
    const int64_t row = p.hd * p.n_head;
    for (const cpu::CpuIsa isa : test::available_isas()) {
        cpu::CpuContext ctx(2, false, isa);
        std::vector<float> got(static_cast<size_t>(row * p.n_tokens));
        AttentionInputs in = p.inputs();
        Tensor bm = m.tensor();
        in.block_mask = &bm;
        in.mask_block = static_cast<int32_t>(c.block);
        cpu::cpu_attention(ctx, in, params,
                           Tensor::view(got.data(), DType::F32, {p.hd, p.n_head, p.n_tokens}));
        const int64_t n_rel = in.cell_end - in.cell_begin;
        for (int64_t h = 0; h < p.n_head; ++h) {
            std::vector<float> cell_mask(static_cast<size_t>(n_rel * p.n_tokens));
            for (int64_t t = 0; t < p.n_tokens; ++t) {
                const int64_t mi = (p.pos_first + t) / c.block - p.pos_first / c.block;
                for (int64_t j = 0; j < n_rel; ++j)
                    cell_mask[static_cast<size_t>(t * n_rel + j)] =
                        m.at(j / c.block, mi, h) != 0 ? 0.0f : -INFINITY;
            }
            Tensor cm = Tensor::view(cell_mask.data(), DType::F32, {n_rel, p.n_tokens});
            AttentionInputs din = p.inputs();
            din.mask = &cm;
            std::vector<float> ref(got.size());
            cpu::cpu_attention(ctx, din, params,
                               Tensor::view(ref.data(), DType::F32, {p.hd, p.n_head, p.n_tokens}));
            double err = 0;
            for (int64_t t = 0; t < p.n_tokens; ++t) {
                for (int64_t d = 0; d < p.hd; ++d) {
                    const size_t i = static_cast<size_t>(t * row + h * p.hd + d);
                    ASSERT_TRUE(std::isfinite(got[i])) << c.name << " t " << t << " h " << h;
                    err = std::max(err, static_cast<double>(std::fabs(got[i] - ref[i])));
                }
            }
            EXPECT_LE(err, 1e-5) << c.name << " " << test::isa_tag(isa) << " head " << h;
        }
    }
}

std::vector<MaskedCase> masked_cases() {
    return {
        // name, hd, heads, kv, block, cell_begin, n_pos, n_future, pos_first, T, f16
        {"d64_g2_b128_first", 64, 4, 2, 128, 0, 300, 0, 0, 300, true},
        {"d128_g4_b128_later", 128, 8, 2, 128, 5, 500, 90, 200, 300, true},
        {"d64_g1_b128_f32", 64, 2, 2, 128, 0, 400, 0, 130, 270, false},
        {"d64_g2_b32_percell", 64, 4, 2, 32, 3, 333, 10, 57, 276, false},
        {"d64_g2_b96_straddle", 64, 4, 2, 96, 0, 500, 0, 100, 400, true},
        {"d128_g8_b128_decode", 128, 8, 1, 128, 0, 1000, 0, 990, 10, true},
    };
}

INSTANTIATE_TEST_SUITE_P(Cpu, MaskedAttention, ::testing::ValuesIn(masked_cases()),
                         [](const auto& info) { return info.param.name; });

// The dense tail of a micro-batch: its query blocks among the prompt's last `last_full`.
TEST(AttentionBlockSelect, DenseTailBlocks) {
    // A prompt of 10 query blocks, the last 2 dense.
    EXPECT_EQ(dense_tail_blocks(0, 3, 10, 2), 0);  // an early micro-batch
    EXPECT_EQ(dense_tail_blocks(4, 7, 10, 2), 0);  // just before the tail
    EXPECT_EQ(dense_tail_blocks(6, 9, 10, 2), 2);  // the last micro-batch holds the tail
    EXPECT_EQ(dense_tail_blocks(7, 8, 10, 2), 1);  // block 8 only
    EXPECT_EQ(dense_tail_blocks(9, 9, 10, 2), 1);  // a batch inside the tail
    EXPECT_EQ(dense_tail_blocks(0, 9, 10, 0), 0);  // no dense tail
    EXPECT_EQ(dense_tail_blocks(2, 4, 5, 8), 3);   // last_full past the prompt: all of it
}

TEST(AttentionBlockSelect, RejectsBadShapes) {
    Prefill p;
    p.init(3);
    cpu::CpuContext ctx(1, false, cpu::CpuIsa::ISA_SCALAR);
    BlockSparseParams bs;
    bs.block = 4;
    Mask m = make_mask(p, 4);
    m.n_qb += 1;  // wrong query-block count
    m.bits.resize(static_cast<size_t>(m.n_kb * m.n_qb * m.n_head));
    const AttentionInputs in = p.inputs();
    EXPECT_DEATH(cpu::cpu_attention_block_select(ctx, in, AttentionParams{}, bs, 4, m.tensor()),
                 "mask must be I8");
    p.q_pos[3] = 9;  // not contiguous
    Mask ok = make_mask(p, 4);
    EXPECT_DEATH(
        cpu::cpu_attention_block_select(ctx, p.inputs(), AttentionParams{}, bs, 4, ok.tensor()),
        "contiguous positions");
}

}  // namespace
}  // namespace sift
