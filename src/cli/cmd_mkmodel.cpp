// `sift mkmodel`: writes a complete GGUF with random weights of a real model's shape.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <random>

#include "cli/cli.h"
#include "cli/progress.h"
#include "model/presets.h"
#include "model/synthetic.h"
#include "model/synthetic_writer.h"

namespace sift::cli {
namespace {

struct MkmodelOptions {
    std::string arch;
    std::string preset;
    std::string type = "q4_k_m";
    std::string output;
    uint64_t seed = 42;
    bool list = false;
};

void print_presets() {
    fmt::print("{:<8} {:<6} {:<16} {:>6} {:>6} {:>9} {:>6} {:>7}\n", "arch", "preset", "mirrors",
               "layers", "embd", "heads/kv", "ff", "vocab");
    for (const ModelShape& s : model_presets()) {
        fmt::print("{:<8} {:<6} {:<16} {:>6} {:>6} {:>9} {:>6} {:>7}\n", s.arch, s.preset, s.name,
                   s.n_layer, s.n_embd, fmt::format("{}/{}", s.n_head, s.n_head_kv), s.n_ff,
                   s.n_vocab);
    }
    fmt::print("types: {}\n", fmt::join(file_type_names(), ", "));
}

Status run_mkmodel(const MkmodelOptions& opt) {
    const ModelShape* shape = model_preset_find(opt.arch, opt.preset);
    if (shape == nullptr) {
        return make_error("no preset '{}' for arch '{}' (see `sift mkmodel --list`)", opt.preset,
                          opt.arch);
    }
    Result<FileTypeSpec> ftype = file_type_find(opt.type);
    if (!ftype) return ftype.error();

    const auto start = std::chrono::steady_clock::now();
    std::unique_ptr<Progress> progress;
    uint64_t progress_done = 0;
    SyntheticWriteOptions options;
    options.seed = opt.seed;
    options.progress = [&](uint64_t written, uint64_t total) {
        if (!progress) progress = std::make_unique<Progress>("writing", total);
        progress->advance(written - progress_done);
        progress_done = written;
    };
    Result<SyntheticWriteResult> written = synthetic_write(*shape, *ftype, opt.output, options);
    if (!written) return written.error();
    if (progress) progress->done();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double gb = static_cast<double>(written->bytes) / 1e9;
    fmt::print(stderr,
               "sift mkmodel: {} ({} {} {}): {} tensors, {:.3f} B params, {:.2f} GB, "
               "{:.2f} bits/weight, written in {:.1f} s ({:.2f} GB/s)\n",
               opt.output, shape->name, shape->arch, ftype->name, written->n_tensors,
               written->n_params / 1e9, gb,
               8.0 * static_cast<double>(written->bytes) / static_cast<double>(written->n_params),
               seconds, gb / seconds);
    fmt::print("{}\n", opt.output);
    return {};
}

}  // namespace

void add_mkmodel_command(CLI::App& app, int& exit_code) {
    auto opt = std::make_shared<MkmodelOptions>();
    CLI::App* sub = app.add_subcommand(
        "mkmodel", "Write a GGUF with random weights of a real model's shape (for benchmarks)");
    sub->add_option("--arch", opt->arch, "Architecture: qwen3, qwen2, llama, gemma3");
    sub->add_option("--preset", opt->preset, "Model size, e.g. 0.6b, 8b, 32b (see --list)");
    sub->add_option("--type", opt->type, "Weight type: f16, bf16, q8_0, q4_0, q4_k, q4_k_m, ...")
        ->capture_default_str();
    sub->add_option("-o,--output", opt->output, "Output GGUF path");
    sub->add_option("--seed", opt->seed, "Random seed")->capture_default_str();
    sub->add_flag("--list", opt->list, "List presets and types");
    sub->callback([opt, &exit_code] {
        if (opt->list) {
            print_presets();
            exit_code = 0;
            return;
        }
        if (opt->arch.empty() || opt->preset.empty() || opt->output.empty()) {
            fmt::print(stderr, "sift: error: mkmodel needs --arch, --preset and -o\n");
            exit_code = 1;
            return;
        }
        Status status = run_mkmodel(*opt);
        if (!status) fmt::print(stderr, "sift: error: {}\n", status.message());
        exit_code = status ? 0 : 1;
    });
}

}  // namespace sift::cli
