// Speculative prefill end to end (ALGORITHMS.md 1.1-1.4): the drafter scores the prompt, span
// selection keeps the important chunks (never the protected parts: system prompt, tools, template
// markup, the question), and the kept text is mapped to the target's tokens with their positions,
// ready for the target's prefill.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "model/model.h"
#include "spec/prefill/score.h"
#include "spec/prefill/span_select.h"
#include "tokenizer/tokenizer.h"

namespace sift::spec {

enum class PositionPolicy {
    POS_ORIGINAL,    // kept tokens keep their positions in the full prompt (SpecPrefill)
    POS_RENUMBERED,  // kept tokens are renumbered 0..k-1 (the reference system)
};

struct PflashParams {
    ScoreParams score;
    SpanSelectParams select;  // protect is filled from the byte ranges given to pflash_compress
    PositionPolicy positions = PositionPolicy::POS_ORIGINAL;
};

struct ByteRange {
    int64_t begin = 0, end = 0;  // bytes of the prompt text [begin, end)
};

struct PflashResult {
    std::vector<int32_t> target_prompt;  // the whole prompt in the target's tokens
    std::vector<int32_t> tokens;         // kept target tokens, in order
    std::vector<int32_t> positions;      // their positions
    SpanSelection selection;             // over the drafter's tokens
    int64_t n_drafter_tokens = 0;
    double drafter_seconds = 0;  // drafter forward with the probe
    double select_seconds = 0;
    double map_seconds = 0;      // tokenization and drafter -> target mapping
    std::string report() const;  // one line: kept tokens, spans, stage times
};

// Tokenizes `text` for both models (special-token text parsed, BOS as each vocabulary asks),
// scores it with the drafter (whose cache keeps it, in params.score.seq), selects spans and
// maps them to target tokens: with the same vocabulary the kept ids pass through; otherwise kept
// drafter runs become byte ranges of the text, widened to whitespace, and the target tokens
// overlapping them are kept, with their own positions.
Result<PflashResult> pflash_compress(Model& drafter, const Tokenizer& drafter_tok,
                                     const Tokenizer& target_tok, std::string_view text,
                                     std::span<const ByteRange> protect,
                                     const PflashParams& params);

// True when the two tokenizers have the same tokens, ids and model.
bool same_vocabulary(const Tokenizer& a, const Tokenizer& b);

}  // namespace sift::spec
