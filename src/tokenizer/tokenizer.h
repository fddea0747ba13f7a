// Tokenizers read from GGUF metadata: byte-level BPE (`gpt2`) and SentencePiece-style (`llama`).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "gguf/gguf.h"

namespace sift {

using TokenId = int32_t;

// GGUF tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
    TOKEN_UNDEFINED = 0,
    TOKEN_NORMAL = 1,
    TOKEN_UNKNOWN = 2,
    TOKEN_CONTROL = 3,
    TOKEN_USER_DEFINED = 4,
    TOKEN_UNUSED = 5,
    TOKEN_BYTE = 6,
};

struct SpecialTokens {
    TokenId bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, pad = -1, sep = -1;
    bool add_bos = false;
    bool add_eos = false;
};

class Tokenizer {
  public:
    virtual ~Tokenizer() = default;

    // Reads tokenizer.ggml.* from a GGUF; errors name the key and what was wrong.
    static Result<std::unique_ptr<Tokenizer>> from_gguf(const gguf::File& file);

    // add_special: BOS/EOS as the vocabulary asks. parse_special: text like "<|im_start|>" becomes
    // the control token; otherwise it is tokenized as plain text.
    virtual std::vector<TokenId> encode(std::string_view text, bool add_special,
                                        bool parse_special) const = 0;
    // Concatenated token bytes (may be invalid UTF-8 mid-stream; see TokenStreamDecoder).
    virtual std::string decode(std::span<const TokenId> ids, bool skip_special) const = 0;
    // The bytes one token stands for when decoded (empty for control tokens when skip_special).
    virtual std::string token_bytes(TokenId id, bool skip_special) const = 0;

    int32_t n_vocab() const { return static_cast<int32_t>(tokens_.size()); }
    const std::string& token_text(TokenId id) const { return tokens_.at(static_cast<size_t>(id)); }
    TokenType token_type(TokenId id) const { return types_.at(static_cast<size_t>(id)); }
    bool is_control(TokenId id) const;
    const SpecialTokens& special() const { return special_; }
    const std::string& model() const { return model_; }  // "gpt2" or "llama"
    const std::string& pre() const { return pre_; }      // pre-tokenizer name ("qwen2", ...)
    // SentencePiece vocabularies with a dummy prefix: decoding drops the one leading space that
    // encoding added.
    bool strips_leading_space() const { return strip_leading_space_; }

  protected:
    std::vector<std::string> tokens_;
    std::vector<TokenType> types_;
    SpecialTokens special_;
    std::string model_;
    std::string pre_;
    bool strip_leading_space_ = false;
};

// Streams decoded text: holds back the bytes of an incomplete UTF-8 character until the token
// that completes it arrives.
class TokenStreamDecoder {
  public:
    TokenStreamDecoder(const Tokenizer& tokenizer, bool skip_special)
        : tokenizer_(tokenizer), skip_special_(skip_special) {}
    // Text that is complete after this token (possibly empty).
    std::string push(TokenId id);
    // Whatever is held back (invalid UTF-8 at the end of a stream is returned as is).
    std::string flush();

  private:
    const Tokenizer& tokenizer_;
    bool skip_special_;
    bool started_ = false;  // whether any text came out yet (for strips_leading_space)
    std::string pending_;
};

}  // namespace sift
