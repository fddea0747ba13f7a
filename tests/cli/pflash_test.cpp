// Speculative prefill through the CLI on real models: SmolLM2 as target with itself (same
// vocabulary) and with Gemma 3 (another tokenizer) as the drafter; the compressed prompt still
// answers a needle question, the report adds up, and `sift eval niah` runs both modes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/cli/command.h"
#include "tests/test_temp.h"

namespace sift {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string model(const char* file) {
    const fs::path p = test_models_dir() / file;
    EXPECT_TRUE(fs::exists(p)) << p << " is missing (make test pulls it)";
    return p.string();
}

// ~1400 SmolLM2 tokens of the reference filler with one needle at 40% depth.
std::string haystack_file() {
    const std::string path = test_temp_path("hay.txt");
    std::ofstream out(path);
    const std::string filler =
        "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back "
        "again. ";
    for (int i = 0; i < 60; ++i) {
        if (i == 24) out << "The special magic lantern number is: 5093817. ";
        out << filler;
    }
    return path;
}

json run_json(const std::string& args) {
    const CommandResult r = run_command(fmt::format("{} run {} --json", SIFT_BINARY, args));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? json::parse(r.out) : json();
}

TEST(PflashCli, SameVocabularyKeepsTheNeedle) {
    const std::string hay = haystack_file();
    const json r = run_json(fmt::format(
        "-m {0} --drafter {0} --pflash on --pflash-threshold 0 --keep-ratio 0.1 --chat -f {1} "
        "-p 'What is the special magic lantern number? Answer in one short sentence.' -n 24 "
        "--temp 0",
        shell_quote(model("smollm2-135m-instruct-q4_1.gguf")), shell_quote(hay)));
    ASSERT_TRUE(r.contains("pflash")) << r.dump();
    const json& p = r["pflash"];
    EXPECT_LT(p["kept_tokens"].get<int64_t>(), p["target_tokens"].get<int64_t>());
    EXPECT_EQ(p["kept_tokens"].get<int64_t>(), r["timings"]["prompt_tokens"].get<int64_t>());
    EXPECT_GT(p["chunks_by_score"].get<int64_t>(), 0);
    EXPECT_NE(r["text"].get<std::string>().find("5093817"), std::string::npos) << r["text"];
    std::filesystem::remove(hay);
}

TEST(PflashCli, CrossFamilyDrafterMapsThroughText) {
    const std::string hay = haystack_file();
    const json r = run_json(fmt::format(
        "-m {} --drafter {} --pflash on --pflash-threshold 0 --keep-ratio 0.1 --chat -f {} "
        "-p 'What is the special magic lantern number? Answer in one short sentence.' -n 24 "
        "--temp 0",
        shell_quote(model("smollm2-135m-instruct-q4_1.gguf")),
        shell_quote(model("gemma-3-270m-q4_k_m.gguf")), shell_quote(hay)));
    ASSERT_TRUE(r.contains("pflash")) << r.dump();
    EXPECT_NE(r["pflash"]["drafter_tokens"], r["pflash"]["target_tokens"]);
    EXPECT_LT(r["pflash"]["kept_tokens"].get<int64_t>(),
              r["pflash"]["target_tokens"].get<int64_t>());
    EXPECT_NE(r["text"].get<std::string>().find("5093817"), std::string::npos) << r["text"];
    std::filesystem::remove(hay);
}

TEST(PflashCli, BadOptionsAreNamed) {
    const std::string m = shell_quote(model("smollm2-135m-instruct-q4_1.gguf"));
    CommandResult r = run_command(fmt::format("{} run -m {} -p hi --pflash on", SIFT_BINARY, m));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("--pflash on needs --drafter"), std::string::npos) << r.err;
    r = run_command(fmt::format("{0} run -m {1} --drafter {1} -p hi --pflash on --keep-ratio 2",
                                SIFT_BINARY, m));
    EXPECT_NE(r.err.find("--keep-ratio must be in (0, 1]"), std::string::npos) << r.err;
    r = run_command(fmt::format("{} run -m {} -p hi --pflash maybe", SIFT_BINARY, m));
    EXPECT_NE(r.err.find("--pflash takes off or on"), std::string::npos) << r.err;
    r = run_command(fmt::format("{0} run -m {1} --drafter {1} -p hi --pflash on --bsa-window 0",
                                SIFT_BINARY, m));
    EXPECT_NE(r.err.find("--bsa-window must be >= 1"), std::string::npos) << r.err;
    r = run_command(fmt::format("{0} run -m {1} --drafter {1} -p hi --pflash on --bsa-last-full -1",
                                SIFT_BINARY, m));
    EXPECT_NE(r.err.find("--bsa-last-full must be >= 0"), std::string::npos) << r.err;
}

