// `sift run`: one-shot generation from a prompt, streaming text, with timings.
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "backend/ops.h"
#include "cli/backend_select.h"
#include "cli/cache_types.h"
#include "cli/cli.h"
#include "cli/cli_files.h"
#include "cli/run_pflash.h"
#include "cli/run_prompt.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "runtime/generate.h"
#include "spec/prefill/chat_segments.h"
#include "tokenizer/tokenizer.h"

namespace sift::cli {
namespace {

struct RunOptions {
    std::string model;
    std::string prompt;
    std::string prompt_file;
    std::string system;
    std::string chat_template_file;
    std::string messages_file;  // a whole conversation (JSON), instead of -p/-f
    std::string tools_file;
    bool chat = false;
    int32_t n_predict = 256;
    int64_t n_ctx = 0;
    int32_t n_ubatch = 0;  // 0: 512 on the CPU, 4096 on a GPU (enough query tiles to fill it)
    BackendChoice backend;
    PflashOptions pflash;
    CacheTypeOptions cache_types;  // the target model's
    GenerateParams gen;
    std::string dump_logits;
    std::string dump_layers;
    bool json = false;
    bool no_warmup = false;
};

Status write_floats(const std::string& path, const std::vector<float>& values) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(values.data()),
              static_cast<std::streamsize>(values.size() * sizeof(float)));
    if (!out) return make_error("{}: cannot write logits", path);
    return {};
}

