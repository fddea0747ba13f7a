#include "spec/prefill/pflash.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

namespace sift::spec {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

using Tokenized = TokenizedText;

Tokenized tokenize(const Tokenizer& tok, std::string_view text) {
    Tokenized t;
    const bool bos = tok.special().add_bos && tok.special().bos >= 0;
    if (bos) t.ids.push_back(tok.special().bos);  // added, not spelled in the text: 0 bytes
    const std::vector<int32_t> body = tok.encode(text, false, true);
    t.ids.insert(t.ids.end(), body.begin(), body.end());
    t.offsets.assign(t.ids.size() + 1, 0);
    for (size_t i = bos ? 1 : 0; i < t.ids.size(); ++i)
        t.offsets[i + 1] =
            t.offsets[i] + static_cast<int64_t>(tok.token_bytes(t.ids[i], false).size());
    if (bos) t.offsets[1] = 0;
    // A normalizing tokenizer (Qwen's NFC) may spell other bytes than the text: scale the
    // offsets onto the text so ranges stay approximately right.
    const int64_t spelled = t.offsets.back();
    const auto n = static_cast<int64_t>(text.size());
    if (spelled != n && spelled > 0)
        for (int64_t& o : t.offsets) o = o * n / spelled;
    return t;
}

// Tokens overlapping any byte range (ranges sorted and disjoint).
std::vector<int64_t> tokens_in(const std::vector<int64_t>& offsets,
                               const std::vector<std::pair<int64_t, int64_t>>& ranges) {
    std::vector<int64_t> out;
    size_t r = 0;
    for (size_t i = 0; i + 1 < offsets.size(); ++i) {
        const int64_t tb = offsets[i], te = std::max(offsets[i + 1], tb + 1);
        while (r < ranges.size() && ranges[r].second <= tb) ++r;
        if (r < ranges.size() && ranges[r].first < te) out.push_back(static_cast<int64_t>(i));
    }
    return out;
}

}  // namespace

bool same_vocabulary(const Tokenizer& a, const Tokenizer& b) {
    if (a.n_vocab() != b.n_vocab() || a.model() != b.model() || a.pre() != b.pre()) return false;
    for (int32_t id = 0; id < a.n_vocab(); ++id)
        if (a.token_text(id) != b.token_text(id)) return false;
    return true;
}

std::string PflashResult::report() const {
    return fmt::format(
        "pflash: drafter {} tokens, {}; target {} -> {} tokens; drafter {:.3f} s, select {:.3f} "
        "s, map {:.3f} s; bsa {} layer-ubatches",
        n_drafter_tokens, selection.summary(), target_prompt.size(), tokens.size(), drafter_seconds,
        select_seconds, map_seconds, bsa_layers);
}

Result<PflashScores> pflash_score(Model& drafter, const Tokenizer& drafter_tok,
                                  const Tokenizer& target_tok, std::string_view text,
                                  std::span<const ByteRange> protect, const PflashParams& params) {
    PflashScores out;
    const Clock::time_point start = Clock::now();
    out.same_vocab = same_vocabulary(drafter_tok, target_tok);
    out.drafter = tokenize(drafter_tok, text);
    out.target = out.same_vocab ? out.drafter : tokenize(target_tok, text);
    std::vector<std::pair<int64_t, int64_t>> byte_ranges;
    for (const ByteRange& r : protect) byte_ranges.emplace_back(r.begin, r.end);
    std::sort(byte_ranges.begin(), byte_ranges.end());
    for (int64_t i : tokens_in(out.drafter.offsets, byte_ranges)) out.protect.push_back({i, i + 1});
    out.tokenize_seconds = seconds_since(start);

    const BlockSparseOptions saved = drafter.block_sparse();
    const int64_t bsa_calls = drafter.block_sparse_calls();
    drafter.set_block_sparse(params.bsa);
    Result<PromptScores> scores = score_prompt(drafter, out.drafter.ids, params.score);
    drafter.set_block_sparse(saved);
    out.bsa_layers = drafter.block_sparse_calls() - bsa_calls;
    if (!scores) return scores.error();
    out.drafter_seconds = scores->forward_seconds;
    out.scores = std::move(scores->scores);
    return out;
}

PflashResult pflash_select(const PflashScores& sc, std::string_view text,
                           const PflashParams& params) {
    PflashResult out;
    const Tokenized& d = sc.drafter;
    const Tokenized& t = sc.target;
    out.target_prompt = t.ids;
    out.n_drafter_tokens = static_cast<int64_t>(d.ids.size());
    out.drafter_seconds = sc.drafter_seconds;
    out.bsa_layers = sc.bsa_layers;

    Clock::time_point start = Clock::now();
    SpanSelectParams select = params.select;
    select.protect.insert(select.protect.end(), sc.protect.begin(), sc.protect.end());
    out.selection = select_spans(sc.scores, d.ids, select);
    out.select_seconds = seconds_since(start);

    start = Clock::now();
    std::vector<int64_t> kept;  // indices into t.ids
    if (sc.same_vocab) {
        kept = out.selection.indices();
    } else {
        std::vector<std::pair<int64_t, int64_t>> ranges;
        const auto size = static_cast<int64_t>(text.size());
        for (const Span& s : out.selection.spans) {
            int64_t b = d.offsets[static_cast<size_t>(s.begin)];
            int64_t e = d.offsets[static_cast<size_t>(s.end)];
            while (b > 0 && !is_space(text[static_cast<size_t>(b - 1)])) --b;
            while (e < size && !is_space(text[static_cast<size_t>(e)])) ++e;
            if (!ranges.empty() && b <= ranges.back().second) {
                ranges.back().second = std::max(ranges.back().second, e);
            } else {
                ranges.emplace_back(b, e);
            }
        }
        kept = tokens_in(t.offsets, ranges);
        // An added BOS spells no bytes: keep it whenever the drafter kept the prompt's start.
        if (!t.ids.empty() && t.offsets[1] == 0 && (kept.empty() || kept.front() != 0) &&
            !out.selection.spans.empty() && out.selection.spans.front().begin == 0)
            kept.insert(kept.begin(), 0);
    }
    for (size_t i = 0; i < kept.size(); ++i) {
        out.tokens.push_back(t.ids[static_cast<size_t>(kept[i])]);
        out.positions.push_back(params.positions == PositionPolicy::POS_ORIGINAL
                                    ? static_cast<int32_t>(kept[i])
                                    : static_cast<int32_t>(i));
    }
    out.map_seconds = sc.tokenize_seconds + seconds_since(start);
    return out;
}

Result<PflashResult> pflash_compress(Model& drafter, const Tokenizer& drafter_tok,
                                     const Tokenizer& target_tok, std::string_view text,
                                     std::span<const ByteRange> protect,
                                     const PflashParams& params) {
    Result<PflashScores> scores =
        pflash_score(drafter, drafter_tok, target_tok, text, protect, params);
    if (!scores) return scores.error();
    return pflash_select(*scores, text, params);
}

}  // namespace sift::spec
