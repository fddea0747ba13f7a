// Decode through CUDA graphs (model/graph_cache.h) against the same model running its ops
// directly, on one GPU backend: greedy decode across several attention-range buckets, batches
// whose shape and output count change, graphs made stale by a prefill that grows the backend's
// scratch, and a cleared cache whose cells are reused. Both models attend over the same rounded
// cell range and run the same kernels with the same launch parameters, so the logits should
// agree to the bit; the bound below leaves room only for a non-deterministic reduction.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "backend/cuda/cuda_backend.h"
#include "model/model.h"
#include "model/synthetic_writer.h"
#include "tensor/quant.h"
#include "tests/cuda/cuda_test_backend.h"
#include "tests/test_temp.h"

namespace sift {
namespace {

constexpr double kTol = 1e-5;  // x max |logit| per row

using test::cuda_test_backend;

// Largest |a - b| over max |b| per row of n_vocab; +inf for NaN or a size mismatch.
double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b, size_t n_vocab) {
    if (a.size() != b.size()) return INFINITY;
    double worst = 0;
    for (size_t r = 0; r * n_vocab < b.size(); ++r) {
        double scale = 0, err = 0;
        for (size_t i = r * n_vocab; i < (r + 1) * n_vocab; ++i) {
            scale = std::max(scale, static_cast<double>(std::fabs(b[i])));
            err = std::max(err, static_cast<double>(std::fabs(a[i] - b[i])));
            if (!std::isfinite(a[i])) err = INFINITY;
        }
        worst = std::max(worst, err / std::max(scale, 1e-30));
    }
    return worst;
}

struct GraphCase {
    const char* arch;
    const char* preset;
    int32_t n_layer;
};

class CudaGraphDecode : public testing::TestWithParam<GraphCase> {
  protected:
    void SetUp() override {
        std::string why;
        gpu_ = cuda_test_backend(&why);
        if (gpu_ == nullptr) GTEST_SKIP() << "no CUDA GPU: " << why;
        ModelShape shape = *model_preset_find(GetParam().arch, GetParam().preset);
        shape.n_layer = GetParam().n_layer;
        path_ = test_temp_path("graph.gguf");
        SyntheticWriteOptions w;
        w.weight_std = 0.05f;
        ASSERT_TRUE(synthetic_write(shape, *file_type_find("q4_k_m"), path_, w).ok());
    }
    void TearDown() override {
        if (!path_.empty()) std::remove(path_.c_str());
    }

    std::unique_ptr<Model> load(bool graphs) {
        ModelOptions o;
        o.n_ctx = 1000;
        o.cuda_graphs = graphs;
        Result<std::unique_ptr<Model>> m = Model::load(path_, *gpu_, o);
        EXPECT_TRUE(m.ok()) << m.message();
        return m.ok() ? std::move(*m) : nullptr;
    }

