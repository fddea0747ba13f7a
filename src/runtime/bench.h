// Throughput measurement in the manner of llama-bench: prefill of p tokens and decode of n tokens
// on random token ids (tokenization and sampling are outside the timing), after an optional
// untimed context of d tokens, repeated r times.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"
#include "model/model.h"

namespace sift {

struct BenchTest {
    int64_t n_prompt = 0;      // tokens prefilled in one timed call (0: a decode test)
    int64_t n_gen = 0;         // tokens decoded one at a time (0: a prefill test)
    int64_t depth = 0;         // tokens already in the cache, not timed
    std::string name() const;  // "pp512", "tg128", "pp512 @ d4096"
};

// What one token costs the model, from its shapes and weight types.
struct ModelCost {
    double weight_bytes = 0;            // bytes of weights a token reads (matmul weights + norms)
    double matmul_flops = 0;            // 2 * multiply-adds of the matmuls per token
    double kv_bytes_per_pos = 0;        // K+V bytes read per token per visible key position
    double attn_flops_per_pos = 0;      // q.k and p.v flops per token per visible key position
    std::vector<int32_t> layer_window;  // per layer: sliding window (0 = full)

    // Visible key positions, summed over layers, of a token at position `pos` (0-based).
    double visible_positions(int64_t pos) const;
};

ModelCost model_cost(const Model& model);

struct BenchResult {
    BenchTest test;
    std::vector<double> seconds;  // per repetition
    double tokens_per_second_mean = 0;
    double tokens_per_second_sd = 0;
    double seconds_mean = 0;
    double bytes_per_token = 0;  // decode: weights + visible KV per token (prefill: 0)
    double flops_per_token = 0;  // mean over the timed tokens (matmuls + attention)
};

struct BenchOptions {
    int repetitions = 5;
    uint64_t seed = 1234;
    bool warmup = true;  // one untimed run before the timed ones
};

// Runs one test on sequence 0 of the model (its cache is cleared before each repetition).
Result<BenchResult> bench_run(Model& model, const BenchTest& test, const BenchOptions& options);

}  // namespace sift
