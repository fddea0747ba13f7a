// A byte trie of token texts for leftmost-longest matching (special and user-defined tokens).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace sift {

class TokenTrie {
  public:
    TokenTrie() { root_.fill(0); }
    // Adds `text` (non-empty) for `id`; a text added twice keeps its first id.
    void add(std::string_view text, TokenId id);
    bool empty() const { return nodes_.empty(); }
    // The longest token that starts at text[pos]: {id, length in bytes}, or {-1, 0}.
    std::pair<TokenId, size_t> longest_at(std::string_view text, size_t pos) const;

  private:
    struct Node {
        TokenId id = -1;
        std::vector<std::pair<uint8_t, uint32_t>> children;  // sorted by byte; node indices
    };
    uint32_t child(const Node& node, uint8_t byte) const;
    // Children of the (implicit) root by first byte, as node index + 1 (0: none), so a position
    // that starts no token costs one load.
    std::array<uint32_t, 256> root_;
    std::vector<Node> nodes_;
};

}  // namespace sift
