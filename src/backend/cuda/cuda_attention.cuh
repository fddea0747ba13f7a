// Shared by the attention kernels (cuda_attention*.cu): the flattened arguments, the visibility
// rule of ops.h, per-32-cell summaries used to skip tiles, and the kernel launchers.
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "backend/cuda/cuda_context.h"
#include "tensor/dtype.h"

namespace sift::cuda {

constexpr int kSpanCells = 32;            // cells summarised by one CellSpan
constexpr int32_t kSeqMixed = INT32_MIN;  // span holds several sequences
constexpr int32_t kSeqNone = -1;          // span holds no filled cell

// Summary of cells [cell_begin + 32 i, cell_begin + 32 (i + 1)): cells past cell_end count as
// empty.
struct CellSpan {
    int32_t seq;  // the one sequence, kSeqMixed or kSeqNone
    int32_t pos_min, pos_max;
    int32_t has_empty;
};

// Everything a kernel needs, strides in bytes; pos/seq arrays are contiguous.
struct AttnArgs {
    const float* q;  // [head_dim, n_head, n_tokens]
    int64_t q_nb1, q_nb2;
    const void* k;  // [head_dim, n_head_kv, n_cells] F16/F32/Q8_0
    int64_t k_nb1, k_nb2;
    const void* v;
    int64_t v_nb1, v_nb2;
    const int32_t* q_pos;  // [n_tokens]
    const int32_t* q_seq;
    const int32_t* cell_pos;  // [n_cells]
    const int32_t* cell_seq;
    int64_t cell_begin, cell_end;
    const float* mask;  // [cell_end - cell_begin, n_tokens] or null
    int64_t mask_nb1;
    float* out;  // [head_dim, n_head, n_tokens]
    int64_t out_nb1, out_nb2;
    int head_dim, n_head, n_head_kv, group, n_tokens;
    float scale, softcap;
    int window;
    const CellSpan* spans;  // [ceil((cell_end - cell_begin) / 32)] (tensor-core kernel only)
    // Block-sparse (ops.h; block kBsaBlock): I8 [n_kblocks, n_qblocks, n_head] or null.
    const int8_t* block_mask;
    int n_kblocks, n_qblocks;
};

constexpr int kBsaBlock = 128;  // the one block size of the CUDA block-sparse path

// Whether the block mask keeps the key block of cell c for query head h of a token at position
// tp. The batch's first position p0 places its query blocks; rows outside the mask read as kept.
__device__ __forceinline__ bool bsa_kept(const AttnArgs& a, int64_t c, int h, int32_t tp,
                                         int32_t p0) {
    const int m = tp / kBsaBlock - p0 / kBsaBlock;
    const int n = static_cast<int>((c - a.cell_begin) / kBsaBlock);
    if (m < 0 || m >= a.n_qblocks || n >= a.n_kblocks) return true;
    return a.block_mask[(static_cast<int64_t>(h) * a.n_qblocks + m) * a.n_kblocks + n] != 0;
}

// Empty cells (seq < 0) are never visible, even to a token of sequence -1 (as the CPU).
__device__ __forceinline__ bool attn_visible(int32_t cs, int32_t cp, int32_t ts, int32_t tp,
                                             int window) {
    return cs >= 0 && cs == ts && cp <= tp && (window == 0 || tp - cp < window);
}

// 16 bytes global -> shared without registers; src-size 0 (invalid) writes zeros.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
    const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src),
                 "r"(valid ? 16 : 0));
}
// 2^x with denormal results flushed to zero: one MUFU.EX2, where exp2f adds a range check and
// two multiplies around it (relative error ~2^-22). Results below 2^-126 are zero in F16 anyway.
__device__ __forceinline__ float exp2_ftz(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

__device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::);
}
// Waits for all but the most recent group.
__device__ __forceinline__ void cp_async_wait_1() {
    asm volatile("cp.async.wait_group 1;\n" ::);
}

// cuda_attention_vec.cu: any head_dim <= 256 (a multiple of 16 bytes of K/V), F16/F32 K and V,
// and Q8_0 beside Q8_0 or F16 from a 16-byte aligned cache (attention_vec_reads). One block per
// (token, KV head, up to 8 of its query heads, cell split). n_split > 1 writes partial (m, l,
// acc) rows to `partial` for attention_combine.
bool attention_vec_reads(DType k, DType v, const AttnArgs& a);
void attention_vec_launch(CudaContext& ctx, const AttnArgs& a, DType k, DType v, int n_split,
                          int tiles_per_split, float* partial);
constexpr int kVecTile = 32;  // cells per step of the vec kernel
constexpr int kVecRows = 8;   // query heads per vec block

// cuda_attention_mma.cu: F16 K/V, head_dim 64/128/256, tensor cores; needs a.spans.
bool attention_mma_supported(int head_dim);
// Split-KV for the tensor-core kernel: query blocks [split_from, attention_mma_qblocks) each
// run as n_split blocks over equal shares of the tiles they see, and write their partial
// softmax states (attention_combine's layout, row (qblk - split_from) * 128 + r of the block,
// then head, then split) to `partial` instead of the output. split_from = qblocks: no split.
struct MmaSplit {
    int split_from = 0;
    int n_split = 1;
    float* partial = nullptr;
};
// Query blocks of 128 tokens the kernel's grid has (block-sparse: the mask's rows).
int attention_mma_qblocks(const AttnArgs& a);
void attention_mma_launch(CudaContext& ctx, const AttnArgs& a, const MmaSplit& split);

}  // namespace sift::cuda
