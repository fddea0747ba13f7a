// Fused norm ops (ops.h add_rms_norm, rms_norm_rope): one pass over memory where the composed
// ops take two or three. The arithmetic is the composition's, in the same order (the F32
// sum of squares of cuda_elementwise.cu's rms_norm kernels, the double scale, (x * inv) * w, then
// the rotation of rope with cos/sin from double), so the fused ops match the composed ones to
// the rms_norm parity bound.
//
// Traffic per layer of the 0.6B drafter at 16K tokens: add + rms_norm read 3 and write 2 rows
// of 4 KB per token, add_rms_norm reads 2 and writes 2 (plus a re-read of the sum from L1/L2);
// qk-norm + rope read and write q and k twice, rms_norm_rope once.
#include <cmath>

#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/cuda_rows.cuh"

namespace sift::cuda {
namespace {

// One block per row: s = a + b stored to sum, the row's sum of squares, then out = (s * inv) * w
// from the stored sum (each thread re-reads only what it wrote). kVec: float4 access.
template <bool kVec, typename OutT>
__global__ void add_rms_norm_kernel(const void* a, RowLayout la, const void* b, RowLayout lb,
                                    const float* w, float eps, void* sum, RowLayout ls, void* out,
                                    RowLayout lo, int64_t n) {
    pdl_prologue();
    __shared__ float shared[32];
    const int64_t row = blockIdx.x;
    const float* pa = at<float>(a, row_offset(la, row));
    const float* pb = at<float>(b, row_offset(lb, row));
    float* ps = at<float>(sum, row_offset(ls, row));
    OutT* po = at<OutT>(out, row_offset(lo, row));
    float ss = 0;
    if constexpr (kVec) {
        for (int64_t j = threadIdx.x * 4; j < n; j += blockDim.x * 4) {
            const float4 x = *reinterpret_cast<const float4*>(pa + j);
            const float4 y = *reinterpret_cast<const float4*>(pb + j);
            const float4 v = make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
            *reinterpret_cast<float4*>(ps + j) = v;
            ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        }
    } else {
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
            const float v = pa[j] + pb[j];
            ps[j] = v;
            ss += v * v;
        }
    }
    ss = block_sum(ss, shared);
    const auto inv = static_cast<float>(1.0 / sqrt(static_cast<double>(ss) / n + eps));
    scale_row<kVec>(ps, inv, w, po, n, threadIdx.x, blockDim.x);
}

// One block per token; cos/sin of the token's angles in shared memory (double, as rope), then a
// warp per head: the head's row staged in shared memory with its sum of squares (the lane order
// of rms_norm_warp_kernel: lane l sums elements 4l..4l+3, 128 + 4l.., then a butterfly), scaled,
// weighted, rotated and written once. head_dim % 4 == 0 and head_dim <= kMaxHeadDim.
constexpr int kRopeWarps = 8;
constexpr int kMaxHeadDim = 512;

__global__ void __launch_bounds__(kRopeWarps * 32)
    rms_norm_rope_kernel(const float* x, int64_t x_nb1, int64_t x_nb2, const float* w, float eps,
                         float* out, int64_t o_nb1, int64_t o_nb2, const int32_t* pos,
                         int64_t pos_nb, int head_dim, int n_head, int n_rot, bool neox,
                         float freq_base, float freq_scale, const float* factors) {
    pdl_prologue();
    extern __shared__ float smem[];
    float* cs = smem;  // [half][2]: cos, sin
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float* row = smem + n_rot + warp * head_dim;
    const int64_t t = blockIdx.x;
    const int half = n_rot / 2;
    const double position = *at<int32_t>(pos, t * pos_nb);
    rope_angles(cs, position, n_rot, freq_base, freq_scale, factors);
    __syncthreads();
    const int stride = neox ? 1 : 2, offset = neox ? half : 1;
    for (int h = warp; h < n_head; h += kRopeWarps) {
        const float* a = at<float>(x, h * x_nb1 + t * x_nb2);
        float* o = at<float>(out, h * o_nb1 + t * o_nb2);
        float ss = 0;
        for (int j = lane * 4; j < head_dim; j += 128) {
            const float4 v = *reinterpret_cast<const float4*>(a + j);
            *reinterpret_cast<float4*>(row + j) = v;
            ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        }
        for (int m = 16; m > 0; m >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, m);
        const auto inv = static_cast<float>(1.0 / sqrt(static_cast<double>(ss) / head_dim + eps));
        __syncwarp();
        for (int i = lane; i < half; i += 32) {
            const int i0 = i * stride, i1 = i0 + offset;
            float x0 = row[i0] * inv, x1 = row[i1] * inv;
            if (w != nullptr) x0 *= w[i0], x1 *= w[i1];
            o[i0] = x0 * cs[2 * i] - x1 * cs[2 * i + 1];
            o[i1] = x0 * cs[2 * i + 1] + x1 * cs[2 * i];
        }
        for (int j = n_rot + lane; j < head_dim; j += 32) {
            const float v = row[j] * inv;
            o[j] = w != nullptr ? v * w[j] : v;
        }
        __syncwarp();  // the row buffer is reused by the warp's next head
    }
}

}  // namespace

