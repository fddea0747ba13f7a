#include "runtime/generate.h"

#include <algorithm>
#include <chrono>

#include "sampling/stop.h"

namespace sift {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

bool is_end_of_generation(const Tokenizer& tok, int32_t id) {
    const SpecialTokens& s = tok.special();
    return id == s.eos || id == s.eot || id == s.eom;
}

}  // namespace

Result<GenerateResult> generate(Model& model, const Tokenizer& tokenizer,
                                std::span<const int32_t> prompt, const GenerateParams& params,
                                const std::function<void(std::string_view)>& on_text) {
    if (prompt.empty()) return make_error("empty prompt: nothing to run");
    if (!params.positions.empty() && params.positions.size() != prompt.size())
        return make_error("{} positions for {} prompt tokens", params.positions.size(),
                          prompt.size());
    const int64_t n_ctx = model.n_ctx();
    if (static_cast<int64_t>(prompt.size()) >= n_ctx) {
        return make_error("prompt of {} tokens does not fit the context of {} tokens (raise -c)",
                          prompt.size(), n_ctx);
    }
    GenerateResult result;
    result.n_prompt = static_cast<int64_t>(prompt.size());
    model.kv().clear();
    Sampler sampler(params.sampling);
    for (int32_t id : prompt) sampler.accept(id);

    const Clock::time_point start = Clock::now();
    Batch batch;
    int32_t next_pos = static_cast<int32_t>(prompt.size());
    for (size_t i = 0; i < prompt.size(); ++i) {
        const int32_t p = params.positions.empty() ? static_cast<int32_t>(i) : params.positions[i];
        batch.add(prompt[i], p, 0, i + 1 == prompt.size());
        if (!params.positions.empty()) next_pos = std::max(next_pos, p + 1);
    }
    // Plain greedy decoding takes each next token's argmax on the device (only ids leave it);
    // otherwise the logits of the last token come to the host for the sampler.
    const bool argmax_on_device = sampler.plain_greedy() && !params.keep_prompt_logits;
    std::vector<float> logits;
    std::vector<int32_t> argmax;
    auto run = [&](const Batch& b) -> Status {
        if (argmax_on_device) {
            Result<std::vector<int32_t>> ids = model.decode_argmax(b);
            if (!ids) return ids.error();
            argmax = std::move(*ids);
        } else {
            Result<std::vector<float>> l = model.decode(b);
            if (!l) return l.error();
            logits = std::move(*l);
        }
        return {};
    };
    SIFT_TRY(run(batch));
    result.prefill_seconds = seconds_since(start);
    if (params.keep_prompt_logits) result.prompt_logits = logits;
    if (params.n_predict == 0) {
        result.stop_reason = "prefill";
        result.ttft_seconds = result.prefill_seconds;
        return result;
    }

    TokenStreamDecoder decoder(tokenizer, true);
    StopMatcher stops(params.stop);
    auto emit = [&](const std::string& text) {
        if (text.empty()) return;
        result.text += text;
        if (on_text) on_text(text);
    };
    int32_t pos = params.positions.empty() ? static_cast<int32_t>(prompt.size()) : next_pos;
    Clock::time_point decode_start;
    while (true) {
        const int32_t id = argmax_on_device ? argmax.back() : sampler.sample(logits);
        if (result.tokens.empty()) {
            result.ttft_seconds = seconds_since(start);
            decode_start = Clock::now();
        }
        if (!params.ignore_eos && is_end_of_generation(tokenizer, id)) {
            result.stop_reason = "eos";
            break;
        }
        sampler.accept(id);
        result.tokens.push_back(id);
        emit(stops.push(decoder.push(id)));
        if (stops.stopped()) {
            result.stop_reason = "stop";
            break;
        }
        if (params.n_predict > 0 &&
            static_cast<int32_t>(result.tokens.size()) >= params.n_predict) {
            result.stop_reason = "length";
            break;
        }
        if (static_cast<int64_t>(prompt.size() + result.tokens.size()) + 1 >= n_ctx) {
            result.stop_reason = "context";
            break;
        }
        Batch next;
        next.add(id, pos++, 0, true);
        SIFT_TRY(run(next));
    }
    if (!stops.stopped()) emit(stops.push(decoder.flush()) + stops.flush());
    result.decode_seconds = result.tokens.size() > 1 ? seconds_since(decode_start) : 0;
    return result;
}

}  // namespace sift
