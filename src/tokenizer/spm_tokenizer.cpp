#include "tokenizer/spm_tokenizer.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <functional>

#include "tokenizer/unicode.h"

namespace sift {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
    std::string out;
    out.reserve(text.size());
    for (size_t pos = 0;;) {
        const size_t hit = text.find(from, pos);
        if (hit == std::string_view::npos) {
            out.append(text.substr(pos));
            return out;
        }
        out.append(text.substr(pos, hit - pos)).append(to);
        pos = hit + from.size();
    }
}

uint64_t hash_bytes(std::string_view s) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ s.size();
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
        uint64_t v;
        std::memcpy(&v, s.data() + i, 8);
        h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
    }
    uint64_t v = 0;
    std::memcpy(&v, s.data() + i, s.size() - i);
    h ^= v;
    // murmur3's finalizer: linear probing needs the low bits to depend on every input byte.
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

int parse_byte_token(const std::string& text) {  // "<0xAB>" -> 0xAB, else -1
    if (text.size() != 6 || text.compare(0, 3, "<0x") != 0 || text[5] != '>') return -1;
    int value = 0;
    for (size_t i = 3; i < 5; ++i) {
        const char c = text[i];
        const int digit = c >= '0' && c <= '9'   ? c - '0'
                          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                          : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                 : -1;
        if (digit < 0) return -1;
        value = value * 16 + digit;
    }
    return value;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> SpmTokenizer::create(Vocab vocab) {
    std::unique_ptr<SpmTokenizer> tok(new SpmTokenizer(vocab));
    const size_t n = tok->tokens_.size();
    tok->scores_ = vocab.scores.empty() ? std::vector<float>(n, 0.0f) : std::move(vocab.scores);
    tok->add_space_prefix_ = vocab.add_space_prefix;
    tok->strip_leading_space_ = vocab.add_space_prefix;
    tok->byte_token_.fill(-1);
    tok->bytes_.resize(n);
    tok->spelled_.resize(n);
    for (size_t i = 0; i < n; ++i) {
        const std::string& text = tok->tokens_[i];
        const auto id = static_cast<TokenId>(i);
        switch (tok->types_[i]) {
            case TokenType::TOKEN_BYTE: {
                const int byte = parse_byte_token(text);
                if (byte >= 0 && tok->byte_token_[byte] < 0) tok->byte_token_[byte] = id;
                tok->bytes_[i] = byte >= 0 ? std::string(1, static_cast<char>(byte)) : text;
                break;
            }
            case TokenType::TOKEN_CONTROL:
                tok->bytes_[i] = text;
                tok->add_split_token(id);
                break;
            case TokenType::TOKEN_UNKNOWN:
                tok->bytes_[i] = text;
                tok->add_split_token(id);
                if (tok->unk_ < 0) tok->unk_ = id;
                break;
            case TokenType::TOKEN_UNUSED:
                break;  // never produced (sentencepiece would re-split one; no model has any)
            case TokenType::TOKEN_USER_DEFINED:
                // llama.cpp's converter writes these with real spaces; sentencepiece matches them
                // after spaces became U+2581.
                tok->spelled_[i] = replace_all(text, " ", kSpace);
                tok->user_defined_.add(tok->spelled_[i], id);
                tok->bytes_[i] = text;
                break;
            default:
                tok->spelled_[i] = text;
                tok->bytes_[i] = replace_all(text, kSpace, " ");
                break;
        }
    }
    const size_t slots = std::bit_ceil(std::max<size_t>(16, n * 2));
    tok->pieces_.assign(slots, PieceSlot{});
    tok->pieces_mask_ = slots - 1;
    for (size_t i = 0; i < n; ++i) {
        const std::string& text = tok->spelled_[i];
        if (text.empty() || tok->find_piece(text) >= 0) continue;  // the first of duplicates wins
        const uint64_t h = hash_bytes(text);
        for (uint64_t slot = h;; ++slot) {
            PieceSlot& p = tok->pieces_[slot & tok->pieces_mask_];
            if (p.id < 0) {
                p = {h, static_cast<TokenId>(i)};
                break;
            }
        }
    }
    if (vocab.special.unk >= 0) tok->unk_ = vocab.special.unk;

    for (size_t i = 0; i < n; ++i) {
        const std::string& s = tok->spelled_[i];
        if (s.empty() || tok->types_[i] == TokenType::TOKEN_USER_DEFINED) continue;
        std::vector<size_t> offsets;
        for (size_t k = s.find(kSpace, 1); k != std::string::npos; k = s.find(kSpace, k + 1)) {
            offsets.push_back(k);
        }
        if (!offsets.empty()) tok->crossing_.emplace_back(s, std::move(offsets));
    }
    // Vocabularies trained without whitespace splitting have many such pieces; give up cutting.
    tok->split_words_ = tok->crossing_.size() <= 256;
    return std::unique_ptr<Tokenizer>(std::move(tok));
}

TokenId SpmTokenizer::find_piece(std::string_view text) const {
    const uint64_t h = hash_bytes(text);
    for (uint64_t slot = h;; ++slot) {
        const PieceSlot& p = pieces_[slot & pieces_mask_];
        if (p.id < 0) return -1;
        if (p.hash == h && spelled_[static_cast<size_t>(p.id)] == text) return p.id;
    }
}

void SpmTokenizer::encode_text(std::string_view text, bool at_start,
                               std::vector<TokenId>& out) const {
    std::string normalized;
    normalized.reserve(text.size() + 8);
    if (add_space_prefix_ && at_start) normalized.append(kSpace);
    for (char c : text) {
        if (c == ' ') {
            normalized.append(kSpace);
        } else {
            normalized += c;
        }
    }
    // sentencepiece's symbol split: a user-defined piece at a position is one frozen symbol
    // (longest match); merges never touch it, so what lies between them is encoded apart.
    size_t run = 0;
    for (size_t pos = 0; pos < normalized.size();) {
        const auto [id, len] = user_defined_.empty() ? std::pair<TokenId, size_t>{-1, 0}
                                                     : user_defined_.longest_at(normalized, pos);
        if (id < 0) {
            pos += unicode::utf8_char_len(normalized, pos);
            continue;
        }
        if (pos > run) encode_run(std::string_view(normalized).substr(run, pos - run), out);
        out.push_back(id);
        pos += len;
        run = pos;
    }
    if (run < normalized.size()) encode_run(std::string_view(normalized).substr(run), out);
}

bool SpmTokenizer::can_split_before(std::string_view run, size_t pos) const {
    // No merge crosses `pos` unless a piece with an inner U+2581 lies over it in the text.
    for (const auto& [piece, offsets] : crossing_) {
        for (size_t k : offsets) {
            if (k <= pos && run.substr(pos - k, piece.size()) == piece) return false;
        }
    }
    return true;
}

void SpmTokenizer::encode_run(std::string_view run, std::vector<TokenId>& out) const {
    if (!split_words_) {
        merge_word(run, out);
        return;
    }
    size_t start = 0;
    for (size_t pos = run.find(kSpace, 1); pos != std::string_view::npos;
         pos = run.find(kSpace, pos + 1)) {
        if (!can_split_before(run, pos)) continue;
        encode_word(run.substr(start, pos - start), out);
        start = pos;
    }
    encode_word(run.substr(start), out);
}

void SpmTokenizer::encode_word(std::string_view word, std::vector<TokenId>& out) const {
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

void SpmTokenizer::merge_word(std::string_view word, std::vector<TokenId>& out) const {
    struct Symbol {
        uint32_t start, len;  // bytes of `word`; len 0 once merged away
        int32_t prev, next;
    };
    struct Candidate {
        float score;
        int32_t left, right;
        uint32_t size;
        TokenId id;
        bool operator<(const Candidate& o) const {  // max-heap: best score, then leftmost
            return score != o.score ? score < o.score : left > o.left;
        }
    };
    thread_local std::vector<Symbol> symbols;
    thread_local std::vector<Candidate> heap;
    symbols.clear();
    heap.clear();
    for (size_t pos = 0; pos < word.size();) {
        const auto len = static_cast<uint32_t>(unicode::utf8_char_len(word, pos));
        const auto index = static_cast<int32_t>(symbols.size());
        symbols.push_back({static_cast<uint32_t>(pos), len, index - 1, index + 1});
        pos += len;
    }
    if (symbols.empty()) return;
    symbols.back().next = -1;

    auto push = [&](int32_t left) {
        if (left < 0) return;
        const Symbol& l = symbols[static_cast<size_t>(left)];
        if (l.next < 0) return;
        const Symbol& r = symbols[static_cast<size_t>(l.next)];
        const TokenId id = find_piece(word.substr(l.start, l.len + r.len));
        if (id < 0) return;
        heap.push_back({scores_[static_cast<size_t>(id)], left, l.next, l.len + r.len, id});
        std::push_heap(heap.begin(), heap.end());
    };
    for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) push(i);

    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end());
        const Candidate top = heap.back();
        heap.pop_back();
        Symbol& l = symbols[static_cast<size_t>(top.left)];
        Symbol& r = symbols[static_cast<size_t>(top.right)];
        if (l.len == 0 || r.len == 0 || l.len + r.len != top.size) continue;  // stale
        l.len += r.len;
        r.len = 0;
        l.next = r.next;
        if (l.next >= 0) symbols[static_cast<size_t>(l.next)].prev = top.left;
        push(l.prev);
        push(top.left);
    }

    for (int32_t i = 0; i >= 0; i = symbols[static_cast<size_t>(i)].next) {
        const Symbol& s = symbols[static_cast<size_t>(i)];
        const std::string_view piece = word.substr(s.start, s.len);
        if (const TokenId id = find_piece(piece); id >= 0) {
            out.push_back(id);
            continue;
        }
        // Byte fallback; a byte without a token becomes unk, consecutive ones fused.
        bool last_unk = false;
        for (char c : piece) {
            const TokenId b = byte_token_[static_cast<uint8_t>(c)];
            if (b >= 0) {
                out.push_back(b);
                last_unk = false;
            } else if (unk_ >= 0 && !last_unk) {
                out.push_back(unk_);
                last_unk = true;
            }
        }
    }
}

}  // namespace sift
