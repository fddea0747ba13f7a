// Captured decode steps (model/graph_cache.h) on the CPU: a backend that records ops under
// capture as closures and replays them, as a CUDA graph does (same pointers, shapes and host
// values as at capture; uploads are not recorded and fail the test if made under capture). Greedy
// decode through it must give the same logits as running the ops directly, across cell-range
// buckets, output-count changes, stale graphs, failed captures and a cleared cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <optional>
#include <random>

#include "model/graph_cache.h"
#include "model/model.h"
#include "model/synthetic_writer.h"
#include "tests/test_temp.h"

namespace sift {
namespace {

class RecordingBackend final : public Backend {
  public:
    explicit RecordingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}

    int64_t destroyed = 0;
    bool fail_next_capture = false;
    void make_graphs_stale() { ++generation_; }

    Device device() const override { return inner_->device(); }
    std::string name() const override { return "recording " + inner_->name(); }
    void* alloc(size_t bytes) override {
        EXPECT_FALSE(capturing_) << "alloc under capture";
        return inner_->alloc(bytes);
    }
    size_t available_bytes() const override { return inner_->available_bytes(); }
    double measure_bandwidth() override { return inner_->measure_bandwidth(); }
    void free(void* ptr) override {
        EXPECT_FALSE(capturing_) << "free under capture";
        inner_->free(ptr);
    }
    void upload(const Tensor& dst, const void* src, size_t bytes) override {
        EXPECT_FALSE(capturing_) << "upload under capture";
        inner_->upload(dst, src, bytes);
    }
    void download(void* dst, const Tensor& src, size_t bytes) override {
        EXPECT_FALSE(capturing_) << "download under capture";
        inner_->download(dst, src, bytes);
    }
    void synchronize() override { inner_->synchronize(); }

    bool graph_supported() const override { return true; }
    void graph_begin_capture() override {
        ASSERT_FALSE(capturing_);
        capturing_ = true;
        recording_.clear();
    }
    BackendGraph* graph_end_capture(BackendGraph* prev) override {
        EXPECT_TRUE(capturing_);
        capturing_ = false;
        if (fail_next_capture) {
            fail_next_capture = false;
            return nullptr;
        }
        Graph* g = prev != nullptr ? reinterpret_cast<Graph*>(prev) : new Graph;
        g->ops = std::move(recording_);
        g->generation = generation_;
        return reinterpret_cast<BackendGraph*>(g);
    }
    bool graph_launch(BackendGraph* graph) override {
        Graph* g = reinterpret_cast<Graph*>(graph);
        if (g == nullptr || g->generation != generation_) return false;
        for (const auto& op : g->ops) op();
        return true;
    }
    void graph_destroy(BackendGraph* graph) override {
        if (graph == nullptr) return;
        ++destroyed;
        delete reinterpret_cast<Graph*>(graph);
    }

    void get_rows(const Tensor& table, const Tensor& ids, Tensor out) override {
        emit([=, this] { inner_->get_rows(table, ids, out); });
    }
    void matmul(const Tensor& w, const Tensor& x, Tensor out) override {
        emit([=, this] { inner_->matmul(w, x, out); });
    }
    void add(const Tensor& a, const Tensor& b, Tensor out) override {
        emit([=, this] { inner_->add(a, b, out); });
    }
    void mul(const Tensor& a, const Tensor& b, Tensor out) override {
        emit([=, this] { inner_->mul(a, b, out); });
    }
    void scale(const Tensor& x, float s, Tensor out) override {
        emit([=, this] { inner_->scale(x, s, out); });
    }
    void rms_norm(const Tensor& x, const Tensor* w, float eps, Tensor out) override {
        const std::optional<Tensor> wc = w ? std::optional<Tensor>(*w) : std::nullopt;
        emit([=, this] { inner_->rms_norm(x, wc ? &*wc : nullptr, eps, out); });
    }
    void rope(const Tensor& x, const Tensor& pos, const RopeParams& params, Tensor out) override {
        const std::optional<Tensor> f =
            params.freq_factors ? std::optional<Tensor>(*params.freq_factors) : std::nullopt;
        emit([=, this] {
            RopeParams p = params;
            p.freq_factors = f ? &*f : nullptr;
            inner_->rope(x, pos, p, out);
        });
    }
    void swiglu(const Tensor& gate, const Tensor& up, Tensor out) override {
        emit([=, this] { inner_->swiglu(gate, up, out); });
    }
    void geglu(const Tensor& gate, const Tensor& up, Tensor out) override {
        emit([=, this] { inner_->geglu(gate, up, out); });
    }
    void set_rows(const Tensor& src, const Tensor& idx, Tensor dst) override {
        emit([=, this] { inner_->set_rows(src, idx, dst); });
    }
    void attention(const AttentionInputs& in, const AttentionParams& params, Tensor out) override {
        EXPECT_TRUE(in.mask == nullptr && in.block_mask == nullptr);
        emit([=, this] { inner_->attention(in, params, out); });
    }
    void attention_probe(const AttentionInputs& in, const AttentionParams& params,
                         const RopeParams* unrope, Tensor probs_max) override {
        EXPECT_FALSE(capturing_) << "probe under capture";
        inner_->attention_probe(in, params, unrope, probs_max);
    }
    void attention_block_select(const AttentionInputs& in, const AttentionParams& params,
                                const BlockSparseParams& bs, int64_t n_qblocks_total,
                                Tensor block_mask) override {
        EXPECT_FALSE(capturing_) << "block select under capture";
        inner_->attention_block_select(in, params, bs, n_qblocks_total, block_mask);
    }
    void argmax(const Tensor& x, Tensor out) override {
        emit([=, this] { inner_->argmax(x, out); });
    }

