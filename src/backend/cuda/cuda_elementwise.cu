// Row-wise CUDA ops: add, mul, scale, rms_norm, rope, swiglu, geglu, set_rows, argmax. All are
// memory-bound: one block row per tensor row (grid.x = rows, grid.y = column chunks), float4
// loads where every row is 16-byte aligned, and the arithmetic of cpu_elementwise.cpp (same
// float/double choices) so the parity harness can hold them to ~1e-6.
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>

#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/cuda_rows.cuh"

namespace sift::cuda {
namespace {

constexpr int kBlock = 256;

// Rows beyond 65535 chunks never occur (a row of 2^24 floats would be needed).
dim3 row_grid(int64_t n_rows, int64_t n_cols, int per_block) {
    return dim3(static_cast<unsigned>(n_rows), grid_1d(n_cols, per_block));
}

enum class Binary { BIN_ADD, BIN_MUL, BIN_SCALE, BIN_SWIGLU, BIN_GEGLU };

template <Binary kOp>
__device__ __forceinline__ float binary_apply(float x, float y, float s) {
    if constexpr (kOp == Binary::BIN_ADD) {
        return x + y;
    } else if constexpr (kOp == Binary::BIN_MUL) {
        return x * y;
    } else if constexpr (kOp == Binary::BIN_SCALE) {
        return x * s;
    } else {
        return gated_act(x, y, kOp == Binary::BIN_GEGLU);
    }
}

// out[:, i] = f(a[:, i], b[:, i or 0]). kVec: 4 floats per thread. OutT: float, or bf16 for
// a GEMM's input.
template <Binary kOp, bool kVec, typename OutT = float>
__global__ void binary_kernel(const void* a, RowLayout la, const void* b, RowLayout lb,
                              bool broadcast, float s, void* out, RowLayout lo, int64_t n) {
    pdl_prologue();
    const int64_t row = blockIdx.x;
    const float* pa = at<float>(a, row_offset(la, row));
    const float* pb = b != nullptr ? at<float>(b, broadcast ? 0 : row_offset(lb, row)) : nullptr;
    OutT* po = at<OutT>(out, row_offset(lo, row));
    if constexpr (kVec) {
        const int64_t j = (static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x) * 4;
        if (j >= n) return;
        const float4 x = *reinterpret_cast<const float4*>(pa + j);
        float4 y = make_float4(0, 0, 0, 0);
        if (pb != nullptr) y = *reinterpret_cast<const float4*>(pb + j);
        float4 r;
        r.x = binary_apply<kOp>(x.x, y.x, s);
        r.y = binary_apply<kOp>(x.y, y.y, s);
        r.z = binary_apply<kOp>(x.z, y.z, s);
        r.w = binary_apply<kOp>(x.w, y.w, s);
        store4(po + j, r);
    } else {
        const int64_t j = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
        if (j >= n) return;
        store1(po + j, binary_apply<kOp>(pa[j], pb != nullptr ? pb[j] : 0.0f, s));
    }
}

template <Binary kOp, typename OutT = float>
void launch_binary(CudaContext& ctx, const Tensor& a, const Tensor* b, bool broadcast, float s,
                   Tensor out) {
    const int64_t n = a.ne[0], rows = a.n_rows();
    if (n == 0 || rows == 0) return;
    const bool vec =
        rows_aligned16(a) && out_rows_aligned(out) && (b == nullptr || rows_aligned16(*b));
    const RowLayout lb = b != nullptr ? row_layout(*b) : RowLayout{};
    const void* bd = b != nullptr ? b->data : nullptr;
    if (vec) {
        launch_pdl(ctx, &binary_kernel<kOp, true, OutT>, dim3(row_grid(rows, n, kBlock * 4)),
                   dim3(kBlock), 0, a.data, row_layout(a), bd, lb, broadcast, s, out.data,
                   row_layout(out), n);
    } else {
        launch_pdl(ctx, &binary_kernel<kOp, false, OutT>, dim3(row_grid(rows, n, kBlock)),
                   dim3(kBlock), 0, a.data, row_layout(a), bd, lb, broadcast, s, out.data,
                   row_layout(out), n);
    }
    SIFT_CUDA_LAUNCH_CHECK();
}

template <Binary kOp>
void binary_op(CudaContext& ctx, const Tensor& a, const Tensor& b, Tensor out, const char* op) {
    check_f32_rows(a, op, "a");
    check_f32_rows(b, op, "b");
    check_f32_rows(out, op, "out");
    check_same_shape(a, out, op);
    const bool broadcast = b.n_rows() == 1;
    SIFT_CHECK(b.ne[0] == a.ne[0] && (broadcast || b.ne == a.ne), "{}: b must be [n] or a's shape",
               op);
    launch_binary<kOp>(ctx, a, &b, broadcast, 0.0f, out);
}

template <Binary kOp>
void gated_op(CudaContext& ctx, const Tensor& gate, const Tensor& up, Tensor out, const char* op) {
    check_f32_rows(gate, op, "gate");
    check_f32_rows(up, op, "up");
    check_out_rows(out, op);
    check_same_shape(gate, up, op);
    check_same_shape(gate, out, op);
    if (out.type == DType::BF16) {
        SIFT_CHECK(out.data != gate.data && out.data != up.data,
                   "{}: a BF16 out must not alias gate or up", op);
        launch_binary<kOp, __nv_bfloat16>(ctx, gate, &up, false, 0.0f, out);
    } else {
        launch_binary<kOp>(ctx, gate, &up, false, 0.0f, out);
    }
}

// One block per row: sum of squares (F32 partials, tree-reduced: ~1e-7 relative, like the CPU's
// double sum), then the scale in double as the CPU computes it.
template <bool kVec, typename OutT>
__global__ void rms_norm_kernel(const void* x, RowLayout lx, const float* w, float eps, void* out,
                                RowLayout lo, int64_t n) {
    pdl_prologue();
    __shared__ float shared[32];
    const int64_t row = blockIdx.x;
    const float* px = at<float>(x, row_offset(lx, row));
    OutT* po = at<OutT>(out, row_offset(lo, row));
    float ss = 0;
    if constexpr (kVec) {
        for (int64_t j = threadIdx.x * 4; j < n; j += blockDim.x * 4) {
            const float4 v = *reinterpret_cast<const float4*>(px + j);
            ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        }
    } else {
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) ss += px[j] * px[j];
    }
    ss = block_sum(ss, shared);
    const auto inv = static_cast<float>(1.0 / sqrt(static_cast<double>(ss) / n + eps));
    scale_row<kVec>(px, inv, w, po, n, threadIdx.x, blockDim.x);
}

// Narrow rows (qk-norm's head_dim, small models' widths): one warp per row, kWarpRows rows per
// block, float4 loads; the same F32 sum of squares and double scale as rms_norm_kernel.
constexpr int kWarpRows = 8;
template <typename OutT>
__global__ void __launch_bounds__(kWarpRows * 32)
    rms_norm_warp_kernel(const void* x, RowLayout lx, const float* w, float eps, void* out,
                         RowLayout lo, int64_t n, int64_t rows) {
    pdl_prologue();
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpRows + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= rows) return;
    const float* px = at<float>(x, row_offset(lx, row));
    OutT* po = at<OutT>(out, row_offset(lo, row));
    float ss = 0;
    for (int64_t j = lane * 4; j < n; j += 128) {
        const float4 v = *reinterpret_cast<const float4*>(px + j);
        ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    const auto inv = static_cast<float>(1.0 / sqrt(static_cast<double>(ss) / n + eps));
    scale_row<true>(px, inv, w, po, n, lane, 32);
}

// One block per token: cos/sin of the token's angles once into shared memory (double, as the
// CPU: at positions of 10^5 an F32 angle is off by ~0.01 rad), then every head's pairs.
__global__ void rope_kernel(const float* x, int64_t x_nb1, int64_t x_nb2, float* out, int64_t o_nb1,
                            int64_t o_nb2, const int32_t* pos, int64_t pos_nb, int head_dim,
                            int n_head, int n_rot, bool neox, float freq_base, float freq_scale,
                            const float* factors) {
    pdl_prologue();
    extern __shared__ float cs[];  // [half][2]: cos, sin
    const int64_t t = blockIdx.x;
    const int half = n_rot / 2;
    const double position = *at<int32_t>(pos, t * pos_nb);
    rope_angles(cs, position, n_rot, freq_base, freq_scale, factors);
    __syncthreads();
    const int stride = neox ? 1 : 2, offset = neox ? half : 1;
    const int rest = head_dim - n_rot;
    const int per_head = half + rest;  // one thread per pair, then one per passed-through value
    for (int k = threadIdx.x; k < n_head * per_head; k += blockDim.x) {
        const int h = k / per_head, i = k % per_head;
        const float* a = at<float>(x, h * x_nb1 + t * x_nb2);
        float* o = at<float>(out, h * o_nb1 + t * o_nb2);
        if (i < half) {
            const int i0 = i * stride, i1 = i0 + offset;
            const float x0 = a[i0], x1 = a[i1];
            o[i0] = x0 * cs[2 * i] - x1 * cs[2 * i + 1];
            o[i1] = x0 * cs[2 * i + 1] + x1 * cs[2 * i];
        } else {
            const int j = n_rot + (i - half);
            o[j] = a[j];  // same thread reads then writes: safe when out aliases x
        }
    }
}

template <typename T>
__device__ __forceinline__ T convert_from_f32(float v);
template <>
__device__ __forceinline__ float convert_from_f32<float>(float v) {
    return v;
}
template <>
__device__ __forceinline__ __half convert_from_f32<__half>(float v) {
    return __float2half_rn(v);  // round to nearest even, as fp32_to_fp16
}

// dst row idx[t] = src row t. Out-of-range indices are skipped (the CPU aborts on them; a kernel
// cannot, and the caller validated cells when it allocated them).
template <typename T>
__global__ void set_rows_kernel(const void* src, RowLayout ls, const int32_t* idx, int64_t idx_nb,
                                void* dst, RowLayout ld, int64_t dst_rows, int64_t width) {
    pdl_prologue();
    const int64_t t = blockIdx.x;
    const int32_t row = *at<int32_t>(idx, t * idx_nb);
    if (row < 0 || row >= dst_rows) return;
    const float* s = at<float>(src, row_offset(ls, t));
    T* d = at<T>(dst, row_offset(ld, row));
    for (int64_t j = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x; j < width;
         j += static_cast<int64_t>(gridDim.y) * blockDim.x)
        d[j] = convert_from_f32<T>(s[j]);
}

// Rows whose width is a multiple of 4 and 16-byte aligned: 4 values per thread (a float4 load,
// one 8- or 16-byte store).
template <typename T>
__global__ void set_rows_vec_kernel(const void* src, RowLayout ls, const int32_t* idx,
                                    int64_t idx_nb, void* dst, RowLayout ld, int64_t dst_rows,
                                    int64_t width) {
    pdl_prologue();
    const int64_t t = blockIdx.x;
    const int32_t row = *at<int32_t>(idx, t * idx_nb);
    if (row < 0 || row >= dst_rows) return;
    const float* s = at<float>(src, row_offset(ls, t));
    T* d = at<T>(dst, row_offset(ld, row));
    for (int64_t j = (static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x) * 4; j < width;
         j += static_cast<int64_t>(gridDim.y) * blockDim.x * 4) {
        const float4 v = *reinterpret_cast<const float4*>(s + j);
        if constexpr (sizeof(T) == 2) {
            __half2 h[2] = {__halves2half2(convert_from_f32<T>(v.x), convert_from_f32<T>(v.y)),
                            __halves2half2(convert_from_f32<T>(v.z), convert_from_f32<T>(v.w))};
            *reinterpret_cast<uint2*>(d + j) = *reinterpret_cast<const uint2*>(h);
        } else {
            *reinterpret_cast<float4*>(d + j) = v;
        }
    }
}

// Argmax as the CPU's loop computes it: the first index of the largest value, NaNs never
// chosen, and 0 when x[0] is NaN or every value is (the loop compares against x[best] with a
// strict >). A (value, index) pair with index -1 holds nothing yet.
__device__ __forceinline__ void argmax_merge(float& v, int64_t& i, float v2, int64_t i2) {
    if (i2 >= 0 && (i < 0 || v2 > v || (v2 == v && i2 < i))) {
        v = v2;
        i = i2;
    }
}

// The block's best pair, in thread 0 (sv/si: 32 entries of shared memory).
__device__ __forceinline__ void block_argmax(float& v, int64_t& i, float* sv, int64_t* si) {
    for (int o = 16; o > 0; o >>= 1)
        argmax_merge(v, i, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, i, o));
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads();  // sv/si may still be read by a previous call
    if (lane == 0) sv[warp] = v, si[warp] = i;
    __syncthreads();
    if (warp != 0) return;
    const int n_warps = blockDim.x / 32;
    v = lane < n_warps ? sv[lane] : -INFINITY;
    i = lane < n_warps ? si[lane] : -1;
    for (int o = 16; o > 0; o >>= 1)
        argmax_merge(v, i, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, i, o));
}

