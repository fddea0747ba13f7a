// Span selection (ALGORITHMS.md 1.3): scored chunks, forced head/tail, 4-gram anchors, question
// survival, and the structural invariants of the result on random inputs.
#include "spec/prefill/span_select.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace sift::spec {
namespace {

std::vector<int32_t> distinct_tokens(size_t n) {
    std::vector<int32_t> t(n);
    for (size_t i = 0; i < n; ++i) t[i] = static_cast<int32_t>(100000 + i);  // no repeated 4-gram
    return t;
}

bool chunk_kept(const SpanSelection& s, int64_t chunk, int32_t chunk_size) {
    for (const Span& sp : s.spans)
        if (sp.begin <= chunk * chunk_size && chunk * chunk_size < sp.end) return true;
    return false;
}

void expect_well_formed(const SpanSelection& s, int64_t n) {
    int64_t total = 0;
    for (size_t i = 0; i < s.spans.size(); ++i) {
        EXPECT_LT(s.spans[i].begin, s.spans[i].end);
        EXPECT_GE(s.spans[i].begin, 0);
        EXPECT_LE(s.spans[i].end, n);
        if (i > 0) {
            EXPECT_GT(s.spans[i].begin, s.spans[i - 1].end)
                << "spans must be disjoint, not adjacent";
        }
        total += s.spans[i].end - s.spans[i].begin;
    }
    EXPECT_EQ(total, s.n_kept);
    EXPECT_EQ(static_cast<int64_t>(s.indices().size()), s.n_kept);
}

TEST(SpanSelect, ShortPromptIsKeptWhole) {
    const std::vector<float> scores(500, 0.0f);
    const SpanSelection s = select_spans(scores, distinct_tokens(500), {});
    ASSERT_EQ(s.spans.size(), 1u);
    EXPECT_EQ(s.spans[0].begin, 0);
    EXPECT_EQ(s.spans[0].end, 500);
    EXPECT_EQ(s.n_kept, 500);
}

TEST(SpanSelect, EmptyPrompt) {
    const SpanSelection s = select_spans({}, {}, {});
    EXPECT_TRUE(s.spans.empty());
    EXPECT_EQ(s.n_total, 0);
}

TEST(SpanSelect, ImportantRegionHeadAndTailAreKept) {
    const int64_t n = 32 * 400;  // 400 chunks
    std::vector<float> scores(static_cast<size_t>(n), 0.01f);
    for (int64_t i = 6400; i < 6464; ++i) scores[static_cast<size_t>(i)] = 1.0f;  // chunks 200, 201
    SpanSelectParams p;
    p.keep_ratio = 0.01f;  // 4 chunks by score
    p.anchors = false;
    const SpanSelection s = select_spans(scores, distinct_tokens(static_cast<size_t>(n)), p);
    expect_well_formed(s, n);
    EXPECT_TRUE(chunk_kept(s, 200, 32));
    EXPECT_TRUE(chunk_kept(s, 201, 32));
    for (int64_t c = 0; c < 8; ++c) EXPECT_TRUE(chunk_kept(s, c, 32)) << c;
    for (int64_t c = 400 - 24; c < 400; ++c) EXPECT_TRUE(chunk_kept(s, c, 32)) << c;
    EXPECT_FALSE(chunk_kept(s, 100, 32));
    EXPECT_EQ(s.n_chunks_scored, 4);
    EXPECT_EQ(s.n_chunks_scored + s.n_chunks_forced, s.n_kept / 32);
    EXPECT_EQ(s.n_kept, 32 * (4 + 8 + 24));
}

// Smoothing spreads a one-token spike over +-6 tokens, so it lifts the neighbour chunk too.
TEST(SpanSelect, SmoothingSpreadsASpikeAcrossTheChunkBoundary) {
    const int64_t n = 32 * 100;
    std::vector<float> scores(static_cast<size_t>(n), 0.0f);
    scores[32 * 50] = 10.0f;  // first token of chunk 50
    SpanSelectParams p;
    p.keep_ratio = 0.02f;  // 2 chunks
    p.anchors = false;
    const SpanSelection s = select_spans(scores, distinct_tokens(static_cast<size_t>(n)), p);
    EXPECT_TRUE(chunk_kept(s, 50, 32));
    EXPECT_TRUE(chunk_kept(s, 49, 32));
    p.smooth_window = 1;
    const SpanSelection raw = select_spans(scores, distinct_tokens(static_cast<size_t>(n)), p);
    EXPECT_TRUE(chunk_kept(raw, 50, 32));
}

TEST(SpanSelect, FourGramOfTheQuestionAnchorsItsEarlierOccurrence) {
    const int64_t n = 32 * 600;
    std::vector<int32_t> tokens = distinct_tokens(static_cast<size_t>(n));
    const std::vector<int32_t> key = {11, 22, 33, 44};
    // The question (in the tail) names the key; the needle holds it once, far earlier.
    std::copy(key.begin(), key.end(), tokens.begin() + (n - 40));
    std::copy(key.begin(), key.end(), tokens.begin() + 32 * 300 + 5);
    // A common 4-gram: in the question and 20 times earlier (above 8 hits: not an anchor).
    const std::vector<int32_t> common = {7, 8, 9, 10};
    std::copy(common.begin(), common.end(), tokens.begin() + (n - 20));
    for (int k = 0; k < 20; ++k)
        std::copy(common.begin(), common.end(), tokens.begin() + 32 * (50 + 10 * k));
    const std::vector<float> scores(static_cast<size_t>(n), 1.0f);  // flat: ties -> earliest chunks
    SpanSelectParams p;
    p.keep_ratio = 0.0f;  // n_keep = 1
    const SpanSelection s = select_spans(scores, tokens, p);
    expect_well_formed(s, n);
    for (int64_t c = 298; c <= 302; ++c) EXPECT_TRUE(chunk_kept(s, c, 32)) << c;  // radius 2
    EXPECT_FALSE(chunk_kept(s, 297, 32));
    EXPECT_FALSE(chunk_kept(s, 60, 32));  // the common gram did not anchor
    EXPECT_EQ(s.n_anchor_grams, 1);
    p.anchors = false;
    EXPECT_FALSE(chunk_kept(select_spans(scores, tokens, p), 300, 32));
}

// Text made of a few repeated pieces (digits, identifiers) gives many rare 4-grams: the anchors
// stop at their budget instead of keeping most of the prompt.
TEST(SpanSelect, AnchorsStopAtTheirBudget) {
    const int64_t n = 32 * 800;
    std::mt19937 rng(9);
    std::vector<int32_t> tokens(static_cast<size_t>(n));
    for (int32_t& t : tokens) t = static_cast<int32_t>(rng() % 12);  // 12 "digits"
    const std::vector<float> scores(static_cast<size_t>(n), 1.0f);
    SpanSelectParams p;
    p.keep_ratio = 0.05f;  // 40 chunks by score, so up to ~40 more by anchors
    const SpanSelection s = select_spans(scores, tokens, p);
    EXPECT_GT(s.n_anchor_grams, 0);
    EXPECT_LE(s.n_chunks_forced, 8 + 24 + 40 + 2 * 8 * 2 + 5) << s.summary();
    p.anchor_budget = 1000;
    EXPECT_GT(select_spans(scores, tokens, p).n_chunks_forced, s.n_chunks_forced);
}

// With the question known (protected, after the last compressible token), only its 4-grams
// anchor: the document's own end, repeated earlier, does not; and occurrences inside protected
// text (markup of earlier turns) are ignored.
TEST(SpanSelect, AnchorsComeFromTheQuestionWhenItIsKnown) {
    const int64_t n = 32 * 600;
    std::vector<int32_t> tokens = distinct_tokens(static_cast<size_t>(n));
    const int64_t question = n - 30;  // [question, n) is protected: the question and markup
    const std::vector<int32_t> doc_end = {61, 62, 63, 64};
    std::copy(doc_end.begin(), doc_end.end(), tokens.begin() + (question - 8));
    std::copy(doc_end.begin(), doc_end.end(), tokens.begin() + 32 * 200);
    const std::vector<int32_t> key = {11, 22, 33, 44};
    std::copy(key.begin(), key.end(), tokens.begin() + (question + 5));
    std::copy(key.begin(), key.end(), tokens.begin() + 32 * 400 + 5);
    const std::vector<int32_t> markup = {71, 72, 73, 74};
    std::copy(markup.begin(), markup.end(), tokens.begin() + (n - 6));
    std::copy(markup.begin(), markup.end(), tokens.begin() + 32 * 100 + 2);
    const std::vector<float> scores(static_cast<size_t>(n), 1.0f);
    SpanSelectParams p;
    p.keep_ratio = 0.0f;
    p.tail_chunks = 1;
    p.anchor_budget = 100;
    p.protect = {{question, n}, {32 * 100, 32 * 100 + 8}};
    const SpanSelection s = select_spans(scores, tokens, p);
    expect_well_formed(s, n);
    EXPECT_TRUE(chunk_kept(s, 400, 32));   // the question's key
    EXPECT_FALSE(chunk_kept(s, 200, 32));  // the document's end repeated: no anchor
    EXPECT_FALSE(chunk_kept(s, 98, 32));   // protected markup: kept itself, no radius
    EXPECT_TRUE(chunk_kept(s, 100, 32));
    EXPECT_EQ(s.n_anchor_grams, 1);
    // Without protection the last 96 tokens are the source: the document's end anchors too.
    p.protect.clear();
    EXPECT_TRUE(chunk_kept(select_spans(scores, tokens, p), 200, 32));
}

TEST(SpanSelect, AnchorRadiusScalesWithLength) {
    const int64_t n = 32 * 1500;  // 1024 <= chunks < 2048: radius 4
    std::vector<int32_t> tokens = distinct_tokens(static_cast<size_t>(n));
    const std::vector<int32_t> key = {5, 6, 7, 8};
    std::copy(key.begin(), key.end(), tokens.begin() + (n - 50));
    std::copy(key.begin(), key.end(), tokens.begin() + 32 * 700);
    const std::vector<float> scores(static_cast<size_t>(n), 1.0f);
    SpanSelectParams p;
    p.keep_ratio = 0.0f;
    const SpanSelection s = select_spans(scores, tokens, p);
    EXPECT_TRUE(chunk_kept(s, 696, 32));
    EXPECT_TRUE(chunk_kept(s, 704, 32));
    EXPECT_FALSE(chunk_kept(s, 695, 32));
}

TEST(SpanSelect, QuestionIsRestoredWhenMostlyCut) {
    const int64_t n = 32 * 200;
    const std::vector<float> scores(static_cast<size_t>(n), 0.0f);
    SpanSelectParams p;
    p.keep_ratio = 0.0f;
    p.tail_chunks = 0;
    p.anchors = false;
    p.query_begin = 32 * 150 + 3;
    p.query_end = 32 * 152 + 10;
    const SpanSelection s = select_spans(scores, distinct_tokens(static_cast<size_t>(n)), p);
    EXPECT_TRUE(s.query_restored);
    for (int64_t c = 150; c <= 152; ++c) EXPECT_TRUE(chunk_kept(s, c, 32));
    p.query_max_tokens = 10;  // too long to restore
    EXPECT_FALSE(select_spans(scores, distinct_tokens(static_cast<size_t>(n)), p).query_restored);
}

TEST(SpanSelect, KeepRatioOneKeepsEverything) {
    const int64_t n = 32 * 100 + 17;  // a partial last chunk
    const std::vector<float> scores = [&] {
        std::vector<float> v(static_cast<size_t>(n));
        std::mt19937 rng(3);
        for (float& x : v) x = static_cast<float>(rng() % 1000);
        return v;
    }();
    SpanSelectParams p;
    p.keep_ratio = 1.0f;
    const SpanSelection s = select_spans(scores, distinct_tokens(static_cast<size_t>(n)), p);
    ASSERT_EQ(s.spans.size(), 1u);
    EXPECT_EQ(s.n_kept, n);
}

// On random inputs: well-formed spans, and the score-chosen chunks are the best-scoring ones.
TEST(SpanSelect, RandomInputsGiveWellFormedSelections) {
    std::mt19937 rng(42);
    for (int trial = 0; trial < 200; ++trial) {
        const int64_t n = 1 + static_cast<int64_t>(rng() % 20000);
        std::vector<float> scores(static_cast<size_t>(n));
        std::vector<int32_t> tokens(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
            scores[static_cast<size_t>(i)] =
                std::exp(static_cast<float>(rng() % 1000) / 100.0f - 5);
            tokens[static_cast<size_t>(i)] = static_cast<int32_t>(rng() % 50);  // many repeats
        }
        SpanSelectParams p;
        p.keep_ratio = static_cast<float>(rng() % 101) / 100.0f;
        p.chunk = 1 + static_cast<int32_t>(rng() % 64);
        p.smooth_window = 1 + 2 * static_cast<int32_t>(rng() % 10);
        p.head_chunks = static_cast<int32_t>(rng() % 10);
        p.tail_chunks = static_cast<int32_t>(rng() % 30);
        const SpanSelection s = select_spans(scores, tokens, p);
        expect_well_formed(s, n);
        EXPECT_EQ(s.n_total, n);
        EXPECT_GE(s.n_kept, std::min<int64_t>(n, p.chunk > n ? n : 1));
        int64_t kept_chunks = 0;
        for (int64_t c = 0; c < s.n_chunks; ++c) kept_chunks += chunk_kept(s, c, p.chunk) ? 1 : 0;
        EXPECT_EQ(kept_chunks, s.n_chunks_scored + s.n_chunks_forced) << "trial " << trial;
    }
}

}  // namespace
}  // namespace sift::spec
