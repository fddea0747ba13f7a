#include "runtime/bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <thread>

namespace sift {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

bool is_matmul_weight(const gguf::TensorInfo& t) {
    return t.n_dims >= 2 && t.name != "token_embd.weight";
}

// Fills the cache with `count` random tokens from position `first` (untimed context).
Status prefill_random(Model& model, int64_t first, int64_t count, std::mt19937_64& rng,
                      bool last_logits) {
    std::uniform_int_distribution<int32_t> pick(0, model.hparams().n_vocab - 1);
    Batch batch;
    for (int64_t i = 0; i < count; ++i)
        batch.add(pick(rng), static_cast<int32_t>(first + i), 0, last_logits && i + 1 == count);
    if (batch.size() == 0) return {};
    Result<std::vector<float>> r = model.decode(batch);
    if (!r) return r.error();
    return {};
}

// One repetition; returns the timed seconds.
Result<double> run_once(Model& model, const BenchTest& test, std::mt19937_64& rng) {
    model.kv().clear();
    SIFT_TRY(prefill_random(model, 0, test.depth, rng, false));
    model.backend().synchronize();
    std::uniform_int_distribution<int32_t> pick(0, model.hparams().n_vocab - 1);
    if (test.n_prompt > 0) {
        Batch batch;
        for (int64_t i = 0; i < test.n_prompt; ++i)
            batch.add(pick(rng), static_cast<int32_t>(test.depth + i), 0, i + 1 == test.n_prompt);
        const Clock::time_point start = Clock::now();
        Result<std::vector<float>> r = model.decode(batch);
        if (!r) return r.error();
        model.backend().synchronize();
        return seconds_since(start);
    }
    std::vector<int32_t> tokens(static_cast<size_t>(test.n_gen));
    for (int32_t& t : tokens) t = pick(rng);
    const Clock::time_point start = Clock::now();
    for (int64_t i = 0; i < test.n_gen; ++i) {
        Batch batch;
        batch.add(tokens[static_cast<size_t>(i)], static_cast<int32_t>(test.depth + i), 0, true);
        // Each step ends with the next token's id on the host, as greedy generation does
        // (the argmax found on the device; penalties or temperature would add the logits copy).
        Result<std::vector<int32_t>> r = model.decode_argmax(batch);
        if (!r) return r.error();
    }
    model.backend().synchronize();
    return seconds_since(start);
}

}  // namespace

std::string BenchTest::name() const {
    std::string s = n_prompt > 0 ? "pp" + std::to_string(n_prompt) : "tg" + std::to_string(n_gen);
    if (depth > 0) s += " @ d" + std::to_string(depth);
    return s;
}

double ModelCost::visible_positions(int64_t pos) const {
    double total = 0;
    for (int32_t w : layer_window)
        total += static_cast<double>(w > 0 ? std::min<int64_t>(pos + 1, w) : pos + 1);
    return total;
}

ModelCost model_cost(const Model& model) {
    const HParams& hp = model.hparams();
    ModelCost c;
    bool has_output = false;
    const gguf::TensorInfo* embd = nullptr;
    for (const gguf::TensorInfo& t : model.file().tensors()) {
        if (t.name == "output.weight") has_output = true;
        if (t.name == "token_embd.weight") embd = &t;
        if (is_matmul_weight(t)) {
            c.weight_bytes += static_cast<double>(t.byte_size);
            c.matmul_flops += 2.0 * static_cast<double>(t.n_elements());
        } else if (t.n_dims < 2) {
            c.weight_bytes += static_cast<double>(t.byte_size);  // norms, biases
        }
    }
    if (!has_output && embd) {  // tied embeddings: the table is also the output matmul
        c.weight_bytes += static_cast<double>(embd->byte_size);
        c.matmul_flops += 2.0 * static_cast<double>(embd->n_elements());
    }
    const double kv_elt = static_cast<double>(model.kv().bytes()) /
                          std::max<double>(1, static_cast<double>(model.n_ctx())) /
                          std::max(1, hp.n_layer);  // K+V bytes per cell per layer
    c.kv_bytes_per_pos = kv_elt;
    c.attn_flops_per_pos = 4.0 * hp.n_head * hp.head_dim;  // q.k and p.v, multiply-add = 2
    for (int32_t il = 0; il < hp.n_layer; ++il)
        c.layer_window.push_back(hp.layer_is_sliding(il) ? hp.sliding_window : 0);
    return c;
}

Result<BenchResult> bench_run(Model& model, const BenchTest& test, const BenchOptions& options) {
    if ((test.n_prompt > 0) == (test.n_gen > 0))
        return make_error("a bench test is either prefill (p > 0) or decode (n > 0)");
    if (test.depth < 0) return make_error("bench depth must be >= 0");
    const int64_t need = test.depth + test.n_prompt + test.n_gen;
    if (need > model.n_ctx())
        return make_error("{} needs {} cache cells but the context has {} (raise -c)", test.name(),
                          need, model.n_ctx());
    if (options.repetitions < 1) return make_error("repetitions must be >= 1");

    std::mt19937_64 rng(options.seed);
    if (options.warmup) {
        BenchTest warm = test;
        warm.n_gen = std::min<int64_t>(test.n_gen, 4);
        Result<double> w = run_once(model, warm, rng);
        if (!w) return w.error();
    }
    BenchResult result;
    result.test = test;
    std::vector<double> tps;
    const int64_t n_tokens = test.n_prompt + test.n_gen;
    for (int r = 0; r < options.repetitions; ++r) {
        Result<double> s = run_once(model, test, rng);
        if (!s) return s.error();
        result.seconds.push_back(*s);
        tps.push_back(static_cast<double>(n_tokens) / *s);
    }
    double sum = 0, sum_s = 0;
    for (size_t i = 0; i < tps.size(); ++i) {
        sum += tps[i];
        sum_s += result.seconds[i];
    }
    result.tokens_per_second_mean = sum / static_cast<double>(tps.size());
    result.seconds_mean = sum_s / static_cast<double>(tps.size());
    double var = 0;
    for (double v : tps)
        var += (v - result.tokens_per_second_mean) * (v - result.tokens_per_second_mean);
    result.tokens_per_second_sd =
        tps.size() > 1 ? std::sqrt(var / static_cast<double>(tps.size() - 1)) : 0;

    const ModelCost cost = model_cost(model);
    double visible = 0;
    for (int64_t i = 0; i < n_tokens; ++i) visible += cost.visible_positions(test.depth + i);
    visible /= static_cast<double>(n_tokens);
    result.flops_per_token = cost.matmul_flops + cost.attn_flops_per_pos * visible;
    // Decode reads every weight and the visible cache once per token. Prefill is compute-bound
    // (weights are read once per micro-batch, the cache once per query tile): no byte count.
    result.bytes_per_token =
        test.n_gen > 0 ? cost.weight_bytes + cost.kv_bytes_per_pos * visible : 0;
    return result;
}

}  // namespace sift
