// Decode-path matmul: out[:, t] = W x[:, t] for T <= 8 tokens, every weight type.
//
// Memory-bound: each weight byte is read once per call, so the kernel's job is to keep enough
// bytes in flight and to decode them cheaply. Layout: a warp owns kRowsPerWarp rows; lane l walks
// the groups of 8 elements g = l, l + 32, ... of those rows, so a warp-wide load covers 32
// consecutive groups (one Q4_K/Q6_K super-block, four legacy blocks) and is coalesced; the
// activations of a group are loaded once (float4, L1/L2-resident) and reused for every row of the
// warp; partial sums are reduced with shuffles at the end.
//
// Weights are dequantized to F32 exactly (cuda_dequant.cuh, int->float by the exact 2^23 trick
// rather than the quarter-rate I2F unit) and dotted with F32 FMAs: within ~1e-6 of the exact CPU
// reference. Measured on an H200 (copy ceiling 4.24 TB/s, bench/cuda_matmul_bench.cpp, T = 1,
// 8B shapes): F32 3.9 TB/s (93%), BF16 3.0-3.3 (71-79%), F16 2.3-2.5 (55-60%), Q8_0 1.5-1.9
// (36-45%), Q4_0/Q4_1/Q5_0/Q5_1 0.84-0.90 (20-21%), Q5_K 0.63-0.70 (15-17%); Q4_K/Q5_K/Q6_K/
// Q8_0/Q4_0 run the int8 kernels of cuda_matvec_q8.cu instead (1.3-2.5x faster on them). The quant
// types are bound by load instructions (header and 2-byte-aligned fields read piecewise: L1
// serves one wavefront per clock) and by the short life of each warp (a 2-10 KB row pair, a
// few DRAM round trips in turn); the next step is staging rows through shared memory with
// cp.async/TMA in 16-byte pieces and persistent CTAs. An L2 prefetch of each warp's rows at its
// start was tried and lost 5-30%.
#include <algorithm>
#include <cstdint>

#include "backend/cuda/cuda_dequant.cuh"
#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/cuda_matmul.cuh"
#include "backend/cuda/cuda_rows.cuh"
#include "core/check.h"

namespace sift::cuda {
namespace {

using Gated = MatvecGated;

constexpr int kWarpsPerBlock = 4;
constexpr int kRowsPerWarp = 2;  // shares each activation load between two rows

// Groups of 8 a lane decodes per step: the weight loads of a step are issued together before any
// is used, so each lane keeps ~32-64 bytes in flight (what the 4+ TB/s of HBM needs with the
// warps an SM holds); F32 groups are 32 bytes already.
template <DType TYPE>
constexpr int groups_per_step() {
    return TYPE == DType::F32 ? 1 : (TYPE == DType::F16 || TYPE == DType::BF16) ? 2 : 4;
}

template <int NT>
__device__ __forceinline__ void matvec_fma(const float* __restrict__ x, int64_t x_stride, int64_t k,
                                           int64_t g, int nt, bool x_vec,
                                           const float (&wv)[kRowsPerWarp][8],
                                           float (&acc)[kRowsPerWarp][NT]) {
#pragma unroll
    for (int c = 0; c < NT; ++c) {
        if (c >= nt) break;
        const float* xc = x + c * x_stride + 8 * g;
        float xv[8];
        if (x_vec) {  // k % 8 == 0 and 16-byte aligned columns
            const float4 a = __ldg(reinterpret_cast<const float4*>(xc));
            const float4 b = __ldg(reinterpret_cast<const float4*>(xc) + 1);
            xv[0] = a.x, xv[1] = a.y, xv[2] = a.z, xv[3] = a.w;
            xv[4] = b.x, xv[5] = b.y, xv[6] = b.z, xv[7] = b.w;
        } else {
#pragma unroll
            for (int i = 0; i < 8; ++i) xv[i] = 8 * g + i < k ? __ldg(xc + i) : 0.0f;
        }
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
            for (int i = 0; i < 8; ++i) acc[r][c] = fmaf(wv[r][i], xv[i], acc[r][c]);
        }
    }
}

// The lane's partial sums over groups g = lane, lane + 32, ... of its warp's rows.
template <DType TYPE, bool kVec, int NT>
__device__ __forceinline__ void matvec_rows(const uint8_t* const (&w_row)[kRowsPerWarp], int64_t k,
                                            const float* __restrict__ x, int64_t x_stride, int nt,
                                            bool x_vec, int lane, float (&acc)[kRowsPerWarp][NT]) {
    constexpr int U = groups_per_step<TYPE>();
    const int64_t n_groups = (k + 7) / 8;
    int64_t g = lane;
    for (; g + 32 * (U - 1) < n_groups; g += 32 * U) {
        float wv[U][kRowsPerWarp][8];
#pragma unroll
        for (int j = 0; j < U; ++j) {
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; ++r) {
                dequant8<TYPE, kVec>(w_row[r], g + 32 * j, k, wv[j][r]);
            }
        }
#pragma unroll
        for (int j = 0; j < U; ++j)
            matvec_fma<NT>(x, x_stride, k, g + 32 * j, nt, x_vec, wv[j], acc);
    }
    for (; g < n_groups; g += 32) {
        float wv[kRowsPerWarp][8];
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) dequant8<TYPE>(w_row[r], g, k, wv[r]);
        matvec_fma<NT>(x, x_stride, k, g, nt, x_vec, wv, acc);
    }
}

