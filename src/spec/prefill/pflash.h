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
    BlockSparseOptions bsa;  // the drafter's forward (restored afterwards)
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
    int64_t bsa_layers = 0;      // drafter layer x micro-batch attentions run block-sparse
    std::string report() const;  // one line: kept tokens, spans, stage times
};

// A prompt in one vocabulary with the byte offset of each token in the text (n + 1 entries).
struct TokenizedText {
    std::vector<int32_t> ids;
    std::vector<int64_t> offsets;
};

// The drafter's half of speculative prefill: both tokenizations and the importance scores, from
// which any number of selections (keep ratios) can be made without running the drafter again.
struct PflashScores {
    TokenizedText drafter;  // the prompt in the drafter's tokens
    TokenizedText target;   // in the target's (the same object's copy when the vocabularies match)
    bool same_vocab = false;
    std::vector<float> scores;   // per drafter token
    std::vector<Span> protect;   // drafter tokens touching the protected byte ranges
    double drafter_seconds = 0;  // drafter forward with the probe
    double tokenize_seconds = 0;
    int64_t bsa_layers = 0;
};

Result<PflashScores> pflash_score(Model& drafter, const Tokenizer& drafter_tok,
                                  const Tokenizer& target_tok, std::string_view text,
                                  std::span<const ByteRange> protect, const PflashParams& params);
// Span selection with params.select (its protect list extended by the scores' one) and the
// mapping to target tokens.
PflashResult pflash_select(const PflashScores& scores, std::string_view text,
                           const PflashParams& params);

// pflash_score then pflash_select. Tokenizes `text` for both models (special-token text parsed, BOS
// as each vocabulary asks), scores it with the drafter (whose cache keeps it, in params.score.seq),
// selects spans and maps them to target tokens: with the same vocabulary the kept ids pass through;
// otherwise kept drafter runs become byte ranges of the text, widened to whitespace, and the target
// tokens overlapping them are kept, with their own positions.
Result<PflashResult> pflash_compress(Model& drafter, const Tokenizer& drafter_tok,
                                     const Tokenizer& target_tok, std::string_view text,
                                     std::span<const ByteRange> protect,
                                     const PflashParams& params);

// True when the two tokenizers have the same tokens, ids and model.
bool same_vocabulary(const Tokenizer& a, const Tokenizer& b);

}  // namespace sift::spec