struct ArgmaxPartial {
    float v;
    int32_t i;
};

// Grid (rows, blocks per row; rows on x, which allows 2^31 - 1 of them): each block reduces its
// share of a row, 16 independent loads in flight per thread; with more than one block per row
// each writes its pair to `part` and the last to finish (tickets[row]) merges them and writes
// the row's index. One block over a 151,936-value vocabulary row took 64 us (148 dependent
// load-and-compare steps per thread).
constexpr int kArgmaxThreads = 256;
constexpr int kArgmaxUnroll = 16;

__global__ void __launch_bounds__(kArgmaxThreads)
    argmax_kernel(const void* x, RowLayout lx, int64_t n, int32_t* out, int64_t out_nb,
                  ArgmaxPartial* part, uint32_t* tickets) {
    pdl_prologue();
    __shared__ float sv[32];
    __shared__ int64_t si[32];
    __shared__ bool last;
    const int64_t row = blockIdx.x;
    const float* p = at<float>(x, row_offset(lx, row));
    const int64_t share = (n + gridDim.y - 1) / gridDim.y;
    const int64_t lo = blockIdx.y * share, hi = min(n, lo + share);
    float best = -INFINITY;
    int64_t bi = -1;
    for (int64_t j0 = lo + threadIdx.x; j0 < hi; j0 += kArgmaxThreads * kArgmaxUnroll) {
        float v[kArgmaxUnroll];
#pragma unroll
        for (int u = 0; u < kArgmaxUnroll; ++u) {
            const int64_t j = j0 + u * kArgmaxThreads;
            v[u] = j < hi ? p[j] : NAN;
        }
#pragma unroll
        for (int u = 0; u < kArgmaxUnroll; ++u)
            argmax_merge(best, bi, v[u], isnan(v[u]) ? -1 : j0 + u * kArgmaxThreads);
    }
    block_argmax(best, bi, sv, si);
    if (gridDim.y > 1) {
        if (threadIdx.x == 0) {
            part[row * gridDim.y + blockIdx.y] = {best, static_cast<int32_t>(bi)};
            __threadfence();  // the pair is visible before the ticket is taken
            last = atomicAdd(&tickets[row], 1u) == gridDim.y - 1;
        }
        __syncthreads();
        if (!last) return;
        __threadfence();
        best = -INFINITY;
        bi = -1;
        for (int b = threadIdx.x; b < gridDim.y; b += blockDim.x) {
            const ArgmaxPartial* q = part + row * gridDim.y + b;
            argmax_merge(best, bi, __ldcg(&q->v), __ldcg(&q->i));
        }
        block_argmax(best, bi, sv, si);
        if (threadIdx.x == 0) tickets[row] = 0;  // ready for the next launch
    }
    if (threadIdx.x == 0)
        *at<int32_t>(out, row * out_nb) = static_cast<int32_t>(isnan(p[0]) || bi < 0 ? 0 : bi);
}

}  // namespace

