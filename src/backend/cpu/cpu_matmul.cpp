// Matmul driver: out[:, t] = W x[:, t] for W [k, n] of any computable type and x F32 [k, T].
//
// Work is cut into items of (rows_per_item weight rows) x (cols_per_item tokens), handed out
// dynamically by the thread pool. Inside an item, k is cut into blocks (for long rows only), and
// for each k block the item walks its token tiles, each against all its weight-row tiles: the
// activation tile stays in cache while the item's weight rows (sized for L2) stream past it.
#include <algorithm>
#include <cstring>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_ops.h"
#include "core/check.h"
#include "tensor/quant.h"

namespace sift::cpu {
namespace {

struct MatmulPlan {
    const MatmulKernel* kernel = nullptr;
    bool dequantize = false;  // exact mode on quantized weights: dequantize rows to F32 first
    int64_t k_block = 0;      // weight elements per k block
    int64_t rows_per_item = 0;
    int64_t cols_per_item = 0;
};

bool is_float_type(DType type) {
    return type == DType::F32 || type == DType::F16 || type == DType::BF16;
}

int64_t round_up(int64_t v, int64_t m) {
    return (v + m - 1) / m * m;
}

// The one place matmul picks its kernel and tiling.
MatmulPlan matmul_select(DType type, int64_t n, int64_t k, int64_t n_tokens, bool exact, CpuIsa isa,
                         int n_threads) {
    MatmulPlan plan;
    // One column: the decode tile shape, which streams weight rows in address order against
    // one activation vector (cpu_kernels_avx2.h); there is nothing to reuse across columns.
    const bool decode = n_tokens == 1;
    const auto kernel_for = [&](DType t) {
        return isa == CpuIsa::ISA_AVX2 ? matmul_kernel_avx2(t, decode) : matmul_kernel_scalar(t);
    };
    if (is_float_type(type)) {
        // F16/BF16 -> F32 conversion is exact, so exact and fast mode are the same FMA kernel.
        plan.kernel = kernel_for(type);
    } else if (exact) {
        // Exact: dequantize with the scalar ground truth (tensor/quant.h), then F32 FMA.
        plan.kernel = kernel_for(DType::F32);
        plan.dequantize = true;
    } else {
        // Fast: activations quantized once (Q8_0x / Q8_K), integer SIMD dot products.
        plan.kernel = kernel_for(type);
    }
    SIFT_CHECK(plan.kernel != nullptr, "no CPU matmul kernel for {}", dtype_name(type));

    const int64_t act_block = act_block_size(plan.kernel->act);
    const double act_bytes_per_elem =
        static_cast<double>(act_row_bytes(plan.kernel->act, act_block)) /
        static_cast<double>(act_block);
    if (decode && !plan.dequantize) {
        // One column is at most ~30 KB of activations: no k blocking, weights read exactly once.
        plan.k_block = k;
    } else {
        // A k block's activation tile (max_cols x k_block) within 128 KB, a quarter of the 512 KB
        // L2: each tile call has a fixed cost (max_cols horizontal sums and output updates per
        // row), so long k blocks pay off; L1-sized 16 KB blocks measured 10-30% slower than
        // whole rows. The exact path keeps 16 KB so its dequantized F32 row block
        // (rows_per_item x k_block x 4) stays in L2. Multiples of 256 keep every block whole.
        const auto elems = static_cast<int64_t>((plan.dequantize ? 16384 : 131072) /
                                                (plan.kernel->max_cols * act_bytes_per_elem));
        plan.k_block = std::min(k, std::max<int64_t>(256, elems / 256 * 256));
    }
    const int64_t r = plan.kernel->max_rows;
    if (n_tokens < 4 * plan.kernel->max_cols) {
        // Few tokens: weight-bandwidth bound. Split rows only, into ~8 items per thread so
        // dynamic hand-out evens out a descheduled thread, yet items stay 10+ us long.
        plan.cols_per_item = n_tokens;
        const int64_t rows = (n + 8 * n_threads - 1) / (8 * n_threads);
        plan.rows_per_item = std::clamp(round_up(rows, r), r, round_up(256, r));
    } else {
        // Prefill: 64 tokens x up to 64 weight rows, as many as keep the item's k-block of
        // weights within 256 KB of L2 (they are re-read once per token tile).
        const double w_bytes = plan.dequantize
                                   ? 4.0
                                   : static_cast<double>(dtype_traits(type).block_bytes) /
                                         static_cast<double>(dtype_traits(type).block_size);
        const auto rows =
            static_cast<int64_t>(262144 / (static_cast<double>(plan.k_block) * w_bytes));
        plan.rows_per_item = round_up(std::clamp<int64_t>(rows, 16, 64), r);
        plan.cols_per_item = round_up(64, plan.kernel->max_cols);
    }
    return plan;
}

}  // namespace

void cpu_matmul(CpuContext& ctx, const Tensor& w, const Tensor& x, Tensor out) {
    const int64_t k = w.ne[0], n = w.ne[1], n_tokens = x.ne[1];
    SIFT_CHECK(x.type == DType::F32 && out.type == DType::F32, "matmul: x and out must be F32");
    SIFT_CHECK(x.ne[0] == k && out.ne[0] == n && out.ne[1] == n_tokens,
               "matmul: w [{}, {}] x [{}, {}] -> out [{}, {}]", k, n, x.ne[0], x.ne[1], out.ne[0],
               out.ne[1]);
    SIFT_CHECK(w.ne[2] == 1 && w.ne[3] == 1 && x.ne[2] == 1 && x.ne[3] == 1 && out.ne[2] == 1 &&
                   out.ne[3] == 1,
               "matmul: 2-D tensors only");
    SIFT_CHECK(x.nb[0] == 4 && out.nb[0] == 4, "matmul: x and out rows must be contiguous");
    const DTypeTraits& traits = dtype_traits(w.type);
    SIFT_CHECK(w.nb[0] == traits.block_bytes && k % traits.block_size == 0);
    if (n == 0 || n_tokens == 0) return;

    const int n_threads = ctx.pool.size();
    const MatmulPlan plan = matmul_select(w.type, n, k, n_tokens, ctx.exact, ctx.isa, n_threads);
    const MatmulKernel& kernel = *plan.kernel;

    // Activations: F32 as given, or quantized once per column into shared scratch.
    const uint8_t* xq = static_cast<const uint8_t*>(x.data);
    int64_t x_stride = x.nb[1];
    if (kernel.quantize != nullptr) {
        x_stride = act_row_bytes(kernel.act, k);
        uint8_t* buf = ctx.shared_scratch.get<uint8_t>(x_stride * n_tokens);
        ctx.pool.parallel_for(
            n_tokens, std::max<int64_t>(1, 4096 / k), [&](int64_t b, int64_t e, int) {
                for (int64_t t = b; t < e; ++t) {
                    kernel.quantize(reinterpret_cast<const float*>(xq + t * x.nb[1]),
                                    buf + t * x_stride, k);
                }
            });
        xq = buf;
    }
    // Bytes of activation per weight element, to offset x by a k block.
    const int64_t act_block = act_block_size(kernel.act);
    const int64_t x_bytes_per_block = act_row_bytes(kernel.act, act_block);

    const int64_t n_row_items = (n + plan.rows_per_item - 1) / plan.rows_per_item;
    const int64_t n_col_items = (n_tokens + plan.cols_per_item - 1) / plan.cols_per_item;
    const uint8_t* wd = static_cast<const uint8_t*>(w.data);
    float* od = static_cast<float*>(out.data);
    const int64_t out_stride = out.nb[1] / 4;

    ctx.pool.parallel_for(
        n_row_items * n_col_items, 1, [&](int64_t begin, int64_t end, int thread) {
            float* deq =
                plan.dequantize
                    ? ctx.thread_scratch[thread].get<float>(plan.rows_per_item * plan.k_block)
                    : nullptr;
            for (int64_t item = begin; item < end; ++item) {
                // Consecutive items share a token block, so both threads read the same activations.
                const int64_t r_begin = item % n_row_items * plan.rows_per_item;
                const int64_t r_end = std::min(n, r_begin + plan.rows_per_item);
                const int64_t c_begin = item / n_row_items * plan.cols_per_item;
                const int64_t c_end = std::min(n_tokens, c_begin + plan.cols_per_item);
                for (int64_t k0 = 0; k0 < k; k0 += plan.k_block) {
                    const int64_t kn = std::min(plan.k_block, k - k0);
                    TileArgs a{};
                    a.out_stride = out_stride;
                    a.accumulate = k0 > 0;
                    a.x_stride = x_stride;
                    const uint8_t* w0;
                    if (plan.dequantize) {
                        for (int64_t r = r_begin; r < r_end; ++r) {
                            const uint8_t* src =
                                wd + r * w.nb[1] + k0 / traits.block_size * traits.block_bytes;
                            dequantize_row(w.type, src, deq + (r - r_begin) * kn, kn);
                        }
                        w0 = reinterpret_cast<const uint8_t*>(deq);
                        a.w_stride = kn * 4;
                        a.n_blocks = kn;  // the F32 kernel counts elements
                    } else {
                        w0 = wd + r_begin * w.nb[1] + k0 / traits.block_size * traits.block_bytes;
                        a.w_stride = w.nb[1];
                        a.n_blocks = kn / act_block;
                    }
                    const uint8_t* x0 = xq + k0 / act_block * x_bytes_per_block;
                    for (int64_t c = c_begin; c < c_end; c += kernel.max_cols) {
                        a.n_cols = static_cast<int>(std::min<int64_t>(kernel.max_cols, c_end - c));
                        a.x = x0 + c * x_stride;
                        for (int64_t r = r_begin; r < r_end; r += kernel.max_rows) {
                            a.n_rows =
                                static_cast<int>(std::min<int64_t>(kernel.max_rows, r_end - r));
                            a.w = w0 + (r - r_begin) * a.w_stride;
                            a.out = od + c * out_stride + r;
                            kernel.tile(a);
                        }
                    }
                }
            }
        });
}

}  // namespace sift::cpu
