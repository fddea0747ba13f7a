// A Q8_0 KV cache on the GPU (cuda_kv_quant.cu): what the attention entry points share.
#pragma once

#include "backend/cuda/cuda_context.h"
#include "backend/ops.h"

namespace sift::cuda {

// `in` with each Q8_0 K/V converted to F16 over cells [cell_begin, cell_end) into the context's
// KV scratch (each value d * q rounded to F16 once: fp32_to_fp16 of the dequantized value), and
// every cell-indexed view rebased so that the range starts at cell 0 (masks are relative to
// cell_begin already). F16/F32 sides are rebased views of the cache; with_v false (the probe
// and the block selection read only K) leaves v empty. Grows the scratch as needed: under a
// graph capture a growth fails the capture cleanly (cuda_context.h GraphEpoch).
AttentionInputs kv_q8_0_to_f16(CudaContext& ctx, const AttentionInputs& in, bool with_v);

}  // namespace sift::cuda