void cuda_add(CudaContext& ctx, const Tensor& a, const Tensor& b, Tensor out) {
    binary_op<Binary::BIN_ADD>(ctx, a, b, out, "add");
}

void cuda_mul(CudaContext& ctx, const Tensor& a, const Tensor& b, Tensor out) {
    binary_op<Binary::BIN_MUL>(ctx, a, b, out, "mul");
}

void cuda_scale(CudaContext& ctx, const Tensor& x, float s, Tensor out) {
    check_f32_rows(x, "scale", "x");
    check_f32_rows(out, "scale", "out");
    check_same_shape(x, out, "scale");
    launch_binary<Binary::BIN_SCALE>(ctx, x, nullptr, false, s, out);
}

void cuda_swiglu(CudaContext& ctx, const Tensor& gate, const Tensor& up, Tensor out) {
    gated_op<Binary::BIN_SWIGLU>(ctx, gate, up, out, "swiglu");
}

void cuda_geglu(CudaContext& ctx, const Tensor& gate, const Tensor& up, Tensor out) {
    gated_op<Binary::BIN_GEGLU>(ctx, gate, up, out, "geglu");
}

void cuda_rms_norm(CudaContext& ctx, const Tensor& x, const Tensor* w, float eps, Tensor out) {
    check_f32_rows(x, "rms_norm", "x");
    check_out_rows(out, "rms_norm");
    check_same_shape(x, out, "rms_norm");
    const bool bf16 = out.type == DType::BF16;
    SIFT_CHECK(!bf16 || out.data != x.data, "rms_norm: a BF16 out must not alias x");
    const int64_t n = x.ne[0], rows = x.n_rows();
    if (w != nullptr) {
        check_f32_rows(*w, "rms_norm", "w");
        SIFT_CHECK(w->ne[0] == n && w->n_rows() == 1, "rms_norm: w must be [{}]", n);
    }
    if (n == 0 || rows == 0) return;
    const float* wd = w != nullptr ? w->ptr<const float>() : nullptr;
    const bool vec = rows_aligned16(x) && out_rows_aligned(out) &&
                     (wd == nullptr || reinterpret_cast<uintptr_t>(wd) % 16 == 0);
    if (vec && n <= 512) {
        const unsigned grid = static_cast<unsigned>((rows + kWarpRows - 1) / kWarpRows);
        if (bf16) {
            launch_pdl(ctx, &rms_norm_warp_kernel<__nv_bfloat16>, dim3(grid), dim3(kWarpRows * 32),
                       0, x.data, row_layout(x), wd, eps, out.data, row_layout(out), n, rows);
        } else {
            launch_pdl(ctx, &rms_norm_warp_kernel<float>, dim3(grid), dim3(kWarpRows * 32), 0,
                       x.data, row_layout(x), wd, eps, out.data, row_layout(out), n, rows);
        }
        SIFT_CUDA_LAUNCH_CHECK();
        return;
    }
    // ~8 values per thread, up to 1024 threads for wide rows.
    const int threads =
        static_cast<int>(std::min<int64_t>(1024, std::max<int64_t>(32, (n / 8 + 31) / 32 * 32)));
    const auto grid = static_cast<unsigned>(rows);
    if (vec && bf16) {
        launch_pdl(ctx, &rms_norm_kernel<true, __nv_bfloat16>, dim3(grid), dim3(threads), 0, x.data,
                   row_layout(x), wd, eps, out.data, row_layout(out), n);
    } else if (vec) {
        launch_pdl(ctx, &rms_norm_kernel<true, float>, dim3(grid), dim3(threads), 0, x.data,
                   row_layout(x), wd, eps, out.data, row_layout(out), n);
    } else if (bf16) {
        launch_pdl(ctx, &rms_norm_kernel<false, __nv_bfloat16>, dim3(grid), dim3(threads), 0,
                   x.data, row_layout(x), wd, eps, out.data, row_layout(out), n);
    } else {
        launch_pdl(ctx, &rms_norm_kernel<false, float>, dim3(grid), dim3(threads), 0, x.data,
                   row_layout(x), wd, eps, out.data, row_layout(out), n);
    }
    SIFT_CUDA_LAUNCH_CHECK();
}

