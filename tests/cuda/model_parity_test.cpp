// End-to-end parity on the GPU: whole models through the CUDA backend against (1) the transformers
// logits of the committed tiny fixtures and (2) the exact CPU backend on synthetic models of real
// shapes and quant mixes (prefill through the GEMM path, then single-token decode steps through
// the matrix-vector path).
//
// Tolerance: prefill rounds activations and weights to bf16 for the tensor-core GEMM and keeps
// the KV cache in F16, so logits move by up to ~2e-2 of max|logit| (H200, 2026-11-27: 0.5e-2 to
// 2.2e-2); we require max error <= 3e-2 x max|ref|. Decode steps of Q4_K/Q6_K weights quantize
// the activations to int8 per 32 values (as llama.cpp does), which measured up to 8e-2 on these
// random-weight models (llama.cpp itself sits 2-9% from the exact reference, docs/ORACLES.md):
// bound 1.2e-1. In both, the top-1 token must agree wherever the reference's top-1 margin exceeds
// 2 x the bound (a smaller margin is a near-tie that rounding may legitimately flip).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "backend/cuda/cuda_backend.h"
#include "model/model.h"
#include "model/synthetic_writer.h"
#include "tests/cuda/cuda_test_backend.h"
#include "tests/test_temp.h"

namespace sift {
namespace {

constexpr double kTol = 3e-2;          // prefill (bf16 GEMM)
constexpr double kDecodeTol = 1.2e-1;  // decode (int8 activations on K-quants)

// SIFT_TEST_DATA may be overridden at run time (the GPU machine runs the binary from another
// checkout path).
std::string test_data() {
    const char* env = std::getenv("SIFT_TEST_DATA");
    return env && *env ? env : SIFT_TEST_DATA;
}

using test::cuda_test_backend;

std::vector<float> read_f32(const std::string& path) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    std::vector<float> v(static_cast<size_t>(in.tellg()) / sizeof(float));
    in.seekg(0);
    in.read(reinterpret_cast<char*>(v.data()),
            static_cast<std::streamsize>(v.size() * sizeof(float)));
    return v;
}

struct Agreement {
    double max_rel = 0;
    int rows = 0, top1_checked = 0, top1_agree = 0;
};

// Rows of n_vocab logits: error relative to each row's max |ref|, top-1 where the margin is clear.
Agreement compare_rows(const std::vector<float>& got, const std::vector<float>& ref, size_t n_vocab,
                       double tol = kTol) {
    Agreement a;
    for (size_t r = 0; r * n_vocab < ref.size(); ++r) {
        const float* g = got.data() + r * n_vocab;
        const float* f = ref.data() + r * n_vocab;
        double scale = 0, err = 0;
        size_t best = 0, second = 1, gbest = 0;
        for (size_t i = 0; i < n_vocab; ++i) {
            scale = std::max(scale, static_cast<double>(std::fabs(f[i])));
            err = std::max(err, static_cast<double>(std::fabs(g[i] - f[i])));
            if (!std::isfinite(g[i])) err = INFINITY;
            if (g[i] > g[gbest]) gbest = i;
        }
        for (size_t i = 0; i < n_vocab; ++i)
            if (f[i] > f[best]) best = i;
        second = best == 0 ? 1 : 0;
        for (size_t i = 0; i < n_vocab; ++i)
            if (i != best && f[i] > f[second]) second = i;
        a.max_rel = std::max(a.max_rel, err / std::max(scale, 1e-30));
        if (f[best] - f[second] > 2 * tol * scale) {
            ++a.top1_checked;
            a.top1_agree += gbest == best ? 1 : 0;
        }
        ++a.rows;
    }
    return a;
}

TEST(CudaModelParity, TinyFixturesMatchTransformers) {
    std::string why;
    Backend* gpu = cuda_test_backend(&why);
    if (gpu == nullptr) GTEST_SKIP() << "no CUDA GPU: " << why;
    const std::string root = test_data() + "/models/";
    std::ifstream index_file(root + "index.json");
    ASSERT_TRUE(index_file) << root << "index.json (set SIFT_TEST_DATA)";
    const nlohmann::json index = nlohmann::json::parse(index_file);
    int prompts = 0;
    for (const auto& entry : index["models"]) {
        const std::string name = entry["name"];
        const std::string dir = root + name + "/";
        std::ifstream manifest_file(dir + "manifest.json");
        const nlohmann::json manifest = nlohmann::json::parse(manifest_file);
        ModelOptions mo;
        mo.n_ctx = 128;
        Result<std::unique_ptr<Model>> model =
            Model::load(dir + manifest["gguf"].get<std::string>(), *gpu, mo);
        ASSERT_TRUE(model.ok()) << name << ": " << model.message();
        for (const auto& prompt : manifest["prompts"]) {
            (*model)->kv().clear();
            const std::vector<int32_t> ids = prompt["ids"];
            Batch batch;
            for (size_t i = 0; i < ids.size(); ++i)
                batch.add(ids[i], static_cast<int32_t>(i), 0, true);
            Result<std::vector<float>> got = (*model)->decode(batch);
            ASSERT_TRUE(got.ok()) << got.message();
            const std::vector<float> ref =
                read_f32(dir + prompt["logits"]["file"].get<std::string>());
            ASSERT_EQ(got->size(), ref.size());
            const Agreement a =
                compare_rows(*got, ref, static_cast<size_t>((*model)->hparams().n_vocab));
            std::printf("  %-16s %-10s rows %3d  max rel %.2e  top-1 %d/%d\n", name.c_str(),
                        prompt["name"].get<std::string>().c_str(), a.rows, a.max_rel, a.top1_agree,
                        a.top1_checked);
            EXPECT_LE(a.max_rel, kTol) << name << " " << prompt["name"];
            EXPECT_EQ(a.top1_agree, a.top1_checked) << name << " " << prompt["name"];
            ++prompts;
        }
    }
    EXPECT_GE(prompts, 21);
}

// Synthetic models of real shapes and quant mixes (scaled-down layer counts keep the test fast):
// the GPU against the exact CPU backend, prefill then decode steps.
struct SyntheticCase {
    const char* arch;
    const char* preset;
    const char* file_type;
    int32_t n_layer;  // 0: the preset's
};

class CudaSyntheticParity : public testing::TestWithParam<SyntheticCase> {};

TEST_P(CudaSyntheticParity, PrefillAndDecodeMatchTheCpu) {
    std::string why;
    Backend* gpu = cuda_test_backend(&why);
    if (gpu == nullptr) GTEST_SKIP() << "no CUDA GPU: " << why;
    const SyntheticCase& c = GetParam();
    const ModelShape* preset = model_preset_find(c.arch, c.preset);
    ASSERT_NE(preset, nullptr);
    ModelShape shape = *preset;
    if (c.n_layer > 0) shape.n_layer = c.n_layer;
    const std::string path = test_temp_path("synthetic.gguf");
    SyntheticWriteOptions w;
    w.weight_std = 0.05f;  // logits spread enough for clear top-1 margins
    ASSERT_TRUE(synthetic_write(shape, *file_type_find(c.file_type), path, w).ok());

    CpuBackendOptions co;
    co.exact = true;
    std::unique_ptr<Backend> cpu = backend_cpu_create(co);
    ModelOptions mo;
    mo.n_ctx = 512;
    Result<std::unique_ptr<Model>> on_gpu = Model::load(path, *gpu, mo);
    ASSERT_TRUE(on_gpu.ok()) << on_gpu.message();
    mo.kv_type_k = mo.kv_type_v = DType::F32;
    Result<std::unique_ptr<Model>> on_cpu = Model::load(path, *cpu, mo);
    ASSERT_TRUE(on_cpu.ok()) << on_cpu.message();
    const size_t n_vocab = static_cast<size_t>((*on_cpu)->hparams().n_vocab);

    std::mt19937 rng(7);
    std::vector<int32_t> ids(300);
    for (int32_t& id : ids) id = static_cast<int32_t>(rng() % n_vocab);
    Batch prefill;
    for (size_t i = 0; i < ids.size(); ++i)
        prefill.add(ids[i], static_cast<int32_t>(i), 0, i % 37 == 0 || i + 1 == ids.size());
    Result<std::vector<float>> g = (*on_gpu)->decode(prefill);
    Result<std::vector<float>> r = (*on_cpu)->decode(prefill);
    ASSERT_TRUE(g.ok() && r.ok());
    Agreement a = compare_rows(*g, *r, n_vocab);
    std::printf("  %s %s %s prefill: rows %d max rel %.2e top-1 %d/%d\n", c.arch, c.preset,
                c.file_type, a.rows, a.max_rel, a.top1_agree, a.top1_checked);
    EXPECT_LE(a.max_rel, kTol);
    EXPECT_EQ(a.top1_agree, a.top1_checked);

    for (int step = 0; step < 6; ++step) {
        Batch one;
        one.add(ids[static_cast<size_t>(step)], static_cast<int32_t>(ids.size()) + step, 0, true);
        g = (*on_gpu)->decode(one);
        r = (*on_cpu)->decode(one);
        ASSERT_TRUE(g.ok() && r.ok());
        a = compare_rows(*g, *r, n_vocab, kDecodeTol);
        EXPECT_LE(a.max_rel, kDecodeTol) << "decode step " << step;
        EXPECT_EQ(a.top1_agree, a.top1_checked) << "decode step " << step;
    }
    std::remove(path.c_str());
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaSyntheticParity,
                         testing::Values(SyntheticCase{"qwen2", "0.5b", "q4_k_m", 4},
                                         SyntheticCase{"qwen3", "0.6b", "q8_0", 4},
                                         SyntheticCase{"llama", "135m", "q4_0", 6},
                                         SyntheticCase{"gemma3", "270m", "q4_k_m", 6},
                                         SyntheticCase{"qwen3", "0.6b", "f16", 3},
                                         SyntheticCase{"qwen3", "0.6b", "q5_k_m", 3}),
                         [](const auto& info) {
                             std::string n = std::string(info.param.arch) + "_" +
                                             info.param.preset + "_" + info.param.file_type;
                             for (char& ch : n)
                                 if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                             return n;
                         });

}  // namespace
}  // namespace sift