    Backend* gpu_ = nullptr;
    std::string path_;
};

TEST_P(CudaGraphDecode, GreedyDecodeMatchesDirectOps) {
    std::unique_ptr<Model> direct = load(false), graphed = load(true);
    ASSERT_TRUE(direct && graphed);
    ASSERT_FALSE(direct->graphs_enabled());
    ASSERT_TRUE(graphed->graphs_enabled());
    const size_t n_vocab = static_cast<size_t>(direct->hparams().n_vocab);
    // A 40-token prompt, then 330 greedy steps: cells 41..370 span the buckets 256 and 512.
    constexpr int kPrompt = 40, kSteps = 330;
    std::mt19937 rng(11);
    Batch prompt;
    for (int i = 0; i < kPrompt; ++i)
        prompt.add(static_cast<int32_t>(rng() % n_vocab), i, 0, i + 1 == kPrompt);
    Result<std::vector<float>> a = direct->decode(prompt), b = graphed->decode(prompt);
    ASSERT_TRUE(a.ok() && b.ok());
    double worst = 0;
    int diverged = -1;
    for (int step = 0; step < kSteps; ++step) {
        const double d = max_rel_diff(*b, *a, n_vocab);
        worst = std::max(worst, d);
        ASSERT_LE(d, kTol) << "step " << step;
        const auto ta = static_cast<int32_t>(std::max_element(a->begin(), a->end()) - a->begin());
        const auto tb = static_cast<int32_t>(std::max_element(b->begin(), b->end()) - b->begin());
        if (ta != tb && diverged < 0) diverged = step;
        Batch one;
        one.add(ta, kPrompt + step, 0, true);
        a = direct->decode(one);
        b = graphed->decode(one);
        ASSERT_TRUE(a.ok() && b.ok());
    }
    const GraphStats s = graphed->graph_stats();
    std::printf(
        "  %s %s: %d steps, max rel diff %.3g, captures %lld, launches %lld, "
        "fallbacks %lld\n",
        GetParam().arch, GetParam().preset, kSteps, worst, static_cast<long long>(s.captures),
        static_cast<long long>(s.launches), static_cast<long long>(s.fallbacks));
    EXPECT_EQ(diverged, -1) << "greedy tokens differ from step " << diverged;
    EXPECT_EQ(s.launches + s.fallbacks, kSteps);
    EXPECT_GE(s.captures, 2);  // buckets 256 and 512
    EXPECT_LE(s.captures, 4);
    EXPECT_LE(s.fallbacks, 2);  // only where a capture saw the scratch grow
}

// Greedy decoding with the argmax on the device (decode_argmax, captured in the graphs with
// the rest of the step) picks the tokens the host picks from the same logits.
TEST_P(CudaGraphDecode, ArgmaxOnTheDeviceMatchesTheLogits) {
    std::unique_ptr<Model> host = load(true), device = load(true);
    ASSERT_TRUE(host && device);
    const size_t n_vocab = static_cast<size_t>(host->hparams().n_vocab);
    constexpr int kPrompt = 24, kSteps = 40;
    std::mt19937 rng(12);
    Batch prompt;
    for (int i = 0; i < kPrompt; ++i)
        prompt.add(static_cast<int32_t>(rng() % n_vocab), i, 0, i >= kPrompt - 3);
    Result<std::vector<float>> logits = host->decode(prompt);
    Result<std::vector<int32_t>> ids = device->decode_argmax(prompt);
    ASSERT_TRUE(logits.ok() && ids.ok());
    for (int step = 0; step <= kSteps; ++step) {
        const size_t rows = ids->size();
        ASSERT_EQ(logits->size(), rows * n_vocab);
        for (size_t r = 0; r < rows; ++r) {
            const auto row = logits->begin() + static_cast<std::ptrdiff_t>(r * n_vocab);
            const auto want = static_cast<int32_t>(
                std::max_element(row, row + static_cast<std::ptrdiff_t>(n_vocab)) - row);
            ASSERT_EQ((*ids)[r], want) << "step " << step << " row " << r;
        }
        Batch one;
        one.add(ids->back(), kPrompt + step, 0, true);
        logits = host->decode(one);
        ids = device->decode_argmax(one);
        ASSERT_TRUE(logits.ok() && ids.ok());
    }
    EXPECT_GT(device->graph_stats().launches, 0);
}

TEST_P(CudaGraphDecode, ShapeChangesStaleGraphsAndACacheReused) {
    std::unique_ptr<Model> direct = load(false), graphed = load(true);
    ASSERT_TRUE(direct && graphed);
    const size_t n_vocab = static_cast<size_t>(direct->hparams().n_vocab);
    double worst = 0;
    auto both = [&](const Batch& batch, const char* what) {
        Result<std::vector<float>> x = direct->decode(batch), y = graphed->decode(batch);
        ASSERT_TRUE(x.ok() && y.ok());
        const double d = max_rel_diff(*y, *x, n_vocab);
        worst = std::max(worst, d);
        EXPECT_LE(d, kTol) << what;
    };
    for (int round = 0; round < 2; ++round) {
        // Round 2 reuses the cells freed by clear() with the graphs of round 1 in place.
        direct->kv().clear();
        graphed->kv().clear();
        int32_t pos = 0;
        for (int step = 0; step < 60; ++step) {
            Batch b;
            const int n = 1 + step % 4;  // 1..4 tokens, 0..n of them with logits
            for (int i = 0; i < n; ++i) {
                b.add(static_cast<int32_t>((step * 7919 + i * 31) % n_vocab), pos++, 0,
                      (step + i) % 3 != 0);
            }
            both(b, "small batch");
            if (step == 30) {
                // A prefill moves the backend's scratch (dequantized weights for the GEMM):
                // every graph is stale and must be captured again.
                Batch prefill;
                for (int i = 0; i < 300; ++i)
                    prefill.add(static_cast<int32_t>((i * 104729) % n_vocab), pos++, 0, i == 299);
                both(prefill, "prefill");
            }
        }
    }
    const GraphStats s = graphed->graph_stats();
    std::printf("  %s %s: max rel diff %.3g, captures %lld, launches %lld, fallbacks %lld\n",
                GetParam().arch, GetParam().preset, worst, static_cast<long long>(s.captures),
                static_cast<long long>(s.launches), static_cast<long long>(s.fallbacks));
    EXPECT_GT(s.launches, s.captures);
}

// The Backend graph calls alone, on a fresh backend (empty scratch): a captured Q8_0 matvec
// (it quantizes x into the backend's scratch) replays to the same bits as the direct op; a
// capture during which the scratch has to grow fails (nothing runs) and leaves the graphs
// captured before stale; capturing again into the stale graph refreshes it.
TEST(CudaGraphBackend, CaptureReplayStaleAndFailedCapture) {
    std::string why;
    if (cuda_test_backend(&why) == nullptr) GTEST_SKIP() << "no CUDA GPU: " << why;
    Result<std::unique_ptr<Backend>> made = backend_cuda_create({});
    ASSERT_TRUE(made.ok()) << made.message();
    Backend& be = **made;
    ASSERT_TRUE(be.graph_supported());
    // w Q8_0 [k, n]; x F32 [k, t] for t = 1 and 8.
    constexpr int64_t k = 4096, n = 256;
    const int64_t row_bytes = *dtype_row_bytes(DType::Q8_0, k);
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> wf(static_cast<size_t>(k * n)), xf(static_cast<size_t>(k * 8));
    for (float& v : wf) v = normal(rng);
    for (float& v : xf) v = normal(rng);
    std::vector<uint8_t> wq(static_cast<size_t>(row_bytes * n));
    for (int64_t r = 0; r < n; ++r)
        quantize_row(DType::Q8_0, wf.data() + r * k, wq.data() + r * row_bytes, k);
    const Tensor w = Tensor::view(be.alloc(wq.size()), DType::Q8_0, {k, n}, be.device());
    be.upload(w, wq.data(), wq.size());
    auto tensor = [&](int64_t width, int64_t t) {
        return Tensor::view(be.alloc(static_cast<size_t>(width * t) * 4), DType::F32, {width, t},
                            be.device());
    };
    const Tensor x1 = tensor(k, 1), x8 = tensor(k, 8), out1 = tensor(n, 1), out8 = tensor(n, 8);
    be.upload(x1, xf.data(), static_cast<size_t>(k) * 4);
    be.upload(x8, xf.data(), xf.size() * 4);
    auto fetch = [&](const Tensor& t) {
        std::vector<float> v(static_cast<size_t>(t.n_elements()));
        be.download(v.data(), t, v.size() * 4);
        return v;
    };

    be.graph_begin_capture();
    be.matmul(w, x1, out1);
    BackendGraph* g = be.graph_end_capture(nullptr);
    ASSERT_NE(g, nullptr);
    ASSERT_TRUE(be.graph_launch(g));
    const std::vector<float> replayed = fetch(out1);
    be.matmul(w, x1, out1);
    EXPECT_EQ(replayed, fetch(out1));

    // x8 needs 8x the quantized-activation scratch: it grows under the capture.
    be.graph_begin_capture();
    be.matmul(w, x8, out8);
    EXPECT_EQ(be.graph_end_capture(nullptr), nullptr);
    EXPECT_FALSE(be.graph_launch(g));  // baked in the scratch that moved

    be.graph_begin_capture();
    be.matmul(w, x1, out1);
    EXPECT_EQ(be.graph_end_capture(g), g);  // refreshed in place
    ASSERT_TRUE(be.graph_launch(g));
    EXPECT_EQ(replayed, fetch(out1));

    // A second shape into the same graph: different launch configuration, same topology.
    be.graph_begin_capture();
    be.matmul(w, x8, out8);
    EXPECT_EQ(be.graph_end_capture(g), g);
    ASSERT_TRUE(be.graph_launch(g));
    const std::vector<float> replayed8 = fetch(out8);
    be.matmul(w, x8, out8);
    EXPECT_EQ(replayed8, fetch(out8));
    be.graph_destroy(g);
    for (const Tensor* t : {&w, &x1, &x8, &out1, &out8}) be.free(t->data);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaGraphDecode,
                         testing::Values(GraphCase{"qwen3", "0.6b", 4},
                                         GraphCase{"gemma3", "270m", 6}),
                         [](const auto& info) {
                             std::string n = std::string(info.param.arch) + "_" + info.param.preset;
                             for (char& ch : n)
                                 if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                             return n;
                         });

}  // namespace
}  // namespace sift
