#include "model/context_budget.h"

#include <fmt/format.h>

namespace sift {

std::string context_fit_error(int64_t n_ctx, const ContextCost& cost, uint64_t available,
                              std::string_view device) {
    if (n_ctx > kMaxContextTokens)
        return fmt::format("a context of {} tokens is past the largest sift supports ({})", n_ctx,
                           kMaxContextTokens);
    const uint64_t kv = cost.bytes_per_cell * static_cast<uint64_t>(n_ctx);
    const uint64_t other = cost.growing_bytes + cost.activation_bytes;
    if (kv + other <= available) return "";
    constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
    // What fits: the activations fixed, the cache and the growing buffers per cell.
    const uint64_t room = available > cost.activation_bytes ? available - cost.activation_bytes : 0;
    const double per_cell = static_cast<double>(cost.bytes_per_cell) +
                            static_cast<double>(cost.growing_bytes) / static_cast<double>(n_ctx);
    const auto fits =
        per_cell > 0 ? static_cast<uint64_t>(static_cast<double>(room) / per_cell) : 0;
    return fmt::format(
        "a context of {} tokens needs {:.2f} GiB ({:.2f} GiB of KV cache, {:.2f} GiB of "
        "activations and scratch) but {} has {:.2f} GiB free: about {} tokens fit; ask for a "
        "smaller context (-c){}",
        n_ctx, static_cast<double>(kv + other) / kGiB, static_cast<double>(kv) / kGiB,
        static_cast<double>(other) / kGiB, device, static_cast<double>(available) / kGiB, fits,
        cost.kv_q8 ? "" : " or a q8_0 KV cache (--cache-type q8_0)");
}

}  // namespace sift