Status run(RunOptions& opt) {
    std::string user_text = opt.prompt;
    std::string document;  // the -f text: what speculative prefill may compress
    if (!opt.prompt_file.empty()) {
        Result<std::string> text = read_text_file(opt.prompt_file);
        if (!text) return text.error();
        document = *text;
        user_text = *text + (opt.prompt.empty() ? "" : "\n" + opt.prompt);
    }
    if (opt.pflash.mode != "off" && opt.pflash.mode != "on")
        return make_error("--pflash takes off or on, got '{}'", opt.pflash.mode);
    const bool use_pflash = opt.pflash.mode == "on";
    if (use_pflash && opt.pflash.drafter.empty())
        return make_error("--pflash on needs --drafter MODEL");
    Result<spec::PflashParams> pflash_params_r = pflash_params(opt.pflash);
    if (!pflash_params_r) return pflash_params_r.error();
    const bool conversation = !opt.messages_file.empty();
    if (conversation && !user_text.empty())
        return make_error("give either --messages FILE or a prompt (-p/-f), not both");
    if (!conversation && !opt.tools_file.empty()) return make_error("--tools needs --messages");
    if (conversation && !opt.system.empty())
        return make_error("--system does not apply to --messages (put a system message in it)");
    if (user_text.empty() && !conversation)
        return make_error("no prompt: give -p TEXT, -f FILE or --messages FILE");
    std::string chat_template;
    if (!opt.chat_template_file.empty()) {
        Result<std::string> t = read_text_file(opt.chat_template_file);
        if (!t) return t.error();
        chat_template = std::move(*t);
    }

    Result<std::string> model_path = resolve_model(opt.model);
    if (!model_path) return model_path.error();
    Result<std::unique_ptr<Backend>> backend = backend_select(opt.backend, *model_path);
    if (!backend) return backend.error();
    ModelOptions model_options;
    SIFT_TRY(apply_cache_types(opt.cache_types, model_options));
    model_options.n_ctx = opt.n_ctx;
    if (opt.n_ubatch <= 0) opt.n_ubatch = default_ubatch(**backend);
    model_options.n_ubatch = opt.n_ubatch;
    model_options.dump_layers = opt.dump_layers;
    Result<std::unique_ptr<Model>> model = Model::load(*model_path, **backend, model_options);
    if (!model) return model.error();
    if (!opt.no_warmup) SIFT_TRY((*model)->warmup());
    Result<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::from_gguf((*model)->file());
    if (!tokenizer) return make_error("{}: {}", opt.model, tokenizer.message());

    // What speculative prefill must keep: everything but the -f document, or, for a
    // conversation, everything but the long context inside its messages.
    std::vector<spec::ByteRange> protect;
    std::vector<spec::ChatSegment> segments;
    Result<std::string> prompt_text = user_text;
    if (conversation) {
        Result<spec::ChatPrompt> chat = conversation_prompt(
            **model, **tokenizer, opt.messages_file, opt.tools_file, chat_template, opt.pflash);
        if (!chat) return chat.error();
        if (use_pflash && !opt.json) fmt::print(stderr, "pflash: {}\n", chat->summary());
        protect = std::move(chat->protect);
        segments = std::move(chat->segments);
        prompt_text = std::move(chat->text);
    } else if (opt.chat) {
        prompt_text =
            chat_prompt_text((*model)->file(), **tokenizer, opt.system, user_text, chat_template);
    }
    if (!prompt_text) return prompt_text.error();
    if (!conversation) protect = protect_all_but(*prompt_text, document);
    // Chat text carries its own markup (BOS included where the template writes it).
    const bool templated = opt.chat || conversation;
    std::vector<int32_t> prompt = (*tokenizer)->encode(*prompt_text, !templated, true);

    // Speculative prefill: the drafter, resident beside the target, picks what the target reads.
    std::unique_ptr<Model> drafter;
    std::optional<spec::PflashResult> compressed;
    if (use_pflash && static_cast<int64_t>(prompt.size()) >= opt.pflash.threshold) {
        Result<std::string> drafter_path = resolve_model(opt.pflash.drafter);
        if (!drafter_path) return drafter_path.error();
        // The drafter's cache holds exactly its own tokens of the prompt (and the look-ahead):
        // at 128K a cache sized by a guess would cost gigabytes.
        Result<std::unique_ptr<gguf::File>> drafter_file = gguf::File::open(*drafter_path);
        if (!drafter_file) return make_error("--drafter: {}", drafter_file.message());
        Result<std::unique_ptr<Tokenizer>> drafter_tok = Tokenizer::from_gguf(**drafter_file);
        if (!drafter_tok) return make_error("--drafter: {}", drafter_tok.message());
        ModelOptions drafter_options;  // an F16 cache: the --cache-type flags are the target's
        drafter_options.n_ctx =
            static_cast<int64_t>((*drafter_tok)->encode(*prompt_text, true, true).size()) +
            opt.pflash.lookahead_decode + 16;
        drafter_options.n_ubatch = drafter_ubatch(**backend, opt.pflash, opt.n_ubatch);
        Result<std::unique_ptr<Model>> d = Model::load(*drafter_path, **backend, drafter_options);
        if (!d) return make_error("--drafter: {}", d.message());
        drafter = std::move(*d);
        if (!opt.no_warmup) SIFT_TRY(drafter->warmup());
        Result<spec::PflashResult> c = spec::pflash_compress(
            *drafter, **drafter_tok, **tokenizer, *prompt_text, protect, *pflash_params_r);
        if (!c) return c.error();
        compressed = std::move(*c);
        if (!opt.json) fmt::print(stderr, "{}\n", compressed->report());
        prompt = compressed->tokens;
        opt.gen.positions = compressed->positions;
    } else if (use_pflash && !opt.json) {
        fmt::print(stderr, "pflash: prompt of {} tokens is below --pflash-threshold {}: dense\n",
                   prompt.size(), opt.pflash.threshold);
    }

    opt.gen.n_predict = opt.dump_logits.empty() ? opt.n_predict : std::min(opt.n_predict, 0);
    opt.gen.keep_prompt_logits = !opt.dump_logits.empty();
    auto on_text = [&](std::string_view text) {
        if (opt.json) return;
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
    };
    Result<GenerateResult> r = generate(**model, **tokenizer, prompt, opt.gen, on_text);
    if (!r) return r.error();
    if (!opt.dump_logits.empty()) SIFT_TRY(write_floats(opt.dump_logits, r->prompt_logits));

    const double prefill_tps = r->prefill_seconds > 0 ? r->n_prompt / r->prefill_seconds : 0;
    const size_t n_decoded = r->tokens.empty() ? 0 : r->tokens.size() - 1;
    const double decode_tps = r->decode_seconds > 0 ? n_decoded / r->decode_seconds : 0;
    if (opt.json) {
        nlohmann::json out = {{"text", r->text},
                              {"tokens", r->tokens},
                              {"stop_reason", r->stop_reason},
                              {"timings",
                               {{"prompt_tokens", r->n_prompt},
                                {"generated_tokens", r->tokens.size()},
                                {"prefill_seconds", r->prefill_seconds},
                                {"prefill_tokens_per_second", prefill_tps},
                                {"decode_seconds", r->decode_seconds},
                                {"decode_tokens_per_second", decode_tps},
                                {"ttft_seconds", r->ttft_seconds}}}};
        if (compressed) {
            const spec::SpanSelection& sel = compressed->selection;
            out["pflash"] = {
                {"drafter_tokens", compressed->n_drafter_tokens},
                {"target_tokens", compressed->target_prompt.size()},
                {"kept_tokens", compressed->tokens.size()},
                {"spans", sel.spans.size()},
                {"chunks_by_score", sel.n_chunks_scored},
                {"chunks_forced", sel.n_chunks_forced},
                {"drafter_seconds", compressed->drafter_seconds},
                {"bsa_layers", compressed->bsa_layers},
                {"select_seconds", compressed->select_seconds},
                {"map_seconds", compressed->map_seconds},
                {"ttft_seconds", compressed->drafter_seconds + compressed->select_seconds +
                                     compressed->map_seconds + r->ttft_seconds}};
            for (const spec::ChatSegment& seg : segments)
                out["pflash"]["segments"].push_back(
                    {{"message", seg.message},
                     {"role", seg.role},
                     {"bytes", seg.range.end - seg.range.begin},
                     {"compressible_bytes", seg.compressible.end - seg.compressible.begin},
                     {"reason", seg.reason}});
        }
        fmt::print("{}\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    } else {
        fmt::print("\n");
        fmt::print(stderr,
                   "\nsift run: prompt {} tokens, prefill {:.1f} tok/s ({:.3f} s); generated {} "
                   "tokens, decode {:.1f} tok/s; TTFT {:.3f} s; stop: {}\n",
                   r->n_prompt, prefill_tps, r->prefill_seconds, r->tokens.size(), decode_tps,
                   r->ttft_seconds, r->stop_reason);
        if (compressed) {
            fmt::print(stderr,
                       "pflash TTFT {:.3f} s = drafter forward + scoring {:.3f} s + selection "
                       "{:.3f} s + mapping {:.3f} s + target prefill {:.3f} s + first token "
                       "{:.3f} s\n",
                       compressed->drafter_seconds + compressed->select_seconds +
                           compressed->map_seconds + r->ttft_seconds,
                       compressed->drafter_seconds, compressed->select_seconds,
                       compressed->map_seconds, r->prefill_seconds,
                       r->ttft_seconds - r->prefill_seconds);
        }
    }
    return {};
}

}  // namespace

