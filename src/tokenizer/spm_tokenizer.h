// SentencePiece-style BPE (tokenizer.ggml.model "llama"), as sentencepiece's bpe_model: spaces
// become U+2581, user-defined pieces match whole, adjacent symbols merge by the score of the
// piece they form (highest first, leftmost on ties), leftovers fall back to <0xXX> byte tokens.
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/vocab_tokenizer.h"

namespace sift {

class SpmTokenizer final : public VocabTokenizer {
  public:
    static Result<std::unique_ptr<Tokenizer>> create(Vocab vocab);

  protected:
    void encode_text(std::string_view text, bool at_start,
                     std::vector<TokenId>& out) const override;

  private:
    explicit SpmTokenizer(Vocab& vocab) : VocabTokenizer(vocab) {}
    // A stretch of normalized text between user-defined pieces, cut into words that cannot
    // merge across each other.
    void encode_run(std::string_view run, std::vector<TokenId>& out) const;
    void encode_word(std::string_view word, std::vector<TokenId>& out) const;
    void merge_word(std::string_view word, std::vector<TokenId>& out) const;
    bool can_split_before(std::string_view run, size_t pos) const;

    std::vector<std::string> spelled_;  // token texts as merges see them (user-defined: U+2581)
    // Pieces a merge may produce, by text: open addressing on a 64-bit hash, so a lookup that
    // misses (most do) touches one slot; the text is compared only on a hash match.
    struct PieceSlot {
        uint64_t hash = 0;
        TokenId id = -1;
    };
    TokenId find_piece(std::string_view text) const;
    std::vector<PieceSlot> pieces_;
    uint64_t pieces_mask_ = 0;
    std::vector<float> scores_;
    TokenTrie user_defined_;               // in normalized spelling
    std::array<TokenId, 256> byte_token_;  // <0xXX>, -1 if absent
    TokenId unk_ = -1;
    bool add_space_prefix_ = false;
    // Pieces with U+2581 after their first byte: the only ones a merge could carry across a
    // U+2581 in the text. While there are few, text is cut into words before each U+2581.
    std::vector<std::pair<std::string_view, std::vector<size_t>>> crossing_;
    bool split_words_ = false;

    static constexpr size_t kCacheMaxWordBytes = 64;
    static constexpr size_t kCacheMaxEntries = 1 << 16;
    mutable std::mutex cache_mutex_;
    mutable std::unordered_map<std::string, std::vector<TokenId>> cache_;
};

}  // namespace sift
