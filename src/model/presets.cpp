#include "model/presets.h"

#include <array>

namespace sift {
namespace {

// Values from the models' published config.json files.
constexpr std::array<ModelShape, 13> kPresets = {{
    // arch, preset, name, layers, embd, heads, kv heads, head dim, ff, vocab, ctx, theta, eps,
    // tied, swa
    {"qwen3", "0.6b", "Qwen3-0.6B", 28, 1024, 16, 8, 128, 3072, 151936, 40960, 1e6f, 1e-6f, true,
     0},
    {"qwen3", "1.7b", "Qwen3-1.7B", 28, 2048, 16, 8, 128, 6144, 151936, 40960, 1e6f, 1e-6f, true,
     0},
    {"qwen3", "4b", "Qwen3-4B", 36, 2560, 32, 8, 128, 9728, 151936, 40960, 1e6f, 1e-6f, true, 0},
    {"qwen3", "8b", "Qwen3-8B", 36, 4096, 32, 8, 128, 12288, 151936, 40960, 1e6f, 1e-6f, false, 0},
    {"qwen3", "14b", "Qwen3-14B", 40, 5120, 40, 8, 128, 17408, 151936, 40960, 1e6f, 1e-6f, false,
     0},
    {"qwen3", "32b", "Qwen3-32B", 64, 5120, 64, 8, 128, 25600, 151936, 40960, 1e6f, 1e-6f, false,
     0},
    // The published Qwen2.5 GGUFs carry output.weight although the HF models tie it.
    {"qwen2", "0.5b", "Qwen2.5-0.5B", 24, 896, 14, 2, 64, 4864, 151936, 32768, 1e6f, 1e-6f, false,
     0},
    {"qwen2", "1.5b", "Qwen2.5-1.5B", 28, 1536, 12, 2, 128, 8960, 151936, 32768, 1e6f, 1e-6f, false,
     0},
    {"qwen2", "7b", "Qwen2.5-7B", 28, 3584, 28, 4, 128, 18944, 152064, 32768, 1e6f, 1e-6f, false,
     0},
    {"llama", "135m", "SmolLM2-135M", 30, 576, 9, 3, 64, 1536, 49152, 8192, 1e5f, 1e-5f, true, 0},
    {"llama", "8b", "Llama-3.1-8B", 32, 4096, 32, 8, 128, 14336, 128256, 131072, 5e5f, 1e-5f, false,
     0},
    {"gemma3", "270m", "gemma-3-270m", 18, 640, 4, 1, 256, 2048, 262144, 32768, 1e6f, 1e-6f, true,
     512},
    {"gemma3", "1b", "gemma-3-1b", 26, 1152, 4, 1, 256, 6912, 262144, 32768, 1e6f, 1e-6f, true,
     512},
}};

}  // namespace

std::span<const ModelShape> model_presets() {
    return kPresets;
}

const ModelShape* model_preset_find(std::string_view arch, std::string_view preset) {
    for (const ModelShape& shape : kPresets) {
        if (shape.arch == arch && shape.preset == preset) return &shape;
    }
    return nullptr;
}

}  // namespace sift
