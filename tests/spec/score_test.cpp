// Drafter scoring through the model's attention probe, on tiny synthetic models of each
// architecture family: the probe leaves logits unchanged, gives probabilities that behave as
// max-over-heads softmax rows must (each row sums to at least 1, nothing from the future or from
// other sequences), does not depend on micro-batching, and grows with the number of layers.
#include "spec/prefill/score.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "model/synthetic_writer.h"
#include "tests/test_temp.h"

namespace sift {
namespace {

// arch, preset, name, layers, embd, heads, kv heads, head dim, ff, vocab, ctx, theta, eps, tied,
// swa
constexpr ModelShape kQwen3 = {"qwen3", "tiny", "tiny", 3,    64,    4,    2, 16,
                               128,     320,    512,    1e4f, 1e-6f, true, 0};
constexpr ModelShape kLlama = {"llama", "tiny", "tiny", 2,    48,    3,    1, 16,
                               96,      320,    512,    1e4f, 1e-5f, true, 0};
constexpr ModelShape kGemma3 = {"gemma3", "tiny", "tiny", 6,    64,    4,    1, 32,
                                128,      400,    512,    1e6f, 1e-6f, true, 8};

class Score : public testing::TestWithParam<const ModelShape*> {
  protected:
    void SetUp() override {
        path_ = test_temp_path("model.gguf");
        SyntheticWriteOptions w;
        w.weight_std = 0.2f;
        ASSERT_TRUE(synthetic_write(*GetParam(), *file_type_find("f32"), path_, w).ok());
        CpuBackendOptions b;
        b.exact = true;
        b.n_threads = 2;
        backend_ = backend_cpu_create(b);
    }
    void TearDown() override { std::remove(path_.c_str()); }

    std::unique_ptr<Model> load(int32_t n_ubatch = 512) {
        ModelOptions o;
        o.n_ctx = 256;
        o.n_ubatch = n_ubatch;
        o.kv_type_k = o.kv_type_v = DType::F32;
        Result<std::unique_ptr<Model>> m = Model::load(path_, *backend_, o);
        EXPECT_TRUE(m.ok()) << m.message();
        return m.ok() ? std::move(*m) : nullptr;
    }

    static std::vector<int32_t> prompt(size_t n) {
        std::mt19937 rng(5);
        std::vector<int32_t> ids(n);
        for (int32_t& id : ids) id = static_cast<int32_t>(rng() % 300);
        return ids;
    }

