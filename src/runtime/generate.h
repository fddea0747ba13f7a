// One-shot generation for a single sequence: prefill the prompt, then sample token by token.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "model/model.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"

namespace sift {

struct GenerateParams {
    int32_t n_predict = -1;  // -1: until end of generation or a full context; 0: prefill only
    SamplerParams sampling;
    std::vector<std::string> stop;  // stop strings (not included in the output)
    bool ignore_eos = false;
    bool keep_prompt_logits = false;  // return the logits of the last prompt token
    // Positions of the prompt tokens (empty: 0..n-1). Speculative prefill keeps the original
    // positions of the tokens it keeps; generation continues after the largest.
    std::vector<int32_t> positions;
};

struct GenerateResult {
    std::string text;
    std::vector<int32_t> tokens;  // generated tokens
    std::string stop_reason;      // "eos", "stop", "length", "context" or "prefill"
    int64_t n_prompt = 0;
    double prefill_seconds = 0;
    double decode_seconds = 0;         // generating every token after the first
    double ttft_seconds = 0;           // start to first sampled token (prefill + one sample)
    std::vector<float> prompt_logits;  // [n_vocab] when keep_prompt_logits
};

// Clears the model's KV cache, runs the prompt (sequence 0) and samples. on_text receives
// decoded text as it becomes complete (UTF-8 safe, stop strings held back).
Result<GenerateResult> generate(Model& model, const Tokenizer& tokenizer,
                                std::span<const int32_t> prompt, const GenerateParams& params,
                                const std::function<void(std::string_view)>& on_text);

}  // namespace sift
