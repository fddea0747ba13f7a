// Logits of every committed tiny model (tests/data/models, made by scripts/gen_tiny_models.py from
// transformers) at every position of every prompt, through the CPU backend in exact mode.
// Tolerance 1e-4 x max|ref| (docs/ORACLES.md): F32 accumulation order differs from PyTorch's, which
// on these models moves logits by ~1e-6 relative; 1e-4 leaves margin while any wrong convention
// (rope pairs, norm offsets, window) moves them by 1e-1 or more.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/model.h"

namespace sift {
namespace {

std::vector<float> read_f32(const std::string& path) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    std::vector<float> v(static_cast<size_t>(in.tellg()) / sizeof(float));
    in.seekg(0);
    in.read(reinterpret_cast<char*>(v.data()),
            static_cast<std::streamsize>(v.size() * sizeof(float)));
    return v;
}

TEST(TinyParity, EveryModelEveryPromptEveryPosition) {
    const std::string root = std::string(SIFT_TEST_DATA) + "/models/";
    std::ifstream index_file(root + "index.json");
    const nlohmann::json index = nlohmann::json::parse(index_file);
    CpuBackendOptions options;
    options.exact = true;
    std::unique_ptr<Backend> backend = backend_cpu_create(options);
    int checked = 0;
    for (const auto& entry : index["models"]) {
        const std::string dir = root + entry["name"].get<std::string>() + "/";
        std::ifstream manifest_file(dir + "manifest.json");
        const nlohmann::json manifest = nlohmann::json::parse(manifest_file);
        ModelOptions mo;
        mo.n_ctx = 128;
        mo.kv_type_k = mo.kv_type_v = DType::F32;
        Result<std::unique_ptr<Model>> model =
            Model::load(dir + manifest["gguf"].get<std::string>(), *backend, mo);
        ASSERT_TRUE(model.ok()) << entry["name"] << ": " << model.message();
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
            ASSERT_EQ(got->size(), ref.size()) << entry["name"] << " " << prompt["name"];
            float scale = 0;
            for (float x : ref) scale = std::max(scale, std::fabs(x));
            for (size_t i = 0; i < ref.size(); ++i) {
                ASSERT_NEAR((*got)[i], ref[i], 1e-4f * scale)
                    << entry["name"] << " prompt " << prompt["name"] << " index " << i;
            }
            ++checked;
        }
    }
    EXPECT_GE(checked, 7 * 3);
}

}  // namespace
}  // namespace sift
