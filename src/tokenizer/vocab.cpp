#include "tokenizer/vocab.h"

#include <cstdint>
#include <limits>
#include <string_view>
#include <unordered_map>

namespace sift {
namespace {

using gguf::Array;
using gguf::Value;
using gguf::ValueType;

constexpr std::string_view kModel = "tokenizer.ggml.model";
constexpr std::string_view kPre = "tokenizer.ggml.pre";
constexpr std::string_view kTokens = "tokenizer.ggml.tokens";
constexpr std::string_view kTypes = "tokenizer.ggml.token_type";
constexpr std::string_view kScores = "tokenizer.ggml.scores";
constexpr std::string_view kMerges = "tokenizer.ggml.merges";

// An optional array: null when absent, an error when present but not an array of `want` kind.
Result<const Array*> optional_array(const gguf::File& file, std::string_view key,
                                    std::string_view want, bool (*ok)(ValueType)) {
    if (file.find(key) == nullptr) return static_cast<const Array*>(nullptr);
    auto array = file.get_array(key);
    if (!array) return array.error();
    if (!ok((*array)->element_type)) {
        return make_error("tokenizer: {} is an array of {}, expected {}", key,
                          gguf::value_type_name((*array)->element_type), want);
    }
    return *array;
}

bool is_string(ValueType t) {
    return t == ValueType::STRING;
}
bool is_float(ValueType t) {
    return t == ValueType::FLOAT32 || t == ValueType::FLOAT64;
}
bool is_integer(ValueType t) {
    return t != ValueType::FLOAT32 && t != ValueType::FLOAT64 && t != ValueType::BOOL &&
           t != ValueType::STRING && t != ValueType::ARRAY &&
           static_cast<uint32_t>(t) <= static_cast<uint32_t>(ValueType::FLOAT64);
}

Status check_length(std::string_view key, const Array& array, size_t n_tokens) {
    if (array.items.size() != n_tokens) {
        return make_error("tokenizer: {} has {} entries but {} has {}", key, array.items.size(),
                          kTokens, n_tokens);
    }
    return {};
}

// A special token id: -1 when the key is absent; an error when it is not an in-range integer.
Result<TokenId> optional_id(const gguf::File& file, std::string_view key, size_t n_tokens) {
    if (file.find(key) == nullptr) return TokenId{-1};
    auto id = file.get_u64(key);
    if (!id) return id.error();
    if (*id >= n_tokens) {
        return make_error("tokenizer: {} = {} is out of range (the vocabulary has {} tokens)", key,
                          *id, n_tokens);
    }
    return static_cast<TokenId>(*id);
}

Result<bool> optional_bool(const gguf::File& file, std::string_view key, bool fallback) {
    if (file.find(key) == nullptr) return fallback;
    return file.get_bool(key);
}

Status read_merges(const gguf::File& file, Vocab& vocab) {
    auto merges = optional_array(file, kMerges, "strings", is_string);
    if (!merges) return merges.error();
    if (*merges == nullptr) return make_error("tokenizer: {} is missing (needed by gpt2)", kMerges);
    std::unordered_map<std::string_view, TokenId> ids;
    ids.reserve(vocab.tokens.size());
    for (size_t i = 0; i < vocab.tokens.size(); ++i) {
        ids.emplace(vocab.tokens[i], static_cast<TokenId>(i));  // the first of duplicates wins
    }
    const auto& items = (*merges)->items;
    vocab.merges.reserve(items.size());
    std::string joined;
    for (size_t i = 0; i < items.size(); ++i) {
        const std::string& merge = *items[i].as_string();
        // "left right"; searching from 1 lets a left part that is itself a space survive.
        const size_t space = merge.size() > 1 ? merge.find(' ', 1) : std::string::npos;
        if (space == std::string::npos || merge.find(' ', space + 1) != std::string::npos) {
            return make_error("tokenizer: {}[{}] = '{}' is not two tokens separated by one space",
                              kMerges, i, merge);
        }
        const std::string_view left(merge.data(), space);
        const std::string_view right(merge.data() + space + 1, merge.size() - space - 1);
        const auto l = ids.find(left), r = ids.find(right);
        if (l == ids.end() || r == ids.end()) {
            return make_error("tokenizer: {}[{}] = '{}' names a token not in the vocabulary",
                              kMerges, i, merge);
        }
        joined.assign(left).append(right);
        const auto result = ids.find(joined);
        if (result == ids.end()) {
            return make_error("tokenizer: {}[{}] = '{}' merges into '{}', which is not a token",
                              kMerges, i, merge, joined);
        }
        vocab.merges.push_back({l->second, r->second, result->second});
    }
    return {};
}

}  // namespace

Result<Vocab> vocab_from_gguf(const gguf::File& file) {
    Vocab vocab;
    auto model = file.get_string(kModel);
    if (!model) return model.error();
    vocab.model = *model;
    if (vocab.model != "gpt2" && vocab.model != "llama") {
        return make_error("tokenizer: {} '{}' is not supported (supported: gpt2, llama)", kModel,
                          vocab.model);
    }
    vocab.pre = "default";
    if (file.find(kPre) != nullptr) {
        auto pre = file.get_string(kPre);
        if (!pre) return pre.error();
        vocab.pre = *pre;
    }

    if (file.find(kTokens) == nullptr) return make_error("tokenizer: {} is missing", kTokens);
    auto tokens = optional_array(file, kTokens, "strings", is_string);
    if (!tokens) return tokens.error();
    const size_t n = (*tokens)->items.size();
    if (n == 0) return make_error("tokenizer: {} is empty", kTokens);
    if (n > static_cast<size_t>(std::numeric_limits<TokenId>::max())) {
        return make_error("tokenizer: {} has {} tokens, more than token ids can hold", kTokens, n);
    }
    vocab.tokens.reserve(n);
    for (const Value& v : (*tokens)->items) vocab.tokens.push_back(*v.as_string());

    auto types = optional_array(file, kTypes, "integers", is_integer);
    if (!types) return types.error();
    vocab.types.assign(n, TokenType::TOKEN_NORMAL);
    if (*types != nullptr) {
        SIFT_TRY(check_length(kTypes, **types, n));
        for (size_t i = 0; i < n; ++i) {
            const Value& v = (*types)->items[i];
            const int64_t t = std::holds_alternative<int64_t>(v.data)
                                  ? std::get<int64_t>(v.data)
                                  : static_cast<int64_t>(std::get<uint64_t>(v.data));
            if (t < 0 || t > static_cast<int64_t>(TokenType::TOKEN_BYTE)) {
                return make_error("tokenizer: {}[{}] = {} is not a token type (0..6)", kTypes, i,
                                  t);
            }
            vocab.types[i] = static_cast<TokenType>(t);
        }
    }

    auto scores = optional_array(file, kScores, "floats", is_float);
    if (!scores) return scores.error();
    if (*scores != nullptr) {
        SIFT_TRY(check_length(kScores, **scores, n));
        vocab.scores.reserve(n);
        for (const Value& v : (*scores)->items) {
            vocab.scores.push_back(static_cast<float>(std::get<double>(v.data)));
        }
    }

    if (vocab.model == "gpt2") SIFT_TRY(read_merges(file, vocab));

    SpecialTokens& s = vocab.special;
    struct IdKey {
        std::string_view key;
        TokenId* id;
    };
    for (const IdKey& k : {IdKey{"tokenizer.ggml.bos_token_id", &s.bos},
                           IdKey{"tokenizer.ggml.eos_token_id", &s.eos},
                           IdKey{"tokenizer.ggml.eot_token_id", &s.eot},
                           IdKey{"tokenizer.ggml.eom_token_id", &s.eom},
                           IdKey{"tokenizer.ggml.unknown_token_id", &s.unk},
                           IdKey{"tokenizer.ggml.padding_token_id", &s.pad},
                           IdKey{"tokenizer.ggml.seperator_token_id", &s.sep}}) {
        auto id = optional_id(file, k.key, n);
        if (!id) return id.error();
        *k.id = *id;
    }
    // llama.cpp adds BOS to a SentencePiece vocabulary that does not say otherwise.
    auto add_bos = optional_bool(file, "tokenizer.ggml.add_bos_token", vocab.model == "llama");
    if (!add_bos) return add_bos.error();
    auto add_eos = optional_bool(file, "tokenizer.ggml.add_eos_token", false);
    if (!add_eos) return add_eos.error();
    auto space_prefix =
        optional_bool(file, "tokenizer.ggml.add_space_prefix", vocab.model == "llama");
    if (!space_prefix) return space_prefix.error();
    s.add_bos = *add_bos;
    s.add_eos = *add_eos;
    vocab.add_space_prefix = *space_prefix;
    if (s.add_bos && s.bos < 0) {
        return make_error(
            "tokenizer: tokenizer.ggml.add_bos_token is true but there is no "
            "tokenizer.ggml.bos_token_id");
    }
    if (s.add_eos && s.eos < 0) {
        return make_error(
            "tokenizer: tokenizer.ggml.add_eos_token is true but there is no "
            "tokenizer.ggml.eos_token_id");
    }
    return vocab;
}

}  // namespace sift