void cuda_add_rms_norm(CudaContext& ctx, const Tensor& a, const Tensor& b, const Tensor* w,
                       float eps, Tensor sum, Tensor out) {
    const char* op = "add_rms_norm";
    check_f32_rows(a, op, "a");
    check_f32_rows(b, op, "b");
    check_f32_rows(sum, op, "sum");
    check_out_rows(out, op);
    check_same_shape(a, b, op);
    check_same_shape(a, sum, op);
    check_same_shape(a, out, op);
    SIFT_CHECK(out.data != a.data && out.data != b.data && out.data != sum.data,
               "add_rms_norm: out must not alias a, b or sum");
    const int64_t n = a.ne[0], rows = a.n_rows();
    if (w != nullptr) {
        check_f32_rows(*w, op, "w");
        SIFT_CHECK(w->ne[0] == n && w->n_rows() == 1, "add_rms_norm: w must be [{}]", n);
    }
    if (n == 0 || rows == 0) return;
    const float* wd = w != nullptr ? w->ptr<const float>() : nullptr;
    const bool vec = rows_aligned16(a) && rows_aligned16(b) && rows_aligned16(sum) &&
                     out_rows_aligned(out) &&
                     (wd == nullptr || reinterpret_cast<uintptr_t>(wd) % 16 == 0);
    // ~4-8 values per thread, 64..1024 threads.
    const int threads =
        static_cast<int>(std::min<int64_t>(1024, std::max<int64_t>(64, (n / 4 + 31) / 32 * 32)));
    auto launch = [&](auto kernel) {
        launch_pdl(ctx, kernel, dim3(static_cast<unsigned>(rows)), dim3(threads), 0, a.data,
                   row_layout(a), b.data, row_layout(b), wd, eps, sum.data, row_layout(sum),
                   out.data, row_layout(out), n);
    };
    const bool bf16 = out.type == DType::BF16;
    if (vec && bf16) {
        launch(add_rms_norm_kernel<true, __nv_bfloat16>);
    } else if (vec) {
        launch(add_rms_norm_kernel<true, float>);
    } else if (bf16) {
        launch(add_rms_norm_kernel<false, __nv_bfloat16>);
    } else {
        launch(add_rms_norm_kernel<false, float>);
    }
    SIFT_CUDA_LAUNCH_CHECK();
}

void cuda_rms_norm_rope(CudaContext& ctx, const Tensor& x, const Tensor* w, float eps,
                        const Tensor& pos, const RopeParams& p, Tensor out) {
    const char* op = "rms_norm_rope";
    check_f32_rows(x, op, "x");
    check_f32_rows(out, op, "out");
    check_same_shape(x, out, op);
    const int64_t head_dim = x.ne[0], n_head = x.ne[1], n_tokens = x.ne[2];
    SIFT_CHECK(pos.type == DType::I32 && pos.ne[0] == n_tokens && x.ne[3] == 1,
               "rms_norm_rope: pos must be I32 [T]");
    SIFT_CHECK(p.n_rot > 0 && p.n_rot % 2 == 0 && p.n_rot <= head_dim,
               "rms_norm_rope: n_rot {} vs head_dim {}", p.n_rot, head_dim);
    if (w != nullptr) {
        check_f32_rows(*w, op, "w");
        SIFT_CHECK(w->ne[0] == head_dim && w->n_rows() == 1, "rms_norm_rope: w must be [{}]",
                   head_dim);
    }
    const float* factors = nullptr;
    if (p.freq_factors != nullptr) {
        SIFT_CHECK(p.freq_factors->type == DType::F32 && p.freq_factors->ne[0] >= p.n_rot / 2,
                   "rms_norm_rope: freq_factors");
        factors = p.freq_factors->ptr<const float>();
    }
    if (n_tokens == 0 || n_head == 0) return;
    // The staged kernel wants float4 rows; anything else takes the composed ops.
    const float* wd = w != nullptr ? w->ptr<const float>() : nullptr;
    if (!rows_aligned16(x) || !rows_aligned16(out) || head_dim > kMaxHeadDim) {
        cuda_rms_norm(ctx, x, w, eps, out);
        cuda_rope(ctx, out, pos, p, out);
        return;
    }
    const size_t smem = (static_cast<size_t>(p.n_rot) + kRopeWarps * head_dim) * sizeof(float);
    launch_pdl(ctx, &rms_norm_rope_kernel, dim3(static_cast<unsigned>(n_tokens)),
               dim3(kRopeWarps * 32), smem, x.ptr<const float>(), x.nb[1], x.nb[2], wd, eps,
               out.ptr<float>(), out.nb[1], out.nb[2], pos.ptr<const int32_t>(), pos.nb[0],
               static_cast<int>(head_dim), static_cast<int>(n_head), p.n_rot, p.neox, p.freq_base,
               p.freq_scale, factors);
}

}  // namespace sift::cuda
