// Tokenizer speed on 1 MiB of English prose and 1 MiB of C code, one thread.
//
//   build-tok/bench_tokenizer                      # every model found in the models dir
//   SIFT_BENCH_MODEL=/path/model.gguf build-tok/bench_tokenizer
// Models come from $SIFT_BENCH_MODEL, else $SIFT_MODELS or ~/.cache/sift/models. Counters: MB/s
// of input text and tokens/s, against CPU time (add --benchmark_counters_tabular=true for a
// table). Prose is GPL-3 when installed, else generated sentences; code is the C headers in
// /usr/include; each is repeated to 1 MiB (the word caches see repeats, as on real prompts).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace {

constexpr size_t kTextBytes = 1 << 20;

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// `base` repeated to kTextBytes, cut at a UTF-8 character boundary.
std::string repeat_to_size(const std::string& base) {
    std::string text;
    while (text.size() < kTextBytes) text += base;
    size_t end = kTextBytes;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    text.resize(end);
    return text;
}

std::string prose() {
    std::string base = read_file("/usr/share/common-licenses/GPL-3");
    if (base.empty()) {
        // Generated sentences with a realistic mix of short words, punctuation and numbers.
        const char* words[] = {"the",       "model",    "reads",   "a",     "long",    "prompt",
                               "and",       "decides",  "which",   "spans", "matter",  "for",
                               "answering", "question", "quickly", "while", "keeping", "quality",
                               "high",      "in",       "2024"};
        uint32_t state = 12345;
        for (int i = 0; i < 20000; ++i) {
            state = state * 1664525u + 1013904223u;
            base += words[(state >> 16) % (sizeof(words) / sizeof(words[0]))];
            base += (state >> 8) % 13 == 0 ? ". " : (state >> 8) % 7 == 0 ? ", " : " ";
            if ((state >> 4) % 97 == 0) base += "\n\n";
        }
    }
    return repeat_to_size(base);
}

std::string code() {
    std::string base;
    for (const char* name : {"stdio.h", "stdlib.h", "string.h", "elf.h", "unistd.h", "math.h"}) {
        base += read_file(std::filesystem::path("/usr/include") / name);
    }
    if (base.empty()) base = "int main(void) {\n\tprintf(\"%d\\n\", 42);\n    return 0;\n}\n";
    return repeat_to_size(base);
}

struct Loaded {
    std::unique_ptr<sift::gguf::File> file;
    std::unique_ptr<sift::Tokenizer> tokenizer;
};

void bench_encode(benchmark::State& state, const sift::Tokenizer* tokenizer,
                  const std::string* text) {
    size_t n_tokens = 0;
    for (auto _ : state) {
        auto ids = tokenizer->encode(*text, false, true);
        n_tokens = ids.size();
        benchmark::DoNotOptimize(ids.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text->size()));
    state.counters["tokens"] = static_cast<double>(n_tokens);
    state.counters["tokens/s"] =
        benchmark::Counter(static_cast<double>(n_tokens) * static_cast<double>(state.iterations()),
                           benchmark::Counter::kIsRate);
}

void bench_decode(benchmark::State& state, const sift::Tokenizer* tokenizer,
                  const std::string* text) {
    const auto ids = tokenizer->encode(*text, false, true);
    for (auto _ : state) {
        auto out = tokenizer->decode(ids, false);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text->size()));
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> paths;
    if (const char* model = std::getenv("SIFT_BENCH_MODEL")) {
        paths.push_back(model);
    } else {
        std::filesystem::path dir;
        if (const char* env = std::getenv("SIFT_MODELS")) {
            dir = env;
        } else if (const char* home = std::getenv("HOME")) {
            dir = std::filesystem::path(home) / ".cache/sift/models";
        }
        for (const char* name : {"qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                                 "smollm2-135m-instruct-q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"}) {
            if (std::filesystem::exists(dir / name)) paths.push_back((dir / name).string());
        }
    }
    static const std::string texts[] = {prose(), code()};
    const char* text_names[] = {"prose", "code"};
    static std::vector<Loaded> loaded;
    loaded.reserve(paths.size());
    for (const std::string& path : paths) {
        auto file = sift::gguf::File::open(path);
        if (!file) {
            std::fprintf(stderr, "bench_tokenizer: %s\n", file.message().c_str());
            return 1;
        }
        auto tokenizer = sift::Tokenizer::from_gguf(**file);
        if (!tokenizer) {
            std::fprintf(stderr, "bench_tokenizer: %s: %s\n", path.c_str(),
                         tokenizer.message().c_str());
            return 1;
        }
        loaded.push_back({std::move(*file), std::move(*tokenizer)});
        const std::string name = std::filesystem::path(path).stem().string();
        for (int t = 0; t < 2; ++t) {
            const std::string suffix = std::string("/") + text_names[t] + "/" + name;
            benchmark::RegisterBenchmark(("encode" + suffix).c_str(), bench_encode,
                                         loaded.back().tokenizer.get(), &texts[t])
                ->Unit(benchmark::kMillisecond);
            benchmark::RegisterBenchmark(("decode" + suffix).c_str(), bench_decode,
                                         loaded.back().tokenizer.get(), &texts[t])
                ->Unit(benchmark::kMillisecond);
        }
    }
    if (paths.empty()) {
        std::fprintf(stderr,
                     "bench_tokenizer: no model; set SIFT_BENCH_MODEL or pull one with "
                     "`build/sift models pull qwen2.5-coder-1.5b`\n");
        return 1;
    }
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