  private:
    struct Graph {
        std::vector<std::function<void()>> ops;
        uint64_t generation = 0;
    };
    void emit(std::function<void()> op) {
        if (capturing_) {
            recording_.push_back(std::move(op));
        } else {
            op();
        }
    }

    std::unique_ptr<Backend> inner_;
    bool capturing_ = false;
    std::vector<std::function<void()>> recording_;
    uint64_t generation_ = 0;
};

// arch, preset, name, layers, embd, heads, kv heads, head dim, ff, vocab, ctx, theta, eps, tied,
// swa
constexpr ModelShape kTinyQwen3 = {"qwen3", "tiny", "tiny", 2,    64,    4,    2, 16,
                                   128,     320,    1024,   1e4f, 1e-6f, true, 0};
constexpr ModelShape kTinyGemma3 = {"gemma3", "tiny", "tiny", 6,    64,    4,    1, 32,
                                    128,      400,    1024,   1e6f, 1e-6f, true, 8};

class GraphDecode : public testing::TestWithParam<const ModelShape*> {
  protected:
    void SetUp() override {
        path_ = test_temp_path("model.gguf");
        SyntheticWriteOptions w;
        w.weight_std = 0.2f;
        ASSERT_TRUE(synthetic_write(*GetParam(), *file_type_find("f32"), path_, w).ok());
        CpuBackendOptions b;
        b.exact = true;
        b.n_threads = 1;  // tiny ops: a pool's hand-offs would cost more than the work
        backend_ = std::make_unique<RecordingBackend>(backend_cpu_create(b));
    }
    void TearDown() override { std::remove(path_.c_str()); }

    std::unique_ptr<Model> load(bool graphs) {
        ModelOptions o;
        o.n_ctx = 400;  // not a multiple of kGraphCellBlock: the last bucket is clamped
        o.kv_type_k = o.kv_type_v = DType::F32;
        o.cuda_graphs = graphs;
        Result<std::unique_ptr<Model>> m = Model::load(path_, *backend_, o);
        EXPECT_TRUE(m.ok()) << m.message();
        return m.ok() ? std::move(*m) : nullptr;
    }

    // A 20-token prompt, then greedy decode of n tokens; the logits of every step.
    std::vector<std::vector<float>> greedy(Model& m, int n) {
        std::vector<std::vector<float>> out;
        std::mt19937 rng(5);
        Batch prompt;
        for (int i = 0; i < 20; ++i) prompt.add(static_cast<int32_t>(rng() % 250), i, 0, i == 19);
        Result<std::vector<float>> r = m.decode(prompt);
        EXPECT_TRUE(r.ok()) << r.message();
        for (int i = 0; i < n && r.ok(); ++i) {
            out.push_back(*r);
            const auto next =
                static_cast<int32_t>(std::max_element(r->begin(), r->end()) - r->begin());
            Batch one;
            one.add(next, 20 + i, 0, true);
            r = m.decode(one);
            EXPECT_TRUE(r.ok()) << r.message();
        }
        return out;
    }

