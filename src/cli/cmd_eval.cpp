// `sift eval niah`: the same generated cases run dense and with speculative prefill at several
// keep ratios; accuracy (exact value match) and TTFT side by side.
#include <fmt/format.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/backend_select.h"
#include "cli/cache_types.h"
#include "cli/cli.h"
#include "cli/cli_files.h"
#include "cli/run_pflash.h"
#include "cli/run_prompt.h"
#include "runtime/generate.h"
#include "runtime/niah.h"
#include "spec/prefill/pflash.h"

namespace sift::cli {
namespace {

struct EvalOptions {
    std::string model;
    std::string drafter;
    std::string ctx = "4096";
    std::string keep = "0.1";
    std::string tasks = "single";
    std::string haystack;
    int cases = 5;
    int needles = 4;
    int n_predict = 48;
    std::string output = "md";
    PflashOptions pflash;  // scoring options; keep ratios come from --keep-ratio
    uint64_t seed = 1;
    BackendChoice backend;
    CacheTypeOptions cache_types;  // the target model's
};

template <typename T>
Result<std::vector<T>> parse_csv(const std::string& s, const char* flag) {
    std::vector<T> out;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');) {
        std::stringstream is(item);
        T v{};
        if (!(is >> v) || !is.eof()) return make_error("{}: '{}' is not a valid value", flag, item);
        out.push_back(v);
    }
    if (out.empty()) return make_error("{}: empty list", flag);
    return out;
}

struct Cell {
    int correct = 0, total = 0;
    double ttft = 0, kept = 0;
};

Status run_eval(const EvalOptions& opt) {
    Result<std::vector<int64_t>> ctxs = parse_csv<int64_t>(opt.ctx, "--ctx");
    if (!ctxs) return ctxs.error();
    Result<std::vector<float>> keeps = parse_csv<float>(opt.keep, "--keep-ratio");
    if (!keeps) return keeps.error();
    for (float k : *keeps)
        if (k <= 0 || k > 1) return make_error("--keep-ratio: {} is not in (0, 1]", k);
    std::vector<NiahTask> tasks;
    {
        std::stringstream ss(opt.tasks);
        for (std::string name; std::getline(ss, name, ',');) {
            if (name == "all") {
                // Tasks that need real text run only with --haystack.
                tasks.clear();
                for (NiahTask t : niah_all_tasks())
                    if (!opt.haystack.empty() || !niah_needs_real_text(t)) tasks.push_back(t);
                break;
            }
            Result<NiahTask> t = niah_task_from_name(name);
            if (!t) return t.error();
            tasks.push_back(*t);
        }
    }
    if (opt.cases < 1) return make_error("--cases must be >= 1");
    if (opt.output != "md" && opt.output != "json") return make_error("-o takes md or json");
    std::string haystack;
    if (!opt.haystack.empty()) {
        Result<std::string> h = read_text_file(opt.haystack);
        if (!h) return h.error();
        haystack = std::move(*h);
        if (haystack.size() < 200) return make_error("--haystack {}: too short", opt.haystack);
    }

    Result<std::string> target_path = resolve_model(opt.model);
    if (!target_path) return target_path.error();
    Result<std::string> drafter_path = resolve_model(opt.drafter);
    if (!drafter_path) return make_error("--drafter: {}", drafter_path.message());
    Result<std::unique_ptr<Backend>> backend = backend_select(opt.backend, *target_path);
    if (!backend) return backend.error();
    const int64_t max_ctx = *std::max_element(ctxs->begin(), ctxs->end());
    ModelOptions mo;
    mo.n_ubatch = default_ubatch(**backend);
    mo.n_ctx = max_ctx + 512 + opt.n_predict;
    ModelOptions target_mo = mo;
    SIFT_TRY(apply_cache_types(opt.cache_types, target_mo));
    Result<std::unique_ptr<Model>> target = Model::load(*target_path, **backend, target_mo);
    if (!target) return target.error();
    mo.n_ctx = 2 * max_ctx + 1024;  // another tokenizer may need more tokens
    mo.n_ubatch = drafter_ubatch(**backend, opt.pflash, mo.n_ubatch);
    Result<std::unique_ptr<Model>> drafter = Model::load(*drafter_path, **backend, mo);
    if (!drafter) return make_error("--drafter: {}", drafter.message());
    // Warm both (library initialisation, kernel loading) so the first case's TTFT is not
    // charged for them.
    SIFT_TRY((*target)->warmup());
    SIFT_TRY((*drafter)->warmup());
    Result<std::unique_ptr<Tokenizer>> ttok = Tokenizer::from_gguf((*target)->file());
    if (!ttok) return ttok.error();
    Result<std::unique_ptr<Tokenizer>> dtok = Tokenizer::from_gguf((*drafter)->file());
    if (!dtok) return dtok.error();
    auto count = [&](const std::string& s) {
        return static_cast<int64_t>((*ttok)->encode(s, false, false).size());
    };

    Result<spec::PflashParams> params = pflash_params(opt.pflash);
    if (!params) return params.error();
    spec::PflashParams pp = *params;
    GenerateParams gen;
    gen.n_predict = opt.n_predict;
    gen.sampling.temperature = 0;

    // Results by (ctx, task, mode): mode 0 = dense, i + 1 = keeps[i].
    std::map<std::tuple<int64_t, int, int>, Cell> cells;
    nlohmann::json details = nlohmann::json::array();
    for (int64_t ctx : *ctxs) {
        for (NiahTask task : tasks) {
            for (int i = 0; i < opt.cases; ++i) {
                NiahOptions no;
                no.task = task;
                no.target_tokens = ctx - 128;  // room for the template and the question
                no.depth = 0.1 + 0.8 * (i + 0.5) / opt.cases;
                no.seed = opt.seed + static_cast<uint64_t>(i) * 7919 + static_cast<uint64_t>(ctx);
                no.needles = opt.needles;
                Result<NiahCase> made = niah_make_case(no, haystack, count);
                if (!made) return made.error();
                const NiahCase& c = *made;
                const std::string user = c.document + "\n\n" + c.question;
                Result<std::string> text = chat_prompt_text((*target)->file(), **ttok, "", user);
                if (!text) return text.error();
                // Only the document may be compressed: markup and the question stay.
                const std::vector<spec::ByteRange> protect = protect_all_but(*text, c.document);
                const std::vector<int32_t> prompt = (*ttok)->encode(*text, false, true);
                Result<GenerateResult> dense = generate(**target, **ttok, prompt, gen, nullptr);
                if (!dense) return dense.error();
                const bool ok = niah_correct(c, dense->text);
                Cell& d = cells[{ctx, static_cast<int>(task), 0}];
                d.correct += ok;
                d.total += 1;
                d.ttft += dense->ttft_seconds;
                d.kept += 1;
                nlohmann::json row = {{"ctx", ctx},
                                      {"task", niah_task_name(task)},
                                      {"case", i},
                                      {"depth", c.depth},
                                      {"prompt_tokens", prompt.size()},
                                      {"answers", c.answers},
                                      {"dense",
                                       {{"correct", ok},
                                        {"reply", dense->text},
                                        {"ttft_seconds", dense->ttft_seconds}}}};
                // The drafter runs once per case; each keep ratio only selects again.
                (*drafter)->kv().clear();
                Result<spec::PflashScores> scored =
                    spec::pflash_score(**drafter, **dtok, **ttok, *text, protect, pp);
                if (!scored) return scored.error();
                for (size_t k = 0; k < keeps->size(); ++k) {
                    pp.select.keep_ratio = (*keeps)[k];
                    const spec::PflashResult comp = spec::pflash_select(*scored, *text, pp);
                    GenerateParams g = gen;
                    g.positions = comp.positions;
                    Result<GenerateResult> r = generate(**target, **ttok, comp.tokens, g, nullptr);
                    if (!r) return r.error();
                    const bool cok = niah_correct(c, r->text);
                    const double ttft = comp.drafter_seconds + comp.select_seconds +
                                        comp.map_seconds + r->ttft_seconds;
                    Cell& e = cells[{ctx, static_cast<int>(task), static_cast<int>(k) + 1}];
                    e.correct += cok;
                    e.total += 1;
                    e.ttft += ttft;
                    e.kept += static_cast<double>(comp.tokens.size()) /
                              static_cast<double>(prompt.size());
                    row[fmt::format("keep_{}", (*keeps)[k])] = {
                        {"correct", cok},
                        {"reply", r->text},
                        {"ttft_seconds", ttft},
                        {"kept_tokens", comp.tokens.size()},
                        {"drafter_seconds", comp.drafter_seconds}};
                }
                details.push_back(row);
                if (opt.output == "md")
                    fmt::print(
                        stderr, "  ctx {} {} case {}: dense {}{}\n", ctx, niah_task_name(task), i,
                        ok ? "ok" : "MISS", [&] {
                            std::string s;
                            for (size_t k = 0; k < keeps->size(); ++k)
                                s += fmt::format(
                                    ", keep {} {}", (*keeps)[k],
                                    row[fmt::format("keep_{}", (*keeps)[k])]["correct"].get<bool>()
                                        ? "ok"
                                        : "MISS");
                            return s;
                        }());
            }
        }
    }
    if (opt.output == "json") {
        nlohmann::json summary = nlohmann::json::array();
        for (const auto& [key, cell] : cells) {
            const auto [ctx, task, mode] = key;
            summary.push_back(
                {{"ctx", ctx},
                 {"task", niah_task_name(static_cast<NiahTask>(task))},
                 {"mode", mode == 0
                              ? std::string("dense")
                              : fmt::format("keep {}", (*keeps)[static_cast<size_t>(mode - 1)])},
                 {"correct", cell.correct},
                 {"total", cell.total},
                 {"mean_ttft_seconds", cell.ttft / cell.total},
                 {"mean_kept_fraction", cell.kept / cell.total}});
        }
        fmt::print("{}\n", nlohmann::json({{"summary", summary}, {"cases", details}})
                               .dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
        return {};
    }
    fmt::print(
        "| ctx | task | mode | accuracy | mean TTFT (s) | kept |\n|---|---|---|---:|---:|---:|\n");
    for (const auto& [key, cell] : cells) {
        const auto [ctx, task, mode] = key;
        fmt::print("| {} | {} | {} | {}/{} | {:.3f} | {:.1f}% |\n", ctx,
                   niah_task_name(static_cast<NiahTask>(task)),
                   mode == 0 ? std::string("dense")
                             : fmt::format("keep {}", (*keeps)[static_cast<size_t>(mode - 1)]),
                   cell.correct, cell.total, cell.ttft / cell.total, 100 * cell.kept / cell.total);
    }
    return {};
}

}  // namespace

void add_eval_command(CLI::App& app, int& exit_code) {
    CLI::App* eval = app.add_subcommand("eval", "Quality and speed evaluations");
    eval->require_subcommand(1);
    auto opt = std::make_shared<EvalOptions>();
    CLI::App* niah = eval->add_subcommand(
        "niah", "Needle-in-a-haystack: dense vs speculative prefill at several keep ratios");
    niah->add_option("-m,--model", opt->model, "Target model")->required();
    niah->add_option("--drafter", opt->drafter, "Drafter model")->required();
    niah->add_option("--ctx", opt->ctx, "Prompt lengths in target tokens, comma-separated")
        ->capture_default_str();
    niah->add_option("--keep-ratio", opt->keep, "Keep ratios, comma-separated")
        ->capture_default_str();
    niah->add_option(
            "--tasks", opt->tasks,
            "single, multikey, multivalue, paraphrase, vartrack, passage (needs --haystack) "
            "(comma-separated) or all")
        ->capture_default_str();
    niah->add_option("--cases", opt->cases, "Cases per (ctx, task); depths spread over 10-90%")
        ->capture_default_str();
    niah->add_option("--haystack", opt->haystack,
                     "Text file used as the haystack (default: the reference's filler)");
    niah->add_option("--needles", opt->needles,
                     "Distractors (multikey), values (multivalue), chain length (vartrack)")
        ->capture_default_str();
    niah->add_option("-n,--n-predict", opt->n_predict, "Reply tokens")->capture_default_str();
    add_pflash_scoring_options(*niah, opt->pflash);
    niah->add_option("--seed", opt->seed, "Case seed")->capture_default_str();
    niah->add_option("-o,--output", opt->output, "md or json")->capture_default_str();
    add_backend_options(*niah, opt->backend);
    add_cache_type_options(*niah, opt->cache_types);
    niah->callback([opt, &exit_code] {
        Status s = run_eval(*opt);
        if (!s) fmt::print(stderr, "sift: error: {}\n", s.message());
        exit_code = s ? 0 : 1;
    });
}

}  // namespace sift::cli
