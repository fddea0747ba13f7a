// `sift template`: renders with a real model's own chat template, compared with the golden that
// Python jinja2 (through transformers) rendered from the same GGUF
// (scripts/gen_template_golden.py).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/cli/command.h"

namespace sift {
namespace {

namespace fs = std::filesystem;

const fs::path kData = fs::path(SIFT_TEST_DATA) / "templates";
constexpr const char* kModelFile = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf";

std::string quoted(const fs::path& p) {
    return "'" + p.string() + "'";
}

TEST(TemplateCli, QwenModelTemplateWithToolsMatchesJinja2) {
    const fs::path model = test_models_dir() / kModelFile;
    ASSERT_TRUE(fs::exists(model)) << model << " is missing: run `build/sift models pull "
                                   << "qwen2.5-coder-1.5b` (or set SIFT_MODELS)";
    CommandResult r =
        run_command(std::string(SIFT_BINARY) + " template -m " + quoted(model) + " --messages " +
                    quoted(kData / "cli" / "messages.json") + " --tools " +
                    quoted(kData / "cli" / "tools.json") + " --add-generation-prompt");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, slurp(kData / "cli" / "qwen2.5-coder-1.5b.tools.agp.txt"));
    EXPECT_EQ(r.err, "");
}

TEST(TemplateCli, TemplateFileOverridesAndKwargsReachTheTemplate) {
    const fs::path dir =
        fs::temp_directory_path() / ("sift_template_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "t.jinja")
        << "{{ messages[0].content }}|{{ add_generation_prompt }}|"
           "{{ enable_thinking }}|{{ date_string }}|{{ tools | length }}\n";
    std::ofstream(dir / "m.json") << R"({"messages": [{"role": "user", "content": "héllo"}],
                                       "tools": [{"type": "function"}]})";
    CommandResult r =
        run_command(std::string(SIFT_BINARY) + " template --template " + quoted(dir / "t.jinja") +
                    " --messages " + quoted(dir / "m.json") +
                    " --enable-thinking false --kwargs '{\"date_string\": \"1 Jan\"}'");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // Printed exactly: Jinja2 drops the template's single trailing newline, sift adds none.
    EXPECT_EQ(r.out, "héllo|False|False|1 Jan|1");
    fs::remove_all(dir);
}

TEST(TemplateCli, TemplateErrorsExitNonZeroWithPosition) {
    const fs::path dir =
        fs::temp_directory_path() / ("sift_template_err_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "bad.jinja")
        << "{% for m in messages %}\n{{ m | frobnicate }}\n{% endfor %}";
    std::ofstream(dir / "m.json") << R"([{"role": "user", "content": "x"}])";
    CommandResult r =
        run_command(std::string(SIFT_BINARY) + " template --template " + quoted(dir / "bad.jinja") +
                    " --messages " + quoted(dir / "m.json"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find("line 2, column 8: unknown filter 'frobnicate'"), std::string::npos)
        << r.err;

    std::ofstream(dir / "raise.jinja") << "{{ raise_exception('only user messages') }}";
    r = run_command(std::string(SIFT_BINARY) + " template --template " +
                    quoted(dir / "raise.jinja") + " --messages " + quoted(dir / "m.json"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("only user messages"), std::string::npos) << r.err;
    fs::remove_all(dir);
}

}  // namespace
}  // namespace sift
