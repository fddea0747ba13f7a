// The tokenizer.ggml.* metadata of a GGUF, read and validated once.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace sift {

struct Vocab {
    std::string model;  // tokenizer.ggml.model: "gpt2" or "llama"
    std::string pre;    // tokenizer.ggml.pre ("default" when absent)
    std::vector<std::string> tokens;
    std::vector<TokenType> types;  // all TOKEN_NORMAL when the file has no token_type
    std::vector<float> scores;     // empty when the file has none
    // BPE merges in rank order (rank = index), as token ids; only for "gpt2".
    struct Merge {
        TokenId left, right, result;
    };
    std::vector<Merge> merges;
    SpecialTokens special;
    bool add_space_prefix = false;  // tokenizer.ggml.add_space_prefix (SentencePiece only)
};

// Errors name the key and what is wrong: missing, wrong type, lengths that differ from the token
// count, ids out of range, unknown token types, merges that are malformed or name unknown tokens.
Result<Vocab> vocab_from_gguf(const gguf::File& file);

}  // namespace sift