    std::string path_;
    std::unique_ptr<Backend> backend_;
};

TEST_P(Score, ProbeKeepsLogitsAndGivesSoftmaxMaxima) {
    const std::vector<int32_t> ids = prompt(60);
    Batch batch;
    for (size_t i = 0; i < ids.size(); ++i) batch.add(ids[i], static_cast<int32_t>(i), 0, true);
    std::unique_ptr<Model> plain = load(), probed = load();
    Result<std::vector<float>> a = plain->decode(batch);
    AttentionProbe probe;
    probe.queries = {20, 41, 59};
    Result<std::vector<float>> b = probed->decode(batch, &probe);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(*a, *b);  // the probe only reads

    const size_t n_cells = static_cast<size_t>(probed->n_ctx());
    ASSERT_EQ(probe.probs_max.size(), probe.queries.size() * n_cells);
    const auto cell_pos = probed->kv().host_cell_pos();
    const auto cell_seq = probed->kv().host_cell_seq();
    for (size_t t = 0; t < probe.queries.size(); ++t) {
        double row = 0;
        for (size_t c = 0; c < n_cells; ++c) {
            const float p = probe.probs_max[t * n_cells + c];
            EXPECT_GE(p, 0.0f);
            EXPECT_LE(p, 1.0f + 1e-6f);
            if (cell_seq[c] != 0 || cell_pos[c] > probe.queries[t]) {
                EXPECT_EQ(p, 0.0f) << c;
            }
            row += p;
        }
        EXPECT_GE(row, 1.0 - 1e-4) << "a max over heads of softmax rows sums to at least 1";
    }
}

TEST_P(Score, MicroBatchingAndLayersBehave) {
    const std::vector<int32_t> ids = prompt(70);
    spec::ScoreParams p;
    p.n_lookahead = 8;
    std::unique_ptr<Model> whole = load(512), chunked = load(9), shallow = load();
    Result<spec::PromptScores> s1 = spec::score_prompt(*whole, ids, p);
    Result<spec::PromptScores> s2 = spec::score_prompt(*chunked, ids, p);
    p.n_layers = 1;
    Result<spec::PromptScores> s3 = spec::score_prompt(*shallow, ids, p);
    ASSERT_TRUE(s1.ok() && s2.ok() && s3.ok()) << s1.message();
    ASSERT_EQ(s1->scores.size(), ids.size());
    for (size_t j = 0; j < ids.size(); ++j) {
        EXPECT_NEAR(s1->scores[j], s2->scores[j], 1e-5f) << j;
        EXPECT_LE(s3->scores[j], s1->scores[j] + 1e-6f) << "max over fewer layers";
        EXPECT_GT(s1->scores[j], 0.0f) << "every prompt token is visible to the last queries";
    }
    // The drafter keeps the prompt, so scoring the same sequence again is refused.
    EXPECT_FALSE(spec::score_prompt(*whole, ids, p).ok());
    EXPECT_FALSE(spec::score_prompt(*whole, {}, p).ok());
}

// Early exit: the first N layers' probe is the same with or without the rest of the forward;
// logits cannot be asked of it, and score_prompt drops the half-written prompt from the cache.
TEST_P(Score, EarlyExitGivesTheSameProbeAndDropsThePrompt) {
    const std::vector<int32_t> ids = prompt(60);
    Batch batch;
    for (size_t i = 0; i < ids.size(); ++i) batch.add(ids[i], static_cast<int32_t>(i), 0, false);
    std::unique_ptr<Model> full = load(16), early = load(16);
    AttentionProbe a, b;
    a.queries = b.queries = {50, 59};
    a.n_layers = b.n_layers = 1;
    b.early_exit = true;
    ASSERT_TRUE(full->decode(batch, &a).ok());
    ASSERT_TRUE(early->decode(batch, &b).ok());
    ASSERT_EQ(a.probs_max.size(), b.probs_max.size());
    EXPECT_EQ(a.probs_max, b.probs_max);  // layer 0 does not depend on later layers

    Batch wants = batch;
    wants.want_logits.back() = 1;
    std::unique_ptr<Model> m = load();
    AttentionProbe c;
    c.queries = {59};
    c.n_layers = 1;
    c.early_exit = true;
    EXPECT_FALSE(m->decode(wants, &c).ok());

    spec::ScoreParams p;
    p.n_layers = 1;
    std::unique_ptr<Model> d = load();
    ASSERT_TRUE(spec::score_prompt(*d, ids, p).ok());
    EXPECT_LT(d->kv().seq_pos_max(0), 0) << "the early-exited prompt left the cache";
    EXPECT_TRUE(spec::score_prompt(*d, ids, p).ok());
}

TEST_P(Score, NopeScoresAreProbabilitiesToo) {
    const std::vector<int32_t> ids = prompt(50);
    spec::ScoreParams p;
    p.nope = true;
    std::unique_ptr<Model> m = load(), r = load();
    Result<spec::PromptScores> nope = spec::score_prompt(*m, ids, p);
    p.nope = false;
    Result<spec::PromptScores> rope = spec::score_prompt(*r, ids, p);
    ASSERT_TRUE(nope.ok() && rope.ok());
    double diff = 0;
    for (size_t j = 0; j < ids.size(); ++j) {
        EXPECT_GT(nope->scores[j], 0.0f);
        EXPECT_LE(nope->scores[j], 1.0f);
        diff += std::fabs(nope->scores[j] - rope->scores[j]);
    }
    EXPECT_GT(diff, 1e-3) << "RoPE must matter for some scores";
}

TEST_P(Score, LookaheadDecodeAddsQueriesAndLeavesThePromptCache) {
    const std::vector<int32_t> ids = prompt(40);
    spec::ScoreParams p;
    p.n_lookahead = 8;
    std::unique_ptr<Model> plain = load(), ahead = load();
    Result<spec::PromptScores> s0 = spec::score_prompt(*plain, ids, p);
    p.n_decode = 3;
    Result<spec::PromptScores> s1 = spec::score_prompt(*ahead, ids, p);
    ASSERT_TRUE(s0.ok() && s1.ok()) << s1.message();
    // The mean over 8 + 3 queries: what the 3 decoded queries add is a (max over heads of)
    // probability mass on prompt cells, non-negative, and not nothing.
    double added = 0;
    for (size_t j = 0; j < ids.size(); ++j) {
        const double d = 11.0 * s1->scores[j] - 8.0 * s0->scores[j];
        EXPECT_GE(d, -1e-5) << j;
        added += d;
    }
    EXPECT_GT(added, 0.5);
    // The look-ahead tokens left the cache: the next token sees the same prompt in both.
    EXPECT_EQ(ahead->kv().seq_pos_max(0), static_cast<int32_t>(ids.size()) - 1);
    Batch next;
    next.add(7, static_cast<int32_t>(ids.size()), 0, true);
    Result<std::vector<float>> a = plain->decode(next), b = ahead->decode(next);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(*a, *b);
    p.n_decode = -1;
    EXPECT_FALSE(spec::score_prompt(*load(), ids, p).ok());
}

INSTANTIATE_TEST_SUITE_P(Archs, Score, testing::Values(&kQwen3, &kLlama, &kGemma3),
                         [](const auto& info) { return std::string(info.param->arch); });

}  // namespace
}  // namespace sift
