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

    Batch batch;
    for (int64_t i = 0; i < n; ++i)
        batch.add(tokens[static_cast<size_t>(i)], static_cast<int32_t>(i), params.seq, false);
    AttentionProbe probe;
    probe.nope = params.nope;
    probe.n_layers = params.n_layers;
    for (int64_t i = std::max<int64_t>(0, n - params.n_lookahead); i < n; ++i)
        probe.queries.push_back(static_cast<int32_t>(i));

    const auto start = std::chrono::steady_clock::now();
    Result<std::vector<float>> r = drafter.decode(batch, &probe);
    if (!r) return r.error();
    PromptScores out;
    out.forward_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    // Cells back to prompt positions, averaging the queries' running maxima.
    const std::span<const int32_t> cell_pos = drafter.kv().host_cell_pos();
    const std::span<const int32_t> cell_seq = drafter.kv().host_cell_seq();
    const size_t n_cells = cell_pos.size();
    const size_t n_q = probe.queries.size();
    out.scores.assign(static_cast<size_t>(n), 0.0f);
    for (size_t c = 0; c < n_cells; ++c) {
        if (cell_seq[c] != params.seq || cell_pos[c] < 0 || cell_pos[c] >= n) continue;
        double sum = 0;
        for (size_t t = 0; t < n_q; ++t) sum += probe.probs_max[t * n_cells + c];
        out.scores[static_cast<size_t>(cell_pos[c])] =
            static_cast<float>(sum / static_cast<double>(n_q));
    }
    return out;
}

}  // namespace sift::spec