TEST(PflashCli, ConversationCompressesOnlyLongContext) {
    // An agent turn: system prompt, a long tool result holding the needle, the user's question.
    std::string tool_result;
    const std::string filler =
        "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back "
        "again. ";
    for (int i = 0; i < 60; ++i) {
        if (i == 24) tool_result += "The special magic lantern number is: 5093817. ";
        tool_result += filler;
    }
    const json conversation = {
        {"messages",
         {{{"role", "system"}, {"content", "You are a helpful assistant. Answer briefly."}},
          {{"role", "user"}, {"content", "Read the log and keep it in mind."}},
          {{"role", "tool"}, {"content", tool_result}},
          {{"role", "user"},
           {"content",
            "What is the special magic lantern number? Answer in one short "
            "sentence."}}}}};
    const std::string path = test_temp_path("conversation.json");
    std::ofstream(path) << conversation.dump();
    const json r = run_json(fmt::format(
        "-m {0} --drafter {0} --pflash on --pflash-threshold 0 --keep-ratio 0.1 --messages {1} "
        "-n 24 --temp 0",
        shell_quote(model("smollm2-135m-instruct-q4_1.gguf")), shell_quote(path)));
    ASSERT_TRUE(r.contains("pflash")) << r.dump();
    const json& seg = r["pflash"]["segments"];
    ASSERT_EQ(seg.size(), 4u) << r.dump();
    EXPECT_EQ(seg[0]["reason"], "system prompt");
    EXPECT_EQ(seg[0]["compressible_bytes"], 0);
    EXPECT_EQ(seg[1]["reason"], "short");
    EXPECT_EQ(seg[2]["reason"], "tool result");
    EXPECT_EQ(seg[2]["compressible_bytes"], seg[2]["bytes"]);
    EXPECT_EQ(seg[3]["compressible_bytes"], 0);
    EXPECT_LT(r["pflash"]["kept_tokens"].get<int64_t>(),
              r["pflash"]["target_tokens"].get<int64_t>());
    EXPECT_NE(r["text"].get<std::string>().find("5093817"), std::string::npos) << r["text"];
    // Bad input is named.
    std::ofstream(path) << "[{\"content\": \"no role\"}]";
    const CommandResult bad = run_command(
        fmt::format("{} run -m {} --messages {} -n 1", SIFT_BINARY,
                    shell_quote(model("smollm2-135m-instruct-q4_1.gguf")), shell_quote(path)));
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_NE(bad.err.find("\"role\""), std::string::npos) << bad.err;
    std::filesystem::remove(path);
}

TEST(EvalCli, NiahRunsDenseAndCompressed) {
    const std::string m = shell_quote(model("smollm2-135m-instruct-q4_1.gguf"));
    const CommandResult r = run_command(fmt::format(
        "{} eval niah -m {} --drafter {} --ctx 1200 --keep-ratio 0.2 --tasks single --cases 1 "
        "-n 24 -o json",
        SIFT_BINARY, m, m));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const json j = json::parse(r.out);
    ASSERT_EQ(j["summary"].size(), 2u);
    EXPECT_EQ(j["summary"][0]["mode"], "dense");
    EXPECT_EQ(j["summary"][1]["mode"], "keep 0.2");
    EXPECT_EQ(j["cases"].size(), 1u);
    EXPECT_GT(j["cases"][0]["prompt_tokens"].get<int64_t>(), 1000);
    EXPECT_EQ(j["summary"][0]["correct"], 1) << j["cases"][0].dump();
}

}  // namespace
}  // namespace sift