void cuda_rope(CudaContext& ctx, const Tensor& x, const Tensor& pos, const RopeParams& p,
               Tensor out) {
    check_f32_rows(x, "rope", "x");
    check_f32_rows(out, "rope", "out");
    check_same_shape(x, out, "rope");
    const int64_t head_dim = x.ne[0], n_head = x.ne[1], n_tokens = x.ne[2];
    SIFT_CHECK(pos.type == DType::I32 && pos.ne[0] == n_tokens && x.ne[3] == 1,
               "rope: pos must be I32 [T]");
    SIFT_CHECK(p.n_rot > 0 && p.n_rot % 2 == 0 && p.n_rot <= head_dim,
               "rope: n_rot {} vs head_dim {}", p.n_rot, head_dim);
    const int half = p.n_rot / 2;
    const float* factors = nullptr;
    if (p.freq_factors != nullptr) {
        SIFT_CHECK(p.freq_factors->type == DType::F32 && p.freq_factors->ne[0] >= half,
                   "rope: freq_factors");
        factors = p.freq_factors->ptr<const float>();
    }
    if (n_tokens == 0 || n_head == 0) return;
    const size_t smem = static_cast<size_t>(half) * 2 * sizeof(float);
    launch_pdl(ctx, &rope_kernel, dim3(static_cast<unsigned>(n_tokens)), dim3(kBlock), smem,
               x.ptr<const float>(), x.nb[1], x.nb[2], out.ptr<float>(), out.nb[1], out.nb[2],
               pos.ptr<const int32_t>(), pos.nb[0], static_cast<int>(head_dim),
               static_cast<int>(n_head), p.n_rot, p.neox, p.freq_base, p.freq_scale, factors);
}

