#include "tensor/dtype.h"

#include <array>

#include "core/check.h"
#include "tensor/quant_blocks.h"

namespace sift {
namespace {

// Block sizes and bytes are facts of the GGML formats (ggml-common.h block structs).
constexpr std::array<DTypeTraits, 34> kTraits = {{
    {DType::F32, "f32", 1, 4, false, true},
    {DType::F16, "f16", 1, 2, false, true},
    {DType::Q4_0, "q4_0", 32, 18, true, true},
    {DType::Q4_1, "q4_1", 32, 20, true, true},
    {DType::Q5_0, "q5_0", 32, 22, true, true},
    {DType::Q5_1, "q5_1", 32, 24, true, true},
    {DType::Q8_0, "q8_0", 32, 34, true, true},
    {DType::Q8_1, "q8_1", 32, 36, true, false},  // half d + half s + 32 int8
    {DType::Q2_K, "q2_k", 256, 84, true, false},
    {DType::Q3_K, "q3_k", 256, 110, true, false},
    {DType::Q4_K, "q4_k", 256, 144, true, true},
    {DType::Q5_K, "q5_k", 256, 176, true, true},
    {DType::Q6_K, "q6_k", 256, 210, true, true},
    {DType::Q8_K, "q8_k", 256, 292, true, true},
    {DType::IQ2_XXS, "iq2_xxs", 256, 66, true, false},
    {DType::IQ2_XS, "iq2_xs", 256, 74, true, false},
    {DType::IQ3_XXS, "iq3_xxs", 256, 98, true, false},
    {DType::IQ1_S, "iq1_s", 256, 50, true, false},
    {DType::IQ4_NL, "iq4_nl", 32, 18, true, false},
    {DType::IQ3_S, "iq3_s", 256, 110, true, false},
    {DType::IQ2_S, "iq2_s", 256, 82, true, false},
    {DType::IQ4_XS, "iq4_xs", 256, 136, true, false},
    {DType::I8, "i8", 1, 1, false, false},
    {DType::I16, "i16", 1, 2, false, false},
    {DType::I32, "i32", 1, 4, false, false},
    {DType::I64, "i64", 1, 8, false, false},
    {DType::F64, "f64", 1, 8, false, false},
    {DType::IQ1_M, "iq1_m", 256, 56, true, false},
    {DType::BF16, "bf16", 1, 2, false, true},
    {DType::TQ1_0, "tq1_0", 256, 54, true, false},
    {DType::TQ2_0, "tq2_0", 256, 66, true, false},
    {DType::MXFP4, "mxfp4", 32, 17, true, false},
    {DType::NVFP4, "nvfp4", 64, 36, true, false},
    {DType::Q1_0, "q1_0", 128, 18, true, false},
}};

constexpr const DTypeTraits& traits_of(DType type) {
    for (const DTypeTraits& traits : kTraits) {
        if (traits.type == type) return traits;
    }
    return kTraits[0];  // unreachable for the types asserted below
}

// The table and the block structs describe the same formats; a mismatch fails the build.
template <typename Block>
constexpr bool matches(DType type, int64_t block_size) {
    return traits_of(type).block_bytes == static_cast<int64_t>(sizeof(Block)) &&
           traits_of(type).block_size == block_size;
}
static_assert(matches<block_q4_0>(DType::Q4_0, kQK4_0));
static_assert(matches<block_q4_1>(DType::Q4_1, kQK4_1));
static_assert(matches<block_q5_0>(DType::Q5_0, kQK5_0));
static_assert(matches<block_q5_1>(DType::Q5_1, kQK5_1));
static_assert(matches<block_q8_0>(DType::Q8_0, kQK8_0));
static_assert(matches<block_q4_K>(DType::Q4_K, kQK_K));
static_assert(matches<block_q5_K>(DType::Q5_K, kQK_K));
static_assert(matches<block_q6_K>(DType::Q6_K, kQK_K));
static_assert(matches<block_q8_K>(DType::Q8_K, kQK_K));

}  // namespace

const DTypeTraits* dtype_find(uint32_t id) {
    for (const DTypeTraits& traits : kTraits) {
        if (static_cast<uint32_t>(traits.type) == id) return &traits;
    }
    return nullptr;
}

const DTypeTraits& dtype_traits(DType type) {
    const DTypeTraits* traits = dtype_find(static_cast<uint32_t>(type));
    SIFT_CHECK(traits != nullptr, "unknown dtype id {}", static_cast<uint32_t>(type));
    return *traits;
}

std::string_view dtype_name(DType type) { return dtype_traits(type).name; }

std::optional<DType> dtype_from_name(std::string_view name) {
    for (const DTypeTraits& traits : kTraits) {
        if (traits.name == name) return traits.type;
    }
    return std::nullopt;
}

std::optional<int64_t> dtype_row_bytes(DType type, int64_t n) {
    const DTypeTraits& traits = dtype_traits(type);
    if (n < 0 || n % traits.block_size != 0) return std::nullopt;
    return n / traits.block_size * traits.block_bytes;
}

}  // namespace sift
