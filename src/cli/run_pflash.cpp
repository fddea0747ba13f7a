#include "cli/run_pflash.h"

#include "cli/run_prompt.h"

namespace sift::cli {

void add_pflash_options(CLI::App& sub, PflashOptions& o) {
    sub.add_option("--drafter", o.drafter,
                   "Drafter model for speculative prefill (path or manifest name)");
    sub.add_option("--pflash", o.mode, "Speculative prefill: off or on")->capture_default_str();
    sub.add_option("--keep-ratio", o.keep_ratio, "Fraction of chunks kept by score")
        ->capture_default_str();
    sub.add_option("--pflash-threshold", o.threshold, "Prompts of fewer tokens run dense")
        ->capture_default_str();
    sub.add_option("--pflash-min-segment", o.min_segment,
                   "With --messages: message contents of fewer bytes are never compressed")
        ->capture_default_str();
    add_pflash_scoring_options(sub, o);
}

void add_pflash_scoring_options(CLI::App& sub, PflashOptions& o) {
    sub.add_option("--pflash-positions", o.positions,
                   "original (kept tokens keep their positions) or renumbered")
        ->capture_default_str();
    sub.add_option("--lookahead", o.lookahead, "Probing queries: the prompt's last N tokens")
        ->capture_default_str();
    sub.add_flag("--nope", o.nope, "Score with queries and keys before RoPE");
    sub.add_option("--score-layers", o.score_layers,
                   "Early exit: probe only the drafter's first N layers and stop its forward "
                   "there (0: all layers)")
        ->capture_default_str();
    sub.add_option("--bsa", o.bsa, "Block-sparse attention in the drafter: on or off")
        ->capture_default_str();
    sub.add_option("--bsa-alpha", o.bsa_alpha,
                   "Block-sparse keep threshold vs the best block (0.12; reference bench 0.85, "
                   "0.70 for a 117K NIAH)")
        ->capture_default_str();
    sub.add_option("--bsa-min-cells", o.bsa_min_cells,
                   "Block-sparse only once the drafter attends this many cells (dense below)")
        ->capture_default_str();
    sub.add_option("--bsa-sink", o.bsa_sink, "Block-sparse: the first N key blocks always kept")
        ->capture_default_str();
    sub.add_option("--bsa-window", o.bsa_window,
                   "Block-sparse: the last N key blocks before each query block always kept "
                   "(>= 1: the diagonal)")
        ->capture_default_str();
    sub.add_option("--bsa-last-full", o.bsa_last_full,
                   "Block-sparse: the prompt's last N query blocks attend to every key block")
        ->capture_default_str();
    sub.add_option("--drafter-ubatch", o.drafter_ubatch,
                   "Tokens per drafter forward chunk (0: 32768 on a GPU, else the target's)")
        ->capture_default_str();
    sub.add_option("--lookahead-decode", o.lookahead_decode,
                   "Also probe with N tokens the drafter decodes after the prompt (SpecPrefill)")
        ->capture_default_str();
}

// GPU default: 32768 (H100, 8B target at 128K, BENCHMARKS.md: drafter 0.78-0.79 s against
// 0.80-0.88 s at 16384 and 0.84-0.86 s at 8192; ~2 GB of drafter activations).
int32_t drafter_ubatch(const Backend& backend, const PflashOptions& o, int32_t target_ubatch) {
    if (o.drafter_ubatch > 0) return o.drafter_ubatch;
    return backend.device() == Device::DEVICE_CUDA ? 32768 : target_ubatch;
}

Result<spec::PflashParams> pflash_params(const PflashOptions& o) {
    spec::PflashParams p;
    if (o.keep_ratio <= 0 || o.keep_ratio > 1)
        return make_error("--keep-ratio must be in (0, 1], got {}", o.keep_ratio);
    if (o.lookahead < 1) return make_error("--lookahead must be >= 1");
    if (o.drafter_ubatch < 0) return make_error("--drafter-ubatch must be >= 0");
    if (o.lookahead_decode < 0 || o.lookahead_decode > 64)
        return make_error("--lookahead-decode must be in [0, 64], got {}", o.lookahead_decode);
    if (o.positions == "original") {
        p.positions = spec::PositionPolicy::POS_ORIGINAL;
    } else if (o.positions == "renumbered") {
        p.positions = spec::PositionPolicy::POS_RENUMBERED;
    } else {
        return make_error("--pflash-positions takes original or renumbered, got '{}'", o.positions);
    }
    p.select.keep_ratio = o.keep_ratio;
    p.score.n_lookahead = o.lookahead;
    p.score.n_decode = o.lookahead_decode;
    p.score.nope = o.nope;
    p.score.n_layers = o.score_layers;
    if (o.bsa != "on" && o.bsa != "off")
        return make_error("--bsa takes on or off, got '{}'", o.bsa);
    if (o.bsa_alpha < 0 || o.bsa_alpha > 1)
        return make_error("--bsa-alpha must be in [0, 1], got {}", o.bsa_alpha);
    p.bsa.enabled = o.bsa == "on";
    if (o.bsa_sink < 0) return make_error("--bsa-sink must be >= 0, got {}", o.bsa_sink);
    if (o.bsa_window < 1) return make_error("--bsa-window must be >= 1, got {}", o.bsa_window);
    if (o.bsa_last_full < 0)
        return make_error("--bsa-last-full must be >= 0, got {}", o.bsa_last_full);
    p.bsa.params.alpha = o.bsa_alpha;
    p.bsa.params.sink = o.bsa_sink;
    p.bsa.params.window = o.bsa_window;
    p.bsa.params.last_full = o.bsa_last_full;
    p.bsa.min_cells = o.bsa_min_cells;
    return p;
}

std::vector<spec::ByteRange> protect_all_but(const std::string& text, const std::string& document) {
    if (document.empty()) return {};
    const size_t at = text.find(document);
    if (at == std::string::npos) return {};
    std::vector<spec::ByteRange> out;
    if (at > 0) out.push_back({0, static_cast<int64_t>(at)});
    const auto end = static_cast<int64_t>(at + document.size());
    if (end < static_cast<int64_t>(text.size()))
        out.push_back({end, static_cast<int64_t>(text.size())});
    return out;
}

Result<spec::ChatPrompt> conversation_prompt(const Model& model, const Tokenizer& tokenizer,
                                             const std::string& messages_path,
                                             const std::string& tools_path,
                                             const std::string& template_source,
                                             const PflashOptions& o) {
    Result<ChatTemplate> tmpl = model_chat_template(model.file(), tokenizer, template_source);
    if (!tmpl) return tmpl.error();
    Result<ChatTemplateInputs> inputs = read_conversation(messages_path, tools_path);
    if (!inputs) return inputs.error();
    inputs->add_generation_prompt = true;
    if (o.min_segment < 0) return make_error("--pflash-min-segment must be >= 0");
    spec::SegmentPolicy policy;
    policy.min_bytes = o.min_segment;
    return spec::render_chat_segments(*tmpl, *inputs, policy);
}

}  // namespace sift::cli
