#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <fmt/format.h>

#include <initializer_list>

namespace sift {
namespace {

// The ByteLevel pre-tokenizer's own regex (GPT-2).
constexpr const char* kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Qwen2 (Qwen2.5, Qwen3): contractions in any case, one digit at a time.
constexpr const char* kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen3.5: as Qwen2, with combining marks kept inside words.
constexpr const char* kQwen35 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Llama 3: as Qwen2, digits in groups of up to three.
constexpr const char* kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// HF's Digits(individual_digits=true): every numeric character alone.
constexpr const char* kDigits = R"(\p{N})";

struct Family {
    std::initializer_list<const char*> names;  // tokenizer.ggml.pre values
    std::initializer_list<const char*> regexes;
    bool nfc;
};

// To add a family: its tokenizer.json's normalizer (NFC or none) and the Split/Digits/ByteLevel
// regexes of its pre_tokenizer, in order.
const Family kFamilies[] = {
    {{"default", "gpt2"}, {kGpt2}, false},
    {{"qwen2", "deepseek-r1-qwen"}, {kQwen2}, true},
    {{"qwen35"}, {kQwen35}, true},
    {{"llama-bpe", "llama3", "llama-v3"}, {kLlama3}, false},
    // SmolLM2: Digits(individual_digits) then ByteLevel(use_regex), no normalizer.
    {{"smollm"}, {kDigits, kGpt2}, false},
};

// The regexes above are HF's text (Oniguruma), where \s is Unicode White_Space. PCRE2's \s also
// takes U+180E (a space before Unicode 6.3), so spell the property out.
std::string to_pcre2(const char* regex) {
    std::string out;
    for (const char* p = regex; *p != '\0'; ++p) {
        if (p[0] == '\\' && (p[1] == 's' || p[1] == 'S')) {
            out += p[1] == 's' ? "\\p{White_Space}" : "\\P{White_Space}";
            ++p;
        } else if (p[0] == '\\' && p[1] != '\0') {
            out += *p++;
            out += *p;
        } else {
            out += *p;
        }
    }
    return out;
}

}  // namespace

struct PreTokenizer::Stage {
    pcre2_code* code = nullptr;
    ~Stage() { pcre2_code_free(code); }
};

PreTokenizer::~PreTokenizer() = default;

std::vector<std::string> PreTokenizer::known_names() {
    std::vector<std::string> names;
    for (const Family& f : kFamilies) names.insert(names.end(), f.names.begin(), f.names.end());
    return names;
}

Result<std::unique_ptr<PreTokenizer>> PreTokenizer::create(std::string_view pre) {
    const Family* family = nullptr;
    for (const Family& f : kFamilies) {
        for (const char* name : f.names) {
            if (pre == name) family = &f;
        }
    }
    if (family == nullptr) {
        return make_error(
            "tokenizer: pre-tokenizer '{}' (tokenizer.ggml.pre) is not supported; "
            "supported: {}",
            pre, fmt::join(known_names(), ", "));
    }
    std::unique_ptr<PreTokenizer> result(new PreTokenizer());
    result->nfc_ = family->nfc;
    for (const char* regex : family->regexes) {
        int error = 0;
        PCRE2_SIZE offset = 0;
        // MATCH_INVALID_UTF: invalid UTF-8 never matches, so it falls into the gaps and stays
        // bytes for byte-level BPE instead of failing the whole match.
        const std::string pattern = to_pcre2(regex);
        pcre2_code* code = pcre2_compile(
            reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), PCRE2_ZERO_TERMINATED,
            PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &offset, nullptr);
        if (code == nullptr) {
            PCRE2_UCHAR message[256];
            pcre2_get_error_message(error, message, sizeof(message));
            return make_error("tokenizer: pre-tokenizer regex for '{}' does not compile at {}: {}",
                              pre, offset, reinterpret_cast<const char*>(message));
        }
        auto stage = std::make_unique<Stage>();
        stage->code = code;
        // Without JIT (unsupported CPU) PCRE2 interprets the same pattern, only slower.
        pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
        result->stages_.push_back(std::move(stage));
    }
    return result;
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& pieces) const {
    const size_t first = pieces.size();
    pieces.push_back(text);
    std::vector<std::string_view> next;
    for (const auto& stage : stages_) {
        pcre2_match_data* match = pcre2_match_data_create_from_pattern(stage->code, nullptr);
        next.clear();
        for (size_t p = first; p < pieces.size(); ++p) {
            const std::string_view piece = pieces[p];
            const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
            size_t pos = 0;      // where the next search starts
            size_t emitted = 0;  // end of what has been appended to `next`
            while (pos < piece.size()) {
                const int rc =
                    pcre2_match(stage->code, subject, piece.size(), pos, 0, match, nullptr);
                if (rc < 0) break;  // no more matches (or a match error: the rest is one gap)
                const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match);
                const size_t start = ovector[0], end = ovector[1];
                if (start > emitted) next.push_back(piece.substr(emitted, start - emitted));
                if (end > start) {
                    next.push_back(piece.substr(start, end - start));
                    emitted = end;
                    pos = end;
                } else {
                    pos = start + 1;  // an empty match cannot happen with these regexes; be safe
                }
            }
            if (emitted < piece.size()) next.push_back(piece.substr(emitted));
        }
        pcre2_match_data_free(match);
        pieces.resize(first);
        pieces.insert(pieces.end(), next.begin(), next.end());
    }
}

}  // namespace sift
