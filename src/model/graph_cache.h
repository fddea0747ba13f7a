// Captured decode steps (Backend graph_* calls, CUDA graphs): decode of a few tokens is
// launch-bound (~25 kernel launches per layer), so the model records the compute of a
// micro-batch once and replays it with one call while nothing it baked in has changed.
//
// What a capture bakes in besides device data: the micro-batch's shape (which fixes the scratch
// arena's layout, so every intermediate's address), the attention cell range, and the output
// buffers (logits, and the argmax of a greedy decode). Inputs (token ids, positions, cells, output
// rows) are uploaded into the same arena addresses before each replay, outside the capture. The
// cell range is rounded up to kGraphCellBlock: cells past the highest used one are empty (sequence
// -1) and invisible to every query, so the result is the same and one graph serves kGraphCellBlock
// decode steps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "backend/ops.h"

namespace sift {

// Micro-batches of up to this many tokens run through graphs: decode and small speculative
// verifies. Above it the matmuls are GEMMs long enough to hide their launches.
inline constexpr int64_t kGraphMaxTokens = 8;
// Attention ranges are rounded up to a multiple of this many cells.
inline constexpr int64_t kGraphCellBlock = 256;

// The attention range [0, end) a graph-eligible micro-batch attends over: used_end rounded up to
// kGraphCellBlock, at most n_cells.
int64_t graph_cell_end(int64_t used_end, int64_t n_cells);

struct GraphKey {
    int64_t n_tokens = 0;
    int64_t n_outputs = 0;
    int64_t cell_end = 0;
    const void* logits = nullptr;  // the logits buffer
    const void* argmax = nullptr;  // the buffer of the rows' argmax (greedy decode) or null
    bool operator==(const GraphKey&) const = default;
};

struct GraphStats {
    int64_t captures = 0;   // graphs captured (new, or rebuilt for a changed key)
    int64_t launches = 0;   // replays
    int64_t fallbacks = 0;  // captures that failed, the ops then ran directly
};

// Graphs by micro-batch shape (n_tokens, n_outputs); each holds the last key it was captured for.
class GraphCache {
  public:
    explicit GraphCache(Backend& backend, size_t capacity = 8)
        : backend_(backend), capacity_(capacity) {}
    ~GraphCache() { clear(); }
    GraphCache(const GraphCache&) = delete;
    GraphCache& operator=(const GraphCache&) = delete;

    // Queues `compute` (which must queue the same ops for the same key, and may be called twice:
    // once under capture, again directly if the capture fails) through a graph: replays the
    // graph of the key's shape when it was captured for this key, else captures it again
    // (rebuilding that shape's graph in place) and launches it.
    void run(const GraphKey& key, const std::function<void()>& compute);
    void clear();  // destroys every graph
    const GraphStats& stats() const { return stats_; }
    size_t size() const { return entries_.size(); }

  private:
    struct Entry {
        GraphKey key;
        BackendGraph* graph = nullptr;
        uint64_t last_use = 0;
    };
    Entry& entry_for(const GraphKey& key);

    Backend& backend_;
    size_t capacity_;
    std::vector<Entry> entries_;
    uint64_t clock_ = 0;
    GraphStats stats_;
};

}  // namespace sift
