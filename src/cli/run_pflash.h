// `sift run --drafter D --pflash on`: speculative prefill options and the compressed run.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "core/result.h"
#include "model/model.h"
#include "runtime/generate.h"
#include "spec/prefill/chat_segments.h"
#include "spec/prefill/pflash.h"
#include "tokenizer/tokenizer.h"

namespace sift::cli {

struct PflashOptions {
    std::string drafter;
    std::string mode = "off";  // off | on
    float keep_ratio = 0.05f;
    int64_t threshold = 32000;  // prompts shorter than this run dense
    std::string positions = "original";
    int32_t lookahead = 8;
    bool nope = false;
    int32_t score_layers = 0;
    int32_t lookahead_decode = 0;  // drafter-decoded look-ahead queries
    // Block-sparse drafter attention (ALGORITHMS.md 2). alpha: 0.12 the paper's default; the
    // reference benches at 0.85 and needed 0.70 on a 117K NIAH where 0.85 missed 2 of 10.
    std::string bsa = "on";  // on | off
    float bsa_alpha = 0.12f;
    int64_t bsa_min_cells = BlockSparseOptions{}.min_cells;
    int32_t bsa_sink = BlockSparseParams{}.sink;            // first key blocks always kept
    int32_t bsa_window = BlockSparseParams{}.window;        // recent key blocks always kept
    int32_t bsa_last_full = BlockSparseParams{}.last_full;  // last query blocks attend densely
    int32_t drafter_ubatch = 0;  // tokens per drafter forward chunk; 0: drafter_ubatch() below
    int64_t min_segment = 2048;  // --messages: message contents shorter than this are kept
};

void add_pflash_options(CLI::App& sub, PflashOptions& o);
// The scoring, position and drafter-attention options alone (what `sift eval` shares with
// `sift run`).
void add_pflash_scoring_options(CLI::App& sub, PflashOptions& o);

// The drafter's micro-batch: --drafter-ubatch, else 16384 on a GPU (H200, 2026-11-27, 0.6B
// drafter at 128K: 1.53 s at 4096, 1.42 s at 8192, 1.33 s at 16384: larger GEMMs and fewer
// block selections), else the target's.
int32_t drafter_ubatch(const Backend& backend, const PflashOptions& o, int32_t target_ubatch);

// Parameters for pflash_compress from the options (errors name the bad option).
Result<spec::PflashParams> pflash_params(const PflashOptions& o);

// Byte ranges of `text` that must not be compressed: everything except `document` (the part
// that may be compressed, found in the text), or nothing when document is empty or absent.
std::vector<spec::ByteRange> protect_all_but(const std::string& text, const std::string& document);

// `sift run --messages F [--tools F]`: the conversation rendered with the model's chat template
// (or template_source) and what speculative prefill may compress in it (long context inside
// messages; never the system prompt, tools, markup or the final question).
Result<spec::ChatPrompt> conversation_prompt(const Model& model, const Tokenizer& tokenizer,
                                             const std::string& messages_path,
                                             const std::string& tools_path,
                                             const std::string& template_source,
                                             const PflashOptions& o);

}  // namespace sift::cli
