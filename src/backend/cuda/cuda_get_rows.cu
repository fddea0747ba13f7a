// get_rows: out[:, t] = table[:, ids[t]] as F32, bit-identical to the CPU dequantizers.
#include <cstdint>

#include "backend/cuda/cuda_dequant.cuh"
#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/cuda_matmul.cuh"
#include "backend/cuda/cuda_ops.h"
#include "core/check.h"

namespace sift::cuda {
namespace {

// One thread per group of 8 elements; blockIdx.x is the output column (up to 2^31 - 1 ids). An id
// outside the table writes NaN (a device-side abort would lose the context; the CPU backend checks
// ids instead).
template <DType TYPE>
__global__ void get_rows_kernel(const uint8_t* table, int64_t row_stride, int64_t n_rows,
                                int64_t width, const int32_t* ids, float* out, int64_t out_stride) {
    pdl_prologue();
    const int64_t g = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
    const int64_t t = blockIdx.x;
    if (8 * g >= width) return;
    const int32_t id = ids[t];
    float v[8];
    if (id >= 0 && id < n_rows) {
        dequant8<TYPE>(table + id * row_stride, g, width, v);
    } else {
        for (float& f : v) f = __int_as_float(0x7FFFFFFF);
    }
    float* o = out + t * out_stride + 8 * g;
    if (8 * g + 8 <= width && (reinterpret_cast<uintptr_t>(o) & 15) == 0) {
        reinterpret_cast<float4*>(o)[0] = make_float4(v[0], v[1], v[2], v[3]);
        reinterpret_cast<float4*>(o)[1] = make_float4(v[4], v[5], v[6], v[7]);
    } else {
        for (int i = 0; i < 8 && 8 * g + i < width; ++i) o[i] = v[i];
    }
}

}  // namespace

void check_weight_alignment(const Tensor& w, const char* op) {
    const int64_t align = quant_row_alignment(w.type);
    SIFT_CHECK(reinterpret_cast<uintptr_t>(w.data) % align == 0 && w.nb[1] % align == 0,
               "{}: {} rows must be {}-byte aligned (row stride {})", op, dtype_name(w.type), align,
               w.nb[1]);
}

void cuda_get_rows(CudaContext& ctx, const Tensor& table, const Tensor& ids, Tensor out) {
    SIFT_CHECK(ids.type == DType::I32 && out.type == DType::F32, "get_rows: bad types");
    const int64_t width = table.ne[0], n = ids.ne[0];
    SIFT_CHECK(out.ne[0] == width && out.n_rows() == n && out.nb[0] == 4,
               "get_rows: out must be F32 [{}, {}]", width, n);
    SIFT_CHECK(out.ne[2] == 1 || out.nb[2] == out.nb[1] * out.ne[1], "get_rows: out rows");
    check_weight_alignment(table, "get_rows");
    if (n == 0 || width == 0) return;
    const int block = 128;
    const dim3 grid(static_cast<unsigned>(n), grid_1d((width + 7) / 8, block));
    const bool ok = dispatch_weight_type(table.type, [&](auto tag) {
        launch_pdl(ctx, &get_rows_kernel<decltype(tag)::value>, dim3(grid), dim3(block), 0,
                   static_cast<const uint8_t*>(table.data), table.nb[1], table.ne[1], width,
                   ids.ptr<const int32_t>(), out.ptr<float>(), out.nb[1] / 4);
    });
    SIFT_CHECK(ok, "get_rows: no CUDA kernel for {}", dtype_name(table.type));
    SIFT_CUDA_LAUNCH_CHECK();
}

}  // namespace sift::cuda
