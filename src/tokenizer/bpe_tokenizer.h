// Byte-level BPE (tokenizer.ggml.model "gpt2"), as HF tokenizers' BPE model behind a ByteLevel
// pre-tokenizer: optional NFC, regex split, bytes as GPT-2's alphabet, merges by rank.
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/vocab_tokenizer.h"

namespace sift {

class BpeTokenizer final : public VocabTokenizer {
  public:
    static Result<std::unique_ptr<Tokenizer>> create(Vocab vocab);

  protected:
    void encode_text(std::string_view text, bool at_start,
                     std::vector<TokenId>& out) const override;

  private:
    explicit BpeTokenizer(Vocab& vocab) : VocabTokenizer(vocab) {}
    // BPE of one pre-token (raw bytes), appended to `out`.
    void encode_word(std::string_view word, std::vector<TokenId>& out) const;
    void merge_word(std::string_view word, std::vector<TokenId>& out) const;

    // (left, right) -> (rank, merged id) in an open-addressing table: lookups sit in the inner
    // loop of every merge.
    struct MergeSlot {
        uint64_t key = ~uint64_t{0};
        int32_t rank = 0;
        TokenId result = 0;
    };
    const MergeSlot* find_merge(TokenId left, TokenId right) const;
    std::vector<MergeSlot> merge_table_;
    uint64_t merge_mask_ = 0;

    std::array<TokenId, 256> byte_token_;  // the token of each single byte, -1 if none
    std::unique_ptr<PreTokenizer> pre_tokenizer_;

    // Short words repeat (" the", ","); their ids are kept, up to a bound.
    static constexpr size_t kCacheMaxWordBytes = 64;
    static constexpr size_t kCacheMaxEntries = 1 << 16;
    mutable std::mutex cache_mutex_;
    mutable std::unordered_map<std::string, std::vector<TokenId>> cache_;
};

}  // namespace sift
