#include "spec/prefill/span_select.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <unordered_map>

#include "core/check.h"

namespace sift::spec {
namespace {

// Moving average over [i - half, i + half], clipped at the ends (the average of what exists).
std::vector<double> smooth(std::span<const float> scores, int32_t window) {
    const int64_t n = static_cast<int64_t>(scores.size());
    const int64_t half = std::max(0, window / 2);
    std::vector<double> prefix(static_cast<size_t>(n) + 1, 0.0);
    for (int64_t i = 0; i < n; ++i)
        prefix[static_cast<size_t>(i) + 1] =
            prefix[static_cast<size_t>(i)] + scores[static_cast<size_t>(i)];
    std::vector<double> out(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        const int64_t lo = std::max<int64_t>(0, i - half), hi = std::min(n, i + half + 1);
        out[static_cast<size_t>(i)] =
            (prefix[static_cast<size_t>(hi)] - prefix[static_cast<size_t>(lo)]) /
            static_cast<double>(hi - lo);
    }
    return out;
}

struct Gram {
    int32_t t[4];
    bool operator==(const Gram& o) const { return std::memcmp(t, o.t, sizeof(t)) == 0; }
};
struct GramHash {
    size_t operator()(const Gram& g) const {
        uint64_t h = 0x9E3779B97F4A7C15ull;
        for (int32_t v : g.t) h = (h ^ static_cast<uint32_t>(v)) * 0x100000001B3ull;
        return static_cast<size_t>(h ^ (h >> 29));
    }
};

Gram gram_at(std::span<const int32_t> tokens, int64_t i) {
    Gram g;
    for (int k = 0; k < 4; ++k) g.t[k] = tokens[static_cast<size_t>(i + k)];
    return g;
}

// Where the anchor 4-grams come from: the text after the last compressible token (the question
// and the markup after it) when that holds a 4-gram, else the last anchor_tail tokens; at most
// the last anchor_tail tokens either way. The document's own end is no question: its 4-grams
// only find the document again (random digits or identifiers do, dozens of times).
int64_t anchor_source_begin(int64_t n, const SpanSelectParams& p,
                            const std::vector<uint8_t>& protected_token) {
    const int64_t tail_begin = std::max<int64_t>(0, n - p.anchor_tail);
    int64_t last_free = n - 1;
    while (last_free >= 0 && protected_token[static_cast<size_t>(last_free)]) --last_free;
    if (last_free < 0 || last_free == n - 1 || n - (last_free + 1) < 4) return tail_begin;
    return std::max(tail_begin, last_free + 1);
}

// Marks +-radius chunks around every earlier occurrence of each 4-gram of the source region that
// occurs 1..max_hits times before it. Occurrences touching protected tokens (markup, the system
// prompt: kept anyway) neither count nor spend the budget. Returns how many 4-grams qualified.
int64_t mark_anchors(std::span<const int32_t> tokens, const SpanSelectParams& p, int64_t n_chunks,
                     int64_t budget, const std::vector<uint8_t>& protected_token,
                     std::vector<uint8_t>& forced) {
    const int64_t n = static_cast<int64_t>(tokens.size());
    const int64_t tail_begin = anchor_source_begin(n, p, protected_token);
    if (tail_begin < 4 || n - tail_begin < 4) return 0;
    int32_t radius = p.anchor_radius, max_hits = p.anchor_max_hits;
    if (radius <= 0) radius = n_chunks < 1024 ? 2 : n_chunks < 2048 ? 4 : 8;
    if (max_hits <= 0) max_hits = n_chunks < 1024 ? 8 : n_chunks < 2048 ? 16 : 32;

    std::unordered_map<Gram, std::vector<int64_t>, GramHash> hits;
    for (int64_t i = tail_begin; i + 4 <= n; ++i)
        hits.emplace(gram_at(tokens, i), std::vector<int64_t>{});
    // One pass over the text before the tail (occurrences lie wholly before it); stop counting a
    // gram once it is too common.
    for (int64_t i = 0; i + 4 <= tail_begin; ++i) {
        const auto at = static_cast<size_t>(i);
        if (protected_token[at] | protected_token[at + 1] | protected_token[at + 2] |
            protected_token[at + 3])
            continue;
        auto it = hits.find(gram_at(tokens, i));
        if (it != hits.end() && static_cast<int32_t>(it->second.size()) <= max_hits)
            it->second.push_back(i);
    }
    // Rarest grams first (then by first occurrence, for determinism), until the budget is spent.
    std::vector<const std::vector<int64_t>*> grams;
    for (const auto& [gram, where] : hits)
        if (!where.empty() && static_cast<int32_t>(where.size()) <= max_hits)
            grams.push_back(&where);
    std::sort(grams.begin(), grams.end(), [](const auto* a, const auto* b) {
        return a->size() != b->size() ? a->size() < b->size() : a->front() < b->front();
    });
    int64_t qualified = 0, added = 0;
    for (const std::vector<int64_t>* where : grams) {
        if (added >= budget) break;
        ++qualified;
        for (int64_t pos : *where) {
            const int64_t first = pos / p.chunk - radius;
            const int64_t last = (pos + 3) / p.chunk + radius;
            for (int64_t c = std::max<int64_t>(0, first); c <= std::min(n_chunks - 1, last); ++c) {
                added += forced[static_cast<size_t>(c)] ? 0 : 1;
                forced[static_cast<size_t>(c)] = 1;
            }
        }
    }
    return qualified;
}

}  // namespace

std::vector<int64_t> SpanSelection::indices() const {
    std::vector<int64_t> out;
    out.reserve(static_cast<size_t>(n_kept));
    for (const Span& s : spans)
        for (int64_t i = s.begin; i < s.end; ++i) out.push_back(i);
    return out;
}

std::string SpanSelection::summary() const {
    return fmt::format(
        "kept {}/{} tokens ({:.1f}%) in {} span{}; chunks {} by score + {} forced of {}{}", n_kept,
        n_total,
        n_total > 0 ? 100.0 * static_cast<double>(n_kept) / static_cast<double>(n_total) : 0.0,
        spans.size(), spans.size() == 1 ? "" : "s", n_chunks_scored, n_chunks_forced, n_chunks,
        query_restored ? "; question restored" : "");
}

SpanSelection select_spans(std::span<const float> scores, std::span<const int32_t> tokens,
                           const SpanSelectParams& p) {
    SIFT_CHECK(scores.size() == tokens.size(), "{} scores for {} tokens", scores.size(),
               tokens.size());
    SIFT_CHECK(p.chunk > 0 && p.keep_ratio >= 0 && p.keep_ratio <= 1, "chunk {} keep {}", p.chunk,
               p.keep_ratio);
    SpanSelection sel;
    const int64_t n = static_cast<int64_t>(scores.size());
    sel.n_total = n;
    if (n == 0) return sel;
    const int64_t n_chunks = (n + p.chunk - 1) / p.chunk;
    sel.n_chunks = n_chunks;
    std::vector<uint8_t> by_score(static_cast<size_t>(n_chunks), 0);
    std::vector<uint8_t> forced(static_cast<size_t>(n_chunks), 0);

    if (n_chunks <= int64_t{p.head_chunks} + p.tail_chunks) {
        std::fill(forced.begin(), forced.end(), 1);
    } else {
        const std::vector<double> smoothed = smooth(scores, p.smooth_window);
        std::vector<double> chunk_score(static_cast<size_t>(n_chunks));
        for (int64_t c = 0; c < n_chunks; ++c) {
            const int64_t lo = c * p.chunk, hi = std::min(n, lo + p.chunk);
            double sum = 0;
            for (int64_t i = lo; i < hi; ++i) sum += smoothed[static_cast<size_t>(i)];
            chunk_score[static_cast<size_t>(c)] = sum / static_cast<double>(hi - lo);
        }
        // floor(n_chunks * keep); the epsilon stops 400 * 0.01f (3.9999999) flooring to 3.
        const double wanted = static_cast<double>(n_chunks) * static_cast<double>(p.keep_ratio);
        const int64_t n_keep = std::max<int64_t>(1, static_cast<int64_t>(wanted + 1e-6));
        std::vector<int64_t> order(static_cast<size_t>(n_chunks));
        std::iota(order.begin(), order.end(), 0);
        // Highest score first; ties keep the earlier chunk (deterministic).
        std::partial_sort(order.begin(), order.begin() + std::min(n_keep, n_chunks), order.end(),
                          [&](int64_t a, int64_t b) {
                              const double sa = chunk_score[static_cast<size_t>(a)];
                              const double sb = chunk_score[static_cast<size_t>(b)];
                              return sa != sb ? sa > sb : a < b;
                          });
        for (int64_t k = 0; k < std::min(n_keep, n_chunks); ++k)
            by_score[static_cast<size_t>(order[static_cast<size_t>(k)])] = 1;
        for (int64_t c = 0; c < p.head_chunks; ++c) forced[static_cast<size_t>(c)] = 1;
        for (int64_t c = n_chunks - p.tail_chunks; c < n_chunks; ++c)
            forced[static_cast<size_t>(c)] = 1;
        if (p.anchors) {
            std::vector<uint8_t> protected_token(static_cast<size_t>(n), 0);
            for (const Span& sp : p.protect)
                for (int64_t i = std::max<int64_t>(0, sp.begin); i < std::min(n, sp.end); ++i)
                    protected_token[static_cast<size_t>(i)] = 1;
            const int64_t budget = p.anchor_budget > 0 ? p.anchor_budget : n_keep;
            sel.n_anchor_grams = mark_anchors(tokens, p, n_chunks, budget, protected_token, forced);
        }
    }

    for (const Span& sp : p.protect) {
        const int64_t b = std::clamp<int64_t>(sp.begin, 0, n),
                      e = std::clamp<int64_t>(sp.end, 0, n);
        for (int64_t c = b / p.chunk; e > b && c <= (e - 1) / p.chunk; ++c)
            forced[static_cast<size_t>(c)] = 1;
    }

    // The question must survive.
    const int64_t qb = std::clamp<int64_t>(p.query_begin, 0, n),
                  qe = std::clamp<int64_t>(p.query_end, 0, n);
    if (qe > qb && qe - qb < p.query_max_tokens) {
        int64_t kept = 0;
        for (int64_t i = qb; i < qe; ++i) {
            const size_t c = static_cast<size_t>(i / p.chunk);
            kept += (by_score[c] | forced[c]) ? 1 : 0;
        }
        if (static_cast<double>(kept) < p.query_survival * static_cast<double>(qe - qb)) {
            for (int64_t c = qb / p.chunk; c <= (qe - 1) / p.chunk; ++c)
                forced[static_cast<size_t>(c)] = 1;
            sel.query_restored = true;
        }
    }

    for (int64_t c = 0; c < n_chunks; ++c) {
        const bool s = by_score[static_cast<size_t>(c)] != 0,
                   f = forced[static_cast<size_t>(c)] != 0;
        if (!s && !f) continue;
        sel.n_chunks_scored += s ? 1 : 0;
        sel.n_chunks_forced += (!s && f) ? 1 : 0;
        const int64_t lo = c * p.chunk, hi = std::min(n, lo + p.chunk);
        if (!sel.spans.empty() && sel.spans.back().end == lo) {
            sel.spans.back().end = hi;
        } else {
            sel.spans.push_back({lo, hi});
        }
        sel.n_kept += hi - lo;
    }
    return sel;
}

}  // namespace sift::spec
