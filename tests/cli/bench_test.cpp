// `sift bench`: runs prefill and decode tests on a tiny fixture model and reports consistent
// figures in every output format; bad arguments get clear errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/cli/command.h"

namespace sift {
namespace {

const std::string kModel =
    (std::filesystem::path(SIFT_TEST_DATA) / "models" / "tiny-qwen2" / "model.gguf").string();

std::string bench(const std::string& args) {
    return fmt::format("{} bench -m {} --peak-bw 10 {}", SIFT_BINARY, shell_quote(kModel), args);
}

TEST(BenchCli, JsonHasOneRowPerTestWithConsistentFigures) {
    ASSERT_TRUE(std::filesystem::exists(kModel));
    const CommandResult r = run_command(bench("-p 16,32 -n 8 -d 0,4 -r 2 -o json"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json rows = nlohmann::json::parse(r.out);
    ASSERT_EQ(rows.size(), 6u);  // (pp16, pp32, tg8) x (d0, d4)
    EXPECT_EQ(rows[0]["test"], "pp16");
    EXPECT_EQ(rows[2]["test"], "tg8");
    EXPECT_EQ(rows[5]["test"], "tg8 @ d4");
    for (const nlohmann::json& row : rows) {
        ASSERT_EQ(row["seconds"].size(), 2u);
        const double tokens = row["n_prompt"].get<double>() + row["n_gen"].get<double>();
        const double s0 = row["seconds"][0], s1 = row["seconds"][1];
        EXPECT_GT(s0, 0);
        EXPECT_NEAR(row["tokens_per_second_mean"].get<double>(), (tokens / s0 + tokens / s1) / 2,
                    1e-6 * tokens / std::min(s0, s1));
        // Bytes are counted for decode only (prefill is compute-bound).
        if (row["n_gen"].get<int>() > 0) {
            EXPECT_GT(row["gb_per_second"].get<double>(), 0);
        } else {
            EXPECT_EQ(row["gb_per_second"].get<double>(), 0);
        }
        EXPECT_GT(row["gflop_per_second"].get<double>(), 0);
        EXPECT_EQ(row["bandwidth_ceiling_gb_per_second"].get<double>(), 10.0);
    }
}

TEST(BenchCli, MarkdownAndCsv) {
    CommandResult r = run_command(bench("-p 8 -n 4 -r 1"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("| pp8 |"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("| tg4 |"), std::string::npos) << r.out;
    r = run_command(bench("-p 8 -n 0 -r 1 -o csv"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;  // header + one row
}

// --cache-type sets K and V, --cache-type-k/-v each; the table shows a kv column only when the
// cache is not F16, json and csv always carry type_k and type_v.
TEST(BenchCli, CacheTypes) {
    const std::string qwen3 =
        (std::filesystem::path(SIFT_TEST_DATA) / "models" / "tiny-qwen3" / "model.gguf").string();
    auto bench_on = [&](const std::string& model, const std::string& args) {
        return fmt::format("{} bench -m {} --peak-bw 10 {}", SIFT_BINARY, shell_quote(model), args);
    };
    CommandResult r =
        run_command(bench_on(qwen3, "-p 8 -n 4 -r 1 --cache-type-k q8_0 --cache-type-v q8_0"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("| test | kv | t/s |"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("| tg4 | q8_0 |"), std::string::npos) << r.out;
    r = run_command(bench_on(qwen3, "-p 0 -n 4 -r 1 --cache-type q8_0 --cache-type-v f16 -o json"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json rows = nlohmann::json::parse(r.out);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0]["type_k"], "q8_0");
    EXPECT_EQ(rows[0]["type_v"], "f16");
    r = run_command(bench("-p 8 -n 0 -r 1"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.find("| kv |"), std::string::npos) << r.out;  // f16: no column
    r = run_command(bench("-p 8 --cache-type-v q4_0"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("unknown --cache-type-v 'q4_0' (accepted: f32, f16, q8_0)"),
              std::string::npos)
        << r.err;
    r = run_command(bench("-p 8 --cache-type-k q8_0"));  // tiny-qwen2: head_dim 16
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("q8_0 needs head_dim a multiple of 32"), std::string::npos) << r.err;
}

TEST(BenchCli, BadArgumentsAreNamed) {
    CommandResult r = run_command(bench("-p 8,x"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("-p: 'x' is not a non-negative integer"), std::string::npos) << r.err;
    r = run_command(bench("-p 0 -n 0"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("no tests"), std::string::npos) << r.err;
    r = run_command(bench("-o xml"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("md, json or csv"), std::string::npos) << r.err;
    r = run_command(fmt::format("{} bench -m /nonexistent.gguf", SIFT_BINARY));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("/nonexistent.gguf"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace sift
