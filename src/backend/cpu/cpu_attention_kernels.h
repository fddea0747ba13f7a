// Inner loops of CPU attention over one block of cells, per ISA. Layouts (all F32):
//   qt [rows_pad, head_dim]  queries transposed: qt[d * rows_pad + i], rows_pad a multiple of 8
//   kb, vb [head_dim, n]     one cell's key/value row per j: kb[j * head_dim + d]
//   st [rows_pad, n]         scores transposed: st[j * rows_pad + i] (rows contiguous, so the
//                            softmax statistics of 8 query rows are one vector)
//   o [head_dim, rows]       output accumulator o[i * head_dim + d]
#pragma once

#include <cstdint>

namespace sift::cpu {

struct AttentionKernels {
    // st[j][i] = sum_d kb[j][d] * qt[d][i] for j < n, i < rows_pad.
    void (*qk)(const float* qt, const float* kb, int64_t n, int64_t head_dim, int64_t rows_pad,
               float* st);
    // Online softmax over the block for every row i < rows_pad: m_new = max(m, max_j st[j][i]),
    // st[j][i] = exp(st[j][i] - m_new), alpha[i] = exp(m - m_new), l = l * alpha + sum_j st,
    // m = m_new. Rows that have seen only -inf keep m = -inf, l = 0 and get st = 0.
    void (*softmax)(float* st, int64_t n, int64_t rows_pad, float* m, float* l, float* alpha);
    // o[i][d] = o[i][d] * alpha[i] + sum_j st[j][i] * vb[j][d] for i < rows.
    void (*pv)(const float* st, const float* vb, int64_t n, int64_t head_dim, int64_t rows,
               int64_t rows_pad, const float* alpha, float* o);
    // dst[i] = F16 src[i] as F32.
    void (*f16_to_f32)(const uint16_t* src, float* dst, int64_t n);
};

const AttentionKernels& attention_kernels_scalar();
const AttentionKernels& attention_kernels_avx2();  // only after cpu_isa_detect() says AVX2

}  // namespace sift::cpu
