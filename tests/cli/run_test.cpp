// `sift run` end to end on the smallest real model (SmolLM2-135M): greedy continuations equal the
// committed goldens (which equal transformers' on the same GGUF), and bad input exits 1 cleanly.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/cli/command.h"

namespace sift {
namespace {

namespace fs = std::filesystem;

std::string smollm2() {
    const std::string path = (test_models_dir() / "smollm2-135m-instruct-q4_1.gguf").string();
    EXPECT_TRUE(fs::exists(path)) << path
                                  << " is missing: run `build/sift models pull smollm2-135m`";
    return path;
}

std::string quoted(const std::string& s) {
    return shell_quote(s);
}

TEST(Run, SmolLM2GreedyContinuationsMatchTheGoldens) {
    const std::string model = smollm2();
    std::ifstream in(std::string(SIFT_TEST_DATA) + "/golden/smollm2_greedy.json");
    const nlohmann::json golden = nlohmann::json::parse(in);
    for (const auto& c : golden["cases"]) {
        const std::string prompt = c["prompt"];
        CommandResult r =
            run_command(fmt::format("{} run -m {} -p {} -n 20 --temp 0 --exact --json", SIFT_BINARY,
                                    model, quoted(prompt)));
        ASSERT_EQ(r.exit_code, 0) << r.err;
        const nlohmann::json out = nlohmann::json::parse(r.out);
        EXPECT_EQ(out["tokens"], c["ids"]) << prompt;
        EXPECT_EQ(out["text"], c["text"]) << prompt;
        EXPECT_EQ(out["stop_reason"], "length");
        EXPECT_EQ(out["timings"]["generated_tokens"], 20);
    }
}

TEST(Run, ChatAnswersAndStopsAtEndOfTurn) {
    CommandResult r = run_command(fmt::format(
        "{} run -m {} -p 'What is the capital of France?' --chat -n 40 --temp 0 --exact --json",
        SIFT_BINARY, smollm2()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json out = nlohmann::json::parse(r.out);
    EXPECT_NE(out["text"].get<std::string>().find("Paris"), std::string::npos) << out["text"];
    EXPECT_EQ(out["stop_reason"], "eos");
}

TEST(Run, DumpLogitsWritesOneRowOfVocabFloats) {
    const std::string path =
        (fs::temp_directory_path() / fmt::format("sift_logits_{}.bin", ::getpid())).string();
    CommandResult r = run_command(
        fmt::format("{} run -m {} -p 'Hello' --dump-logits {}", SIFT_BINARY, smollm2(), path));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(fs::file_size(path), 49152u * 4u);
    fs::remove(path);
}

TEST(Run, BadInputExitsOneWithAMessage) {
    struct Case {
        std::string args;
        std::string message;
    };
    const std::string model = smollm2();
    const std::vector<Case> cases = {
        {"-m " + model, "no prompt"},
        {"-m " + model + " -c 8 -p 'one two three four five six seven eight nine ten'",
         "does not fit the context"},
        {"-m /nonexistent.gguf -p hi", "/nonexistent.gguf"},
        {"-m " + std::string(SIFT_TEST_DATA) + "/gguf/python_writer.gguf -p hi",
         "unsupported architecture"},
        {"-m " + model + " -p hi --cache-type q9", "unknown --cache-type"},
        {"-m " + model + " -p hi -ngl 5", "-ngl 5: the model has 30 layers"},
        {"-m " + model + " -p hi --device gpu", "expected auto, cpu, cuda or cuda:N"},
        {"-m " + model + " -p hi --device cuda:x", "cuda:N with N a device index"},
        {"-m " + model + " -p hi --device cuda --exact", "--exact is the CPU reference path"},
    };
    for (const Case& c : cases) {
        CommandResult r = run_command(fmt::format("{} run {}", SIFT_BINARY, c.args));
        EXPECT_EQ(r.exit_code, 1) << c.args;
        EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << "\n" << r.err;
        EXPECT_EQ(r.err.rfind("sift: error: ", 0), 0u) << r.err;
    }
}

}  // namespace
}  // namespace sift
