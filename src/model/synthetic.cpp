#include "model/synthetic.h"

#include <fmt/format.h>

#include <array>

#include "model/synthetic_vocab.h"

namespace sift {
namespace {

// llama.cpp gives the first and last eighth of layers, and every third in between, more bits.
bool use_more_bits(int layer, int n_layer) {
    return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

// Rows whose length is not a multiple of the block size fall back as llama.cpp does.
DType fit_row(DType type, int64_t row) {
    if (row % dtype_traits(type).block_size == 0) return type;
    switch (type) {
        case DType::Q4_K:
            return fit_row(DType::Q5_0, row);
        case DType::Q5_K:
            return fit_row(DType::Q5_1, row);
        case DType::Q6_K:
            return fit_row(DType::Q8_0, row);
        default:
            return DType::F16;
    }
}

}  // namespace

std::vector<TensorPlan> synthetic_tensor_plan(const ModelShape& s, const FileTypeSpec& ft) {
    std::vector<TensorPlan> plan;
    auto weight = [&](std::string name, int64_t row, int64_t rows, DType type) {
        plan.push_back(
            {std::move(name), {row, rows}, 2, fit_row(type, row), TensorRole::TENSOR_WEIGHT});
    };
    auto vec = [&](std::string name, int64_t n, TensorRole role) {
        plan.push_back({std::move(name), {n, 1}, 1, DType::F32, role});
    };
    const int64_t q_dim = int64_t{s.n_head} * s.head_dim;
    const int64_t kv_dim = int64_t{s.n_head_kv} * s.head_dim;
    const bool qwen2 = s.arch == "qwen2";
    const bool qk_norm = s.arch == "qwen3" || s.arch == "gemma3";
    const bool gemma = s.arch == "gemma3";

    weight("token_embd.weight", s.n_embd, s.n_vocab, s.tied_embeddings ? ft.output : ft.embd);
    for (int il = 0; il < s.n_layer; ++il) {
        const std::string p = fmt::format("blk.{}.", il);
        const DType more = ft.more_bits && use_more_bits(il, s.n_layer) ? DType::Q6_K : ft.base;
        vec(p + "attn_norm.weight", s.n_embd, TensorRole::TENSOR_NORM);
        weight(p + "attn_q.weight", s.n_embd, q_dim, ft.base);
        weight(p + "attn_k.weight", s.n_embd, kv_dim, ft.base);
        weight(p + "attn_v.weight", s.n_embd, kv_dim, more);
        if (qwen2) {
            vec(p + "attn_q.bias", q_dim, TensorRole::TENSOR_BIAS);
            vec(p + "attn_k.bias", kv_dim, TensorRole::TENSOR_BIAS);
            vec(p + "attn_v.bias", kv_dim, TensorRole::TENSOR_BIAS);
        }
        if (qk_norm) {
            vec(p + "attn_q_norm.weight", s.head_dim, TensorRole::TENSOR_NORM);
            vec(p + "attn_k_norm.weight", s.head_dim, TensorRole::TENSOR_NORM);
        }
        weight(p + "attn_output.weight", q_dim, s.n_embd, ft.base);
        if (gemma) vec(p + "post_attention_norm.weight", s.n_embd, TensorRole::TENSOR_NORM);
        vec(p + "ffn_norm.weight", s.n_embd, TensorRole::TENSOR_NORM);
        weight(p + "ffn_gate.weight", s.n_embd, s.n_ff, ft.base);
        weight(p + "ffn_up.weight", s.n_embd, s.n_ff, ft.base);
        weight(p + "ffn_down.weight", s.n_ff, s.n_embd, more);
        if (gemma) vec(p + "post_ffw_norm.weight", s.n_embd, TensorRole::TENSOR_NORM);
    }
    vec("output_norm.weight", s.n_embd, TensorRole::TENSOR_NORM);
    if (!s.tied_embeddings) weight("output.weight", s.n_embd, s.n_vocab, ft.output);
    return plan;
}

std::vector<MetadataEntry> synthetic_metadata(const ModelShape& s, const FileTypeSpec& ft) {
    using gguf::Value;
    const std::string a(s.arch);
    std::vector<MetadataEntry> kv = {
        {"general.architecture", Value::string(a)},
        {"general.name",
         Value::string(fmt::format("synthetic {} ({} shape, random weights)", s.name, ft.name))},
        {"general.file_type", Value::u32(ft.llama_ftype)},
        {"general.quantization_version", Value::u32(2)},
        {a + ".context_length", Value::u32(s.n_ctx_train)},
        {a + ".embedding_length", Value::u32(s.n_embd)},
        {a + ".block_count", Value::u32(s.n_layer)},
        {a + ".feed_forward_length", Value::u32(s.n_ff)},
        {a + ".attention.head_count", Value::u32(s.n_head)},
        {a + ".attention.head_count_kv", Value::u32(s.n_head_kv)},
        {a + ".attention.key_length", Value::u32(s.head_dim)},
        {a + ".attention.value_length", Value::u32(s.head_dim)},
        {a + ".attention.layer_norm_rms_epsilon", Value::f32(s.norm_eps)},
        {a + ".rope.freq_base", Value::f32(s.rope_theta)},
    };
    if (s.sliding_window > 0) {
        kv.push_back({a + ".attention.sliding_window", Value::u32(s.sliding_window)});
    }
    for (MetadataEntry& entry : synthetic_vocab_metadata(s)) kv.push_back(std::move(entry));
    return kv;
}

}  // namespace sift
