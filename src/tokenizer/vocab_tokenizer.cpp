#include "tokenizer/vocab_tokenizer.h"

#include <utility>

namespace sift {

VocabTokenizer::VocabTokenizer(Vocab& vocab) {
    tokens_ = std::move(vocab.tokens);
    types_ = std::move(vocab.types);
    special_ = vocab.special;
    model_ = vocab.model;
    pre_ = vocab.pre;
}

bool VocabTokenizer::is_special_type(TokenId id) const {
    const TokenType t = types_[static_cast<size_t>(id)];
    return t == TokenType::TOKEN_CONTROL || t == TokenType::TOKEN_UNKNOWN;
}

void VocabTokenizer::add_split_token(TokenId id) {
    split_tokens_.add(tokens_[static_cast<size_t>(id)], id);
}

std::vector<TokenId> VocabTokenizer::encode(std::string_view text, bool add_special,
                                            bool parse_special) const {
    std::vector<TokenId> out;
    out.reserve(text.size() / 3 + 2);
    if (add_special && special_.add_bos) out.push_back(special_.bos);
    // Leftmost-longest over all split tokens, as HF's added-token matcher; a special token that
    // is not parsed stays text, and the search goes on after it (a user-defined token inside it
    // is not matched either).
    size_t start = 0;
    for (size_t pos = 0; pos < text.size();) {
        const auto [id, len] = split_tokens_.empty() ? std::pair<TokenId, size_t>{-1, 0}
                                                     : split_tokens_.longest_at(text, pos);
        if (id < 0) {
            ++pos;
            continue;
        }
        if (!parse_special && is_special_type(id)) {
            pos += len;
            continue;
        }
        if (pos > start) encode_text(text.substr(start, pos - start), start == 0, out);
        out.push_back(id);
        pos += len;
        start = pos;
    }
    if (start < text.size()) encode_text(text.substr(start), start == 0, out);
    if (add_special && special_.add_eos) out.push_back(special_.eos);
    return out;
}

std::string VocabTokenizer::token_bytes(TokenId id, bool skip_special) const {
    if (id < 0 || id >= n_vocab()) return {};
    if (skip_special && is_special_type(id)) return {};
    return bytes_[static_cast<size_t>(id)];
}

std::string VocabTokenizer::decode(std::span<const TokenId> ids, bool skip_special) const {
    std::string out;
    for (TokenId id : ids) {
        if (id < 0 || id >= n_vocab()) continue;
        if (skip_special && is_special_type(id)) continue;
        out += bytes_[static_cast<size_t>(id)];
    }
    if (strip_leading_space_ && !out.empty() && out[0] == ' ') out.erase(0, 1);
    return out;
}

}  // namespace sift