    std::string path_;
    std::unique_ptr<RecordingBackend> backend_;
};

TEST_P(GraphDecode, GreedyDecodeMatchesDirectOpsAcrossCellBuckets) {
    std::unique_ptr<Model> direct = load(false), graphed = load(true);
    ASSERT_TRUE(direct && graphed);
    EXPECT_FALSE(direct->graphs_enabled());
    ASSERT_TRUE(graphed->graphs_enabled());
    // 20 + 300 cells: buckets 256 and the clamped 400.
    const std::vector<std::vector<float>> a = greedy(*direct, 300), b = greedy(*graphed, 300);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << "step " << i;
    const GraphStats s = graphed->graph_stats();
    EXPECT_EQ(s.captures, 2);  // one per bucket
    EXPECT_EQ(s.launches, 300);
    EXPECT_EQ(s.fallbacks, 0);
    EXPECT_EQ(direct->graph_stats().launches, 0);
}

TEST_P(GraphDecode, OutputCountsStaleGraphsFailedCapturesAndAClearedCache) {
    std::unique_ptr<Model> direct = load(false), graphed = load(true);
    ASSERT_TRUE(direct && graphed);
    auto both = [&](const Batch& batch) {
        Result<std::vector<float>> x = direct->decode(batch), y = graphed->decode(batch);
        ASSERT_TRUE(x.ok() && y.ok());
        EXPECT_EQ(*x, *y);
    };
    for (int round = 0; round < 2; ++round) {
        // The second round reuses the cells freed by clear() with the graphs already captured.
        direct->kv().clear();
        graphed->kv().clear();
        int32_t pos = 0;
        for (int step = 0; step < 40; ++step) {
            Batch b;
            const int n = 1 + step % 3;  // 1, 2 or 3 tokens; 0 to n outputs
            for (int i = 0; i < n; ++i) b.add((step * 7 + i) % 250, pos++, 0, (step + i) % 2 == 0);
            if (step == 10) backend_->make_graphs_stale();
            if (step == 20) backend_->fail_next_capture = true;
            both(b);
        }
    }
    const GraphStats s = graphed->graph_stats();
    EXPECT_EQ(s.fallbacks, 1);
    EXPECT_GT(s.launches, s.captures);
    EXPECT_LE(graphed->graph_stats().captures, 40);
}

INSTANTIATE_TEST_SUITE_P(Archs, GraphDecode, testing::Values(&kTinyQwen3, &kTinyGemma3),
                         [](const auto& info) { return std::string(info.param->arch); });

TEST(GraphCellEnd, RoundsUpToBlocksWithinTheCache) {
    EXPECT_EQ(graph_cell_end(1, 4096), kGraphCellBlock);
    EXPECT_EQ(graph_cell_end(kGraphCellBlock, 4096), kGraphCellBlock);
    EXPECT_EQ(graph_cell_end(kGraphCellBlock + 1, 4096), 2 * kGraphCellBlock);
    EXPECT_EQ(graph_cell_end(600, 700), 700);
    EXPECT_EQ(graph_cell_end(0, 100), 100);
}

TEST(GraphCacheLru, EvictsTheLeastRecentlyUsedShape) {
    CpuBackendOptions b;
    b.n_threads = 1;
    RecordingBackend be(backend_cpu_create(b));
    GraphCache cache(be, 2);
    int runs = 0;
    auto compute = [&] { ++runs; };
    cache.run({1, 1, 256, nullptr}, compute);
    cache.run({2, 1, 256, nullptr}, compute);
    cache.run({1, 1, 256, nullptr}, compute);  // replay
    EXPECT_EQ(runs, 2);
    cache.run({3, 3, 256, nullptr}, compute);  // evicts shape (2, 1)
    EXPECT_EQ(be.destroyed, 1);
    EXPECT_EQ(cache.size(), 2u);
    cache.run({1, 1, 256, nullptr}, compute);  // still cached
    EXPECT_EQ(runs, 3);
    cache.run({1, 1, 512, nullptr}, compute);  // same shape, new key: captured again in place
    EXPECT_EQ(runs, 4);
    EXPECT_EQ(be.destroyed, 1);
    EXPECT_EQ(cache.stats().captures, 4);
    EXPECT_EQ(cache.stats().launches, 6);
    cache.clear();
    EXPECT_EQ(be.destroyed, 3);
}

}  // namespace
}  // namespace sift
