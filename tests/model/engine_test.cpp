// Engine invariants on tiny synthetic models (no oracle needed): the KV cache makes incremental
// decoding, micro-batching, several sequences per batch and rollback give the same logits as one
// full forward.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>

#include "model/model.h"
#include "model/synthetic_writer.h"
#include "tests/model/tiny_shapes.h"
#include "tests/test_temp.h"

namespace sift {
namespace {

// arch, preset, name, layers, embd, heads, kv heads, head dim, ff, vocab, ctx, theta, eps, tied,
// swa (the Qwen3 one: tests/model/tiny_shapes.h)
constexpr ModelShape kTinyQwen2 = {"qwen2", "tiny", "tiny", 2,    64,    4,     2, 16,
                                   128,     320,    512,    1e4f, 1e-6f, false, 0};
constexpr ModelShape kTinyLlama = {"llama", "tiny", "tiny", 2,    48,    3,    1, 16,
                                   96,      320,    512,    1e4f, 1e-5f, true, 0};
// Six layers so both sliding (window 8) and global layers run.
constexpr ModelShape kTinyGemma3 = {"gemma3", "tiny", "tiny", 6,    64,    4,    1, 32,
                                    128,      400,    512,    1e6f, 1e-6f, true, 8};

class Engine : public testing::TestWithParam<const ModelShape*> {
  protected:
    void SetUp() override {
        path_ = test_temp_path("model.gguf");
        SyntheticWriteOptions w;
        w.weight_std = 0.2f;  // large enough that logits differ clearly between tokens
        ASSERT_TRUE(synthetic_write(*GetParam(), *file_type_find("f32"), path_, w).ok());
        CpuBackendOptions b;
        b.exact = true;
        b.n_threads = 2;
        backend_ = backend_cpu_create(b);
    }
    void TearDown() override { std::remove(path_.c_str()); }

    std::unique_ptr<Model> load(int32_t n_ubatch = 512, int64_t n_ctx = 256) {
        ModelOptions o;
        o.n_ctx = n_ctx;
        o.n_ubatch = n_ubatch;
        o.kv_type_k = o.kv_type_v = DType::F32;
        Result<std::unique_ptr<Model>> m = Model::load(path_, *backend_, o);
        EXPECT_TRUE(m.ok()) << m.message();
        return m.ok() ? std::move(*m) : nullptr;
    }

    std::vector<int32_t> prompt(size_t n, uint32_t seed = 1) const {
        std::mt19937 rng(seed);
        std::vector<int32_t> ids(n);
        for (int32_t& id : ids) id = static_cast<int32_t>(rng() % 250);
        return ids;
    }

    // Logits at every position of `ids` placed at positions first.. of sequence seq.
    static std::vector<float> run_all(Model& m, const std::vector<int32_t>& ids, int32_t first = 0,
                                      int32_t seq = 0) {
        Batch b;
        for (size_t i = 0; i < ids.size(); ++i)
            b.add(ids[i], first + static_cast<int32_t>(i), seq, true);
        Result<std::vector<float>> r = m.decode(b);
        EXPECT_TRUE(r.ok()) << r.message();
        return r.ok() ? *r : std::vector<float>{};
    }

