// A q8_0 KV cache (ModelOptions kv_type_k / kv_type_v) on tiny synthetic models: greedy decoding
// picks the same tokens as with the F16 cache and the logits stay close; the cache takes the
// Q8_0 row bytes; a head_dim that is not whole Q8_0 blocks is refused at load.
//
// Tolerance: Q8_0 moves each K/V value by up to d/2 = amax/254 of its 32-value block, ~20x the
// rms error of F16 (2^-11 relative), and these random-weight models (weight_std 0.2, chosen so
// logits differ clearly between tokens) amplify it: measured up to 2.1% of the row's largest
// logit (qwen3 shape, K and V in Q8_0), 0.9% (gemma3 shape). 5% bounds that with margin; the
// op tests (tests/backend/kv_q8_test.cpp) pin the arithmetic exactly, this test the wiring.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>

#include "model/model.h"
#include "model/synthetic_writer.h"
#include "tests/model/tiny_shapes.h"
#include "tests/test_temp.h"

namespace sift {
namespace {

// arch, preset, name, layers, embd, heads, kv heads, head dim, ff, vocab, ctx, theta, eps, tied,
// swa: head_dim 32, one Q8_0 block per head row.
constexpr ModelShape kQwen3Hd32 = {"qwen3", "tiny", "tiny", 2,    128,   4,    2, 32,
                                   256,     320,    512,    1e4f, 1e-6f, true, 0};
constexpr ModelShape kGemma3Hd32 = {"gemma3", "tiny", "tiny", 6,    64,    4,    1, 32,
                                    128,      400,    512,    1e6f, 1e-6f, true, 8};
constexpr double kLogitTol = 0.05;  // x max |logit| of the row

class KvQ8Model : public testing::TestWithParam<const ModelShape*> {
  protected:
    void SetUp() override {
        path_ = test_temp_path("model.gguf");
        SyntheticWriteOptions w;
        w.weight_std = 0.2f;  // logits that differ clearly between tokens
        ASSERT_TRUE(synthetic_write(*GetParam(), *file_type_find("f32"), path_, w).ok());
        CpuBackendOptions b;
        b.n_threads = 2;
        backend_ = backend_cpu_create(b);
    }
    void TearDown() override { std::remove(path_.c_str()); }

    Result<std::unique_ptr<Model>> load(DType k, DType v) {
        ModelOptions o;
        o.n_ctx = 128;
        o.kv_type_k = k;
        o.kv_type_v = v;
        return Model::load(path_, *backend_, o);
    }

    // Logits of the prompt's last token, then of each of n greedy steps.
    std::vector<std::vector<float>> greedy(Model& m, int n) {
        std::mt19937 rng(3);
        const int32_t n_vocab = m.hparams().n_vocab;
        Batch prompt;
        for (int i = 0; i < 32; ++i)
            prompt.add(static_cast<int32_t>(rng() % n_vocab), i, 0, i == 31);
        std::vector<std::vector<float>> out;
        Result<std::vector<float>> logits = m.decode(prompt);
        for (int step = 0; logits.ok() && step < n; ++step) {
            out.push_back(*logits);
            const auto next = static_cast<int32_t>(
                std::max_element(logits->begin(), logits->end()) - logits->begin());
            Batch one;
            one.add(next, 32 + step, 0, true);
            logits = m.decode(one);
        }
        EXPECT_TRUE(logits.ok()) << logits.message();
        return out;
    }

    std::string path_;
    std::unique_ptr<Backend> backend_;
};

TEST_P(KvQ8Model, GreedyTokensAndLogitsMatchF16) {
    Result<std::unique_ptr<Model>> f16 = load(DType::F16, DType::F16);
    ASSERT_TRUE(f16.ok()) << f16.message();
    const std::vector<std::vector<float>> want = greedy(**f16, 24);
    const std::pair<DType, DType> configs[] = {
        {DType::Q8_0, DType::Q8_0}, {DType::Q8_0, DType::F16}, {DType::F16, DType::Q8_0}};
    for (auto [kt, vt] : configs) {
        Result<std::unique_ptr<Model>> m = load(kt, vt);
        ASSERT_TRUE(m.ok()) << m.message();
        EXPECT_EQ((*m)->kv().type_k(), kt);
        EXPECT_EQ((*m)->kv().type_v(), vt);
        const std::vector<std::vector<float>> got = greedy(**m, 24);
        ASSERT_EQ(got.size(), want.size());
        double worst = 0;
        for (size_t s = 0; s < got.size(); ++s) {
            const auto argmax = [](const std::vector<float>& x) {
                return std::max_element(x.begin(), x.end()) - x.begin();
            };
            ASSERT_EQ(argmax(got[s]), argmax(want[s])) << "greedy token differs at step " << s;
            double scale = 0, err = 0;
            for (size_t i = 0; i < want[s].size(); ++i) {
                scale = std::max(scale, static_cast<double>(std::fabs(want[s][i])));
                err = std::max(err, static_cast<double>(std::fabs(got[s][i] - want[s][i])));
            }
            worst = std::max(worst, err / scale);
        }
        std::printf("  k %s v %s: max logit diff %.3g of the row's max\n",
                    std::string(dtype_name(kt)).c_str(), std::string(dtype_name(vt)).c_str(),
                    worst);
        EXPECT_LE(worst, kLogitTol);
        EXPECT_GT(worst, 0.0) << "the Q8_0 cache must be in use";
    }
}

TEST_P(KvQ8Model, CacheTakesQ8RowBytes) {
    Result<std::unique_ptr<Model>> m = load(DType::Q8_0, DType::F16);
    ASSERT_TRUE(m.ok()) << m.message();
    const HParams& hp = (*m)->hparams();
    const uint64_t cells = static_cast<uint64_t>((*m)->n_ctx());
    const uint64_t kv = static_cast<uint64_t>(hp.kv_dim());
    // Per layer: K at 34 bytes per 32 values, V at 2 bytes per value.
    EXPECT_EQ((*m)->kv().bytes(),
              static_cast<uint64_t>(hp.n_layer) * cells * (kv / 32 * 34 + kv * 2));
}

INSTANTIATE_TEST_SUITE_P(Shapes, KvQ8Model, testing::Values(&kQwen3Hd32, &kGemma3Hd32),
                         [](const testing::TestParamInfo<const ModelShape*>& info) {
                             return std::string(info.param->arch);
                         });

TEST(KvQ8ModelLoad, HeadDimNotWholeBlocksIsAClearError) {
    const std::string path = test_temp_path("hd16.gguf");
    ASSERT_TRUE(synthetic_write(test::kTinyQwen3, *file_type_find("f32"), path, {}).ok());
    CpuBackendOptions b;
    b.n_threads = 1;
    std::unique_ptr<Backend> backend = backend_cpu_create(b);
    ModelOptions o;
    o.n_ctx = 64;
    o.kv_type_v = DType::Q8_0;
    Result<std::unique_ptr<Model>> m = Model::load(path, *backend, o);
    std::remove(path.c_str());
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.message().find("q8_0 needs head_dim a multiple of 32; this model's is 16"),
              std::string::npos)
        << m.message();
}

}  // namespace
}  // namespace sift
