#include "tokenizer/tokenizer.h"

#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/spm_tokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace sift {

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const gguf::File& file) {
    auto vocab = vocab_from_gguf(file);
    if (!vocab) return vocab.error();
    if (vocab->model == "gpt2") return BpeTokenizer::create(std::move(*vocab));
    return SpmTokenizer::create(std::move(*vocab));
}

bool Tokenizer::is_control(TokenId id) const {
    return id >= 0 && id < n_vocab() && types_[static_cast<size_t>(id)] == TokenType::TOKEN_CONTROL;
}

std::string TokenStreamDecoder::push(TokenId id) {
    pending_ += tokenizer_.token_bytes(id, skip_special_);
    if (!started_ && tokenizer_.strips_leading_space() && !pending_.empty()) {
        if (pending_[0] == ' ') pending_.erase(0, 1);
        started_ = true;
    }
    const size_t hold = unicode::utf8_incomplete_tail(pending_);
    std::string ready = pending_.substr(0, pending_.size() - hold);
    pending_.erase(0, pending_.size() - hold);
    return ready;
}

std::string TokenStreamDecoder::flush() {
    std::string rest;
    rest.swap(pending_);
    return rest;
}

}  // namespace sift
