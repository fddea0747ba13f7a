// The importance probe (ops.h attention_probe) against a double-precision softmax written from
// the contract: max over heads of each visible cell's probability, folded into the running
// maximum; cells a query cannot see keep their old value. The NoPE variant (unrope) on keys
// stored after RoPE must equal the plain probe on the keys before RoPE.
//
// Bound: probabilities are in [0, 1]; the F32 logits are off by ~hd u sum|q k| (~1e-5 here), so
// each probability by a relative ~2e-5: 1e-4 absolute leaves margin.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "tensor/quant.h"
#include "tests/backend/backend_test_util.h"

namespace sift {
namespace {

struct ProbeCase {
    int64_t head_dim = 64, n_head = 8, n_kv = 2, n_q = 4, n_cells = 300;
    int32_t window = 0;
    float softcap = 0;
    bool f16 = true;
    int n_seq = 1;
    bool mask = false;
};

struct ProbeData {
    ProbeCase pc;
    std::vector<float> q, k;  // k as F32 values (rounded to F16 when f16)
    std::vector<uint8_t> k_bytes;
    std::vector<int32_t> q_pos, q_seq, cell_pos, cell_seq;
    std::vector<float> mask;
    std::vector<float> init;  // running maximum before the call [n_q][n_cells]

    explicit ProbeData(const ProbeCase& c, uint64_t seed) : pc(c) {
        q = test::random_floats(c.head_dim * c.n_head * c.n_q, seed, 0.3f);
        k = test::random_floats(c.head_dim * c.n_kv * c.n_cells, seed + 1, 1.0f);
        const size_t elt = c.f16 ? 2 : 4;
        k_bytes.resize(k.size() * elt);
        for (size_t i = 0; i < k.size(); ++i) {
            if (c.f16) {
                const uint16_t h = fp32_to_fp16(k[i]);
                std::memcpy(k_bytes.data() + 2 * i, &h, 2);
                k[i] = fp16_to_fp32(h);
            } else {
                std::memcpy(k_bytes.data() + 4 * i, &k[i], 4);
            }
        }
        std::mt19937 rng(static_cast<uint32_t>(seed));
        for (int64_t i = 0; i < c.n_cells; ++i) {
            cell_seq.push_back(static_cast<int32_t>(i % c.n_seq));
            cell_pos.push_back(static_cast<int32_t>(i / c.n_seq * 3));  // gapped positions
        }
        cell_seq[7] = -1;  // an empty cell
        for (int64_t t = 0; t < c.n_q; ++t) {
            q_seq.push_back(static_cast<int32_t>(t % c.n_seq));
            q_pos.push_back(cell_pos.back() - static_cast<int32_t>(rng() % 40));
        }
        if (c.mask) {
            mask.resize(static_cast<size_t>(c.n_q * c.n_cells), 0.0f);
            for (float& m : mask) m = rng() % 5 == 0 ? -INFINITY : 0.0f;
        }
        init.resize(static_cast<size_t>(c.n_q * c.n_cells));
        for (float& v : init) v = static_cast<float>(rng() % 100) / 2000.0f;  // [0, 0.05)
    }

    bool visible(int64_t t, int64_t c) const {
        if (cell_seq[c] != q_seq[t] || cell_pos[c] > q_pos[t]) return false;
        if (pc.window > 0 && q_pos[t] - cell_pos[c] >= pc.window) return false;
        return mask.empty() || mask[static_cast<size_t>(t * pc.n_cells + c)] == 0.0f;
    }

    std::vector<float> reference(float scale) const {
        std::vector<float> out = init;
        const int64_t group = pc.n_head / pc.n_kv;
        for (int64_t t = 0; t < pc.n_q; ++t) {
            std::vector<double> best(static_cast<size_t>(pc.n_cells), -1);
            for (int64_t h = 0; h < pc.n_head; ++h) {
                std::vector<double> l(static_cast<size_t>(pc.n_cells), -INFINITY);
                double m = -INFINITY;
                for (int64_t c = 0; c < pc.n_cells; ++c) {
                    if (!visible(t, c)) continue;
                    double dot = 0;
                    for (int64_t d = 0; d < pc.head_dim; ++d)
                        dot += static_cast<double>(
                                   q[static_cast<size_t>((t * pc.n_head + h) * pc.head_dim + d)]) *
                               k[static_cast<size_t>((c * pc.n_kv + h / group) * pc.head_dim + d)];
                    double s = dot * scale;
                    if (pc.softcap > 0) s = pc.softcap * std::tanh(s / pc.softcap);
                    l[static_cast<size_t>(c)] = s;
                    m = std::max(m, s);
                }
                double sum = 0;
                for (double v : l)
                    if (v != -INFINITY) sum += std::exp(v - m);
                for (int64_t c = 0; c < pc.n_cells; ++c)
                    if (l[static_cast<size_t>(c)] != -INFINITY)
                        best[static_cast<size_t>(c)] =
                            std::max(best[static_cast<size_t>(c)],
                                     std::exp(l[static_cast<size_t>(c)] - m) / sum);
            }
            for (int64_t c = 0; c < pc.n_cells; ++c)
                if (best[static_cast<size_t>(c)] >= 0)
                    out[static_cast<size_t>(t * pc.n_cells + c)] =
                        std::max(out[static_cast<size_t>(t * pc.n_cells + c)],
                                 static_cast<float>(best[static_cast<size_t>(c)]));
        }
        return out;
    }

