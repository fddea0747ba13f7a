// A Q8_0 KV cache on the GPU: set_rows into Q8_0 rows, bit for bit the reference quantizer
// (tensor/quant_legacy.cpp quantize_q8_0), and the conversion of an attended cell range to F16
// for the prefill kernels, which take F16 operands (llama.cpp converts a quantized cache for
// its tensor-core kernels the same way). Decode reads Q8_0 directly (cuda_attention_vec.cu).
#include <cuda_fp16.h>

#include "backend/cuda/cuda_kv_quant.cuh"
#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/cuda_ops.h"

namespace sift::cuda {
namespace {

constexpr int kQ8Block = 32;  // values per Q8_0 block
constexpr int kQ8Bytes = 34;  // F16 scale + 32 int8
constexpr int kSetWarps = 4;  // Q8_0 blocks per CUDA block of set_rows

// One warp per Q8_0 block: lane j quantizes value j. Each step is the reference's in IEEE F32:
// d = amax / 127 (correctly rounded division, no fast math), id = 1 / d, q = roundf(x * id)
// (halves away from zero), the scale stored as F16 rounded to nearest even. The max is exact,
// so its order does not matter.
__global__ void set_rows_q8_0_kernel(const float* src, int64_t src_nb1, const int32_t* idx,
                                     int64_t idx_nb, uint8_t* dst, int64_t dst_nb1,
                                     int64_t dst_rows, int n_blocks) {
    pdl_prologue();
    const int64_t t = blockIdx.x;
    const int b = blockIdx.y * kSetWarps + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (b >= n_blocks) return;
    const int32_t row =
        *reinterpret_cast<const int32_t*>(reinterpret_cast<const char*>(idx) + t * idx_nb);
    if (row < 0 || row >= dst_rows) return;  // the CPU aborts; the caller validated the cells
    const float x = reinterpret_cast<const float*>(reinterpret_cast<const char*>(src) +
                                                   t * src_nb1)[b * kQ8Block + lane];
    float amax = fabsf(x);
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const float q = fminf(fmaxf(roundf(x * id), -128.0f), 127.0f);
    uint8_t* block = dst + row * dst_nb1 + static_cast<int64_t>(b) * kQ8Bytes;
    block[2 + lane] = static_cast<uint8_t>(static_cast<int8_t>(static_cast<int>(q)));
    if (lane == 0) *reinterpret_cast<__half*>(block) = __float2half_rn(d);
}

// One thread per 8 values of a (cell, head) row: out F16 [head_dim, n_kv, n_cells] contiguous,
// from Q8_0 rows at byte strides nb1 (head) and nb2 (cell). Q8_0 blocks are 2-byte aligned.
__global__ void q8_0_to_f16_kernel(const uint8_t* src, int64_t nb1, int64_t nb2, int head_dim,
                                   int n_kv, int64_t n_cells, __half* out) {
    pdl_prologue();
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const int groups = head_dim / 8;
    if (i >= n_cells * n_kv * groups) return;
    const int g = static_cast<int>(i % groups);
    const int64_t row = i / groups;  // cell * n_kv + head
    const int64_t c = row / n_kv;
    const int h = static_cast<int>(row % n_kv);
    const uint8_t* block = src + c * nb2 + h * nb1 + (g / 4) * kQ8Bytes;
    const float d = __half2float(*reinterpret_cast<const __half*>(block));
    const uint16_t* qs = reinterpret_cast<const uint16_t*>(block + 2 + (g % 4) * 8);
    __align__(16) __half v[8];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
        const uint16_t pair = qs[k];
        v[2 * k] = __float2half_rn(d * static_cast<float>(static_cast<int8_t>(pair & 0xFF)));
        v[2 * k + 1] = __float2half_rn(d * static_cast<float>(static_cast<int8_t>(pair >> 8)));
    }
    *reinterpret_cast<uint4*>(out + row * head_dim + g * 8) = *reinterpret_cast<const uint4*>(v);
}

// Cells [first, ne[2]) of a cache view.
Tensor cells_from(const Tensor& t, int64_t first) {
    Tensor out = t;
    out.data = static_cast<uint8_t*>(t.data) + first * t.nb[2];
    out.ne[2] = t.ne[2] - first;
    return out;
}

// Elements [first, ne[0]) of a 1-D I32 view.
Tensor tail(const Tensor& t, int64_t first) {
    Tensor out = t;
    out.data = static_cast<uint8_t*>(t.data) + first * t.nb[0];
    out.ne[0] = t.ne[0] - first;
    return out;
}

Tensor to_f16(CudaContext& ctx, Scratch& scratch, const Tensor& t, int64_t c0, int64_t n) {
    SIFT_CHECK(t.nb[0] == kQ8Bytes && t.ne[0] % kQ8Block == 0 && t.nb[1] % 2 == 0 &&
                   t.nb[2] % 2 == 0 && reinterpret_cast<uintptr_t>(t.data) % 2 == 0,
               "attention (CUDA): Q8_0 K/V rows must be whole, 2-byte aligned blocks");
    const int head_dim = static_cast<int>(t.ne[0]), n_kv = static_cast<int>(t.ne[1]);
    auto* out = static_cast<__half*>(
        scratch.get(std::max<size_t>(1, static_cast<size_t>(n * n_kv * head_dim) * 2)));
    const int64_t threads = n * n_kv * (head_dim / 8);
    if (threads > 0) {
        launch_pdl(ctx, &q8_0_to_f16_kernel, dim3(grid_1d(threads, 256)), dim3(256), 0,
                   static_cast<const uint8_t*>(t.data) + c0 * t.nb[2], t.nb[1], t.nb[2], head_dim,
                   n_kv, n, out);
    }
    return Tensor::view(out, DType::F16, {head_dim, n_kv, n}, Device::DEVICE_CUDA);
}

}  // namespace

