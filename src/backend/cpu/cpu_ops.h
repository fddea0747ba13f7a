// The CPU implementations of ops.h, one function per op over a CpuContext. CpuBackend forwards to
// these; tests call them directly to exercise both ISAs and both matmul modes.
#pragma once

#include "backend/cpu/cpu_context.h"
#include "backend/ops.h"
#include "tensor/tensor.h"

namespace sift::cpu {

// cpu_matmul.cpp: w [k, n] any computable type, x F32 [k, T] -> out F32 [n, T].
void cpu_matmul(CpuContext& ctx, const Tensor& w, const Tensor& x, Tensor out);

// cpu_attention.cpp: q F32 [head_dim, n_head, T], K/V [head_dim, n_head_kv, n_cells] -> out F32
// [head_dim, n_head, T]; a token with no visible cell gets zeros.
void cpu_attention(CpuContext& ctx, const AttentionInputs& in, const AttentionParams& params,
                   Tensor out);

// cpu_attention_probe.cpp: q F32 [head_dim, n_head, n_q] -> running max probs_max F32
// [cell_end - cell_begin, n_q] (ops.h attention_probe).
void cpu_attention_probe(CpuContext& ctx, const AttentionInputs& in, const AttentionParams& params,
                         const RopeParams* unrope, Tensor probs_max);

// cpu_attention_block.cpp: block-sparse selection (ops.h attention_block_select) -> block_mask
// I8 [n_kblocks, n_qblocks, n_head].
void cpu_attention_block_select(CpuContext& ctx, const AttentionInputs& in,
                                const AttentionParams& params, const BlockSparseParams& bs,
                                int64_t n_qblocks_total, Tensor block_mask);
// The batch's block geometry under the ops.h contract (errors when the batch is not one
// sequence with contiguous positions), and the check of a block mask's shape against it.
struct BlockGeometry {
    int32_t pos_first = 0, pos_last = 0, seq = 0;
    int64_t m0 = 0;  // global query block of the first token
    int64_t n_qblocks = 0, n_kblocks = 0;
};
BlockGeometry block_geometry(const AttentionInputs& in, int32_t block);
void check_block_mask(const Tensor& mask, const AttentionInputs& in, const BlockGeometry& g);

// cpu_elementwise.cpp (shapes as in ops.h)
// table [width, n_rows] any computable type, ids I32 [n] -> out F32 [width, n].
void cpu_get_rows(CpuContext& ctx, const Tensor& table, const Tensor& ids, Tensor out);
// a, out F32 [n, rows...]; b [n, rows...] or [n].
void cpu_add(CpuContext& ctx, const Tensor& a, const Tensor& b, Tensor out);
void cpu_mul(CpuContext& ctx, const Tensor& a, const Tensor& b, Tensor out);
void cpu_scale(CpuContext& ctx, const Tensor& x, float s, Tensor out);
// x, out F32 [n, T]; w F32 [n] or null.
void cpu_rms_norm(CpuContext& ctx, const Tensor& x, const Tensor* w, float eps, Tensor out);
// x, out F32 [head_dim, n_head, T]; pos I32 [T].
void cpu_rope(CpuContext& ctx, const Tensor& x, const Tensor& pos, const RopeParams& params,
              Tensor out);
// gate, up, out F32 [n, T].
void cpu_swiglu(CpuContext& ctx, const Tensor& gate, const Tensor& up, Tensor out);
void cpu_geglu(CpuContext& ctx, const Tensor& gate, const Tensor& up, Tensor out);
// src F32 [w, T], idx I32 [T], dst F32/F16/Q8_0 [w, n_rows].
void cpu_set_rows(CpuContext& ctx, const Tensor& src, const Tensor& idx, Tensor dst);
// cpu_kv_quant.cpp: set_rows into Q8_0 rows (a Q8_0 KV cache), by the reference quantizer.
void cpu_set_rows_q8_0(CpuContext& ctx, const Tensor& src, const Tensor& idx, Tensor dst);
// x F32 [n, T] -> out I32 [T].
void cpu_argmax(CpuContext& ctx, const Tensor& x, Tensor out);

}  // namespace sift::cpu