    std::vector<float> run(cpu::CpuContext& ctx, float scale, const RopeParams* unrope) {
        AttentionInputs in;
        in.q = Tensor::view(q.data(), DType::F32, {pc.head_dim, pc.n_head, pc.n_q});
        in.k = Tensor::view(k_bytes.data(), pc.f16 ? DType::F16 : DType::F32,
                            {pc.head_dim, pc.n_kv, pc.n_cells});
        in.v = in.k;
        in.q_pos = Tensor::view(q_pos.data(), DType::I32, {pc.n_q});
        in.q_seq = Tensor::view(q_seq.data(), DType::I32, {pc.n_q});
        in.cell_pos = Tensor::view(cell_pos.data(), DType::I32, {pc.n_cells});
        in.cell_seq = Tensor::view(cell_seq.data(), DType::I32, {pc.n_cells});
        in.cell_end = pc.n_cells;
        Tensor mask_t;
        if (!mask.empty()) {
            mask_t = Tensor::view(mask.data(), DType::F32, {pc.n_cells, pc.n_q});
            in.mask = &mask_t;
        }
        AttentionParams params;
        params.scale = scale;
        params.window = pc.window;
        params.softcap = pc.softcap;
        std::vector<float> out = init;
        cpu::cpu_attention_probe(ctx, in, params, unrope,
                                 Tensor::view(out.data(), DType::F32, {pc.n_cells, pc.n_q}));
        return out;
    }
};

void expect_near_all(const std::vector<float>& got, const std::vector<float>& ref) {
    ASSERT_EQ(got.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(got[i], ref[i], 1e-4) << "at " << i;
}

TEST(AttentionProbe, MatchesTheSoftmaxMaxOverHeads) {
    const ProbeCase cases[] = {
        {},
        {.head_dim = 128, .n_head = 16, .n_kv = 8, .n_q = 8, .n_cells = 1000},
        {.n_head = 4, .n_kv = 4, .n_q = 3, .n_cells = 77, .f16 = false},
        {.n_q = 6, .n_cells = 500, .window = 60},
        {.n_q = 5, .n_cells = 400, .n_seq = 2, .mask = true},
        {.head_dim = 32, .n_head = 4, .n_kv = 1, .n_q = 2, .n_cells = 129, .softcap = 5.0f},
    };
    for (const auto isa : test::available_isas()) {
        cpu::CpuContext ctx(2, false, isa);
        uint64_t seed = 10;
        for (const ProbeCase& c : cases) {
            ProbeData data(c, seed++);
            const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
            expect_near_all(data.run(ctx, scale, nullptr), data.reference(scale));
        }
    }
}

// Keys stored after RoPE and un-rotated by the probe give the scores of the keys before RoPE.
TEST(AttentionProbe, UnropeRecoversPositionFreeScores) {
    for (const bool neox : {true, false}) {
        cpu::CpuContext ctx(2, false, cpu::cpu_isa_detect());
        ProbeCase c{.head_dim = 64, .n_head = 8, .n_kv = 2, .n_q = 4, .n_cells = 600, .f16 = false};
        ProbeData plain(c, 99);
        const float scale = 0.125f;
        const std::vector<float> expected = plain.run(ctx, scale, nullptr);

        ProbeData rotated(c, 99);
        RopeParams rope;
        rope.n_rot = 48;  // partial rotary: the last 16 dims pass through
        rope.neox = neox;
        rope.freq_base = 1e6f;
        Tensor kt =
            Tensor::view(rotated.k_bytes.data(), DType::F32, {c.head_dim, c.n_kv, c.n_cells});
        Tensor pos = Tensor::view(rotated.cell_pos.data(), DType::I32, {c.n_cells});
        cpu::cpu_rope(ctx, kt, pos, rope, kt);
        EXPECT_NE(rotated.k_bytes, plain.k_bytes);  // RoPE moved the keys
        expect_near_all(rotated.run(ctx, scale, &rope), expected);
    }
}

}  // namespace
}  // namespace sift
