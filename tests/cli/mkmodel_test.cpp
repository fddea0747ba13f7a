// End to end: `sift mkmodel` writes a complete GGUF that `sift inspect` reads back.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/cli/command.h"

#include "tests/test_temp.h"

namespace sift {
namespace {

namespace fs = std::filesystem;

TEST(Mkmodel, SmolLM2ShapeRoundTripsThroughInspect) {
    const fs::path dir = fs::path(test_temp_path("dir"));
    fs::create_directories(dir);
    const fs::path out = dir / "smol_q4km.gguf";
    CommandResult made = run_command(fmt::format(
        "{} mkmodel --arch llama --preset 135m --type q4_k_m -o {}", SIFT_BINARY, out.string()));
    ASSERT_EQ(made.exit_code, 0) << made.err;
    EXPECT_EQ(made.out, out.string() + "\n");
    EXPECT_FALSE(fs::exists(out.string() + ".partial"));

    CommandResult inspected =
        run_command(fmt::format("{} inspect --json --tensors {}", SIFT_BINARY, out.string()));
    ASSERT_EQ(inspected.exit_code, 0) << inspected.err;
    const nlohmann::json info = nlohmann::json::parse(inspected.out);
    EXPECT_EQ(info["architecture"], "llama");
    EXPECT_EQ(info["file_type"], "Q4_K_M");
    EXPECT_EQ(info["file_size"].get<uint64_t>(), fs::file_size(out));
    EXPECT_EQ(info["tensor_count"], 2 + 30 * 9);  // tied embeddings: no output.weight
    EXPECT_EQ(info["metadata"]["llama.block_count"], 30);
    EXPECT_EQ(info["metadata"]["tokenizer.ggml.tokens"]["count"], 49152);
    EXPECT_TRUE(info["chat_template"].get<bool>());
    bool saw_q = false;
    for (const auto& t : info["tensors"]) {
        if (t["name"] == "blk.0.attn_q.weight") {
            saw_q = true;
            EXPECT_EQ(t["shape"], nlohmann::json::array({576, 576}));
            EXPECT_EQ(t["type"],
                      "q5_0");  // rows of 576 are not whole Q4_K blocks: llama.cpp falls back
        }
        if (t["name"] == "blk.0.ffn_up.weight")
            EXPECT_EQ(t["shape"], nlohmann::json::array({576, 1536}));
    }
    EXPECT_TRUE(saw_q);
    fs::remove_all(dir);
}

TEST(Mkmodel, RejectsUnknownPresetAndType) {
    CommandResult r =
        run_command(fmt::format("{} mkmodel --arch qwen3 --preset 3b -o /tmp/x.gguf", SIFT_BINARY));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("no preset '3b'"), std::string::npos) << r.err;
    r = run_command(
        fmt::format("{} mkmodel --arch qwen3 --preset 0.6b --type q9 -o /tmp/x.gguf", SIFT_BINARY));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("unknown type 'q9'"), std::string::npos) << r.err;
}

TEST(Inspect, CorruptFileExitsOneWithOneLine) {
    const fs::path bad = fs::path(test_temp_path("bad.gguf"));
    std::ofstream(bad) << "GGUF\x03\0\0\0garbage";
    CommandResult r = run_command(fmt::format("{} inspect {}", SIFT_BINARY, bad.string()));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err.rfind("sift: error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(r.out.empty());
    r = run_command(fmt::format("{} inspect /nonexistent/model.gguf", SIFT_BINARY));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("/nonexistent/model.gguf"), std::string::npos);
    fs::remove(bad);
}

}  // namespace
}  // namespace sift
