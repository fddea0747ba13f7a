#include "model/synthetic.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <unordered_set>

namespace sift {
namespace {

const ModelShape& preset(std::string_view arch, std::string_view name) {
    const ModelShape* shape = model_preset_find(arch, name);
    EXPECT_NE(shape, nullptr) << arch << " " << name;
    return *shape;
}

double bits_per_weight(const std::vector<TensorPlan>& plan) {
    double bytes = 0, params = 0;
    for (const TensorPlan& t : plan) {
        bytes += static_cast<double>(*dtype_row_bytes(t.type, t.ne[0]) * t.ne[1]);
        params += static_cast<double>(t.ne[0] * t.ne[1]);
    }
    return 8 * bytes / params;
}

TEST(Synthetic, Qwen3_8bQ4KMMatchesLlamaCppMix) {
    const ModelShape& s = preset("qwen3", "8b");
    const std::vector<TensorPlan> plan = synthetic_tensor_plan(s, *file_type_find("q4_k_m"));
    std::map<std::string, const TensorPlan*> by_name;
    int64_t params = 0;
    for (const TensorPlan& t : plan) {
        by_name[t.name] = &t;
        params += t.ne[0] * t.ne[1];
    }
    // 8.19 B parameters: Qwen3-8B's published count.
    EXPECT_NEAR(static_cast<double>(params) / 1e9, 8.19, 0.01);
    EXPECT_EQ(plan.size(), 3u + 36u * 11u);
    EXPECT_EQ(by_name.at("output.weight")->type, DType::Q6_K);
    EXPECT_EQ(by_name.at("token_embd.weight")->type, DType::Q4_K);
    EXPECT_EQ(by_name.at("blk.0.attn_v.weight")->type, DType::Q6_K);  // first eighth
    EXPECT_EQ(by_name.at("blk.4.attn_v.weight")->type, DType::Q4_K);
    EXPECT_EQ(by_name.at("blk.6.ffn_down.weight")->type, DType::Q6_K);   // (6 - 4) % 3 == 2
    EXPECT_EQ(by_name.at("blk.35.ffn_down.weight")->type, DType::Q6_K);  // last eighth
    EXPECT_EQ(by_name.at("blk.7.ffn_gate.weight")->type, DType::Q4_K);
    EXPECT_EQ(by_name.at("blk.3.attn_q_norm.weight")->type, DType::F32);
    EXPECT_EQ(by_name.at("blk.3.attn_q.weight")->ne[1], 32 * 128);
    EXPECT_EQ(by_name.at("blk.3.attn_k.weight")->ne[1], 8 * 128);
    // llama.cpp reports 4.90 bits/weight for its Qwen3-8B Q4_K_M (docs/ANCHORS.md).
    EXPECT_NEAR(bits_per_weight(plan), 4.90, 0.02);
}

TEST(Synthetic, RowsThatAreNotWholeSuperBlocksFallBack) {
    // Qwen2.5-0.5B rows of 896 are not multiples of 256: Q4_K -> Q5_0, Q6_K -> Q8_0.
    const std::vector<TensorPlan> plan =
        synthetic_tensor_plan(preset("qwen2", "0.5b"), *file_type_find("q4_k_m"));
    for (const TensorPlan& t : plan) {
        EXPECT_EQ(t.ne[0] % dtype_traits(t.type).block_size, 0) << t.name;
        if (t.name == "blk.1.attn_q.weight") {
            EXPECT_EQ(t.type, DType::Q5_0);
        }
        if (t.name == "token_embd.weight") {
            EXPECT_EQ(t.type, DType::Q5_0);
        }
        if (t.name == "output.weight") {
            EXPECT_EQ(t.type, DType::Q8_0);
        }
        if (t.name == "blk.4.ffn_down.weight") {
            EXPECT_EQ(t.type, DType::Q4_K);  // rows of 4864
        }
        if (t.name == "blk.0.attn_q.bias") {
            EXPECT_EQ(t.type, DType::F32);
        }
    }
}

std::map<DType, int> weight_mix(const std::vector<TensorPlan>& plan) {
    std::map<DType, int> mix;
    for (const TensorPlan& t : plan) {
        if (t.role == TensorRole::TENSOR_WEIGHT) mix[t.type] += 1;
    }
    return mix;
}

TEST(Synthetic, QwenQ4KMMixesMatchThePublishedFiles) {
    // Tensor counts per type read from the real Q4_K_M GGUFs (docs/MODELS.md).
    const FileTypeSpec q4km = *file_type_find("q4_k_m");
    const std::map<DType, int> target =
        weight_mix(synthetic_tensor_plan(preset("qwen2", "1.5b"), q4km));
    EXPECT_EQ(target, (std::map<DType, int>{{DType::Q4_K, 169}, {DType::Q6_K, 29}}));
    const std::map<DType, int> drafter =
        weight_mix(synthetic_tensor_plan(preset("qwen2", "0.5b"), q4km));
    EXPECT_EQ(drafter,
              (std::map<DType, int>{
                  {DType::Q4_K, 12}, {DType::Q5_0, 133}, {DType::Q8_0, 13}, {DType::Q6_K, 12}}));
}

TEST(Synthetic, EveryPresetAndTypeHasValidRows) {
    for (const ModelShape& s : model_presets()) {
        for (std::string_view type : file_type_names()) {
            for (const TensorPlan& t : synthetic_tensor_plan(s, *file_type_find(type))) {
                ASSERT_TRUE(dtype_row_bytes(t.type, t.ne[0]).has_value())
                    << s.arch << " " << s.preset << " " << type << " " << t.name;
                ASSERT_TRUE(dtype_traits(t.type).computable) << t.name;
            }
        }
    }
}

TEST(Synthetic, UnknownFileTypeNamesKnownOnes) {
    Result<FileTypeSpec> spec = file_type_find("q3_xx");
    ASSERT_FALSE(spec.ok());
    EXPECT_NE(spec.message().find("q4_k_m"), std::string::npos);
}

const gguf::Value& meta(const std::vector<MetadataEntry>& kv, std::string_view key) {
    for (const MetadataEntry& e : kv) {
        if (e.key == key) return e.value;
    }
    ADD_FAILURE() << "missing " << key;
    static gguf::Value none;
    return none;
}

std::vector<std::string> strings(const gguf::Value& v) {
    std::vector<std::string> out;
    for (const gguf::Value& item : v.as_array()->items) out.push_back(*item.as_string());
    return out;
}

TEST(Synthetic, BpeVocabularyIsCompleteAndConsistent) {
    const ModelShape& s = preset("qwen3", "0.6b");
    const std::vector<MetadataEntry> kv = synthetic_metadata(s, *file_type_find("bf16"));
    const std::vector<std::string> tokens = strings(meta(kv, "tokenizer.ggml.tokens"));
    ASSERT_EQ(tokens.size(), static_cast<size_t>(s.n_vocab));
    const std::unordered_set<std::string> set(tokens.begin(), tokens.end());
    EXPECT_EQ(set.size(), tokens.size()) << "duplicate tokens";
    const std::vector<std::string> merges = strings(meta(kv, "tokenizer.ggml.merges"));
    EXPECT_GT(merges.size(), 100000u);
    for (const std::string& m : merges) {
        const size_t space = m.find(' ');
        ASSERT_NE(space, std::string::npos) << m;
        const std::string left = m.substr(0, space), right = m.substr(space + 1);
        ASSERT_TRUE(set.count(left) && set.count(right) && set.count(left + right)) << m;
    }
    EXPECT_EQ(meta(kv, "tokenizer.ggml.token_type").as_array()->items.size(), tokens.size());
    EXPECT_EQ(*meta(kv, "tokenizer.ggml.pre").as_string(), "qwen2");
    EXPECT_EQ(std::get<uint64_t>(meta(kv, "qwen3.block_count").data), 28u);
    const uint64_t eos = std::get<uint64_t>(meta(kv, "tokenizer.ggml.eos_token_id").data);
    EXPECT_EQ(tokens.at(eos), "<|im_end|>");
}

TEST(Synthetic, SentencePieceVocabularyForGemma) {
    const ModelShape& s = preset("gemma3", "270m");
    const std::vector<MetadataEntry> kv = synthetic_metadata(s, *file_type_find("q8_0"));
    const std::vector<std::string> tokens = strings(meta(kv, "tokenizer.ggml.tokens"));
    ASSERT_EQ(tokens.size(), static_cast<size_t>(s.n_vocab));
    EXPECT_EQ(std::set<std::string>(tokens.begin(), tokens.end()).size(), tokens.size());
    EXPECT_EQ(*meta(kv, "tokenizer.ggml.model").as_string(), "llama");
    EXPECT_EQ(meta(kv, "tokenizer.ggml.scores").as_array()->items.size(), tokens.size());
    EXPECT_EQ(tokens.at(std::get<uint64_t>(meta(kv, "tokenizer.ggml.bos_token_id").data)), "<bos>");
    EXPECT_EQ(std::get<uint64_t>(meta(kv, "gemma3.attention.sliding_window").data), 512u);
}

}  // namespace
}  // namespace sift
