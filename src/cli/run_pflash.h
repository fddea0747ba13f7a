// `sift run --drafter D --pflash on`: speculative prefill options and the compressed run.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "core/result.h"
#include "model/model.h"
#include "runtime/generate.h"
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
};

void add_pflash_options(CLI::App& sub, PflashOptions& o);

// Parameters for pflash_compress from the options (errors name the bad option).
Result<spec::PflashParams> pflash_params(const PflashOptions& o);

// Byte ranges of `text` that must not be compressed: everything except `document` (the part
// that may be compressed, found in the text), or nothing when document is empty or absent.
std::vector<spec::ByteRange> protect_all_but(const std::string& text, const std::string& document);

}  // namespace sift::cli