void add_run_command(CLI::App& app, int& exit_code) {
    auto opt = std::make_shared<RunOptions>();
    CLI::App* sub = app.add_subcommand("run", "Generate text from a prompt (streams the output)");
    sub->add_option("-m,--model", opt->model, "GGUF model (path or manifest name)")->required();
    sub->add_option("-p,--prompt", opt->prompt,
                    "Prompt text (after -f's text when both are given)");
    sub->add_option("-f,--file", opt->prompt_file, "Read the prompt from a file");
    sub->add_flag("--chat", opt->chat, "Apply the model's chat template to the prompt");
    sub->add_option("--messages", opt->messages_file,
                    "JSON conversation (a list of messages, or an object with \"messages\" and "
                    "\"tools\") rendered with the chat template; with --pflash on only long "
                    "context inside messages is compressed");
    sub->add_option("--tools", opt->tools_file, "JSON list of tool definitions for --messages");
    sub->add_option("--system", opt->system, "System message for --chat");
    sub->add_option("--chat-template", opt->chat_template_file,
                    "Jinja chat template file for --chat (instead of the model's)");
    sub->add_option("-n,--n-predict", opt->n_predict,
                    "Tokens to generate (-1: until the end; 0: prefill only)")
        ->capture_default_str();
    sub->add_option("-c,--ctx-size", opt->n_ctx,
                    "Context size in tokens (0: the model's, capped by memory)")
        ->capture_default_str();
    sub->add_option("-u,--ubatch-size", opt->n_ubatch,
                    "Tokens per forward chunk (0: 512 on the CPU, 4096 on a GPU)")
        ->capture_default_str();
    add_backend_options(*sub, opt->backend);
    add_pflash_options(*sub, opt->pflash);
    add_cache_type_options(*sub, opt->cache_types);
    SamplerParams& s = opt->gen.sampling;
    sub->add_option("--temp", s.temperature, "Temperature (0: greedy)")->capture_default_str();
    sub->add_option("--top-k", s.top_k, "Top-k (0: off)")->capture_default_str();
    sub->add_option("--top-p", s.top_p, "Top-p (1: off)")->capture_default_str();
    sub->add_option("--min-p", s.min_p, "Min-p (0: off)")->capture_default_str();
    sub->add_option("--repeat-penalty", s.repeat_penalty, "Repetition penalty (1: off)")
        ->capture_default_str();
    sub->add_option("--repeat-last-n", s.penalty_last_n, "Tokens the penalties look back at")
        ->capture_default_str();
    sub->add_option("--presence-penalty", s.presence_penalty, "Presence penalty")
        ->capture_default_str();
    sub->add_option("--frequency-penalty", s.frequency_penalty, "Frequency penalty")
        ->capture_default_str();
    sub->add_option("-s,--seed", s.seed, "Sampling seed")->capture_default_str();
    sub->add_option("--stop", opt->gen.stop, "Stop string (repeatable)");
    sub->add_flag("--ignore-eos", opt->gen.ignore_eos,
                  "Keep generating past end-of-generation tokens");
    sub->add_option(
        "--dump-logits", opt->dump_logits,
        "Write the last prompt position's logits (float32) to FILE; stops after prefill");
    sub->add_option("--dump-layers", opt->dump_layers, "Write per-layer hidden states to DIR");
    sub->add_flag("--json", opt->json, "Print the result and timings as one JSON object");
    sub->add_flag("--no-warmup", opt->no_warmup,
                  "Skip the warm-up forward after loading (the first request then pays for "
                  "library initialisation)");
    sub->callback([opt, &exit_code] {
        Status s = run(*opt);
        if (!s) fmt::print(stderr, "sift: error: {}\n", s.message());
        exit_code = s ? 0 : 1;
    });
}

}  // namespace sift::cli
