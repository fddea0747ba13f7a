#include "model/hparams.h"

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <utility>

namespace sift {
namespace {

constexpr std::array<std::pair<Arch, std::string_view>, 4> kArchNames = {{
    {Arch::ARCH_LLAMA, "llama"},
    {Arch::ARCH_QWEN2, "qwen2"},
    {Arch::ARCH_QWEN3, "qwen3"},
    {Arch::ARCH_GEMMA3, "gemma3"},
}};

// Reads `{arch}.{key}` as a positive int32; missing keys take `fallback` when it is >= 0.
Result<int32_t> read_count(const gguf::File& f, const std::string& key, int64_t fallback = -1) {
    Result<uint64_t> v = f.get_u64(key);
    if (!v) {
        if (fallback >= 0 && f.find(key) == nullptr) return static_cast<int32_t>(fallback);
        return v.error();
    }
    if (*v == 0 || *v > (1u << 30)) return make_error("{} = {} is out of range", key, *v);
    return static_cast<int32_t>(*v);
}

Result<float> read_float(const gguf::File& f, const std::string& key, float fallback) {
    if (f.find(key) == nullptr) return fallback;
    Result<double> v = f.get_f64(key);
    if (!v) return v.error();
    if (!std::isfinite(*v)) return make_error("{} = {} is not finite", key, *v);
    return static_cast<float>(*v);
}

}  // namespace

std::string_view arch_name(Arch arch) {
    for (const auto& [a, name] : kArchNames) {
        if (a == arch) return name;
    }
    return "unknown";
}

Result<Arch> arch_from_name(std::string_view name) {
    std::vector<std::string_view> names;
    for (const auto& [a, n] : kArchNames) {
        if (n == name) return a;
        names.push_back(n);
    }
    return make_error("unsupported architecture '{}' (supported: {})", name,
                      fmt::join(names, ", "));
}

Result<HParams> hparams_from_gguf(const gguf::File& f) {
    Result<std::string> arch_text = f.get_string("general.architecture");
    if (!arch_text) return arch_text.error();
    Result<Arch> arch = arch_from_name(*arch_text);
    if (!arch) return arch.error();
    const std::string a = *arch_text + ".";
    HParams hp;
    hp.arch = *arch;

#define SIFT_READ(field, expr)              \
    do {                                    \
        auto value_ = (expr);               \
        if (!value_) return value_.error(); \
        field = *value_;                    \
    } while (0)

    SIFT_READ(hp.n_layer, read_count(f, a + "block_count"));
    SIFT_READ(hp.n_embd, read_count(f, a + "embedding_length"));
    SIFT_READ(hp.n_ff, read_count(f, a + "feed_forward_length"));
    SIFT_READ(hp.n_head, read_count(f, a + "attention.head_count"));
    SIFT_READ(hp.n_head_kv, read_count(f, a + "attention.head_count_kv", hp.n_head));
    SIFT_READ(hp.head_dim, read_count(f, a + "attention.key_length", hp.n_embd / hp.n_head));
    int32_t value_length = 0;
    SIFT_READ(value_length, read_count(f, a + "attention.value_length", hp.head_dim));
    SIFT_READ(hp.n_ctx_train, read_count(f, a + "context_length"));
    SIFT_READ(hp.n_rot, read_count(f, a + "rope.dimension_count", hp.head_dim));
    SIFT_READ(hp.norm_eps, read_float(f, a + "attention.layer_norm_rms_epsilon", 1e-6f));
    SIFT_READ(hp.rope_base, read_float(f, a + "rope.freq_base", 10000.0f));
    float rope_factor = 1;
    SIFT_READ(rope_factor, read_float(f, a + "rope.scaling.factor", 1.0f));
    SIFT_READ(hp.final_softcap, read_float(f, a + "final_logit_softcapping", 0.0f));
    SIFT_READ(hp.attn_softcap, read_float(f, a + "attn_logit_softcapping", 0.0f));
    SIFT_READ(hp.sliding_window, read_count(f, a + "attention.sliding_window", 0));
#undef SIFT_READ

    Result<const gguf::Array*> tokens = f.get_array("tokenizer.ggml.tokens");
    const gguf::TensorInfo* embd = f.tensor("token_embd.weight");
    if (embd == nullptr) return make_error("missing tensor token_embd.weight");
    hp.n_vocab = static_cast<int32_t>(embd->ne[1]);
    if (tokens && static_cast<int64_t>((*tokens)->items.size()) > hp.n_vocab) {
        return make_error("tokenizer has {} tokens but token_embd.weight only {} rows",
                          (*tokens)->items.size(), hp.n_vocab);
    }

    if (value_length != hp.head_dim) {
        return make_error("{}attention.value_length {} != key_length {} is not supported", a,
                          value_length, hp.head_dim);
    }
    if (hp.n_head % hp.n_head_kv != 0) {
        return make_error("{}attention.head_count {} is not a multiple of head_count_kv {}", a,
                          hp.n_head, hp.n_head_kv);
    }
    if (hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0) {
        return make_error("{}rope.dimension_count {} must be even and <= head size {}", a, hp.n_rot,
                          hp.head_dim);
    }
    if (hp.final_softcap > 0) {
        return make_error("{}final_logit_softcapping is not supported yet", a);
    }
    if (rope_factor <= 0) return make_error("{}rope.scaling.factor {} must be > 0", a, rope_factor);
    Result<std::string> scaling = f.get_string(a + "rope.scaling.type");
    if (scaling && *scaling == "linear") hp.rope_scale = 1.0f / rope_factor;
    if (scaling && *scaling != "linear" && *scaling != "none") {
        return make_error("{}rope.scaling.type '{}' is not supported (linear, none)", a, *scaling);
    }

    hp.attn_scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim));
    // llama.cpp's converter permutes llama's Q/K rows for adjacent-pair RoPE; the others use NeoX.
    hp.rope_neox = hp.arch != Arch::ARCH_LLAMA;
    if (hp.arch == Arch::ARCH_GEMMA3) {
        // Gemma 3 facts llama.cpp keeps in code, not in the GGUF: 5 sliding layers then 1 global,
        // local RoPE base 10000, embeddings scaled by sqrt(n_embd).
        hp.swa_period = 6;
        hp.rope_base_local = 10000.0f;
        hp.embd_scale = std::sqrt(static_cast<float>(hp.n_embd));
    } else {
        hp.rope_base_local = hp.rope_base;
    }
    return hp;
}

}  // namespace sift
