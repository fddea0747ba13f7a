// Internal interface of the matmul family (cuda_matmul.cu, cuda_matvec.cu, cuda_get_rows.cu).
#pragma once

#include "backend/cuda/cuda_context.h"
#include "tensor/tensor.h"

namespace sift::cuda {

// Largest token count the matvec kernels take in one pass (columns held in registers).
inline constexpr int kMatvecMaxCols = 8;

// out[:, t] = W x[:, t] for T <= kMatvecMaxCols: w [k, n], x F32 [k, T], out F32 [n, T]; shapes
// checked by cuda_matmul.
// cuda_matvec.cu: any computable type, weights dequantized exactly, F32 FMA.
void cuda_matvec_f32(CudaContext& ctx, const Tensor& w, const Tensor& x, Tensor out);
// cuda_matvec_q8.cu: x quantized to int8 per 32 values, dp4a; Q4_K and Q5_K (16-byte aligned rows),
// Q6_K, Q8_0 and Q4_0 only.
bool matvec_q8_supported(const Tensor& w);
void cuda_matvec_q8(CudaContext& ctx, const Tensor& w, const Tensor& x, Tensor out);
// outs[i] = ws[i] x, i < n, all matvec_q8_supported: x quantized once for all of them.
void cuda_matvec_q8_shared(CudaContext& ctx, const Tensor* ws, size_t n, const Tensor& x,
                           Tensor* outs);

// matmul_gated (ops.h) on the matvec kernels, T <= kMatvecGatedMaxCols: out F32 [n, T] =
// act(w_gate x) * (w_up x), the two weights of one type and layout; each warp reads the same
// rows of both and never writes the products.
inline constexpr int kMatvecGatedMaxCols = 4;
struct MatvecGated {
    const uint8_t* w2 = nullptr;  // the up rows (w's shape and stride); null: a plain product
    bool gelu = false;
};
void cuda_matvec_gated_f32(CudaContext& ctx, const Tensor& w_gate, const Tensor& w_up,
                           const Tensor& x, bool gelu, Tensor out);
void cuda_matvec_q8_gated(CudaContext& ctx, const Tensor& w_gate, const Tensor& w_up,
                          const Tensor& x, bool gelu, Tensor out);

// Several weights of one type, k and row stride in one matvec launch (matmul_shared: q/k/v):
// grid row blockIdx.y = i computes matrix i (n[i] rows, output out[i] with column stride
// out_stride[i] floats); grid.x covers the largest. count 0: the launch's own single matrix.
inline constexpr int kMatvecSegments = 3;
struct MatvecSegments {
    int count = 0;
    const uint8_t* w[kMatvecSegments] = {};
    float* out[kMatvecSegments] = {};
    int64_t out_stride[kMatvecSegments] = {};
    int64_t n[kMatvecSegments] = {};
    // The rows grid.x must cover: the largest matrix's (own: the launch's single matrix).
    int64_t max_rows(int64_t own) const {
        for (int i = 0; i < count; ++i) own = own > n[i] ? own : n[i];
        return own;
    }
};
// The segments of weights ws[0..n) (2..kMatvecSegments of them, one type and layout, checked by
// the caller) into outs[0..n) (F32, column stride outs[i].nb[1]); each weight's alignment is
// checked.
MatvecSegments matvec_segments(const Tensor* ws, const Tensor* outs, size_t n);
// outs[i] = ws[i] x on the float matvec kernel in one launch: 2..kMatvecSegments weights of one
// type, shape and row stride, T <= kMatvecMaxCols.
void cuda_matvec_f32_shared(CudaContext& ctx, const Tensor* ws, size_t n, const Tensor& x,
                            Tensor* outs);

// W [k, n] of any computable type -> dst bf16 row-major [n][k] (n * k elements), exact
// dequantization rounded once to bf16. The first step of the GEMM path; public for the bench.
void cuda_dequantize_bf16(CudaContext& ctx, const Tensor& w, void* dst);

// Aborts unless w's rows are aligned for the device loads of cuda_dequant.cuh.
void check_weight_alignment(const Tensor& w, const char* op);

}  // namespace sift::cuda
