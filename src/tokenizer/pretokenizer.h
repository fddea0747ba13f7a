// Byte-level BPE pre-tokenizers: the regex splits HF's tokenizer.json files apply before BPE,
// chosen by tokenizer.ggml.pre, compiled with PCRE2 (UTF + Unicode properties + JIT).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace sift {

class PreTokenizer {
  public:
    ~PreTokenizer();
    PreTokenizer(const PreTokenizer&) = delete;
    PreTokenizer& operator=(const PreTokenizer&) = delete;

    // The pre-tokenizer of a tokenizer.ggml.pre name; an error names the supported ones.
    static Result<std::unique_ptr<PreTokenizer>> create(std::string_view pre);
    // The names create() knows, for messages and tests.
    static std::vector<std::string> known_names();

    // Whether text is NFC-normalized first (the normalizer of the same tokenizer.json).
    bool nfc() const { return nfc_; }
    // Appends the pieces of `text` (views into it, in order, covering it) to `pieces`. Each regex
    // stage splits the pieces of the one before, keeping matches and the gaps between them.
    void split(std::string_view text, std::vector<std::string_view>& pieces) const;

  private:
    PreTokenizer() = default;
    struct Stage;
    std::vector<std::unique_ptr<Stage>> stages_;
    bool nfc_ = false;
};

}  // namespace sift
