#include "spec/prefill/score.h"

#include <algorithm>
#include <chrono>

namespace sift::spec {

Result<PromptScores> score_prompt(Model& drafter, std::span<const int32_t> tokens,
                                  const ScoreParams& params) {
    const auto n = static_cast<int64_t>(tokens.size());
    if (n == 0) return make_error("score_prompt: empty prompt");
    if (params.n_lookahead < 1) return make_error("score_prompt: n_lookahead must be >= 1");
    if (drafter.kv().seq_pos_max(params.seq) >= 0)
        return make_error("score_prompt: drafter sequence {} is not empty", params.seq);
    if (n > drafter.n_ctx())
        return make_error("prompt of {} tokens does not fit the drafter's context of {} tokens", n,
                          drafter.n_ctx());

    if (params.n_decode < 0) return make_error("score_prompt: n_decode must be >= 0");
    if (n + params.n_decode > drafter.n_ctx())
        return make_error(
            "prompt of {} tokens and {} look-ahead tokens do not fit the drafter's "
            "context of {} tokens",
            n, params.n_decode, drafter.n_ctx());

    Batch batch;
    for (int64_t i = 0; i < n; ++i)
        batch.add(tokens[static_cast<size_t>(i)], static_cast<int32_t>(i), params.seq,
                  params.n_decode > 0 && i == n - 1);
    AttentionProbe probe;
    probe.nope = params.nope;
    probe.n_layers = params.n_layers;
    probe.early_exit = params.n_decode == 0;
    for (int64_t i = std::max<int64_t>(0, n - params.n_lookahead); i < n; ++i)
        probe.queries.push_back(static_cast<int32_t>(i));

    const auto start = std::chrono::steady_clock::now();
    Result<std::vector<float>> r = drafter.decode(batch, &probe);
    if (!r) return r.error();
    PromptScores out;
    out.scores.assign(static_cast<size_t>(n), 0.0f);
    std::vector<double> sums(static_cast<size_t>(n), 0.0);
    size_t n_q = 0;
    // Adds the probe's rows (one per query) to the per-position sums of prompt cells.
    auto accumulate = [&](const AttentionProbe& p) {
        const std::span<const int32_t> cell_pos = drafter.kv().host_cell_pos();
        const std::span<const int32_t> cell_seq = drafter.kv().host_cell_seq();
        const size_t n_cells = cell_pos.size();
        for (size_t c = 0; c < n_cells; ++c) {
            if (cell_seq[c] != params.seq || cell_pos[c] < 0 || cell_pos[c] >= n) continue;
            for (size_t t = 0; t < p.queries.size(); ++t)
                sums[static_cast<size_t>(cell_pos[c])] += p.probs_max[t * n_cells + c];
        }
        n_q += p.queries.size();
    };
    accumulate(probe);
    // An early exit left the deeper layers of these cells unwritten.
    if (probe.early_exit && params.n_layers > 0 && params.n_layers < drafter.hparams().n_layer)
        drafter.kv().truncate(params.seq, 0);

    // Look-ahead: greedy drafter tokens, each probing as one more query.
    std::vector<float> logits = std::move(*r);
    for (int32_t i = 0; i < params.n_decode; ++i) {
        const auto next =
            static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        Batch step;
        step.add(next, static_cast<int32_t>(n + i), params.seq, i + 1 < params.n_decode);
        AttentionProbe p;
        p.nope = params.nope;
        p.n_layers = params.n_layers;
        p.queries = {0};
        Result<std::vector<float>> l = drafter.decode(step, &p);
        if (!l) return l.error();
        accumulate(p);
        logits = std::move(*l);
    }
    if (params.n_decode > 0) drafter.kv().truncate(params.seq, static_cast<int32_t>(n));
    out.forward_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    // The mean over queries of the running maxima.
    for (int64_t i = 0; i < n; ++i)
        out.scores[static_cast<size_t>(i)] =
            static_cast<float>(sums[static_cast<size_t>(i)] / static_cast<double>(n_q));
    return out;
}

}  // namespace sift::spec
