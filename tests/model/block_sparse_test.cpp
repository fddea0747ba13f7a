// Block-sparse attention in Model::decode (model.h BlockSparseOptions) on a tiny synthetic qwen3:
// with alpha 0 every causal block is kept, so the logits must match the dense forward (over
// micro-batches not aligned to blocks); a selective alpha changes them; batches outside the
// ops.h contract and caches below min_cells run dense.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>

#include "model/model.h"
#include "model/synthetic_writer.h"
#include "tests/model/tiny_shapes.h"
#include "tests/test_temp.h"

namespace sift {
namespace {

class BlockSparseModel : public testing::Test {
  protected:
    void SetUp() override {
        path_ = test_temp_path("bsa_model.gguf");
        SyntheticWriteOptions w;
        w.weight_std = 0.2f;
        ASSERT_TRUE(synthetic_write(test::kTinyQwen3, *file_type_find("f32"), path_, w).ok());
        CpuBackendOptions b;
        b.exact = true;
        b.n_threads = 2;
        backend_ = backend_cpu_create(b);
    }
    void TearDown() override { std::remove(path_.c_str()); }

    std::unique_ptr<Model> load(int32_t n_ubatch) {
        ModelOptions o;
        o.n_ctx = 512;
        o.n_ubatch = n_ubatch;
        o.kv_type_k = o.kv_type_v = DType::F32;
        Result<std::unique_ptr<Model>> m = Model::load(path_, *backend_, o);
        EXPECT_TRUE(m.ok()) << m.message();
        return m.ok() ? std::move(*m) : nullptr;
    }

    static Batch prompt(size_t n) {
        std::mt19937 rng(3);
        Batch b;
        for (size_t i = 0; i < n; ++i)
            b.add(static_cast<int32_t>(rng() % 250), static_cast<int32_t>(i), 0, true);
        return b;
    }

    static BlockSparseOptions options(float alpha) {
        BlockSparseOptions o;
        o.enabled = true;
        o.params.block = 16;
        o.params.alpha = alpha;
        o.params.sink = 1;
        o.params.window = 1;
        o.params.last_full = 1;
        o.min_cells = 0;
        return o;
    }

    std::string path_;
    std::unique_ptr<Backend> backend_;
};

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
    EXPECT_EQ(a.size(), b.size());
    double d = 0;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i)
        d = std::max(d, static_cast<double>(std::fabs(a[i] - b[i])));
    return d;
}

TEST_F(BlockSparseModel, KeepingEveryBlockMatchesDense) {
    const Batch b = prompt(150);
    std::unique_ptr<Model> dense = load(50);
    Result<std::vector<float>> want = dense->decode(b);
    ASSERT_TRUE(want.ok()) << want.message();
    std::unique_ptr<Model> sparse = load(50);
    sparse->set_block_sparse(options(0));
    Result<std::vector<float>> got = sparse->decode(b);
    ASSERT_TRUE(got.ok()) << got.message();
    EXPECT_EQ(sparse->block_sparse_calls(), 2 * 3);  // 2 layers x 3 micro-batches
    EXPECT_LE(max_diff(*want, *got), 1e-4);
}

TEST_F(BlockSparseModel, SelectiveMaskChangesTheLogits) {
    const Batch b = prompt(150);
    std::unique_ptr<Model> dense = load(64);
    Result<std::vector<float>> want = dense->decode(b);
    std::unique_ptr<Model> sparse = load(64);
    sparse->set_block_sparse(options(1));
    Result<std::vector<float>> got = sparse->decode(b);
    ASSERT_TRUE(want.ok() && got.ok());
    for (float x : *got) ASSERT_TRUE(std::isfinite(x));
    EXPECT_GT(max_diff(*want, *got), 1e-4);
    EXPECT_EQ(sparse->block_sparse_calls(), 2 * 3);
}

TEST_F(BlockSparseModel, OutsideTheContractRunsDense) {
    std::unique_ptr<Model> m = load(512);
    m->set_block_sparse(options(1));
    Batch two;  // two sequences in one batch
    for (int32_t i = 0; i < 40; ++i) {
        two.add(i + 1, i, 0, false);
        two.add(i + 2, i, 1, i == 39);
    }
    ASSERT_TRUE(m->decode(two).ok());
    EXPECT_EQ(m->block_sparse_calls(), 0);
    BlockSparseOptions high = options(1);
    high.min_cells = 1000;  // longer than the cache
    std::unique_ptr<Model> m2 = load(512);
    m2->set_block_sparse(high);
    ASSERT_TRUE(m2->decode(prompt(100)).ok());
    EXPECT_EQ(m2->block_sparse_calls(), 0);
}

}  // namespace
}  // namespace sift
