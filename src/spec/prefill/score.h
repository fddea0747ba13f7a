// Drafter scoring for speculative prefill (ALGORITHMS.md 1.2): run the drafter over the whole
// prompt and read, layer by layer on the device, how much attention the prompt's last tokens give
// every earlier token: max over layers and heads, then the mean over the probing queries.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/result.h"
#include "model/model.h"

namespace sift::spec {

struct ScoreParams {
    int32_t n_lookahead = 8;  // probing queries: the prompt's last n tokens
    // SpecPrefill's look-ahead: the drafter also decodes this many tokens greedily after the
    // prompt and their queries probe too (the decoded tokens leave the cache afterwards).
    int32_t n_decode = 0;
    bool nope = false;  // position-free scores (queries and keys before RoPE)
    // Early exit: probe the first n layers only and stop the drafter's forward there (0: all
    // layers). The drafter's cache then cannot serve later decoding and the prompt is dropped
    // from it; with n_decode > 0 the forward runs every layer (decoding needs logits).
    int32_t n_layers = 0;
    int32_t seq = 0;  // the drafter sequence that receives the prompt
};

struct PromptScores {
    std::vector<float> scores;   // one per prompt token
    double forward_seconds = 0;  // drafter forward including the probe
};

// Prefills `tokens` (positions 0..n-1 of params.seq, which must be empty) into the drafter with
// the probe on the last n_lookahead tokens. The drafter's cache keeps the prompt afterwards
// (speculative decoding drafts from it), except after an early exit (n_layers).
Result<PromptScores> score_prompt(Model& drafter, std::span<const int32_t> tokens,
                                  const ScoreParams& params);

}  // namespace sift::spec
