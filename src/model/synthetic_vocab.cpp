#include "model/synthetic_vocab.h"

#include <fmt/format.h>

#include <string>
#include <unordered_set>

#include "core/check.h"

namespace sift {
namespace {

using gguf::Value;

// GGUF token types (llama.cpp's llama_token_type).
constexpr int32_t kTokenNormal = 1;
constexpr int32_t kTokenUnknown = 2;
constexpr int32_t kTokenControl = 3;
constexpr int32_t kTokenByte = 6;

std::string utf8(uint32_t cp) {
    std::string out;
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return out;
}

// GPT-2's byte-to-unicode map: printable bytes map to themselves, the rest to U+0100 onwards.
std::string byte_level_char(int byte) {
    auto printable = [](int b) {
        return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    };
    if (printable(byte)) return utf8(static_cast<uint32_t>(byte));
    int shifted = 0;
    for (int b = 0; b < byte; ++b) shifted += printable(b) ? 0 : 1;
    return utf8(256u + static_cast<uint32_t>(shifted));
}

struct VocabBuilder {
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    std::vector<float> scores;
    std::vector<std::string> merges;
    std::unordered_set<std::string> seen;

    bool add(std::string token, int32_t type) {
        if (!seen.insert(token).second) return false;
        tokens.push_back(std::move(token));
        types.push_back(type);
        scores.push_back(-static_cast<float>(tokens.size()));
        return true;
    }

    // Grows tokens by appending characters of `alphabet` to earlier tokens, breadth first, until
    // `target` tokens exist; records each as a BPE merge when `record_merges`.
    void grow(size_t target, const std::vector<std::string>& alphabet, size_t first,
              bool record_merges) {
        for (size_t left = first; tokens.size() < target; ++left) {
            SIFT_CHECK(left < tokens.size(), "synthetic vocabulary cannot grow");
            const std::string base = tokens[left];
            for (const std::string& ch : alphabet) {
                if (tokens.size() >= target) break;
                if (add(base + ch, kTokenNormal) && record_merges)
                    merges.push_back(base + " " + ch);
            }
        }
    }

    std::vector<MetadataEntry> finish(std::string model, std::string pre) {
        std::vector<Value> type_values, score_values;
        for (int32_t t : types) type_values.push_back(Value::i32(t));
        for (float s : scores) score_values.push_back(Value::f32(s));
        std::vector<MetadataEntry> kv = {
            {"tokenizer.ggml.model", Value::string(std::move(model))},
            {"tokenizer.ggml.pre", Value::string(std::move(pre))},
            {"tokenizer.ggml.tokens", Value::string_array(tokens)},
            {"tokenizer.ggml.token_type", Value::array(gguf::ValueType::INT32, type_values)},
        };
        if (merges.empty()) {
            kv.push_back(
                {"tokenizer.ggml.scores", Value::array(gguf::ValueType::FLOAT32, score_values)});
        } else {
            kv.push_back({"tokenizer.ggml.merges", Value::string_array(merges)});
        }
        return kv;
    }

