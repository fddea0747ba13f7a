// What a context costs in the backend's memory beside the weights, checked when a model loads:
// a context that cannot fit fails then, with the sizes and what to change, instead of as an
// allocation failure (or the kernel's OOM killer) once the cache or the activations are
// allocated.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sift {

// The largest context: cells and positions are 32-bit.
inline constexpr int64_t kMaxContextTokens = INT32_MAX;

struct ContextCost {
    uint64_t bytes_per_cell = 0;  // KvCache::bytes_per_cell
    // The backend's buffers that grow with the context, at n_ctx (Backend::
    // attention_scratch_bytes, key_means_bytes), and one micro-batch's activations.
    uint64_t growing_bytes = 0;
    uint64_t activation_bytes = 0;
    bool kv_q8 = false;  // K and V are q8_0 already (no halving left to suggest)
};

// "" when a context of n_ctx tokens fits in `available` bytes of `device`; else the error.
std::string context_fit_error(int64_t n_ctx, const ContextCost& cost, uint64_t available,
                              std::string_view device);

}  // namespace sift
