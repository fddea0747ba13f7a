// Op parity: the CUDA importance probe (attention_probe) against the CPU reference, with F16
// and F32 keys, GQA, two sequences, a window, a mask, softcap and the NoPE un-rotation.
// Bound: probabilities in [0, 1] from F32 logits summed in another order (and cos/sin of the
// un-rotation in double on both): 1e-5 absolute.
#include <gtest/gtest.h>

#include <random>

#include "backend/cuda/cuda_ops.h"
#include "tensor/quant.h"
#include "tests/cuda/cuda_test_util.h"

namespace sift {
namespace {

using test::DeviceTensor;

struct ProbeCase {
    const char* name;
    int64_t head_dim = 128, n_head = 16, n_kv = 8, n_q = 8, n_cells = 3000;
    bool f16 = true;
    int n_seq = 1;
    int32_t window = 0;
    bool mask = false;
    float softcap = 0;
    bool unrope = false;
    bool neox = true;
    int32_t n_rot = 0;  // 0: head_dim
};

class ProbeParity : public ::testing::TestWithParam<ProbeCase> {};

TEST_P(ProbeParity, MatchesCpu) {
    SIFT_REQUIRE_CUDA();
    const ProbeCase& c = GetParam();
    std::mt19937 rng(17);
    const std::vector<float> q =
        test::random_normal(static_cast<size_t>(c.head_dim * c.n_head * c.n_q), 1, 0.3f);
    const std::vector<float> kf =
        test::random_normal(static_cast<size_t>(c.head_dim * c.n_kv * c.n_cells), 2);
    std::vector<uint8_t> k(kf.size() * (c.f16 ? 2 : 4));
    for (size_t i = 0; i < kf.size(); ++i) {
        if (c.f16) {
            const uint16_t h = fp32_to_fp16(kf[i]);
            std::memcpy(k.data() + 2 * i, &h, 2);
        } else {
            std::memcpy(k.data() + 4 * i, &kf[i], 4);
        }
    }
    std::vector<int32_t> cell_pos(static_cast<size_t>(c.n_cells)),
        cell_seq(static_cast<size_t>(c.n_cells));
    for (int64_t i = 0; i < c.n_cells; ++i) {
        cell_seq[static_cast<size_t>(i)] = static_cast<int32_t>(i % c.n_seq);
        cell_pos[static_cast<size_t>(i)] = static_cast<int32_t>(i / c.n_seq * 2);
    }
    cell_seq[5] = -1;
    std::vector<int32_t> q_pos, q_seq;
    for (int64_t t = 0; t < c.n_q; ++t) {
        q_seq.push_back(static_cast<int32_t>(t % c.n_seq));
        q_pos.push_back(cell_pos.back() - static_cast<int32_t>(rng() % 50));
    }
    std::vector<float> mask;
    if (c.mask) {
        mask.resize(static_cast<size_t>(c.n_q * c.n_cells));
        for (float& m : mask) m = rng() % 4 == 0 ? -INFINITY : 0.0f;
    }
    std::vector<float> init(static_cast<size_t>(c.n_q * c.n_cells));
    for (float& v : init) v = static_cast<float>(rng() % 100) / 4000.0f;

    const DType kt = c.f16 ? DType::F16 : DType::F32;
    auto host_inputs = [&](AttentionInputs& in, Tensor& mask_t) {
        in.q =
            Tensor::view(const_cast<float*>(q.data()), DType::F32, {c.head_dim, c.n_head, c.n_q});
        in.k = Tensor::view(k.data(), kt, {c.head_dim, c.n_kv, c.n_cells});
        in.v = in.k;
        in.q_pos = Tensor::view(q_pos.data(), DType::I32, {c.n_q});
        in.q_seq = Tensor::view(q_seq.data(), DType::I32, {c.n_q});
        in.cell_pos = Tensor::view(cell_pos.data(), DType::I32, {c.n_cells});
        in.cell_seq = Tensor::view(cell_seq.data(), DType::I32, {c.n_cells});
        in.cell_end = c.n_cells;
        if (c.mask) {
            mask_t = Tensor::view(mask.data(), DType::F32, {c.n_cells, c.n_q});
            in.mask = &mask_t;
        }
    };
    AttentionParams params;
    params.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    params.window = c.window;
    params.softcap = c.softcap;
    RopeParams rope;
    rope.n_rot = c.n_rot > 0 ? c.n_rot : static_cast<int32_t>(c.head_dim);
    rope.neox = c.neox;
    rope.freq_base = 1e6f;

    AttentionInputs hin;
    Tensor hmask;
    host_inputs(hin, hmask);
    std::vector<float> ref = init;
    test::cpu_reference().attention_probe(hin, params, c.unrope ? &rope : nullptr,
                                          Tensor::view(ref.data(), DType::F32, {c.n_cells, c.n_q}));

    DeviceTensor dq(DType::F32, {c.head_dim, c.n_head, c.n_q}),
        dk(kt, {c.head_dim, c.n_kv, c.n_cells});
    DeviceTensor dqp(DType::I32, {c.n_q}), dqs(DType::I32, {c.n_q});
    DeviceTensor dcp(DType::I32, {c.n_cells}), dcs(DType::I32, {c.n_cells});
    DeviceTensor dmask(DType::F32, {c.n_cells, c.n_q}), dout(DType::F32, {c.n_cells, c.n_q});
    dq.upload(q.data());
    dk.upload(k.data());
    dqp.upload(q_pos.data());
    dqs.upload(q_seq.data());
    dcp.upload(cell_pos.data());
    dcs.upload(cell_seq.data());
    if (c.mask) dmask.upload(mask.data());
    dout.upload(init.data());
    AttentionInputs din;
    din.q = dq.t();
    din.k = dk.t();
    din.v = dk.t();
    din.q_pos = dqp.t();
    din.q_seq = dqs.t();
    din.cell_pos = dcp.t();
    din.cell_seq = dcs.t();
    din.cell_end = c.n_cells;
    if (c.mask) din.mask = &dmask.t();
    cuda::cuda_attention_probe(ctx, din, params, c.unrope ? &rope : nullptr, dout.t());
    const std::vector<float> got = dout.download<float>();
    ASSERT_EQ(got.size(), ref.size());
    double worst = 0;
    for (size_t i = 0; i < ref.size(); ++i)
        worst = std::max(worst, static_cast<double>(std::fabs(got[i] - ref[i])));
    EXPECT_LE(worst, 1e-5) << c.name;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ProbeParity,
    ::testing::Values(ProbeCase{"qwen3_shape"}, ProbeCase{"f32_keys", 64, 8, 2, 4, 777, false},
                      ProbeCase{"two_seqs_window_mask", 64, 8, 4, 6, 2000, true, 2, 300, true},
                      ProbeCase{"softcap_gqa8", 256, 8, 1, 3, 1500, true, 1, 0, false, 30.0f},
                      ProbeCase{"nope", 128, 16, 8, 8, 4096, true, 1, 0, false, 0, true},
                      ProbeCase{"nope_adjacent_partial", 128, 8, 4, 5, 1000, true, 1, 0, false, 0,
                                true, false, 64},
                      ProbeCase{"nope_neox_partial_f32", 64, 4, 2, 3, 700, false, 1, 0, false, 0,
                                true, true, 32},
                      // 20 queries x 6 heads per KV head: 120 dot products, several passes.
                      ProbeCase{"lookahead_many_queries", 128, 12, 2, 20, 2500, true, 2, 0, true}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace sift
