// Hyperparameters of a model, read from GGUF metadata and validated.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "gguf/gguf.h"

namespace sift {

enum class Arch { ARCH_LLAMA, ARCH_QWEN2, ARCH_QWEN3, ARCH_GEMMA3 };

std::string_view arch_name(Arch arch);
// Errors list the supported architectures.
Result<Arch> arch_from_name(std::string_view name);

struct HParams {
    Arch arch = Arch::ARCH_LLAMA;
    int32_t n_layer = 0;
    int32_t n_embd = 0;
    int32_t n_head = 0;
    int32_t n_head_kv = 0;
    int32_t head_dim = 0;  // key/value length per head
    int32_t n_ff = 0;
    int32_t n_vocab = 0;
    int32_t n_ctx_train = 0;
    float norm_eps = 1e-6f;
    float rope_base = 10000;        // global attention layers
    float rope_base_local = 10000;  // sliding-window layers (gemma3)
    float rope_scale = 1;           // linear position scaling (1 / rope.scaling.factor)
    bool rope_neox = true;          // llama uses adjacent pairs, the others NeoX pairs
    int32_t n_rot = 0;
    int32_t sliding_window = 0;  // 0 = none
    int32_t swa_period = 0;      // gemma3: every swa_period-th layer is global
    float attn_scale = 0;        // multiplies q.k (1/sqrt(head_dim) unless the model says)
    float embd_scale = 1;        // gemma3 scales embeddings by sqrt(n_embd)
    float final_softcap = 0;     // logit soft-capping (0 = off)
    float attn_softcap = 0;

    int32_t q_dim() const { return n_head * head_dim; }
    int32_t kv_dim() const { return n_head_kv * head_dim; }
    bool layer_is_sliding(int32_t il) const {
        return sliding_window > 0 && (swa_period == 0 || (il + 1) % swa_period != 0);
    }
};

Result<HParams> hparams_from_gguf(const gguf::File& file);

}  // namespace sift
