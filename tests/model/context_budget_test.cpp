// The load-time context check (model/context_budget.h): a context that cannot fit beside the
// weights, or past 32-bit positions, is an error naming the sizes and the context that would
// fit, before anything is allocated; one that fits loads.
#include "model/context_budget.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>

#include "model/kv_cache.h"
#include "model/model.h"
#include "model/synthetic_writer.h"
#include "tests/model/tiny_shapes.h"
#include "tests/test_temp.h"

namespace sift {
namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;

TEST(ContextFitError, FitsWhenCacheAndActivationsFit) {
    const ContextCost cost{1000, 0, 5000, false};
    EXPECT_EQ(context_fit_error(1000, cost, 1000 * 1000 + 5000, "gpu"), "");
    EXPECT_EQ(context_fit_error(kMaxContextTokens, {1, 0, 0, false}, UINT64_MAX, "gpu"), "");
}

TEST(ContextFitError, TooLargeNamesSizesAndWhatFits) {
    // 131072 cells of 144 KiB (an 8B's f16 cache) = 18 GiB, 1 GiB of activations,
    // 10 GiB free: (10 - 1) GiB / 144 KiB = 65536 cells fit.
    const ContextCost cost{144 * 1024, 0, kGiB, false};
    const std::string e = context_fit_error(131072, cost, 10 * kGiB, "NVIDIA H100");
    EXPECT_NE(e.find("a context of 131072 tokens needs 19.00 GiB (18.00 GiB of KV cache, 1.00 GiB "
                     "of activations and scratch) but NVIDIA H100 has 10.00 GiB free: about 65536 "
                     "tokens fit"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find("--cache-type q8_0"), std::string::npos) << e;
    // A q8_0 cache already: no halving to suggest.
    const std::string q8 = context_fit_error(131072, {72 * 1024, 0, kGiB, true}, 4 * kGiB, "cpu");
    EXPECT_NE(q8.find("about 43690 tokens fit"), std::string::npos) << q8;
    EXPECT_EQ(q8.find("q8_0"), std::string::npos) << q8;
    // Not even the activations fit.
    EXPECT_NE(
        context_fit_error(10, {1, 0, 2 * kGiB, false}, kGiB, "cpu").find("about 0 tokens fit"),
        std::string::npos);
}

TEST(ContextFitError, BuffersThatGrowWithTheContextCountPerCell) {
    // 1000 bytes a cell of cache and 1e9 bytes of growing buffers at 1M cells (1000 a cell):
    // 2000 a cell in 1 GiB.
    const std::string e = context_fit_error(1000000, {1000, 1000000000, 0, false}, kGiB, "gpu");
    EXPECT_NE(e.find("about 536870 tokens fit"), std::string::npos) << e;
    EXPECT_EQ(context_fit_error(500000, {1000, 500000000, 0, false}, kGiB, "gpu"), "");
}

TEST(ContextFitError, PastThirtyTwoBitPositions) {
    const std::string e =
        context_fit_error(kMaxContextTokens + 1, {1, 0, 0, false}, UINT64_MAX, "x");
    EXPECT_NE(e.find("a context of 2147483648 tokens is past the largest sift supports "
                     "(2147483647)"),
              std::string::npos)
        << e;
}

class ContextBudgetModel : public testing::Test {
  protected:
    void SetUp() override {
        path_ = test_temp_path("budget.gguf");
        ASSERT_TRUE(synthetic_write(test::kTinyQwen3, *file_type_find("f32"), path_, {}).ok());
        CpuBackendOptions b;
        b.n_threads = 1;
        backend_ = backend_cpu_create(b);
    }
    void TearDown() override { std::remove(path_.c_str()); }
    Result<std::unique_ptr<Model>> load(int64_t n_ctx) {
        ModelOptions o;
        o.n_ctx = n_ctx;
        return Model::load(path_, *backend_, o);
    }
    std::string path_;
    std::unique_ptr<Backend> backend_;
};

TEST_F(ContextBudgetModel, ContextPastPositionsIsRefusedAtLoad) {
    Result<std::unique_ptr<Model>> m = load(kMaxContextTokens + 1);
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.message().find("is past the largest sift supports"), std::string::npos)
        << m.message();
}

TEST_F(ContextBudgetModel, ContextPastMemoryIsRefusedAtLoad) {
    // The largest context: 2^31 cells of this model's cache (2 layers x 2 x 32 F16 values + 16
    // bytes of metadata = 272 bytes each: ~544 GiB), past any machine this runs on.
    const HParams hp = [&] {
        Result<std::unique_ptr<Model>> small = load(64);
        EXPECT_TRUE(small.ok()) << small.message();
        return (*small)->hparams();
    }();
    const uint64_t per_cell = KvCache::bytes_per_cell(hp, DType::F16, DType::F16);
    EXPECT_EQ(per_cell, 2u * 2u * 32u * 2u + 16u);
    if (backend_->available_bytes() / per_cell > static_cast<uint64_t>(kMaxContextTokens))
        GTEST_SKIP() << "this machine could hold the largest context";
    Result<std::unique_ptr<Model>> m = load(kMaxContextTokens);
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.message().find("a context of 2147483647 tokens needs"), std::string::npos)
        << m.message();
    EXPECT_NE(m.message().find("tokens fit; ask for a smaller context (-c)"), std::string::npos)
        << m.message();
}

}  // namespace
}  // namespace sift