void cuda_set_rows_q8_0(CudaContext& ctx, const Tensor& src, const Tensor& idx, Tensor dst) {
    SIFT_CHECK(src.type == DType::F32 && src.nb[0] == 4 && src.ne[2] == 1 && src.ne[3] == 1,
               "set_rows: src must be F32 [w, T] with contiguous rows");
    SIFT_CHECK(dst.type == DType::Q8_0 && dst.nb[0] == kQ8Bytes && dst.ne[2] == 1 &&
                   dst.ne[3] == 1 && dst.nb[1] % 2 == 0 &&
                   reinterpret_cast<uintptr_t>(dst.data) % 2 == 0,
               "set_rows: Q8_0 dst must be [w, n_rows] with contiguous, 2-byte aligned rows");
    const int64_t width = src.ne[0], n = src.ne[1];
    SIFT_CHECK(idx.type == DType::I32 && idx.ne[0] == n && dst.ne[0] == width, "set_rows: shapes");
    SIFT_CHECK(width % kQ8Block == 0, "set_rows: Q8_0 rows of {} are not whole blocks of 32",
               width);
    if (n == 0 || width == 0) return;
    const int n_blocks = static_cast<int>(width / kQ8Block);
    const dim3 grid(static_cast<unsigned>(n), grid_1d(n_blocks, kSetWarps));
    launch_pdl(ctx, &set_rows_q8_0_kernel, dim3(grid), dim3(32 * kSetWarps), 0,
               src.ptr<const float>(), src.nb[1], idx.ptr<const int32_t>(), idx.nb[0],
               static_cast<uint8_t*>(dst.data), dst.nb[1], dst.ne[1], n_blocks);
}

size_t cuda_attention_scratch_bytes(int64_t kv_dim, int64_t n_cells, DType type_k, DType type_v) {
    // kv_q8_0_to_f16 converts at most the whole cache, each q8_0 side into its own scratch.
    const size_t side =
        Scratch::capacity_bound(static_cast<size_t>(kv_dim * n_cells) * sizeof(__half));
    return (type_k == DType::Q8_0 ? side : 0) + (type_v == DType::Q8_0 ? side : 0);
}

AttentionInputs kv_q8_0_to_f16(CudaContext& ctx, const AttentionInputs& in, bool with_v) {
    SIFT_CHECK(0 <= in.cell_begin && in.cell_begin <= in.cell_end && in.cell_end <= in.k.ne[2] &&
                   (!with_v || in.cell_end <= in.v.ne[2]) && in.cell_end <= in.cell_pos.ne[0] &&
                   in.cell_end <= in.cell_seq.ne[0],
               "attention: cell range [{}, {}) outside the cache", in.cell_begin, in.cell_end);
    const int64_t c0 = in.cell_begin, n = in.cell_end - in.cell_begin;
    AttentionInputs out = in;
    out.k = in.k.type == DType::Q8_0 ? to_f16(ctx, ctx.scratch_kv_k, in.k, c0, n)
                                     : cells_from(in.k, c0);
    if (!with_v) {
        out.v = Tensor{};
    } else {
        out.v = in.v.type == DType::Q8_0 ? to_f16(ctx, ctx.scratch_kv_v, in.v, c0, n)
                                         : cells_from(in.v, c0);
    }
    out.cell_pos = tail(in.cell_pos, c0);
    out.cell_seq = tail(in.cell_seq, c0);
    out.cell_begin = 0;
    out.cell_end = n;
    return out;
}

}  // namespace sift::cuda
