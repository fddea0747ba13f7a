// Real models against Hugging Face goldens (tests/data/tokenizer/<model>.inp/.out, written by
// scripts/gen_tokenizer_golden.py): exact ids, decode round trips, streaming decode.
// The models are found in $SIFT_MODELS or ~/.cache/sift/models; a missing one fails the test with
// the command that pulls it (scripts/fetch_test_models.sh does so before `make test`).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace sift {
namespace {

struct Model {
    const char* name;  // `sift models pull` name, and the golden file stem
    const char* file;
};

constexpr Model kQwen = {"qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct-awq-q4_k_m.gguf"};
constexpr Model kSmollm = {"smollm2-135m", "smollm2-135m-instruct-q4_1.gguf"};
constexpr Model kGemma = {"gemma3-270m", "gemma-3-270m-q4_k_m.gguf"};

struct Case {
    std::string text;
    bool add_special = false;
    bool parse_special = false;
    std::vector<TokenId> ids;
};

std::filesystem::path models_dir() {
    if (const char* dir = std::getenv("SIFT_MODELS")) return dir;
    const char* home = std::getenv("HOME");
    return std::filesystem::path(home ? home : "/") / ".cache" / "sift" / "models";
}

// Loaded once per model for the whole binary (the Gemma vocabulary has 262k tokens).
const Tokenizer* load(const Model& model, std::string* error) {
    static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
    auto it = cache.find(model.name);
    if (it != cache.end()) return it->second.get();
    const std::filesystem::path path = models_dir() / model.file;
    if (!std::filesystem::exists(path)) {
        *error = "model file " + path.string() + " is missing: run `build/sift models pull " +
                 model.name + "` (or scripts/fetch_test_models.sh)";
        return nullptr;
    }
    auto file = gguf::File::open(path.string());
    if (!file) {
        *error = file.message();
        return nullptr;
    }
    auto tokenizer = Tokenizer::from_gguf(**file);
    if (!tokenizer) {
        *error = tokenizer.message();
        return nullptr;
    }
    return cache.emplace(model.name, std::move(*tokenizer)).first->second.get();
}

std::vector<Case> load_cases(const Model& model) {
    const std::string base = std::string(SIFT_TEST_DATA) + "/tokenizer/" + model.name;
    std::ifstream inp(base + ".inp"), out(base + ".out");
    EXPECT_TRUE(inp && out) << "missing goldens " << base << ".inp/.out "
                            << "(scripts/gen_tokenizer_golden.py writes them)";
    std::vector<Case> cases;
    std::string in_line, out_line;
    while (std::getline(inp, in_line)) {
        EXPECT_TRUE(std::getline(out, out_line)) << base << ".out has fewer lines than .inp";
        const auto in = nlohmann::json::parse(in_line);
        const auto ids = nlohmann::json::parse(out_line);
        cases.push_back({in.at("text").get<std::string>(), in.at("add_special").get<bool>(),
                         in.at("parse_special").get<bool>(),
                         ids.at("ids").get<std::vector<TokenId>>()});
    }
    EXPECT_FALSE(cases.empty());
    return cases;
}

std::string shown(const std::string& text) {
    std::string s = text.size() > 60 ? text.substr(0, 60) + "..." : text;
    std::string out;
    for (char c : s) {
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else {
            out += c;
        }
    }
    return out;
}

void check_goldens(const Model& model) {
    std::string error;
    const Tokenizer* tok = load(model, &error);
    ASSERT_NE(tok, nullptr) << error;
    const std::vector<Case> cases = load_cases(model);
    size_t exact = 0;
    for (const Case& c : cases) {
        const auto ids = tok->encode(c.text, c.add_special, c.parse_special);
        if (ids == c.ids) {
            ++exact;
            continue;
        }
        ADD_FAILURE() << model.name << ": ids differ for \"" << shown(c.text)
                      << "\" (add_special=" << c.add_special
                      << ", parse_special=" << c.parse_special << "): got " << ids.size()
                      << " ids, want " << c.ids.size() << ::testing::PrintToString(ids) << " vs "
                      << ::testing::PrintToString(c.ids);
    }
    std::printf("[ golden   ] %s: %zu/%zu cases exact (%.1f%%)\n", model.name, exact, cases.size(),
                100.0 * static_cast<double>(exact) / static_cast<double>(cases.size()));
}

// decode(encode(s)) == s wherever the tokenizer keeps every byte: not where NFC changes the text
// (Qwen) or where a literal U+2581 is read as a space (SentencePiece).
void check_round_trip(const Model& model) {
    std::string error;
    const Tokenizer* tok = load(model, &error);
    ASSERT_NE(tok, nullptr) << error;
    size_t checked = 0, lossy = 0;
    for (const Case& c : load_cases(model)) {
        std::string normalized;
        const bool nfc_changes = tok->pre() == "qwen2" &&
                                 unicode::nfc_normalize(c.text, normalized) && normalized != c.text;
        const bool literal_meta_space =
            tok->model() == "llama" && c.text.find("\xE2\x96\x81") != std::string::npos;
        if (nfc_changes || literal_meta_space) {
            ++lossy;
            continue;
        }
        for (bool parse_special : {false, true}) {
            const auto ids = tok->encode(c.text, false, parse_special);
            EXPECT_EQ(tok->decode(ids, false), c.text)
                << model.name << ": round trip of \"" << shown(c.text) << "\"";
        }
        ++checked;
    }
    std::printf("[ roundtrip] %s: %zu texts decode(encode(s)) == s, %zu skipped as lossy\n",
                model.name, checked, lossy);
}

// One token at a time, the stream gives decode()'s text, and never splits a UTF-8 character.
void check_stream(const Model& model) {
    std::string error;
    const Tokenizer* tok = load(model, &error);
    ASSERT_NE(tok, nullptr) << error;
    for (const Case& c : load_cases(model)) {
        for (bool skip_special : {false, true}) {
            TokenStreamDecoder stream(*tok, skip_special);
            std::string text;
            for (TokenId id : c.ids) {
                const std::string piece = stream.push(id);
                EXPECT_EQ(unicode::utf8_incomplete_tail(piece), 0u);
                text += piece;
            }
            text += stream.flush();
            EXPECT_EQ(text, tok->decode(c.ids, skip_special))
                << model.name << ": stream of \"" << shown(c.text) << "\"";
        }
    }
}

TEST(TokenizerGolden, Qwen25Coder) {
    check_goldens(kQwen);
}
TEST(TokenizerGolden, Smollm2) {
    check_goldens(kSmollm);
}
TEST(TokenizerGolden, Gemma3) {
    check_goldens(kGemma);
}

TEST(TokenizerRoundTrip, Qwen25Coder) {
    check_round_trip(kQwen);
}
TEST(TokenizerRoundTrip, Smollm2) {
    check_round_trip(kSmollm);
}
TEST(TokenizerRoundTrip, Gemma3) {
    check_round_trip(kGemma);
}

TEST(TokenizerStream, Qwen25Coder) {
    check_stream(kQwen);
}
TEST(TokenizerStream, Smollm2) {
    check_stream(kSmollm);
}
TEST(TokenizerStream, Gemma3) {
    check_stream(kGemma);
}

TEST(TokenizerRealModels, MetadataAsExpected) {
    std::string error;
    const Tokenizer* qwen = load(kQwen, &error);
    ASSERT_NE(qwen, nullptr) << error;
    EXPECT_EQ(qwen->model(), "gpt2");
    EXPECT_EQ(qwen->pre(), "qwen2");
    EXPECT_EQ(qwen->n_vocab(), 151936);
    EXPECT_EQ(qwen->special().eos, 151645);
    EXPECT_FALSE(qwen->special().add_bos);
    EXPECT_TRUE(qwen->is_control(151644));   // <|im_start|>
    EXPECT_FALSE(qwen->is_control(151657));  // <tool_call> is user-defined
    EXPECT_EQ(qwen->decode(qwen->encode("<|im_start|>hi", false, true), true), "hi");

    const Tokenizer* gemma = load(kGemma, &error);
    ASSERT_NE(gemma, nullptr) << error;
    EXPECT_EQ(gemma->model(), "llama");
    EXPECT_TRUE(gemma->special().add_bos);
    EXPECT_EQ(gemma->encode("", true, true), std::vector<TokenId>{2});
    EXPECT_EQ(gemma->token_bytes(238 + 0x41, false), "A");  // <0x41>
    EXPECT_EQ(gemma->token_bytes(2, true), "");
    EXPECT_EQ(gemma->token_bytes(2, false), "<bos>");
    EXPECT_EQ(gemma->token_bytes(-5, false), "");
    EXPECT_EQ(gemma->token_bytes(1 << 30, false), "");

    // Invalid UTF-8 survives byte for byte where the vocabulary has every byte; SmolLM2's lacks
    // bytes that never occur in UTF-8 (and a few controls), which HF's BPE drops too.
    const std::string bytes = "ok \xff\xfe\xc3 end\x80";
    for (const Model* m : {&kQwen, &kSmollm, &kGemma}) {
        const Tokenizer* tok = load(*m, &error);
        ASSERT_NE(tok, nullptr) << error;
        const std::string want = m == &kSmollm ? "ok \xc3 end\x80" : bytes;
        EXPECT_EQ(tok->decode(tok->encode(bytes, false, false), false), want) << m->name;
    }
}

}  // namespace
}  // namespace sift
