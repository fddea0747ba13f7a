// Shapes of real models (hyperparameters only), used to synthesise random-weight models.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace sift {

struct ModelShape {
    std::string_view arch;    // GGUF general.architecture
    std::string_view preset;  // "8b", "0.6b", ...
    std::string_view name;    // the real model this mirrors
    int n_layer;
    int n_embd;
    int n_head;
    int n_head_kv;
    int head_dim;
    int n_ff;
    int n_vocab;
    int n_ctx_train;
    float rope_theta;
    float norm_eps;
    bool tied_embeddings;
    int sliding_window;  // 0 = none (gemma3 uses it on 5 of every 6 layers)
};

std::span<const ModelShape> model_presets();
const ModelShape* model_preset_find(std::string_view arch, std::string_view preset);

}  // namespace sift
