#include "model/graph_cache.h"

#include <algorithm>

#include "core/check.h"

namespace sift {

int64_t graph_cell_end(int64_t used_end, int64_t n_cells) {
    const int64_t rounded = (used_end + kGraphCellBlock - 1) / kGraphCellBlock * kGraphCellBlock;
    return std::min(std::max<int64_t>(rounded, kGraphCellBlock), n_cells);
}

GraphCache::Entry& GraphCache::entry_for(const GraphKey& key) {
    for (Entry& e : entries_) {
        if (e.key.n_tokens == key.n_tokens && e.key.n_outputs == key.n_outputs) return e;
    }
    if (entries_.size() >= capacity_) {
        // Evict the least recently used shape.
        auto lru = std::min_element(
            entries_.begin(), entries_.end(),
            [](const Entry& a, const Entry& b) { return a.last_use < b.last_use; });
        backend_.graph_destroy(lru->graph);
        entries_.erase(lru);
    }
    entries_.push_back(Entry{});
    return entries_.back();
}

void GraphCache::run(const GraphKey& key, const std::function<void()>& compute) {
    Entry& e = entry_for(key);
    e.last_use = ++clock_;
    if (e.graph != nullptr && e.key == key && backend_.graph_launch(e.graph)) {
        ++stats_.launches;
        return;
    }
    backend_.graph_begin_capture();
    compute();
    BackendGraph* graph = backend_.graph_end_capture(e.graph);
    if (graph == nullptr) {
        // Nothing ran under the capture: run the ops directly and capture again next time.
        backend_.graph_destroy(e.graph);
        e.graph = nullptr;
        ++stats_.fallbacks;
        compute();
        return;
    }
    e.graph = graph;
    e.key = key;
    ++stats_.captures;
    SIFT_CHECK(backend_.graph_launch(graph), "a graph just captured is stale");
    ++stats_.launches;
}

void GraphCache::clear() {
    for (Entry& e : entries_) backend_.graph_destroy(e.graph);
    entries_.clear();
}

}  // namespace sift
