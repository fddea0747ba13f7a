// What both tokenizer models share: special-token splitting, BOS/EOS, decoding through a table
// of per-token bytes. A model only turns plain text into ids (encode_text).
#pragma once

#include <string>
#include <vector>

#include "tokenizer/token_trie.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace sift {

class VocabTokenizer : public Tokenizer {
  public:
    std::vector<TokenId> encode(std::string_view text, bool add_special,
                                bool parse_special) const override;
    std::string decode(std::span<const TokenId> ids, bool skip_special) const override;
    std::string token_bytes(TokenId id, bool skip_special) const override;

  protected:
    // Takes the token texts, types and special ids of `vocab`.
    explicit VocabTokenizer(Vocab& vocab);

    // Ids of `text`, a stretch with no special token in it; `at_start`: it begins the input.
    virtual void encode_text(std::string_view text, bool at_start,
                             std::vector<TokenId>& out) const = 0;

    // Tokens matched whole in raw text before the model sees it (HF's added tokens): control
    // and unknown ones only when parse_special, user-defined ones always.
    void add_split_token(TokenId id);
    // Skipped by decode(skip_special) and only parsed with parse_special.
    bool is_special_type(TokenId id) const;

    std::vector<std::string> bytes_;  // what each token decodes to
    TokenTrie split_tokens_;
};

}  // namespace sift