    std::string path_;
    std::unique_ptr<Backend> backend_;
};

// Relative to the largest logit: F32 arithmetic in a different order (one token vs a batch).
void expect_close(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    float scale = 0;
    for (float x : a) scale = std::max(scale, std::fabs(x));
    for (size_t i = 0; i < a.size(); ++i) {
        ASSERT_NEAR(a[i], b[i], 1e-4f * scale + 1e-6f) << what << " at " << i;
    }
}

TEST_P(Engine, IncrementalDecodingMatchesOneForward) {
    const std::vector<int32_t> ids = prompt(24);
    std::unique_ptr<Model> full = load();
    const std::vector<float> expected = run_all(*full, ids);
    std::unique_ptr<Model> inc = load();
    std::vector<float> got = run_all(*inc, std::vector<int32_t>(ids.begin(), ids.begin() + 10));
    for (size_t i = 10; i < ids.size(); ++i) {
        const std::vector<float> step = run_all(*inc, {ids[i]}, static_cast<int32_t>(i));
        got.insert(got.end(), step.begin(), step.end());
    }
    expect_close(expected, got, "incremental");
}

// A chunk where no token wants logits (a context fill) only writes the cache.
TEST_P(Engine, BatchWithoutOutputsFillsTheCache) {
    const std::vector<int32_t> ids = prompt(16);
    std::unique_ptr<Model> m = load(5);
    Batch fill;
    for (size_t i = 0; i + 1 < ids.size(); ++i) fill.add(ids[i], static_cast<int32_t>(i), 0, false);
    Result<std::vector<float>> none = m->decode(fill);
    ASSERT_TRUE(none.ok()) << none.message();
    EXPECT_TRUE(none->empty());
    const std::vector<float> last = run_all(*m, {ids.back()}, static_cast<int32_t>(ids.size() - 1));
    std::unique_ptr<Model> full = load();
    const std::vector<float> all = run_all(*full, ids);
    const size_t v = static_cast<size_t>(full->hparams().n_vocab);
    expect_close(std::vector<float>(all.end() - static_cast<long>(v), all.end()), last, "fill");
}

// decode_argmax gives, for every wanted row (across micro-batches, rows skipped), the index of
// the row's largest logit, the same as the host finds in decode's logits.
TEST_P(Engine, ArgmaxDecodeMatchesTheLogits) {
    const std::vector<int32_t> ids = prompt(23);
    Batch b;
    for (size_t i = 0; i < ids.size(); ++i) b.add(ids[i], static_cast<int32_t>(i), 0, i % 3 != 1);
    std::unique_ptr<Model> a = load(5), g = load(5);
    Result<std::vector<float>> logits = a->decode(b);
    Result<std::vector<int32_t>> argmax = g->decode_argmax(b);
    ASSERT_TRUE(logits.ok() && argmax.ok()) << logits.message() << argmax.message();
    const size_t v = static_cast<size_t>(a->hparams().n_vocab);
    ASSERT_EQ(argmax->size(), static_cast<size_t>(b.n_outputs()));
    ASSERT_EQ(logits->size(), argmax->size() * v);
    std::vector<int32_t> expected;
    for (size_t r = 0; r < argmax->size(); ++r) {
        const auto row = logits->begin() + static_cast<std::ptrdiff_t>(r * v);
        expected.push_back(static_cast<int32_t>(
            std::max_element(row, row + static_cast<std::ptrdiff_t>(v)) - row));
    }
    EXPECT_EQ(*argmax, expected);
    // And the next step, one token, on the caches both filled.
    Batch one;
    one.add(expected.back(), static_cast<int32_t>(ids.size()), 0, true);
    logits = a->decode(one);
    argmax = g->decode_argmax(one);
    ASSERT_TRUE(logits.ok() && argmax.ok());
    ASSERT_EQ(argmax->size(), 1u);
    EXPECT_EQ((*argmax)[0], static_cast<int32_t>(std::max_element(logits->begin(), logits->end()) -
                                                 logits->begin()));
}

// A warm-up leaves nothing behind: an empty cache, and the next prompt gives a fresh model's
// logits.
TEST_P(Engine, WarmupLeavesAnEmptyCache) {
    const std::vector<int32_t> ids = prompt(12);
    std::unique_ptr<Model> warm = load(), fresh = load();
    ASSERT_TRUE(warm->warmup().ok());
    EXPECT_EQ(warm->kv().used_end(), 0);
    expect_close(run_all(*fresh, ids), run_all(*warm, ids), "after warm-up");
}

TEST_P(Engine, MicroBatchesMatchOneForward) {
    const std::vector<int32_t> ids = prompt(30);
    std::unique_ptr<Model> whole = load(512);
    std::unique_ptr<Model> chunked = load(7);
    expect_close(run_all(*whole, ids), run_all(*chunked, ids), "ubatch 7");
}

TEST_P(Engine, SequencesInOneBatchDoNotSeeEachOther) {
    const std::vector<int32_t> a = prompt(12, 1), b = prompt(9, 2);
    std::unique_ptr<Model> m = load();
    Batch batch;
    for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {  // interleaved
        if (i < a.size()) batch.add(a[i], static_cast<int32_t>(i), 0, i + 1 == a.size());
        if (i < b.size()) batch.add(b[i], static_cast<int32_t>(i), 3, i + 1 == b.size());
    }
    Result<std::vector<float>> both = m->decode(batch);
    ASSERT_TRUE(both.ok()) << both.message();
    const size_t v = static_cast<size_t>(m->hparams().n_vocab);
    std::unique_ptr<Model> alone = load();
    const std::vector<float> la = run_all(*alone, a);
    alone->kv().clear();
    const std::vector<float> lb = run_all(*alone, b);
    // Outputs come in batch order: b's last token (index 8) is added before a's (index 11).
    expect_close(std::vector<float>(lb.end() - static_cast<long>(v), lb.end()),
                 std::vector<float>(both->begin(), both->begin() + static_cast<long>(v)), "seq 3");
    expect_close(std::vector<float>(la.end() - static_cast<long>(v), la.end()),
                 std::vector<float>(both->begin() + static_cast<long>(v), both->end()), "seq 0");
}

TEST_P(Engine, RollbackThenContinueMatchesAFreshRun) {
    const std::vector<int32_t> a = prompt(20, 4), b = prompt(6, 5);
    std::unique_ptr<Model> m = load();
    run_all(*m, a);
    m->kv().truncate(0, 12);  // keep a[0..12)
    EXPECT_EQ(m->kv().seq_pos_max(0), 11);
    const std::vector<float> continued = run_all(*m, b, 12);
    std::vector<int32_t> fresh_ids(a.begin(), a.begin() + 12);
    fresh_ids.insert(fresh_ids.end(), b.begin(), b.end());
    std::unique_ptr<Model> fresh = load();
    const std::vector<float> all = run_all(*fresh, fresh_ids);
    const size_t v = static_cast<size_t>(fresh->hparams().n_vocab);
    expect_close(std::vector<float>(all.end() - static_cast<long>(b.size() * v), all.end()),
                 continued, "rollback");
}

TEST_P(Engine, ErrorsAreValues) {
    std::unique_ptr<Model> m = load(512, 16);
    Batch too_long;
    for (int32_t i = 0; i < 20; ++i) too_long.add(1, i, 0, false);
    Result<std::vector<float>> r = m->decode(too_long);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.message().find("KV cache full"), std::string::npos) << r.message();
    EXPECT_EQ(m->kv().n_used(), 0);  // nothing half-placed
    Batch bad_token;
    bad_token.add(100000, 0, 0, true);
    r = m->decode(bad_token);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.message().find("outside the vocabulary"), std::string::npos) << r.message();
    Batch twice;
    twice.add(1, 0, 0, false);
    twice.add(2, 0, 0, true);
    EXPECT_FALSE(m->decode(twice).ok());
}

INSTANTIATE_TEST_SUITE_P(Archs, Engine,
                         testing::Values(&test::kTinyQwen3, &kTinyQwen2, &kTinyLlama, &kTinyGemma3),
                         [](const testing::TestParamInfo<const ModelShape*>& info) {
                             return std::string(info.param->arch);
                         });

TEST(EngineLoad, UnknownArchitectureListsTheSupportedOnes) {
    Result<Arch> a = arch_from_name("mamba");
    ASSERT_FALSE(a.ok());
    EXPECT_NE(a.message().find("llama, qwen2, qwen3, gemma3"), std::string::npos) << a.message();
}

}  // namespace
}  // namespace sift
