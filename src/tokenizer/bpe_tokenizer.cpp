#include "tokenizer/bpe_tokenizer.h"

#include <algorithm>
#include <bit>
#include <functional>

#include "tokenizer/unicode.h"

namespace sift {
namespace {

uint64_t pair_key(TokenId left, TokenId right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
}

uint64_t mix(uint64_t key) {  // splitmix64 finalizer: ids are dense, so spread them
    key ^= key >> 30;
    key *= 0xbf58476d1ce4e5b9ull;
    key ^= key >> 27;
    key *= 0x94d049bb133111ebull;
    return key ^ (key >> 31);
}

// What a token decodes to: normal tokens are spelled in GPT-2's byte alphabet; added tokens
// (control, user-defined) are their text.
std::string token_to_bytes(const std::string& text, TokenType type) {
    switch (type) {
        case TokenType::TOKEN_UNUSED:
            return {};
        case TokenType::TOKEN_CONTROL:
        case TokenType::TOKEN_USER_DEFINED:
        case TokenType::TOKEN_UNKNOWN:
            return text;
        default:
            break;
    }
    const auto& alphabet = unicode::byte_level_alphabet();
    std::string out;
    for (size_t pos = 0; pos < text.size();) {
        size_t len = 0;
        const char32_t cp = unicode::utf8_decode(text, pos, &len);
        const int byte = alphabet.byte_of(cp);
        if (byte >= 0) {
            out += static_cast<char>(byte);
        } else {
            out.append(text, pos, len);  // not byte-level: keep the text
        }
        pos += len;
    }
    return out;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> BpeTokenizer::create(Vocab vocab) {
    auto pre = PreTokenizer::create(vocab.pre);
    if (!pre) return pre.error();
    std::unique_ptr<BpeTokenizer> tok(new BpeTokenizer(vocab));
    tok->pre_tokenizer_ = std::move(*pre);

    const size_t n = tok->tokens_.size();
    tok->bytes_.resize(n);
    for (size_t i = 0; i < n; ++i) tok->bytes_[i] = token_to_bytes(tok->tokens_[i], tok->types_[i]);

    tok->byte_token_.fill(-1);
    const auto& alphabet = unicode::byte_level_alphabet();
    for (size_t i = 0; i < n; ++i) {
        const std::string& text = tok->tokens_[i];
        size_t len = 0;
        if (text.empty() || text.size() > 2) continue;
        const int byte = alphabet.byte_of(unicode::utf8_decode(text, 0, &len));
        if (byte >= 0 && len == text.size() && tok->byte_token_[byte] < 0) {
            tok->byte_token_[byte] = static_cast<TokenId>(i);
        }
    }

    const size_t slots = std::bit_ceil(std::max<size_t>(16, vocab.merges.size() * 2));
    tok->merge_table_.assign(slots, MergeSlot{});
    tok->merge_mask_ = slots - 1;
    for (size_t rank = 0; rank < vocab.merges.size(); ++rank) {
        const Vocab::Merge& m = vocab.merges[rank];
        const uint64_t key = pair_key(m.left, m.right);
        for (uint64_t h = mix(key);; ++h) {
            MergeSlot& slot = tok->merge_table_[h & tok->merge_mask_];
            if (slot.key == key) break;  // a repeated merge keeps its first (best) rank
            if (slot.key == ~uint64_t{0}) {
                slot = {key, static_cast<int32_t>(rank), m.result};
                break;
            }
        }
    }

    for (size_t i = 0; i < n; ++i) {
        const TokenType t = tok->types_[i];
        if (t == TokenType::TOKEN_CONTROL || t == TokenType::TOKEN_USER_DEFINED ||
            t == TokenType::TOKEN_UNKNOWN) {
            tok->add_split_token(static_cast<TokenId>(i));
        }
    }
    return std::unique_ptr<Tokenizer>(std::move(tok));
}

const BpeTokenizer::MergeSlot* BpeTokenizer::find_merge(TokenId left, TokenId right) const {
    const uint64_t key = pair_key(left, right);
    for (uint64_t h = mix(key);; ++h) {
        const MergeSlot& slot = merge_table_[h & merge_mask_];
        if (slot.key == key) return &slot;
        if (slot.key == ~uint64_t{0}) return nullptr;
    }
}

void BpeTokenizer::encode_text(std::string_view text, bool, std::vector<TokenId>& out) const {
    std::string normalized;
    if (pre_tokenizer_->nfc() && unicode::nfc_normalize(text, normalized)) text = normalized;
    thread_local std::vector<std::string_view> pieces;
    pieces.clear();
    pre_tokenizer_->split(text, pieces);
    for (std::string_view piece : pieces) encode_word(piece, out);
}

void BpeTokenizer::encode_word(std::string_view word, std::vector<TokenId>& out) const {
    if (word.size() == 1) {
        const TokenId id = byte_token_[static_cast<uint8_t>(word[0])];
        if (id >= 0) out.push_back(id);
        return;
    }
    if (word.size() > kCacheMaxWordBytes) {
        merge_word(word, out);
        return;
    }
    thread_local std::string key;
    key.assign(word);
    {
        std::lock_guard<std::mutex> lock(cache_mutex_);
        auto it = cache_.find(key);
        if (it != cache_.end()) {
            out.insert(out.end(), it->second.begin(), it->second.end());
            return;
        }
    }
    const size_t first = out.size();
    merge_word(word, out);
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kCacheMaxEntries) cache_.clear();  // crude but bounded
    cache_.emplace(key,
                   std::vector<TokenId>(out.begin() + static_cast<ptrdiff_t>(first), out.end()));
}

void BpeTokenizer::merge_word(std::string_view word, std::vector<TokenId>& out) const {
    // HF's Word::merge_all: symbols in a linked list, candidate merges in a heap by (rank, pos);
    // a popped candidate whose pair has changed since it was pushed is stale and skipped.
    struct Symbol {
        TokenId id;
        int32_t prev, next;
    };
    struct Candidate {
        int32_t rank, pos;
        TokenId result;
        bool operator>(const Candidate& o) const {
            return rank != o.rank ? rank > o.rank : pos > o.pos;
        }
    };
    thread_local std::vector<Symbol> symbols;
    symbols.clear();
    for (char c : word) {
        const TokenId id = byte_token_[static_cast<uint8_t>(c)];
        if (id < 0) continue;  // a byte the vocabulary lacks is dropped, as HF does without unk
        const auto index = static_cast<int32_t>(symbols.size());
        symbols.push_back({id, index - 1, index + 1});
    }
    if (symbols.empty()) return;
    symbols.back().next = -1;

    thread_local std::vector<Candidate> heap;  // a min-heap by (rank, pos)
    heap.clear();
    auto push = [&](int32_t pos) {
        const int32_t next = symbols[static_cast<size_t>(pos)].next;
        if (next < 0) return;
        const MergeSlot* m =
            find_merge(symbols[static_cast<size_t>(pos)].id, symbols[static_cast<size_t>(next)].id);
        if (m == nullptr) return;
        heap.push_back({m->rank, pos, m->result});
        std::push_heap(heap.begin(), heap.end(), std::greater<>{});
    };
    for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) push(i);

    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
        const Candidate top = heap.back();
        heap.pop_back();
        Symbol& left = symbols[static_cast<size_t>(top.pos)];
        if (left.id < 0 || left.next < 0) continue;  // removed, or nothing to its right
        Symbol& right = symbols[static_cast<size_t>(left.next)];
        const MergeSlot* m = find_merge(left.id, right.id);
        if (m == nullptr || m->result != top.result) continue;  // stale
        left.id = top.result;
        right.id = -1;
        left.next = right.next;
        if (left.next >= 0) symbols[static_cast<size_t>(left.next)].prev = top.pos;
        if (left.prev >= 0) push(left.prev);
        push(top.pos);
    }
    for (int32_t i = 0; i >= 0; i = symbols[static_cast<size_t>(i)].next) {
        out.push_back(symbols[static_cast<size_t>(i)].id);
    }
}

}  // namespace sift
