// Element types: the GGML type ids used by GGUF, and one traits table describing them.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace sift {

// Values are the on-disk GGML type ids (gaps are ids ggml retired).
enum class DType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
    NVFP4 = 40,
    Q1_0 = 41,
};

struct DTypeTraits {
    DType type;
    std::string_view name;  // lowercase, as llama.cpp prints it ("q4_k")
    int64_t block_size;     // elements per block
    int64_t block_bytes;    // bytes per block
    bool quantized;
    bool computable;  // sift has quantize/dequantize (and kernels) for it
};

// Traits of a known type; nullptr for ids not in the table (check before use on file input).
const DTypeTraits* dtype_find(uint32_t id);
// Traits of a known type (programmer error if unknown).
const DTypeTraits& dtype_traits(DType type);
std::string_view dtype_name(DType type);
std::optional<DType> dtype_from_name(std::string_view name);

// Bytes of a row of n elements; nullopt when n is not a multiple of the block size.
std::optional<int64_t> dtype_row_bytes(DType type, int64_t n);

}  // namespace sift
