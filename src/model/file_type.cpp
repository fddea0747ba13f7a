#include "model/file_type.h"

#include <fmt/format.h>

#include <array>
#include <utility>

namespace sift {
namespace {

// Mixed types follow llama.cpp's quantizer: the output matrix in Q6_K, attn_v and ffn_down in
// Q6_K on the "use_more_bits" layers. Legacy types keep a Q6_K output as llama.cpp does.
constexpr std::array<FileTypeSpec, 13> kFileTypes = {{
    {"f32", 0, DType::F32, DType::F32, DType::F32, false},
    {"f16", 1, DType::F16, DType::F16, DType::F16, false},
    {"bf16", 32, DType::BF16, DType::BF16, DType::BF16, false},
    {"q8_0", 7, DType::Q8_0, DType::Q8_0, DType::Q8_0, false},
    {"q4_0", 2, DType::Q4_0, DType::Q4_0, DType::Q6_K, false},
    {"q4_1", 3, DType::Q4_1, DType::Q4_1, DType::Q6_K, false},
    {"q5_0", 8, DType::Q5_0, DType::Q5_0, DType::Q6_K, false},
    {"q5_1", 9, DType::Q5_1, DType::Q5_1, DType::Q6_K, false},
    {"q4_k", 14, DType::Q4_K, DType::Q4_K, DType::Q4_K, false},  // every weight Q4_K
    {"q5_k", 16, DType::Q5_K, DType::Q5_K, DType::Q5_K, false},
    {"q6_k", 18, DType::Q6_K, DType::Q6_K, DType::Q6_K, false},
    {"q4_k_m", 15, DType::Q4_K, DType::Q4_K, DType::Q6_K, true},
    {"q5_k_m", 17, DType::Q5_K, DType::Q5_K, DType::Q6_K, true},
}};

// llama.cpp's LLAMA_FTYPE_MOSTLY_* ids (gaps are retired ids).
constexpr std::array<std::pair<uint32_t, std::string_view>, 33> kLabels = {{
    {0, "F32"},      {1, "F16"},      {2, "Q4_0"},       {3, "Q4_1"},    {7, "Q8_0"},
    {8, "Q5_0"},     {9, "Q5_1"},     {10, "Q2_K"},      {11, "Q3_K_S"}, {12, "Q3_K_M"},
    {13, "Q3_K_L"},  {14, "Q4_K_S"},  {15, "Q4_K_M"},    {16, "Q5_K_S"}, {17, "Q5_K_M"},
    {18, "Q6_K"},    {19, "IQ2_XXS"}, {20, "IQ2_XS"},    {21, "Q2_K_S"}, {22, "IQ3_XS"},
    {23, "IQ3_XXS"}, {24, "IQ1_S"},   {25, "IQ4_NL"},    {26, "IQ3_S"},  {27, "IQ3_M"},
    {28, "IQ2_S"},   {29, "IQ2_M"},   {30, "IQ4_XS"},    {31, "IQ1_M"},  {32, "BF16"},
    {36, "TQ1_0"},   {37, "TQ2_0"},   {38, "MXFP4_MOE"},
}};

}  // namespace

Result<FileTypeSpec> file_type_find(std::string_view name) {
    for (const FileTypeSpec& spec : kFileTypes) {
        if (spec.name == name) return spec;
    }
    return make_error("unknown type '{}' (known: {})", name, fmt::join(file_type_names(), ", "));
}

std::vector<std::string_view> file_type_names() {
    std::vector<std::string_view> names;
    for (const FileTypeSpec& spec : kFileTypes) names.push_back(spec.name);
    return names;
}

std::string file_type_label(uint32_t llama_ftype) {
    for (const auto& [id, label] : kLabels) {
        if (id == llama_ftype) return std::string(label);
    }
    return fmt::format("unknown ({})", llama_ftype);
}

}  // namespace sift
