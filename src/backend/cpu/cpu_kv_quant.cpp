// set_rows into a Q8_0 KV cache (ops.h): each row is quantized by the reference quantizer
// (tensor/quant.h quantize_row), the ground truth the CUDA kernel (cuda_kv_quant.cu) matches bit
// for bit.
#include <algorithm>

#include "backend/cpu/cpu_ops.h"
#include "core/check.h"
#include "tensor/quant.h"

namespace sift::cpu {

void cpu_set_rows_q8_0(CpuContext& ctx, const Tensor& src, const Tensor& idx, Tensor dst) {
    SIFT_CHECK(src.type == DType::F32 && src.nb[0] == 4 && src.ne[2] == 1 && src.ne[3] == 1,
               "set_rows: src must be F32 [w, T] with contiguous rows");
    SIFT_CHECK(dst.type == DType::Q8_0 && dst.nb[0] == dtype_traits(DType::Q8_0).block_bytes &&
                   dst.ne[2] == 1 && dst.ne[3] == 1,
               "set_rows: Q8_0 dst must be [w, n_rows] with contiguous rows");
    const int64_t width = src.ne[0], n = src.ne[1];
    SIFT_CHECK(idx.type == DType::I32 && idx.ne[0] == n && dst.ne[0] == width, "set_rows: shapes");
    SIFT_CHECK(width % dtype_traits(DType::Q8_0).block_size == 0,
               "set_rows: Q8_0 rows of {} are not whole blocks of 32", width);
    const int64_t chunk = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, width));
    ctx.pool.parallel_for(n, chunk, [&](int64_t begin, int64_t end, int) {
        for (int64_t t = begin; t < end; ++t) {
            const int32_t row = read_i32(idx, t);
            SIFT_CHECK(row >= 0 && row < dst.ne[1], "set_rows: row {} outside [0, {})", row,
                       dst.ne[1]);
            quantize_row(DType::Q8_0,
                         reinterpret_cast<const float*>(static_cast<const uint8_t*>(src.data) +
                                                        t * src.nb[1]),
                         static_cast<uint8_t*>(dst.data) + row * dst.nb[1], width);
        }
    });
}

}  // namespace sift::cpu
