// `sift bench`: prefill and decode throughput in the manner of llama-bench, with achieved memory
// bandwidth and FLOP rate against the machine's ceilings.
#include <fmt/format.h>

#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "backend/ops.h"
#include "cli/backend_select.h"
#include "cli/cache_types.h"
#include "cli/cli.h"
#include "cli/cli_files.h"
#include "model/model.h"
#include "runtime/bench.h"

namespace sift::cli {
namespace {

struct BenchCliOptions {
    std::string model;
    std::string prompts = "512";
    std::string gens = "128";
    std::string depths = "0";
    int repetitions = 5;
    BackendChoice backend;
    int32_t n_ubatch = 0;  // 0: 512 on the CPU, 4096 on a GPU (enough query tiles to fill it)
    CacheTypeOptions cache_types;
    std::string output = "md";
    double peak_bandwidth_gbs = 0;  // 0: measure
    double peak_tflops = 0;         // 0: no compute ceiling column
    bool no_warmup = false;
};

Result<std::vector<int64_t>> parse_list(const std::string& s, const char* flag) {
    std::vector<int64_t> out;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');) {
        size_t used = 0;
        int64_t v = -1;
        try {
            v = std::stoll(item, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != item.size() || v < 0)
            return make_error("{}: '{}' is not a non-negative integer", flag, item);
        out.push_back(v);
    }
    return out;
}

struct Row {
    BenchResult r;
    double gbs = 0;
    double gflops = 0;
};

std::string mean_sd(double mean, double sd) {
    return fmt::format("{:.2f} ± {:.2f}", mean, sd);
}

Status run_bench(const BenchCliOptions& opt) {
    Result<std::vector<int64_t>> prompts = parse_list(opt.prompts, "-p");
    if (!prompts) return prompts.error();
    Result<std::vector<int64_t>> gens = parse_list(opt.gens, "-n");
    if (!gens) return gens.error();
    Result<std::vector<int64_t>> depths = parse_list(opt.depths, "-d");
    if (!depths) return depths.error();
    if (opt.output != "md" && opt.output != "json" && opt.output != "csv")
        return make_error("-o takes md, json or csv (got '{}')", opt.output);

    std::vector<BenchTest> tests;
    int64_t need = 1;
    for (int64_t d : *depths) {
        for (int64_t p : *prompts)
            if (p > 0) tests.push_back({p, 0, d});
        for (int64_t n : *gens)
            if (n > 0) tests.push_back({0, n, d});
    }
    if (tests.empty()) return make_error("no tests: give -p and/or -n with a value > 0");
    for (const BenchTest& t : tests) need = std::max(need, t.depth + t.n_prompt + t.n_gen);

    Result<std::string> path = resolve_model(opt.model);
    if (!path) return path.error();
    Result<std::unique_ptr<Backend>> selected = backend_select(opt.backend, *path);
    if (!selected) return selected.error();
    std::unique_ptr<Backend> backend = std::move(*selected);
    ModelOptions model_options;
    SIFT_TRY(apply_cache_types(opt.cache_types, model_options));
    model_options.n_ctx = need;
    model_options.n_ubatch = opt.n_ubatch > 0 ? opt.n_ubatch : default_ubatch(*backend);
    Result<std::unique_ptr<Model>> model = Model::load(*path, *backend, model_options);
    if (!model) return model.error();

    const double peak_bw =
        opt.peak_bandwidth_gbs > 0 ? opt.peak_bandwidth_gbs * 1e9 : backend->measure_bandwidth();
    const double peak_flops = opt.peak_tflops * 1e12;
    double params = 0, size = 0;
    for (const gguf::TensorInfo& t : (*model)->file().tensors()) {
        params += static_cast<double>(t.n_elements());
        size += static_cast<double>(t.byte_size);
    }
    // Decode timings differ by how they are launched (SIFT_CUDA_GRAPHS=0 turns graphs off).
    const std::string backend_name =
        backend->name() + ((*model)->graphs_enabled() ? ", graphs" : "");
    const std::string model_name = std::filesystem::path(*path).filename().string();
    // The cache types set decode's K/V bytes: a table column when not llama-bench's f16.
    const std::string type_k(dtype_name(model_options.kv_type_k)),
        type_v(dtype_name(model_options.kv_type_v));
    const bool kv_column = type_k != "f16" || type_v != "f16";
    const std::string kv_cell = type_k == type_v ? type_k : type_k + "/" + type_v;

    BenchOptions bench_options;
    bench_options.repetitions = opt.repetitions;
    bench_options.warmup = !opt.no_warmup;
    std::vector<Row> rows;
    if (opt.output == "md") {
        fmt::print(
            "model: {} ({:.2f} GiB, {:.3f} B params), backend {}, bandwidth ceiling {:.1f} "
            "GB/s{}{}\n\n",
            model_name, size / (1u << 30), params / 1e9, backend_name, peak_bw / 1e9,
            opt.peak_bandwidth_gbs > 0 ? " (given)" : " (measured)",
            peak_flops > 0
                ? fmt::format(", compute ceiling {:.1f} TFLOP/s (given)", opt.peak_tflops)
                : "");
        fmt::print("| test |{} t/s | ms | GB/s | % of bw | TFLOP/s |{}\n", kv_column ? " kv |" : "",
                   peak_flops > 0 ? " % of peak |" : "");
        fmt::print("|---|{}---:|---:|---:|---:|---:|{}\n", kv_column ? "---|" : "",
                   peak_flops > 0 ? "---:|" : "");
    }
    for (const BenchTest& t : tests) {
        Result<BenchResult> r = bench_run(**model, t, bench_options);
        if (!r) return r.error();
        Row row{*r, r->bytes_per_token * r->tokens_per_second_mean / 1e9,
                r->flops_per_token * r->tokens_per_second_mean / 1e9};
        if (opt.output == "md") {
            // ms: the whole prefill (its TTFT) for pp, per token for tg.
            const double ms = t.n_prompt > 0 ? r->seconds_mean * 1e3
                                             : r->seconds_mean * 1e3 / static_cast<double>(t.n_gen);
            const std::string bw = t.n_gen > 0 ? fmt::format("{:.1f} | {:.0f}%", row.gbs,
                                                             100 * row.gbs * 1e9 / peak_bw)
                                               : std::string("- | -");
            fmt::print("| {} |{} {} | {:.1f} | {} | {:.3f} |{}\n", t.name(),
                       kv_column ? fmt::format(" {} |", kv_cell) : "",
                       mean_sd(r->tokens_per_second_mean, r->tokens_per_second_sd), ms, bw,
                       row.gflops / 1e3,
                       peak_flops > 0
                           ? fmt::format(" {:.0f}% |", 100 * row.gflops * 1e9 / peak_flops)
                           : "");
            std::fflush(stdout);
        }
        rows.push_back(row);
    }
    if (opt.output == "json") {
        nlohmann::json out = nlohmann::json::array();
        for (const Row& row : rows) {
            out.push_back({{"model", model_name},
                           {"model_size_bytes", size},
                           {"params", params},
                           {"backend", backend_name},
                           {"test", row.r.test.name()},
                           {"n_prompt", row.r.test.n_prompt},
                           {"n_gen", row.r.test.n_gen},
                           {"depth", row.r.test.depth},
                           {"type_k", type_k},
                           {"type_v", type_v},
                           {"seconds", row.r.seconds},
                           {"tokens_per_second_mean", row.r.tokens_per_second_mean},
                           {"tokens_per_second_sd", row.r.tokens_per_second_sd},
                           {"gb_per_second", row.gbs},
                           {"bandwidth_ceiling_gb_per_second", peak_bw / 1e9},
                           {"gflop_per_second", row.gflops},
                           {"compute_ceiling_tflop_per_second", opt.peak_tflops}});
        }
        fmt::print("{}\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    } else if (opt.output == "csv") {
        fmt::print(
            "model,backend,test,n_prompt,n_gen,depth,type_k,type_v,tps_mean,tps_sd,seconds_mean,"
            "gb_per_second,bandwidth_ceiling_gb_per_second,gflop_per_second\n");
        for (const Row& row : rows)
            fmt::print(
                "\"{}\",\"{}\",{},{},{},{},{},{},{:.3f},{:.3f},{:.6f},{:.3f},{:.3f},{:.3f}\n",
                model_name, backend_name, row.r.test.name(), row.r.test.n_prompt, row.r.test.n_gen,
                row.r.test.depth, type_k, type_v, row.r.tokens_per_second_mean,
                row.r.tokens_per_second_sd, row.r.seconds_mean, row.gbs, peak_bw / 1e9, row.gflops);
    }
    return {};
}

}  // namespace

void add_bench_command(CLI::App& app, int& exit_code) {
    auto opt = std::make_shared<BenchCliOptions>();
    CLI::App* sub = app.add_subcommand(
        "bench", "Measure prefill and decode throughput on random tokens (like llama-bench)");
    sub->add_option("-m,--model", opt->model, "GGUF model (path or manifest name)")->required();
    sub->add_option("-p,--n-prompt", opt->prompts, "Prefill sizes, comma-separated (0: none)")
        ->capture_default_str();
    sub->add_option("-n,--n-gen", opt->gens, "Decode lengths, comma-separated (0: none)")
        ->capture_default_str();
    sub->add_option("-d,--depth", opt->depths,
                    "Tokens already in the cache before each test, comma-separated")
        ->capture_default_str();
    sub->add_option("-r,--repetitions", opt->repetitions, "Timed runs per test")
        ->capture_default_str();
    add_backend_options(*sub, opt->backend);
    sub->add_option("-u,--ubatch-size", opt->n_ubatch,
                    "Tokens per forward chunk (0: 512 on the CPU, 4096 on a GPU)")
        ->capture_default_str();
    add_cache_type_options(*sub, opt->cache_types);
    sub->add_option("-o,--output", opt->output, "md, json or csv")->capture_default_str();
    sub->add_option("--peak-bw", opt->peak_bandwidth_gbs,
                    "Memory bandwidth ceiling in GB/s (default: measured)");
    sub->add_option("--peak-tflops", opt->peak_tflops,
                    "Compute ceiling in TFLOP/s for a % of peak column (e.g. the measured bf16 "
                    "GEMM rate)");
    sub->add_flag("--no-warmup", opt->no_warmup, "Skip the untimed warm-up run");
    sub->callback([opt, &exit_code] {
        Status s = run_bench(*opt);
        if (!s) fmt::print(stderr, "sift: error: {}\n", s.message());
        exit_code = s ? 0 : 1;
    });
}

}  // namespace sift::cli
