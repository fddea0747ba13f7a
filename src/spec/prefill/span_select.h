// Span selection for speculative prefill (docs: ../shared/docs/ALGORITHMS.md section 1.3): from
// per-token importance scores, which prompt tokens the target model prefills. Plain C++, no
// model: the scores come from spec/prefill/score (the drafter's attention), the result feeds the
// target's prefill with either the original positions or renumbered ones.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace sift::spec {

struct Span {
    int64_t begin = 0, end = 0;  // token indices [begin, end)
};

struct SpanSelectParams {
    float keep_ratio = 0.05f;    // fraction of chunks chosen by score (forced chunks come on top)
    int32_t chunk = 32;          // tokens per chunk
    int32_t smooth_window = 13;  // moving average of the scores (odd; 1 = none)
    int32_t head_chunks = 8;     // always kept: the start (system prompt, instructions)
    int32_t tail_chunks = 24;    // always kept: the end (the question)
    // 4-gram anchors: every 4-gram of the question that occurs 1..max_hits times earlier keeps
    // +-radius chunks around each occurrence. The question: the tokens after the last
    // compressible (unprotected) one, else the prompt's end; at most the last `anchor_tail`
    // tokens. Occurrences in protected tokens are ignored (kept anyway). radius/max_hits 0 =
    // scaled with the prompt length (2/8 below 1024 chunks, 4/16 below 2048, 8/32 above).
    int32_t anchor_tail = 96;
    int32_t anchor_radius = 0;
    int32_t anchor_max_hits = 0;
    bool anchors = true;
    // At most this many chunks are forced by anchors (0: as many as the score budget), rarest
    // 4-grams first: text full of repeated short pieces (numbers, identifiers) would otherwise
    // anchor most of the prompt.
    int64_t anchor_budget = 0;
    // The final question [query_begin, query_end) (token indices; empty = unknown): when less
    // than `query_survival` of it is kept and it is shorter than `query_max_tokens`, all of it is
    // kept (the reference re-appended a copy; keeping it in place keeps positions intact).
    int64_t query_begin = 0, query_end = 0;
    float query_survival = 0.8f;
    int64_t query_max_tokens = 1000;
    // Token ranges that are never compressed (system prompt, tool definitions, template markup,
    // the question): every chunk they touch is kept.
    std::vector<Span> protect;
};

struct SpanSelection {
    std::vector<Span> spans;  // kept runs in original order, disjoint, not adjacent
    int64_t n_total = 0;      // prompt tokens
    int64_t n_kept = 0;       // tokens in spans
    int64_t n_chunks = 0;
    int64_t n_chunks_scored = 0;  // kept because of their score
    int64_t n_chunks_forced = 0;  // kept by head/tail/anchor/query rules (and not by score)
    int64_t n_anchor_grams = 0;   // 4-grams whose occurrences were kept
    bool query_restored = false;

    // Kept token indices in order.
    std::vector<int64_t> indices() const;
    // "kept 1234/65536 tokens (1.9%) in 57 spans; chunks 41 by score + 28 forced"
    std::string summary() const;
};

// scores: one per prompt token (any scale; higher = more important); tokens: the prompt ids the
// scores belong to (for the 4-gram anchors). Prompts of at most head + tail chunks are kept whole.
SpanSelection select_spans(std::span<const float> scores, std::span<const int32_t> tokens,
                           const SpanSelectParams& params);

}  // namespace sift::spec