void cuda_set_rows(CudaContext& ctx, const Tensor& src, const Tensor& idx, Tensor dst) {
    if (dst.type == DType::Q8_0) {  // a Q8_0 KV cache (cuda_kv_quant.cu)
        return cuda_set_rows_q8_0(ctx, src, idx, dst);
    }
    check_f32_rows(src, "set_rows", "src");
    SIFT_CHECK(dst.type == DType::F32 || dst.type == DType::F16,
               "set_rows: dst must be F32 or F16");
    SIFT_CHECK(dst.nb[0] == dtype_traits(dst.type).block_bytes,
               "set_rows: dst rows must be contiguous");
    const int64_t width = src.ne[0], n = src.n_rows();
    SIFT_CHECK(idx.type == DType::I32 && idx.ne[0] == n && dst.ne[0] == width, "set_rows: shapes");
    if (n == 0 || width == 0) return;
    const bool vec = rows_aligned16(src) && width % 4 == 0 &&
                     reinterpret_cast<uintptr_t>(dst.data) % 16 == 0 &&
                     dst.nb[1] % (dst.type == DType::F32 ? 16 : 8) == 0;
    if (vec) {
        const dim3 grid(static_cast<unsigned>(n),
                        std::min<unsigned>(grid_1d(width / 4, kBlock), 64));
        if (dst.type == DType::F32) {
            launch_pdl(ctx, &set_rows_vec_kernel<float>, dim3(grid), dim3(kBlock), 0, src.data,
                       row_layout(src), idx.ptr<const int32_t>(), idx.nb[0], dst.data,
                       row_layout(dst), dst.n_rows(), width);
        } else {
            launch_pdl(ctx, &set_rows_vec_kernel<__half>, dim3(grid), dim3(kBlock), 0, src.data,
                       row_layout(src), idx.ptr<const int32_t>(), idx.nb[0], dst.data,
                       row_layout(dst), dst.n_rows(), width);
        }
        SIFT_CUDA_LAUNCH_CHECK();
        return;
    }
    const dim3 grid(static_cast<unsigned>(n),
                    std::min<unsigned>(grid_1d(width, kBlock), 64));  // rows of up to 16K per pass
    if (dst.type == DType::F32) {
        launch_pdl(ctx, &set_rows_kernel<float>, dim3(grid), dim3(kBlock), 0, src.data,
                   row_layout(src), idx.ptr<const int32_t>(), idx.nb[0], dst.data, row_layout(dst),
                   dst.n_rows(), width);
    } else {
        launch_pdl(ctx, &set_rows_kernel<__half>, dim3(grid), dim3(kBlock), 0, src.data,
                   row_layout(src), idx.ptr<const int32_t>(), idx.nb[0], dst.data, row_layout(dst),
                   dst.n_rows(), width);
    }
    SIFT_CUDA_LAUNCH_CHECK();
}

