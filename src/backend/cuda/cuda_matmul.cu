// cuda_matmul: out[:, t] = W x[:, t]. Picks the matvec kernels (cuda_matvec.cu) for decode-sized
// batches, else dequantizes W to bf16 once and hands the product to cuBLAS.
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/cuda_dequant.cuh"
#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/cuda_matmul.cuh"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/cuda_rows.cuh"
#include "core/check.h"

namespace sift::cuda {
namespace {

// W [k, n] of any type -> dst bf16 row-major [n][k]: one thread per group of 8 elements, one
// 16-byte store each; a 2-D grid so no thread divides 64-bit indices (k is a multiple of 8 for
// every quant type; float types mask the tail).
template <DType TYPE>
__global__ void dequant_bf16_kernel(const uint8_t* __restrict__ w, int64_t w_stride, int64_t k,
                                    int64_t groups_per_row, __nv_bfloat16* __restrict__ dst) {
    const int64_t row = blockIdx.x;  // grid.x: rows (up to 2^31 - 1), grid.y: groups of a row
    const int64_t g = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
    if (g >= groups_per_row) return;
    float v[8];
    dequant8<TYPE>(w + row * w_stride, g, k, v);
    __nv_bfloat16* o = dst + row * k + 8 * g;
    if (k % 8 == 0) {
        __nv_bfloat162 p[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) p[j] = __floats2bfloat162_rn(v[2 * j], v[2 * j + 1]);
        *reinterpret_cast<uint4*>(o) = *reinterpret_cast<const uint4*>(p);
    } else {
        for (int j = 0; j < 8 && 8 * g + j < k; ++j) o[j] = __float2bfloat16_rn(v[j]);
    }
}

// x F32 [k, T] (column stride x_stride floats) -> dst bf16 [k, T] contiguous.
__global__ void f32_to_bf16_kernel(const float* __restrict__ x, int64_t x_stride, int64_t k,
                                   __nv_bfloat16* __restrict__ dst) {
    const int64_t t = blockIdx.x;  // grid.x: tokens, grid.y: elements of a column
    const int64_t e = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
    if (e < k) dst[t * k + e] = __float2bfloat16_rn(x[t * x_stride + e]);
}

// The same with 4 elements per thread (k and the stride multiples of 4, x 16-byte aligned).
__global__ void f32_to_bf16_vec_kernel(const float* __restrict__ x, int64_t x_stride, int64_t k,
                                       __nv_bfloat16* __restrict__ dst) {
    const int64_t t = blockIdx.x;
    const int64_t e = (static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x) * 4;
    if (e >= k) return;
    const float4 v = *reinterpret_cast<const float4*>(x + t * x_stride + e);
    __nv_bfloat162 p[2] = {__floats2bfloat162_rn(v.x, v.y), __floats2bfloat162_rn(v.z, v.w)};
    *reinterpret_cast<uint2*>(dst + t * k + e) = *reinterpret_cast<const uint2*>(p);
}

enum class MatmulPath { MATMUL_MATVEC_F32, MATMUL_MATVEC_Q8, MATMUL_SGEMM, MATMUL_BF16_GEMM };

// The one selection point.
// - T <= 8: the matvec kernels. Reading the weights dominates, and they read each byte once and
//   decode in registers; a GEMM would first write and re-read a bf16 copy (2-4x the bytes of a
//   4-6 bit matrix) for no gain at this width. Q4_K/Q5_K/Q6_K/Q8_0/Q4_0 take the int8-activation
//   dp4a kernels (cuda_matvec_q8.cu: the exact F32 decode is issue-bound below the bandwidth
//   target on these types, 2-3x slower); every other type the exact F32 kernels.
// - F32 weights: cuBLAS SGEMM on the weights as they are (no copy; F32 weights are rare and small).
// - Otherwise: dequantize W to bf16 in scratch (one pass over W, ~1/T of the GEMM time at
//   T = 512 for 8B shapes) and run a bf16 tensor-core GEMM with F32 accumulation and F32 output.
//   bf16 rather than f16: activations of LLMs carry outliers of 1e3-1e5 (massive activations;
//   the SwiGLU product feeding ffn_down), beyond or close to f16's 65504, while bf16 has F32's
//   range; its 8 significant bits cost up to 2^-8 relative error per input, which the F32
//   accumulation keeps at ~1e-3 of max |out| (parity test bound 1e-2), and both run at the same
//   tensor-core rate.
MatmulPath matmul_select(const Tensor& w, int64_t n_tokens) {
    if (n_tokens <= kMatvecMaxCols) {
        return matvec_q8_supported(w) ? MatmulPath::MATMUL_MATVEC_Q8
                                      : MatmulPath::MATMUL_MATVEC_F32;
    }
    if (w.type == DType::F32) return MatmulPath::MATMUL_SGEMM;
    return MatmulPath::MATMUL_BF16_GEMM;
}

}  // namespace

void cuda_dequantize_bf16(CudaContext& ctx, const Tensor& w, void* dst) {
    check_weight_alignment(w, "dequantize");
    const int64_t k = w.ne[0], n = w.n_rows();
    const int block = 256;
    const int64_t groups_per_row = (k + 7) / 8;
    if (n == 0 || groups_per_row == 0) return;
    const dim3 grid(static_cast<unsigned>(n), grid_1d(groups_per_row, block));
    const bool ok = dispatch_weight_type(w.type, [&](auto tag) {
        dequant_bf16_kernel<decltype(tag)::value>
            <<<grid, block, 0, ctx.stream>>>(static_cast<const uint8_t*>(w.data), w.nb[1], k,
                                             groups_per_row, static_cast<__nv_bfloat16*>(dst));
    });
    SIFT_CHECK(ok, "dequantize: no CUDA kernel for {}", dtype_name(w.type));
    SIFT_CUDA_LAUNCH_CHECK();
}

namespace {

// The shape and layout rules of ops.h matmul; false when there is nothing to compute.
bool check_matmul(const Tensor& w, const Tensor& x, const Tensor& out) {
    const int64_t k = w.ne[0], n = w.ne[1], n_tokens = x.ne[1];
    SIFT_CHECK((x.type == DType::F32 || x.type == DType::BF16) && out.type == DType::F32,
               "matmul: x must be F32 or BF16 and out F32");
    SIFT_CHECK(x.ne[0] == k && out.ne[0] == n && out.ne[1] == n_tokens,
               "matmul: w [{}, {}] x [{}, {}] -> out [{}, {}]", k, n, x.ne[0], x.ne[1], out.ne[0],
               out.ne[1]);
    SIFT_CHECK(w.ne[2] == 1 && w.ne[3] == 1 && x.ne[2] == 1 && x.ne[3] == 1 && out.ne[2] == 1 &&
                   out.ne[3] == 1,
               "matmul: 2-D tensors only");
    const int64_t xe = x.type == DType::BF16 ? 2 : 4;
    SIFT_CHECK(x.nb[0] == xe && out.nb[0] == 4 && x.nb[1] % xe == 0 && out.nb[1] % 4 == 0,
               "matmul: x and out rows must be contiguous");
    SIFT_CHECK(x.type == DType::F32 || matmul_select(w, n_tokens) == MatmulPath::MATMUL_BF16_GEMM,
               "matmul: BF16 x only where matmul_input_type gives it (a {} GEMM of {} tokens)",
               dtype_name(w.type), n_tokens);
    const DTypeTraits& traits = dtype_traits(w.type);
    SIFT_CHECK(w.nb[0] == traits.block_bytes && k % traits.block_size == 0,
               "matmul: w rows must be whole {} blocks", traits.name);
    SIFT_CHECK(n <= INT32_MAX && k <= INT32_MAX && n_tokens <= INT32_MAX, "matmul: too large");
    return n > 0 && n_tokens > 0 && k > 0;
}

// The GEMM's B operand: x itself when it is BF16 already (its producer wrote the GEMM's input
// type), else x F32 [k, T] converted to bf16 [k, T] contiguous in scratch_b.
struct Bf16Input {
    const __nv_bfloat16* ptr;
    int64_t ld;  // elements between columns
};
Bf16Input convert_x(CudaContext& ctx, const Tensor& x) {
    const int64_t k = x.ne[0], n_tokens = x.ne[1];
    if (x.type == DType::BF16) {
        SIFT_CHECK(reinterpret_cast<uintptr_t>(x.data) % 16 == 0 && x.nb[1] % 16 == 0,
                   "matmul: BF16 x must be 16-byte aligned");
        return {x.ptr<const __nv_bfloat16>(), x.nb[1] / 2};
    }
    auto* xb =
        static_cast<__nv_bfloat16*>(ctx.scratch_b.get(static_cast<size_t>(n_tokens * k) * 2));
    const int block = 256;
    if (k % 4 == 0 && x.nb[1] % 16 == 0 && reinterpret_cast<uintptr_t>(x.data) % 16 == 0) {
        f32_to_bf16_vec_kernel<<<dim3(static_cast<unsigned>(n_tokens), grid_1d(k / 4, block)),
                                 block, 0, ctx.stream>>>(x.ptr<const float>(), x.nb[1] / 4, k, xb);
    } else {
        f32_to_bf16_kernel<<<dim3(static_cast<unsigned>(n_tokens), grid_1d(k, block)), block, 0,
                             ctx.stream>>>(x.ptr<const float>(), x.nb[1] / 4, k, xb);
    }
    SIFT_CUDA_LAUNCH_CHECK();
    return {xb, k};
}

// out = W xb with xb the bf16 form of x (convert_x).
// out (n x T, column stride ldo elements of out_type: F32 or BF16) = W xb, F32 accumulation.
void gemm_bf16_to(CudaContext& ctx, const Tensor& w, Bf16Input xb, int64_t n_tokens, void* out,
                  cudaDataType out_type, int64_t ldo) {
    const int64_t k = w.ne[0], n = w.ne[1];
    // BF16 weights are used in place (row stride a whole number of elements, 16-byte aligned
    // as cuBLAS wants); other types are dequantized to a bf16 copy.
    const bool in_place =
        w.type == DType::BF16 && w.nb[1] % 16 == 0 && reinterpret_cast<uintptr_t>(w.data) % 16 == 0;
    const __nv_bfloat16* wb = w.ptr<const __nv_bfloat16>();
    int64_t ldw = w.nb[1] / 2;
    if (!in_place) {
        auto* copy = static_cast<__nv_bfloat16*>(ctx.scratch_a.get(static_cast<size_t>(n * k) * 2));
        cuda_dequantize_bf16(ctx, w, copy);
        wb = copy;
        ldw = k;
    }
    const float one = 1.0f, zero = 0.0f;
    // Column-major view: wb is k x n (ld ldw), xb is k x T (ld k); out (n x T) = wb^T xb.
    SIFT_CUBLAS_CHECK(cublasGemmEx(ctx.cublas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n),
                                   static_cast<int>(n_tokens), static_cast<int>(k), &one, wb,
                                   CUDA_R_16BF, static_cast<int>(ldw), xb.ptr, CUDA_R_16BF,
                                   static_cast<int>(xb.ld), &zero, out, out_type,
                                   static_cast<int>(ldo), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

void gemm_bf16(CudaContext& ctx, const Tensor& w, Bf16Input xb, int64_t n_tokens, Tensor out) {
    gemm_bf16_to(ctx, w, xb, n_tokens, out.data, CUDA_R_32F, out.nb[1] / 4);
}

// out[:, t] = act(g[:, t]) * u[:, t] from BF16 products [n, T] (contiguous): the GEMM path of
// matmul_gated. kVec: 8 values per thread (16-byte loads; n % 8 == 0 and 16-byte aligned out
// rows), else one.
template <bool kVec, typename OutT>
__global__ void gated_bf16_kernel(const __nv_bfloat16* __restrict__ g,
                                  const __nv_bfloat16* __restrict__ u, int64_t n, bool gelu,
                                  OutT* __restrict__ out, int64_t out_ld) {
    pdl_prologue();
    const int64_t t = blockIdx.x;
    const int64_t i =
        (static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x) * (kVec ? 8 : 1);
    if (i >= n) return;
    if constexpr (kVec) {
        const uint4 gr = *reinterpret_cast<const uint4*>(g + t * n + i);
        const uint4 ur = *reinterpret_cast<const uint4*>(u + t * n + i);
        const auto* gh = reinterpret_cast<const __nv_bfloat162*>(&gr);
        const auto* uh = reinterpret_cast<const __nv_bfloat162*>(&ur);
        float r[8];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const float2 gf = __bfloat1622float2(gh[j]), uf = __bfloat1622float2(uh[j]);
            r[2 * j] = gated_act(gf.x, uf.x, gelu);
            r[2 * j + 1] = gated_act(gf.y, uf.y, gelu);
        }
        store4(out + t * out_ld + i, make_float4(r[0], r[1], r[2], r[3]));
        store4(out + t * out_ld + i + 4, make_float4(r[4], r[5], r[6], r[7]));
    } else {
        store1(out + t * out_ld + i,
               gated_act(__bfloat162float(g[t * n + i]), __bfloat162float(u[t * n + i]), gelu));
    }
}

}  // namespace

DType cuda_matmul_input_type(const Tensor& w, int64_t n_tokens) {
    return matmul_select(w, n_tokens) == MatmulPath::MATMUL_BF16_GEMM ? DType::BF16 : DType::F32;
}

void cuda_matmul(CudaContext& ctx, const Tensor& w, const Tensor& x, Tensor out) {
    if (!check_matmul(w, x, out)) {
        if (w.ne[0] == 0 && w.ne[1] > 0 && x.ne[1] > 0)
            SIFT_CUDA_CHECK(
                cudaMemset2DAsync(out.data, out.nb[1], 0, w.ne[1] * 4, x.ne[1], ctx.stream));
        return;
    }
    check_weight_alignment(w, "matmul");
    const int64_t k = w.ne[0], n = w.ne[1], n_tokens = x.ne[1];
    const float one = 1.0f, zero = 0.0f;
    switch (matmul_select(w, n_tokens)) {
        case MatmulPath::MATMUL_MATVEC_F32:
            cuda_matvec_f32(ctx, w, x, out);
            return;
        case MatmulPath::MATMUL_MATVEC_Q8:
            cuda_matvec_q8(ctx, w, x, out);
            return;
        case MatmulPath::MATMUL_SGEMM:
            // Column-major: W is the k x n matrix with ld w.nb[1]/4, so out (n x T) = W^T x.
            SIFT_CHECK(w.nb[1] % 4 == 0, "matmul: F32 row stride");
            SIFT_CUBLAS_CHECK(cublasSgemm(
                ctx.cublas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n),
                static_cast<int>(n_tokens), static_cast<int>(k), &one, w.ptr<const float>(),
                static_cast<int>(w.nb[1] / 4), x.ptr<const float>(), static_cast<int>(x.nb[1] / 4),
                &zero, out.ptr<float>(), static_cast<int>(out.nb[1] / 4)));
            return;
        case MatmulPath::MATMUL_BF16_GEMM:
            gemm_bf16(ctx, w, convert_x(ctx, x), n_tokens, out);
            return;
    }
}

void cuda_matmul_gated(CudaContext& ctx, const Tensor& w_gate, const Tensor& w_up, const Tensor& x,
                       GatedAct act, Tensor gate, Tensor up, Tensor out) {
    const bool gelu = act == GatedAct::GATED_GELU;
    const int64_t n = w_gate.ne[1], nt = x.ne[1];
    const bool same = w_up.type == w_gate.type && w_up.ne == w_gate.ne && w_up.nb == w_gate.nb;
    const bool work = check_matmul(w_gate, x, gate) && check_matmul(w_up, x, up);
    const MatmulPath path = matmul_select(w_gate, nt);
    const bool out_f32 = out.type == DType::F32 && out.nb[0] == 4 && out.ne[0] == n &&
                         out.ne[1] == nt && out.nb[1] % 4 == 0;
    // Decode: one matvec kernel reads the gate and up rows and writes the activation.
    if (work && same && out_f32 && nt <= kMatvecGatedMaxCols) {
        if (path == MatmulPath::MATMUL_MATVEC_Q8) {
            return cuda_matvec_q8_gated(ctx, w_gate, w_up, x, gelu, out);
        }
        if (path == MatmulPath::MATMUL_MATVEC_F32) {
            return cuda_matvec_gated_f32(ctx, w_gate, w_up, x, gelu, out);
        }
    }
    // Prompts: both products as BF16 (half the bytes written and read again), side by side in
    // up's F32 buffer, which holds exactly the two; out (which may alias gate) stays apart.
    const bool out_ok = (out.type == DType::F32 || out.type == DType::BF16) &&
                        out.nb[0] == dtype_traits(out.type).block_bytes && out.ne[0] == n &&
                        out.ne[1] == nt && out.nb[1] % out.nb[0] == 0;
    const bool up_contiguous = up.type == DType::F32 && up.nb[1] == n * 4 && up.ne[1] == nt;
    if (work && out_ok && up_contiguous && path == MatmulPath::MATMUL_BF16_GEMM &&
        matmul_select(w_up, nt) == MatmulPath::MATMUL_BF16_GEMM && out.data != up.data) {
        check_weight_alignment(w_gate, "matmul");
        check_weight_alignment(w_up, "matmul");
        const Bf16Input xb = convert_x(ctx, x);
        auto* g16 = static_cast<__nv_bfloat16*>(up.data);
        __nv_bfloat16* u16 = g16 + n * nt;
        gemm_bf16_to(ctx, w_gate, xb, nt, g16, CUDA_R_16BF, n);
        gemm_bf16_to(ctx, w_up, xb, nt, u16, CUDA_R_16BF, n);
        const int64_t ld = out.nb[1] / out.nb[0];
        const bool vec =
            n % 8 == 0 && out.nb[1] % 16 == 0 && reinterpret_cast<uintptr_t>(out.data) % 16 == 0;
        const dim3 grid(static_cast<unsigned>(nt), grid_1d(vec ? n / 8 : n, 256));
        auto launch = [&](auto kernel, auto* o) {
            launch_pdl(ctx, kernel, grid, dim3(256), 0, g16, u16, n, gelu, o, ld);
        };
        if (out.type == DType::BF16) {
            auto* o = out.ptr<__nv_bfloat16>();
            vec ? launch(&gated_bf16_kernel<true, __nv_bfloat16>, o)
                : launch(&gated_bf16_kernel<false, __nv_bfloat16>, o);
        } else {
            auto* o = out.ptr<float>();
            vec ? launch(&gated_bf16_kernel<true, float>, o)
                : launch(&gated_bf16_kernel<false, float>, o);
        }
        return;
    }
    const Tensor ws[] = {w_gate, w_up};
    Tensor outs[] = {gate, up};
    cuda_matmul_shared(ctx, ws, 2, x, outs);
    if (gelu) {
        cuda_geglu(ctx, gate, up, out);
    } else {
        cuda_swiglu(ctx, gate, up, out);
    }
}

MatvecSegments matvec_segments(const Tensor* ws, const Tensor* outs, size_t n) {
    SIFT_CHECK(n >= 2 && n <= static_cast<size_t>(kMatvecSegments), "matvec: {} weights", n);
    MatvecSegments segs;
    segs.count = static_cast<int>(n);
    for (size_t i = 0; i < n; ++i) {
        check_weight_alignment(ws[i], "matmul");
        segs.w[i] = static_cast<const uint8_t*>(ws[i].data);
        segs.out[i] = outs[i].ptr<float>();
        segs.out_stride[i] = outs[i].nb[1] / 4;
        segs.n[i] = ws[i].ne[1];
    }
    return segs;
}

void cuda_matmul_shared(CudaContext& ctx, const Tensor* ws, size_t n, const Tensor& x,
                        Tensor* outs) {
    // Every product a bf16 GEMM: convert x once; every one an int8 matvec: quantize x once.
    bool gemm = n > 0, q8 = n > 0;
    for (size_t i = 0; i < n; ++i) {
        const bool work = check_matmul(ws[i], x, outs[i]);
        const MatmulPath path = matmul_select(ws[i], x.ne[1]);
        gemm = gemm && work && path == MatmulPath::MATMUL_BF16_GEMM;
        q8 = q8 && work && path == MatmulPath::MATMUL_MATVEC_Q8;
    }
    if (q8) {
        cuda_matvec_q8_shared(ctx, ws, n, x, outs);
        return;
    }
    if (!gemm) {
        // Float matvecs of one type and layout: one launch for all of them.
        bool f32_shared = n >= 2 && n <= static_cast<size_t>(kMatvecSegments);
        for (size_t i = 0; i < n && f32_shared; ++i) {
            f32_shared = check_matmul(ws[i], x, outs[i]) &&
                         matmul_select(ws[i], x.ne[1]) == MatmulPath::MATMUL_MATVEC_F32 &&
                         ws[i].type == ws[0].type && ws[i].ne[0] == ws[0].ne[0] &&
                         ws[i].nb[1] == ws[0].nb[1];
        }
        if (f32_shared) return cuda_matvec_f32_shared(ctx, ws, n, x, outs);
        for (size_t i = 0; i < n; ++i) cuda_matmul(ctx, ws[i], x, outs[i]);
        return;
    }
    const Bf16Input xb = convert_x(ctx, x);
    for (size_t i = 0; i < n; ++i) {
        check_weight_alignment(ws[i], "matmul");
        gemm_bf16(ctx, ws[i], xb, x.ne[1], outs[i]);
    }
}

}  // namespace sift::cuda