    int32_t id(const std::string& token) const {
        for (size_t i = tokens.size(); i-- > 0;) {
            if (tokens[i] == token) return static_cast<int32_t>(i);
        }
        SIFT_CHECK(false, "token {} not in synthetic vocabulary", token);
        return -1;
    }
};

// ChatML, as Qwen2.5 and SmolLM2 use it (without tool support).
constexpr const char* kChatmlTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";

constexpr const char* kLlama3Template =
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% endif %}";

constexpr const char* kGemmaTemplate =
    "{{ bos_token }}{% for message in messages %}{% set role = 'model' if message['role'] == "
    "'assistant' else message['role'] %}{{ '<start_of_turn>' + role + '\\n' + message['content'] "
    "| trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<start_of_turn>model\\n' }}{% endif %}";

std::vector<std::string> bpe_alphabet() {
    std::vector<std::string> alphabet;
    for (char c = 'a'; c <= 'z'; ++c) alphabet.push_back(std::string(1, c));
    for (char c = '0'; c <= '9'; ++c) alphabet.push_back(std::string(1, c));
    for (char c = 'A'; c <= 'Z'; ++c) alphabet.push_back(std::string(1, c));
    alphabet.push_back(byte_level_char(' '));  // "Ġ"
    return alphabet;
}

std::vector<MetadataEntry> bpe_vocab(const ModelShape& shape) {
    const bool llama3 = shape.arch == "llama" && shape.n_vocab > 100000;
    const std::vector<std::string> specials =
        llama3 ? std::vector<std::string>{"<|begin_of_text|>", "<|end_of_text|>",
                                          "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}
               : std::vector<std::string>{"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    VocabBuilder v;
    for (int b = 0; b < 256; ++b) v.add(byte_level_char(b), kTokenNormal);
    v.grow(static_cast<size_t>(shape.n_vocab) - specials.size(), bpe_alphabet(), 0, true);
    for (const std::string& s : specials) SIFT_CHECK(v.add(s, kTokenControl));

    std::string pre = shape.arch == "llama" ? (llama3 ? "llama-bpe" : "smollm") : "qwen2";
    std::vector<MetadataEntry> kv = v.finish("gpt2", pre);
    if (llama3) {
        kv.push_back({"tokenizer.ggml.bos_token_id", Value::u32(v.id("<|begin_of_text|>"))});
        kv.push_back({"tokenizer.ggml.eos_token_id", Value::u32(v.id("<|eot_id|>"))});
        kv.push_back({"tokenizer.ggml.add_bos_token", Value::boolean(true)});
        kv.push_back({"tokenizer.chat_template", Value::string(kLlama3Template)});
    } else {
        kv.push_back({"tokenizer.ggml.bos_token_id", Value::u32(v.id("<|endoftext|>"))});
        kv.push_back({"tokenizer.ggml.eos_token_id", Value::u32(v.id("<|im_end|>"))});
        kv.push_back({"tokenizer.ggml.padding_token_id", Value::u32(v.id("<|endoftext|>"))});
        kv.push_back({"tokenizer.ggml.add_bos_token", Value::boolean(false)});
        kv.push_back({"tokenizer.chat_template", Value::string(kChatmlTemplate)});
    }
    return kv;
}

std::vector<MetadataEntry> spm_vocab(const ModelShape& shape) {
    VocabBuilder v;
    v.add("<pad>", kTokenControl);
    v.add("<eos>", kTokenControl);
    v.add("<bos>", kTokenControl);
    v.add("<unk>", kTokenUnknown);
    v.add("<start_of_turn>", kTokenControl);
    v.add("<end_of_turn>", kTokenControl);
    for (int b = 0; b < 256; ++b) v.add(fmt::format("<0x{:02X}>", b), kTokenByte);
    const std::string space = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space
    std::vector<std::string> alphabet = {space};
    for (char c = 'a'; c <= 'z'; ++c) alphabet.push_back(std::string(1, c));
    for (char c = 'A'; c <= 'Z'; ++c) alphabet.push_back(std::string(1, c));
    for (char c = '0'; c <= '9'; ++c) alphabet.push_back(std::string(1, c));
    for (const char* p : {".", ",", "!", "?", "-", "'", "\"", "(", ")", ":", ";"})
        alphabet.push_back(p);
    const size_t first_piece = v.tokens.size();
    for (const std::string& ch : alphabet) v.add(ch, kTokenNormal);
    v.grow(static_cast<size_t>(shape.n_vocab), alphabet, first_piece, false);

    std::vector<MetadataEntry> kv = v.finish("llama", "default");
    kv.push_back({"tokenizer.ggml.bos_token_id", Value::u32(2)});
    kv.push_back({"tokenizer.ggml.eos_token_id", Value::u32(1)});
    kv.push_back({"tokenizer.ggml.unknown_token_id", Value::u32(3)});
    kv.push_back({"tokenizer.ggml.padding_token_id", Value::u32(0)});
    kv.push_back({"tokenizer.ggml.add_bos_token", Value::boolean(true)});
    kv.push_back({"tokenizer.ggml.add_eos_token", Value::boolean(false)});
    kv.push_back({"tokenizer.chat_template", Value::string(kGemmaTemplate)});
    return kv;
}

}  // namespace

std::vector<MetadataEntry> synthetic_vocab_metadata(const ModelShape& shape) {
    return shape.arch == "gemma3" ? spm_vocab(shape) : bpe_vocab(shape);
}

}  // namespace sift
