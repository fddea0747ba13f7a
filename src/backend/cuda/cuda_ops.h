// The CUDA implementation of each op of backend/ops.h (same contracts, same shapes; tensors hold
// device pointers). Every op is queued on ctx.stream and returns without synchronizing.
#pragma once

#include "backend/cuda/cuda_context.h"
#include "backend/ops.h"

namespace sift::cuda {

// cuda_matmul.cu, cuda_matvec.cu, cuda_get_rows.cu (weights: every computable type)
void cuda_get_rows(CudaContext& ctx, const Tensor& table, const Tensor& ids, Tensor out);
void cuda_matmul(CudaContext& ctx, const Tensor& w, const Tensor& x, Tensor out);
// BF16 where cuda_matmul runs a bf16 GEMM (ops.h matmul_input_type), else F32.
DType cuda_matmul_input_type(const Tensor& w, int64_t n_tokens);
// ops.h attention_prep in one kernel (F16/F32 caches); false when the inputs need the composed
// ops (a Q8_0 cache, other layouts), which the caller then runs.
bool cuda_attention_prep(CudaContext& ctx, Tensor q, Tensor k, const Tensor& v, bool qk_norm,
                         const Tensor* q_norm, const Tensor* k_norm, float eps, const Tensor& pos,
                         const RopeParams& rope, const Tensor& cells, Tensor cache_k,
                         Tensor cache_v);
// ops.h matmul_gated: one matvec kernel for decode, BF16 products and one pass for prompts.
void cuda_matmul_gated(CudaContext& ctx, const Tensor& w_gate, const Tensor& w_up, const Tensor& x,
                       GatedAct act, Tensor gate, Tensor up, Tensor out);
// Several weights on one input (ops.h matmul_shared): GEMM-sized batches convert x to bf16 once.
void cuda_matmul_shared(CudaContext& ctx, const Tensor* ws, size_t n, const Tensor& x,
                        Tensor* outs);

// cuda_elementwise.cu
void cuda_add(CudaContext& ctx, const Tensor& a, const Tensor& b, Tensor out);
void cuda_mul(CudaContext& ctx, const Tensor& a, const Tensor& b, Tensor out);
void cuda_scale(CudaContext& ctx, const Tensor& x, float s, Tensor out);
void cuda_rms_norm(CudaContext& ctx, const Tensor& x, const Tensor* w, float eps, Tensor out);
void cuda_rope(CudaContext& ctx, const Tensor& x, const Tensor& pos, const RopeParams& params,
               Tensor out);
void cuda_swiglu(CudaContext& ctx, const Tensor& gate, const Tensor& up, Tensor out);
void cuda_geglu(CudaContext& ctx, const Tensor& gate, const Tensor& up, Tensor out);
void cuda_set_rows(CudaContext& ctx, const Tensor& src, const Tensor& idx, Tensor dst);
// cuda_kv_quant.cu: set_rows into Q8_0 rows (a Q8_0 KV cache), bit for bit the reference
// quantizer; cuda_set_rows forwards Q8_0 destinations here.
void cuda_set_rows_q8_0(CudaContext& ctx, const Tensor& src, const Tensor& idx, Tensor dst);
void cuda_argmax(CudaContext& ctx, const Tensor& x, Tensor out);

// cuda_fused_norm.cu
void cuda_add_rms_norm(CudaContext& ctx, const Tensor& a, const Tensor& b, const Tensor* w,
                       float eps, Tensor sum, Tensor out);
void cuda_rms_norm_rope(CudaContext& ctx, const Tensor& x, const Tensor* w, float eps,
                        const Tensor& pos, const RopeParams& params, Tensor out);

// cuda_attention.cu
void cuda_attention(CudaContext& ctx, const AttentionInputs& in, const AttentionParams& params,
                    Tensor out);

// cuda_attention_probe.cu (speculative prefill's importance probe)
void cuda_attention_probe(CudaContext& ctx, const AttentionInputs& in,
                          const AttentionParams& params, const RopeParams* unrope,
                          Tensor probs_max);

// cuda_attention_block.cu (block-sparse selection; block 128 only)
// The KeyMeansCache layout of cuda_attention_block_select: F16 means [n_head_kv][capacity]
// [head_dim], capacity = bytes / (n_head_kv * head_dim * 2) key blocks.
size_t cuda_key_means_bytes(int64_t head_dim, int64_t n_head_kv, int64_t n_kblocks);
// Backend::attention_scratch_bytes (cuda_kv_quant.cu): the F16 copies of the q8_0 sides.
size_t cuda_attention_scratch_bytes(int64_t kv_dim, int64_t n_cells, DType type_k, DType type_v);
void cuda_attention_block_select(CudaContext& ctx, const AttentionInputs& in,
                                 const AttentionParams& params, const BlockSparseParams& bs,
                                 int64_t n_qblocks_total, Tensor block_mask);

}  // namespace sift::cuda