// w [k, n] rows of w_stride bytes; x F32 [k, nt] (column stride x_stride floats); out F32
// [n, nt] (column stride out_stride floats). NT >= nt is the compiled column count. w_vec: float
// weights with 16-byte aligned rows and k % 8 == 0.
template <DType TYPE, int NT>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    matvec_kernel(const uint8_t* __restrict__ w, int64_t w_stride, int64_t n, int64_t k,
                  const float* __restrict__ x, int64_t x_stride, float* __restrict__ out,
                  int64_t out_stride, int nt, bool x_vec, bool w_vec, Gated gated,
                  MatvecSegments segs) {
    pdl_prologue();
    const int lane = threadIdx.x & 31;
    // Gated: the warp's two rows are row0 of w (gate) and of gated.w2 (up).
    const int64_t warp_id = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
    if (segs.count > 0) {  // several matrices: grid row blockIdx.y's
        w = pick3(segs.w, blockIdx.y);
        out = pick3(segs.out, blockIdx.y);
        out_stride = pick3(segs.out_stride, blockIdx.y);
        n = pick3(segs.n, blockIdx.y);
    }
    const int64_t row0 = gated.w2 != nullptr ? warp_id : warp_id * kRowsPerWarp;
    if (row0 >= n) return;
    const int n_rows = n - row0 < kRowsPerWarp ? static_cast<int>(n - row0) : kRowsPerWarp;
    const uint8_t* w_row[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) w_row[r] = w + (row0 + (r < n_rows ? r : 0)) * w_stride;
    static_assert(kRowsPerWarp == 2, "gated: one row of each matrix");
    if (gated.w2 != nullptr) {
        w_row[0] = w + row0 * w_stride;
        w_row[1] = gated.w2 + row0 * w_stride;
    }

    float acc[kRowsPerWarp][NT] = {};
    constexpr bool kFloat = TYPE == DType::F32 || TYPE == DType::F16 || TYPE == DType::BF16;
    if constexpr (kFloat) {
        if (w_vec) {
            matvec_rows<TYPE, true, NT>(w_row, k, x, x_stride, nt, x_vec, lane, acc);
        } else {
            matvec_rows<TYPE, false, NT>(w_row, k, x, x_stride, nt, x_vec, lane, acc);
        }
    } else {
        matvec_rows<TYPE, false, NT>(w_row, k, x, x_stride, nt, x_vec, lane, acc);
    }
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
        for (int c = 0; c < NT; ++c) {
            float s = acc[r][c];
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xFFFFFFFFu, s, o);
            acc[r][c] = s;
        }
    }
    if (gated.w2 != nullptr) {
        if (lane < nt) {
            float g = 0, u = 0;
#pragma unroll
            for (int c = 0; c < NT; ++c) {
                if (lane == c) g = acc[0][c], u = acc[1][c];
            }
            out[lane * out_stride + row0] = gated_act(g, u, gated.gelu);
        }
        return;
    }
    if (lane < n_rows * NT) {  // lane r * NT + c writes out[row0 + r, c]
        float v = 0;
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
            for (int c = 0; c < NT; ++c) {
                if (lane == r * NT + c) v = acc[r][c];
            }
        }
        const int r = lane / NT, c = lane % NT;
        if (c < nt) out[c * out_stride + row0 + r] = v;
    }
}

