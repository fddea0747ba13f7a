#include "tokenizer/token_trie.h"

#include <algorithm>

namespace sift {

uint32_t TokenTrie::child(const Node& node, uint8_t byte) const {
    auto it = std::lower_bound(node.children.begin(), node.children.end(), byte,
                               [](const auto& c, uint8_t b) { return c.first < b; });
    return (it != node.children.end() && it->first == byte) ? it->second + 1 : 0;
}

void TokenTrie::add(std::string_view text, TokenId id) {
    if (text.empty()) return;
    auto first = static_cast<uint8_t>(text[0]);
    if (root_[first] == 0) {
        nodes_.emplace_back();
        root_[first] = static_cast<uint32_t>(nodes_.size());
    }
    uint32_t node = root_[first] - 1;
    for (size_t i = 1; i < text.size(); ++i) {
        const auto byte = static_cast<uint8_t>(text[i]);
        uint32_t next = child(nodes_[node], byte);
        if (next == 0) {
            nodes_.emplace_back();
            next = static_cast<uint32_t>(nodes_.size());
            auto& children = nodes_[node].children;
            auto it = std::lower_bound(children.begin(), children.end(), byte,
                                       [](const auto& c, uint8_t b) { return c.first < b; });
            children.insert(it, {byte, next - 1});
        }
        node = next - 1;
    }
    if (nodes_[node].id < 0) nodes_[node].id = id;
}

std::pair<TokenId, size_t> TokenTrie::longest_at(std::string_view text, size_t pos) const {
    uint32_t next = root_[static_cast<uint8_t>(text[pos])];
    std::pair<TokenId, size_t> best{-1, 0};
    for (size_t i = pos; next != 0;) {
        const Node& node = nodes_[next - 1];
        ++i;
        if (node.id >= 0) best = {node.id, i - pos};
        if (i >= text.size()) break;
        next = child(node, static_cast<uint8_t>(text[i]));
    }
    return best;
}

}  // namespace sift
