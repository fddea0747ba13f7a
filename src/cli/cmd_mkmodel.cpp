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
#include "gguf/gguf.h"
#include "model/presets.h"
#include "model/synthetic.h"
#include "tensor/random_fill.h"

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

constexpr float kWeightStd = 0.02f;  // the usual initializer scale of these models
constexpr int64_t kChunkBytes = 64 << 20;

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

// Streams one tensor's random data into the writer in bounded chunks.
Status write_tensor(gguf::Writer& writer, const TensorPlan& t, RandomBlockSource& source,
                    std::vector<uint8_t>& buffer, Progress& progress) {
    const int64_t row_bytes = *dtype_row_bytes(t.type, t.ne[0]);
    const int64_t rows_per_chunk = std::max<int64_t>(1, kChunkBytes / row_bytes);
    for (int64_t row = 0; row < t.ne[1]; row += rows_per_chunk) {
        const int64_t rows = std::min(rows_per_chunk, t.ne[1] - row);
        const size_t bytes = static_cast<size_t>(rows * row_bytes);
        if (buffer.size() < bytes) buffer.resize(bytes);
        source.fill(buffer.data(), rows * t.ne[0]);
        SIFT_TRY(writer.write({buffer.data(), bytes}));
        progress.advance(bytes);
    }
    return {};
}

// Norm weights sit near 1 (as trained models' do); biases and weights are centred on 0.
std::vector<uint8_t> norm_values(int64_t n, std::mt19937_64& rng) {
    std::vector<uint8_t> bytes(static_cast<size_t>(n) * sizeof(float));
    std::normal_distribution<float> normal(1.0f, 0.05f);
    for (int64_t i = 0; i < n; ++i) {
        float v = normal(rng);
        std::memcpy(bytes.data() + i * sizeof(float), &v, sizeof(float));
    }
    return bytes;
}

Status run_mkmodel(const MkmodelOptions& opt) {
    const ModelShape* shape = model_preset_find(opt.arch, opt.preset);
    if (shape == nullptr) {
        return make_error("no preset '{}' for arch '{}' (see `sift mkmodel --list`)", opt.preset,
                          opt.arch);
    }
    Result<FileTypeSpec> ftype = file_type_find(opt.type);
    if (!ftype) return ftype.error();

    const std::vector<TensorPlan> plan = synthetic_tensor_plan(*shape, *ftype);
    gguf::Writer writer;
    for (MetadataEntry& entry : synthetic_metadata(*shape, *ftype)) {
        writer.set(std::move(entry.key), std::move(entry.value));
    }
    int64_t n_params = 0;
    for (const TensorPlan& t : plan) {
        SIFT_TRY(
            writer.add_tensor(t.name, std::span<const int64_t>(t.ne.data(), t.n_dims), t.type));
        n_params += t.ne[0] * t.ne[1];
    }
    const std::string partial = opt.output + ".partial";
    SIFT_TRY(writer.open(partial));

    const auto start = std::chrono::steady_clock::now();
    Progress progress("writing", writer.total_bytes());
    std::map<DType, std::unique_ptr<RandomBlockSource>> sources;
    std::mt19937_64 rng(opt.seed);
    std::vector<uint8_t> buffer;
    for (const TensorPlan& t : plan) {
        if (t.role == TensorRole::TENSOR_NORM) {
            std::vector<uint8_t> bytes = norm_values(t.ne[0], rng);
            SIFT_TRY(writer.write(bytes));
            progress.advance(bytes.size());
            continue;
        }
        auto& source = sources[t.type];
        if (!source) {
            source = std::make_unique<RandomBlockSource>(t.type, kWeightStd,
                                                         opt.seed + static_cast<uint64_t>(t.type));
        }
        SIFT_TRY(write_tensor(writer, t, *source, buffer, progress));
    }
    SIFT_TRY(writer.finish());
    progress.done();
    std::error_code ec;
    std::filesystem::rename(partial, opt.output, ec);
    if (ec) return make_error("{}: cannot rename to {}: {}", partial, opt.output, ec.message());

    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double gb = static_cast<double>(writer.total_bytes()) / 1e9;
    fmt::print(stderr,
               "sift mkmodel: {} ({} {} {}): {} tensors, {:.3f} B params, {:.2f} GB, "
               "{:.2f} bits/weight, written in {:.1f} s ({:.2f} GB/s)\n",
               opt.output, shape->name, shape->arch, ftype->name, plan.size(), n_params / 1e9, gb,
               8.0 * static_cast<double>(writer.total_bytes()) / static_cast<double>(n_params),
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
