// Scalar quantize/dequantize for every computable dtype: the ground truth other backends match.
// Block layouts are the GGML formats bit for bit (see quant_blocks.h).
#pragma once

#include <cstdint>

#include "tensor/dtype.h"

namespace sift {

// IEEE half and bfloat16 conversions (round to nearest even; NaN stays NaN).
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

// n must be a multiple of the type's block size and the type computable (programmer errors).
void dequantize_row(DType type, const void* src, float* dst, int64_t n);
void quantize_row(DType type, const float* src, void* dst, int64_t n);

}  // namespace sift
