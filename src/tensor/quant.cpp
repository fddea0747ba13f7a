#include "tensor/quant.h"

#include <bit>
#include <cstring>

#include "core/check.h"
#include "tensor/quant_blocks.h"

namespace sift {

float fp16_to_fp32(uint16_t h) {
    // Shift exponent and mantissa into float position and rebias (15 -> 127); the only special
    // cases are chosen with selects, not branches, since F16 weights are dequantized in bulk.
    constexpr uint32_t kExpMask = 0x7C00u << 13;  // half exponent bits, in float position
    const uint32_t bits = static_cast<uint32_t>(h & 0x7FFF) << 13;
    const uint32_t exp = bits & kExpMask;
    uint32_t out = bits + ((127 - 15) << 23);
    if (exp == kExpMask) out += (128 - 16) << 23;  // inf/NaN: exponent to 255, payload kept
    // Zero/subnormal: read as a float with exponent 2^-14 and an implicit 1, then subtract that 1
    // (2^-14 exactly); the subtraction is exact.
    const float sub = std::bit_cast<float>(out + (1u << 23)) - std::bit_cast<float>(113u << 23);
    out = exp == 0 ? std::bit_cast<uint32_t>(sub) : out;
    return std::bit_cast<float>(out | static_cast<uint32_t>(h & 0x8000) << 16);
}

uint16_t fp32_to_fp16(float f) {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
    const uint32_t ax = x & 0x7FFFFFFF;
    if (ax > 0x7F800000) {
        // NaN: top mantissa bits kept, forced non-zero, quiet bit not forced (as numpy's astype).
        uint16_t h = static_cast<uint16_t>(0x7C00 | ((ax & 0x7FFFFF) >> 13));
        if (h == 0x7C00) h = 0x7C01;
        return sign | h;
    }
    if (ax >= 0x477FF000) return sign | 0x7C00;  // >= 65520 rounds to inf (inf included)
    if (ax >= 0x38800000) {
        // Normal half: rebias the exponent (127 -> 15), round 13 dropped bits to nearest even;
        // a carry out of the mantissa correctly bumps the exponent.
        const uint32_t r = ax - 0x38000000;
        uint32_t h = r >> 13;
        const uint32_t rest = r & 0x1FFF;
        if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;
        return sign | static_cast<uint16_t>(h);
    }
    if (ax <= 0x33000000) return sign;  // <= 2^-25: ties to even give zero
    // Subnormal half: units of 2^-24. man24 * 2^(e-150) = (man24 >> (126 - e)) units.
    const uint32_t e = ax >> 23;
    const uint32_t man = (ax & 0x7FFFFF) | 0x800000;
    const uint32_t shift = 126 - e;  // 14..24
    uint32_t h = man >> shift;
    const uint32_t rest = man & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (h & 1))) ++h;  // may become 0x400, the smallest normal
    return sign | static_cast<uint16_t>(h);
}

float bf16_to_fp32(uint16_t h) {
    return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

uint16_t fp32_to_bf16(float f) {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    // NaN: truncate and set the quiet bit, so rounding can never turn it into inf.
    if ((x & 0x7FFFFFFF) > 0x7F800000) return static_cast<uint16_t>((x >> 16) | 0x40);
    // Round to nearest even; no overflow in 32 bits since x <= 0xFF800000 here.
    return static_cast<uint16_t>((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
}

namespace {

void check_row(DType type, int64_t n) {
    const DTypeTraits& traits = dtype_traits(type);
    SIFT_CHECK(traits.computable, "dtype {} has no quantize/dequantize", traits.name);
    SIFT_CHECK(n >= 0 && n % traits.block_size == 0,
               "row of {} elements is not a multiple of {} "
               "({} block size {})",
               n, traits.block_size, traits.name, traits.block_size);
}

}  // namespace

void dequantize_row(DType type, const void* src, float* dst, int64_t n) {
    check_row(type, n);
    const int64_t nb = n / dtype_traits(type).block_size;
    switch (type) {
        case DType::F32:
            std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
            return;
        case DType::F16: {
            const auto* h = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(h[i]);
            return;
        }
        case DType::BF16: {
            const auto* h = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(h[i]);
            return;
        }
        case DType::Q4_0:
            return dequantize_q4_0(static_cast<const block_q4_0*>(src), dst, nb);
        case DType::Q4_1:
            return dequantize_q4_1(static_cast<const block_q4_1*>(src), dst, nb);
        case DType::Q5_0:
            return dequantize_q5_0(static_cast<const block_q5_0*>(src), dst, nb);
        case DType::Q5_1:
            return dequantize_q5_1(static_cast<const block_q5_1*>(src), dst, nb);
        case DType::Q8_0:
            return dequantize_q8_0(static_cast<const block_q8_0*>(src), dst, nb);
        case DType::Q4_K:
            return dequantize_q4_K(static_cast<const block_q4_K*>(src), dst, nb);
        case DType::Q5_K:
            return dequantize_q5_K(static_cast<const block_q5_K*>(src), dst, nb);
        case DType::Q6_K:
            return dequantize_q6_K(static_cast<const block_q6_K*>(src), dst, nb);
        case DType::Q8_K:
            return dequantize_q8_K(static_cast<const block_q8_K*>(src), dst, nb);
        default:
            break;
    }
    SIFT_CHECK(false, "dequantize_row: no case for computable dtype {}", dtype_name(type));
}

void quantize_row(DType type, const float* src, void* dst, int64_t n) {
    check_row(type, n);
    const int64_t nb = n / dtype_traits(type).block_size;
    switch (type) {
        case DType::F32:
            std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
            return;
        case DType::F16: {
            auto* h = static_cast<uint16_t*>(dst);
            for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(src[i]);
            return;
        }
        case DType::BF16: {
            auto* h = static_cast<uint16_t*>(dst);
            for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_bf16(src[i]);
            return;
        }
        case DType::Q4_0:
            return quantize_q4_0(src, static_cast<block_q4_0*>(dst), nb);
        case DType::Q4_1:
            return quantize_q4_1(src, static_cast<block_q4_1*>(dst), nb);
        case DType::Q5_0:
            return quantize_q5_0(src, static_cast<block_q5_0*>(dst), nb);
        case DType::Q5_1:
            return quantize_q5_1(src, static_cast<block_q5_1*>(dst), nb);
        case DType::Q8_0:
            return quantize_q8_0(src, static_cast<block_q8_0*>(dst), nb);
        case DType::Q4_K:
            return quantize_q4_K(src, static_cast<block_q4_K*>(dst), nb);
        case DType::Q5_K:
            return quantize_q5_K(src, static_cast<block_q5_K*>(dst), nb);
        case DType::Q6_K:
            return quantize_q6_K(src, static_cast<block_q6_K*>(dst), nb);
        case DType::Q8_K:
            return quantize_q8_K(src, static_cast<block_q8_K*>(dst), nb);
        default:
            break;
    }
    SIFT_CHECK(false, "quantize_row: no case for computable dtype {}", dtype_name(type));
}

}  // namespace sift