template <DType TYPE>
void launch_matvec(CudaContext& ctx, const Tensor& w, const Tensor& x, Tensor out, Gated gated = {},
                   MatvecSegments segs = {}) {
    const int64_t k = w.ne[0], n = w.ne[1];
    const int nt = static_cast<int>(x.ne[1]);
    const bool x_vec =
        k % 8 == 0 && x.nb[1] % 16 == 0 && reinterpret_cast<uintptr_t>(x.data) % 16 == 0;
    bool w_vec = k % 8 == 0 && w.nb[1] % 16 == 0 && reinterpret_cast<uintptr_t>(w.data) % 16 == 0;
    for (int i = 0; i < segs.count; ++i)
        w_vec = w_vec && reinterpret_cast<uintptr_t>(segs.w[i]) % 16 == 0;
    const dim3 grid(grid_1d(segs.max_rows(n),
                            gated.w2 != nullptr ? kWarpsPerBlock : kWarpsPerBlock * kRowsPerWarp),
                    std::max(1, segs.count));
    const auto* wp = static_cast<const uint8_t*>(w.data);
    const float* xp = x.ptr<const float>();
    float* op = out.ptr<float>();
    const int64_t xs = x.nb[1] / 4, os = out.nb[1] / 4;
    // Compiled column counts 1, 2, 4, 8: T = 3 runs the 4-column kernel with one column masked.
    const int threads = kWarpsPerBlock * 32;
    if (nt == 1) {
        launch_pdl(ctx, &matvec_kernel<TYPE, 1>, grid, dim3(threads), 0, wp, w.nb[1], n, k, xp, xs,
                   op, os, nt, x_vec, w_vec, gated, segs);
    } else if (nt == 2) {
        launch_pdl(ctx, &matvec_kernel<TYPE, 2>, grid, dim3(threads), 0, wp, w.nb[1], n, k, xp, xs,
                   op, os, nt, x_vec, w_vec, gated, segs);
    } else if (nt <= 4) {
        launch_pdl(ctx, &matvec_kernel<TYPE, 4>, grid, dim3(threads), 0, wp, w.nb[1], n, k, xp, xs,
                   op, os, nt, x_vec, w_vec, gated, segs);
    } else {
        launch_pdl(ctx, &matvec_kernel<TYPE, 8>, grid, dim3(threads), 0, wp, w.nb[1], n, k, xp, xs,
                   op, os, nt, x_vec, w_vec, gated, segs);
    }
    SIFT_CUDA_LAUNCH_CHECK();
}

}  // namespace

void cuda_matvec_f32(CudaContext& ctx, const Tensor& w, const Tensor& x, Tensor out) {
    SIFT_CHECK(x.ne[1] >= 1 && x.ne[1] <= kMatvecMaxCols, "matvec: {} columns", x.ne[1]);
    check_weight_alignment(w, "matmul");
    const bool ok = dispatch_weight_type(
        w.type, [&](auto tag) { launch_matvec<decltype(tag)::value>(ctx, w, x, out); });
    SIFT_CHECK(ok, "matmul: no CUDA kernel for {}", dtype_name(w.type));
}

void cuda_matvec_f32_shared(CudaContext& ctx, const Tensor* ws, size_t n, const Tensor& x,
                            Tensor* outs) {
    SIFT_CHECK(x.ne[1] >= 1 && x.ne[1] <= kMatvecMaxCols, "matvec: {} columns", x.ne[1]);
    for (size_t i = 0; i < n; ++i) {
        SIFT_CHECK(
            ws[i].type == ws[0].type && ws[i].ne[0] == ws[0].ne[0] && ws[i].nb[1] == ws[0].nb[1],
            "matvec: shared weights differ in type, k or row stride");
    }
    const MatvecSegments segs = matvec_segments(ws, outs, n);
    const bool ok = dispatch_weight_type(ws[0].type, [&](auto tag) {
        launch_matvec<decltype(tag)::value>(ctx, ws[0], x, outs[0], Gated{}, segs);
    });
    SIFT_CHECK(ok, "matmul: no CUDA kernel for {}", dtype_name(ws[0].type));
}

void cuda_matvec_gated_f32(CudaContext& ctx, const Tensor& w_gate, const Tensor& w_up,
                           const Tensor& x, bool gelu, Tensor out) {
    SIFT_CHECK(x.ne[1] >= 1 && x.ne[1] <= kMatvecGatedMaxCols, "matmul_gated: {} columns", x.ne[1]);
    SIFT_CHECK(w_up.type == w_gate.type && w_up.ne == w_gate.ne && w_up.nb == w_gate.nb,
               "matmul_gated: gate and up weights differ in type or layout");
    check_weight_alignment(w_gate, "matmul");
    check_weight_alignment(w_up, "matmul");
    const Gated gated{static_cast<const uint8_t*>(w_up.data), gelu};
    const bool ok = dispatch_weight_type(w_gate.type, [&](auto tag) {
        launch_matvec<decltype(tag)::value>(ctx, w_gate, x, out, gated);
    });
    SIFT_CHECK(ok, "matmul: no CUDA kernel for {}", dtype_name(w_gate.type));
}

}  // namespace sift::cuda