void cuda_argmax(CudaContext& ctx, const Tensor& x, Tensor out) {
    check_f32_rows(x, "argmax", "x");
    SIFT_CHECK(out.type == DType::I32 && out.ne[0] == x.n_rows(), "argmax: out must be I32 [T]");
    const int64_t n = x.ne[0], rows = x.n_rows();
    if (rows == 0) return;
    // About 4 loads per thread per block, at most 128 blocks per row; one block per row where
    // the rows alone fill the GPU or the partial pairs would not fit the context's buffer.
    int64_t blocks = std::clamp<int64_t>(n / (kArgmaxThreads * 4), 1, 128);
    if (rows >= ctx.sm_count || rows > CudaContext::kTickets ||
        rows * blocks * static_cast<int64_t>(sizeof(ArgmaxPartial)) >
            static_cast<int64_t>(CudaContext::kPartialBytes))
        blocks = 1;
    launch_pdl(ctx, &argmax_kernel,
               dim3(static_cast<unsigned>(rows), static_cast<unsigned>(blocks)),
               dim3(kArgmaxThreads), 0, x.data, row_layout(x), n, out.ptr<int32_t>(), out.nb[0],
               static_cast<ArgmaxPartial*>(ctx.partials), ctx.tickets);
}

}  // namespace sift::cuda
