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

#include <cuda_fp16.h>

#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/cuda_rows.cuh"

namespace sift::cuda {
namespace {

// One block per row: s = a + b stored to sum, the row's sum of squares, then out = (s * inv) * w.
// kVec: float4 access, and rows of up to 4 kNormRegs values per thread stay in registers (w, a
// weight that no kernel writes, is read before the PDL wait; nothing is re-read from memory);
// longer rows re-read the stored sum (each thread only what it wrote).
constexpr int kNormRegs = 4;

template <bool kVec, typename OutT>
__global__ void add_rms_norm_kernel(const void* a, RowLayout la, const void* b, RowLayout lb,
                                    const float* w, float eps, void* sum, RowLayout ls, void* out,
                                    RowLayout lo, int64_t n) {
    __shared__ float shared[32];
    const int64_t row = blockIdx.x;
    const float* pa = at<float>(a, row_offset(la, row));
    const float* pb = at<float>(b, row_offset(lb, row));
    float* ps = at<float>(sum, row_offset(ls, row));
    OutT* po = at<OutT>(out, row_offset(lo, row));
    float ss = 0;
    if constexpr (kVec) {
        if (n <= int64_t{4} * kNormRegs * blockDim.x) {
            float4 g[kNormRegs], v[kNormRegs];
#pragma unroll
            for (int i = 0; i < kNormRegs; ++i) {
                const int64_t j = (threadIdx.x + i * blockDim.x) * int64_t{4};
                if (j < n && w != nullptr) g[i] = *reinterpret_cast<const float4*>(w + j);
            }
            pdl_prologue();
#pragma unroll
            for (int i = 0; i < kNormRegs; ++i) {
                const int64_t j = (threadIdx.x + i * blockDim.x) * int64_t{4};
                if (j >= n) break;
                const float4 x = *reinterpret_cast<const float4*>(pa + j);
                const float4 y = *reinterpret_cast<const float4*>(pb + j);
                v[i] = make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
                *reinterpret_cast<float4*>(ps + j) = v[i];
                ss += v[i].x * v[i].x + v[i].y * v[i].y + v[i].z * v[i].z + v[i].w * v[i].w;
            }
            ss = block_sum(ss, shared);
            const auto inv = static_cast<float>(1.0 / sqrt(static_cast<double>(ss) / n + eps));
#pragma unroll
            for (int i = 0; i < kNormRegs; ++i) {
                const int64_t j = (threadIdx.x + i * blockDim.x) * int64_t{4};
                if (j >= n) break;
                float4 o = v[i];
                o.x *= inv, o.y *= inv, o.z *= inv, o.w *= inv;
                if (w != nullptr) o.x *= g[i].x, o.y *= g[i].y, o.z *= g[i].z, o.w *= g[i].w;
                store4(po + j, o);
            }
            return;
        }
    }
    pdl_prologue();
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

// Stores of a rotated value: F32 as is, F16 rounded to nearest even (as set_rows).
__device__ __forceinline__ void store_as(float* p, float v) {
    *p = v;
}
__device__ __forceinline__ void store_as(__half* p, float v) {
    *p = __float2half_rn(v);
}

// One head by one warp: the head's row a staged in `row` with its sum of squares (the lane
// order of rms_norm_warp_kernel: lane l sums elements 4l..4l+3, 128 + 4l.., then a butterfly),
// scaled and weighted when `norm`, rotated by the token's cos/sin cs, written to o and, when o2
// is not null, into o2 too (a cache row). The caller syncs the warp before reusing `row`.
template <typename T2>
__device__ __forceinline__ void norm_rope_head(const float* a, const float* w, bool norm, float eps,
                                               int head_dim, int n_rot, bool neox, const float* cs,
                                               float* row, int lane, float* o, T2* o2) {
    float ss = 0;
    for (int j = lane * 4; j < head_dim; j += 128) {
        const float4 v = *reinterpret_cast<const float4*>(a + j);
        *reinterpret_cast<float4*>(row + j) = v;
        ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
    float inv = 1;
    if (norm) {
        for (int m = 16; m > 0; m >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, m);
        inv = static_cast<float>(1.0 / sqrt(static_cast<double>(ss) / head_dim + eps));
    }
    __syncwarp();
    const int half = n_rot / 2, stride = neox ? 1 : 2, offset = neox ? half : 1;
    for (int i = lane; i < half; i += 32) {
        const int i0 = i * stride, i1 = i0 + offset;
        float x0 = row[i0], x1 = row[i1];
        if (norm) x0 *= inv, x1 *= inv;
        if (w != nullptr) x0 *= w[i0], x1 *= w[i1];
        const float y0 = x0 * cs[2 * i] - x1 * cs[2 * i + 1];
        const float y1 = x0 * cs[2 * i + 1] + x1 * cs[2 * i];
        o[i0] = y0;
        o[i1] = y1;
        if (o2 != nullptr) store_as(o2 + i0, y0), store_as(o2 + i1, y1);
    }
    for (int j = n_rot + lane; j < head_dim; j += 32) {
        float v = row[j];
        if (norm) v *= inv;
        if (w != nullptr) v *= w[j];
        o[j] = v;
        if (o2 != nullptr) store_as(o2 + j, v);
    }
}

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
    rope_angles(cs, *at<int32_t>(pos, t * pos_nb), n_rot, freq_base, freq_scale, factors);
    __syncthreads();
    for (int h = warp; h < n_head; h += kRopeWarps) {
        norm_rope_head(at<float>(x, h * x_nb1 + t * x_nb2), w, true, eps, head_dim, n_rot, neox, cs,
                       row, lane, at<float>(out, h * o_nb1 + t * o_nb2),
                       static_cast<float*>(nullptr));
        __syncwarp();  // the row buffer is reused by the warp's next head
    }
}

// ops.h attention_prep's arguments. The kernel runs a warp per head over the q heads, the k
// heads (also stored into the cache row of the token's cell) and the v heads (converted into
// theirs).
struct PrepArgs {
    float* q;
    int64_t q_nb1, q_nb2;
    float* k;
    int64_t k_nb1, k_nb2;
    const float* v;
    int64_t v_nb1, v_nb2;
    const float *wq, *wk;
    bool norm;
    float eps;
    const int32_t* pos;
    int64_t pos_nb;
    const int32_t* cells;
    int64_t cells_nb, n_cells;
    void *cache_k, *cache_v;  // cell c's row at c * nb1 bytes
    int64_t ck_nb1, cv_nb1;
    int head_dim, n_head, n_head_kv, n_rot;
    bool neox;
    float freq_base, freq_scale;
    const float* factors;
};

// The row of head h of token t that the prep kernel reads (q, k or v).
__device__ __forceinline__ const float* prep_head_row(const PrepArgs& a, int h, int64_t t) {
    if (h < a.n_head) return at<float>(a.q, h * a.q_nb1 + t * a.q_nb2);
    if (h < a.n_head + a.n_head_kv) return at<float>(a.k, (h - a.n_head) * a.k_nb1 + t * a.k_nb2);
    return at<float>(a.v, (h - a.n_head - a.n_head_kv) * a.v_nb1 + t * a.v_nb2);
}

// Grid (tokens, blocks per token): the warps of a token's blocks share its heads, one head per
// warp at a time (decode: a block per 8 heads, so no warp walks several heads one L2 round trip
// after another; prompts: one block per token, the cos/sin computed once per token).
template <typename KT, typename VT>
__global__ void __launch_bounds__(kRopeWarps * 32) attention_prep_kernel(PrepArgs a) {
    pdl_prologue();
    extern __shared__ float smem[];
    float* cs = smem;  // [half][2]: cos, sin
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float* row = smem + a.n_rot + warp * a.head_dim;
    const int64_t t = blockIdx.x;
    const int n_heads = a.n_head + 2 * a.n_head_kv;
    const int h_first = blockIdx.y * kRopeWarps + warp, h_step = gridDim.y * kRopeWarps;
    // The warp's first head row into L1 while the angles' double-precision math runs.
    if (h_first < n_heads && lane * 32 < a.head_dim) {
        asm volatile("prefetch.global.L1 [%0];" ::"l"(prep_head_row(a, h_first, t) + lane * 32));
    }
    const int32_t cell = *at<int32_t>(a.cells, t * a.cells_nb);
    const bool store = cell >= 0 && cell < a.n_cells;  // out-of-range cells skipped, as set_rows
    rope_angles(cs, *at<int32_t>(a.pos, t * a.pos_nb), a.n_rot, a.freq_base, a.freq_scale,
                a.factors);
    __syncthreads();
    for (int h = h_first; h < n_heads; h += h_step) {
        if (h < a.n_head) {
            float* q = const_cast<float*>(prep_head_row(a, h, t));
            norm_rope_head(q, a.wq, a.norm, a.eps, a.head_dim, a.n_rot, a.neox, cs, row, lane, q,
                           static_cast<float*>(nullptr));
        } else if (h < a.n_head + a.n_head_kv) {
            const int g = h - a.n_head;
            float* k = const_cast<float*>(prep_head_row(a, h, t));
            KT* ck = store ? at<KT>(a.cache_k, cell * a.ck_nb1) + g * a.head_dim : nullptr;
            norm_rope_head(k, a.wk, a.norm, a.eps, a.head_dim, a.n_rot, a.neox, cs, row, lane, k,
                           ck);
        } else if (store) {
            const int g = h - a.n_head - a.n_head_kv;
            const float* v = prep_head_row(a, h, t);
            VT* cv = at<VT>(a.cache_v, cell * a.cv_nb1) + g * a.head_dim;
            for (int j = lane; j < a.head_dim; j += 32) store_as(cv + j, v[j]);
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

bool cuda_attention_prep(CudaContext& ctx, Tensor q, Tensor k, const Tensor& v, bool qk_norm,
                         const Tensor* q_norm, const Tensor* k_norm, float eps, const Tensor& pos,
                         const RopeParams& p, const Tensor& cells, Tensor cache_k, Tensor cache_v) {
    const int64_t head_dim = q.ne[0], n_head = q.ne[1], n_head_kv = k.ne[1], n_tokens = q.ne[2];
    // The fused kernel: F32 heads in float4 rows, F16/F32 caches of kv_dim-wide rows, shapes
    // that agree; anything else (a Q8_0 cache, odd layouts) takes the composed ops.
    auto f32_heads = [&](const Tensor& t) {
        return t.type == DType::F32 && t.nb[0] == 4 && t.ne[0] == head_dim && t.ne[2] == n_tokens &&
               t.ne[3] == 1 && rows_aligned16(t);
    };
    auto cache_ok = [&](const Tensor& c) {
        return (c.type == DType::F32 || c.type == DType::F16) &&
               c.nb[0] == dtype_traits(c.type).block_bytes && c.ne[0] == head_dim * n_head_kv &&
               c.ne[2] == 1 && c.ne[3] == 1;
    };
    const auto norm_ok = [&](const Tensor* w) {
        return w == nullptr ||
               (w->type == DType::F32 && w->nb[0] == 4 && w->ne[0] == head_dim && w->n_rows() == 1);
    };
    if (!f32_heads(q) || !f32_heads(k) || !f32_heads(v) || v.ne[1] != n_head_kv ||
        !cache_ok(cache_k) || !cache_ok(cache_v) || cache_k.ne[1] != cache_v.ne[1] ||
        head_dim % 4 != 0 || head_dim > kMaxHeadDim || p.n_rot <= 0 || p.n_rot % 2 != 0 ||
        p.n_rot > head_dim || pos.type != DType::I32 || pos.ne[0] != n_tokens ||
        cells.type != DType::I32 || cells.ne[0] != n_tokens || !norm_ok(q_norm) ||
        !norm_ok(k_norm) ||
        (p.freq_factors != nullptr &&
         (p.freq_factors->type != DType::F32 || p.freq_factors->ne[0] < p.n_rot / 2)))
        return false;
    if (n_tokens == 0) return true;
    PrepArgs a{};
    a.q = q.ptr<float>();
    a.q_nb1 = q.nb[1];
    a.q_nb2 = q.nb[2];
    a.k = k.ptr<float>();
    a.k_nb1 = k.nb[1];
    a.k_nb2 = k.nb[2];
    a.v = v.ptr<const float>();
    a.v_nb1 = v.nb[1];
    a.v_nb2 = v.nb[2];
    a.wq = qk_norm && q_norm != nullptr ? q_norm->ptr<const float>() : nullptr;
    a.wk = qk_norm && k_norm != nullptr ? k_norm->ptr<const float>() : nullptr;
    a.norm = qk_norm;
    a.eps = eps;
    a.pos = pos.ptr<const int32_t>();
    a.pos_nb = pos.nb[0];
    a.cells = cells.ptr<const int32_t>();
    a.cells_nb = cells.nb[0];
    a.n_cells = cache_k.ne[1];
    a.cache_k = cache_k.data;
    a.cache_v = cache_v.data;
    a.ck_nb1 = cache_k.nb[1];
    a.cv_nb1 = cache_v.nb[1];
    a.head_dim = static_cast<int>(head_dim);
    a.n_head = static_cast<int>(n_head);
    a.n_head_kv = static_cast<int>(n_head_kv);
    a.n_rot = p.n_rot;
    a.neox = p.neox;
    a.freq_base = p.freq_base;
    a.freq_scale = p.freq_scale;
    a.factors = p.freq_factors != nullptr ? p.freq_factors->ptr<const float>() : nullptr;
    const size_t smem = (static_cast<size_t>(p.n_rot) + kRopeWarps * head_dim) * sizeof(float);
    // Few tokens (decode, verify): a block per kRopeWarps heads, so the GPU's SMs share them.
    const int64_t n_heads = n_head + 2 * n_head_kv;
    const int64_t per_token = n_tokens < ctx.sm_count ? (n_heads + kRopeWarps - 1) / kRopeWarps : 1;
    const dim3 grid(static_cast<unsigned>(n_tokens), static_cast<unsigned>(per_token)),
        block(kRopeWarps * 32);
    const bool k16 = cache_k.type == DType::F16, v16 = cache_v.type == DType::F16;
    if (k16 && v16) {
        launch_pdl(ctx, &attention_prep_kernel<__half, __half>, grid, block, smem, a);
    } else if (!k16 && !v16) {
        launch_pdl(ctx, &attention_prep_kernel<float, float>, grid, block, smem, a);
    } else if (k16) {
        launch_pdl(ctx, &attention_prep_kernel<__half, float>, grid, block, smem, a);
    } else {
        launch_pdl(ctx, &attention_prep_kernel<float, __half>, grid, block, smem, a);
    }
    return true;
}

}  // namespace sift::cuda
