// Row-wise CPU ops: get_rows, add, mul, scale, rms_norm, rope, swiglu, geglu, set_rows, argmax.
// All are memory-bound, so they are plain loops over rows; rows are split across threads only in
// chunks big enough (~32K elements) to outweigh waking the pool.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "core/check.h"
#include "tensor/quant.h"

namespace sift::cpu {
namespace {

constexpr int64_t kElementsPerChunk = 32768;

int64_t rows_per_chunk(int64_t row_elements) {
    return std::max<int64_t>(1, kElementsPerChunk / std::max<int64_t>(1, row_elements));
}

// Row i of a tensor with rows over dims 1..3 (ne[0] contiguous).
template <typename T>
T* row_ptr(const Tensor& t, int64_t i) {
    const int64_t i1 = i % t.ne[1];
    const int64_t i2 = i / t.ne[1] % t.ne[2];
    const int64_t i3 = i / (t.ne[1] * t.ne[2]);
    return reinterpret_cast<T*>(static_cast<uint8_t*>(t.data) + i1 * t.nb[1] + i2 * t.nb[2] +
                                i3 * t.nb[3]);
}

void check_f32_rows(const Tensor& t, const char* op, const char* name) {
    SIFT_CHECK(t.type == DType::F32 && t.nb[0] == 4, "{}: {} must be F32 with contiguous rows", op,
               name);
}

void check_same_shape(const Tensor& a, const Tensor& b, const char* op) {
    SIFT_CHECK(a.ne == b.ne, "{}: shapes [{}, {}, {}, {}] and [{}, {}, {}, {}] differ", op, a.ne[0],
               a.ne[1], a.ne[2], a.ne[3], b.ne[0], b.ne[1], b.ne[2], b.ne[3]);
}

// out = f(a, b) with b the same shape as a or a single row broadcast over a's rows.
template <typename F>
void binary_op(CpuContext& ctx, const Tensor& a, const Tensor& b, Tensor out, const char* op, F f) {
    check_f32_rows(a, op, "a");
    check_f32_rows(b, op, "b");
    check_f32_rows(out, op, "out");
    check_same_shape(a, out, op);
    const bool broadcast = b.n_rows() == 1;
    SIFT_CHECK(b.ne[0] == a.ne[0] && (broadcast || b.ne == a.ne), "{}: b must be [n] or a's shape",
               op);
    const int64_t n = a.ne[0];
    ctx.pool.parallel_for(a.n_rows(), rows_per_chunk(n), [&](int64_t begin, int64_t end, int) {
        for (int64_t i = begin; i < end; ++i) {
            const float* x = row_ptr<const float>(a, i);
            const float* y = row_ptr<const float>(b, broadcast ? 0 : i);
            float* o = row_ptr<float>(out, i);
            for (int64_t j = 0; j < n; ++j) o[j] = f(x[j], y[j]);
        }
    });
}

// out = f(gate) * up, elementwise.
template <typename F>
void gated_op(CpuContext& ctx, const Tensor& gate, const Tensor& up, Tensor out, const char* op,
              F f) {
    check_f32_rows(gate, op, "gate");
    check_f32_rows(up, op, "up");
    check_f32_rows(out, op, "out");
    check_same_shape(gate, up, op);
    check_same_shape(gate, out, op);
    const int64_t n = gate.ne[0];
    ctx.pool.parallel_for(gate.n_rows(), rows_per_chunk(n), [&](int64_t begin, int64_t end, int) {
        for (int64_t i = begin; i < end; ++i) {
            const float* g = row_ptr<const float>(gate, i);
            const float* u = row_ptr<const float>(up, i);
            float* o = row_ptr<float>(out, i);
            for (int64_t j = 0; j < n; ++j) o[j] = f(g[j]) * u[j];
        }
    });
}

}  // namespace

void cpu_get_rows(CpuContext& ctx, const Tensor& table, const Tensor& ids, Tensor out) {
    SIFT_CHECK(ids.type == DType::I32 && dtype_traits(table.type).computable,
               "get_rows: bad types");
    check_f32_rows(out, "get_rows", "out");
    const int64_t width = table.ne[0], n = ids.ne[0];
    SIFT_CHECK(out.ne[0] == width && out.n_rows() == n, "get_rows: out must be [{}, {}]", width, n);
    ctx.pool.parallel_for(n, rows_per_chunk(width), [&](int64_t begin, int64_t end, int) {
        for (int64_t t = begin; t < end; ++t) {
            const int32_t id = read_i32(ids, t);
            SIFT_CHECK(id >= 0 && id < table.ne[1], "get_rows: id {} outside [0, {})", id,
                       table.ne[1]);
            const void* src = static_cast<const uint8_t*>(table.data) + id * table.nb[1];
            dequantize_row(table.type, src, row_ptr<float>(out, t), width);
        }
    });
}

void cpu_add(CpuContext& ctx, const Tensor& a, const Tensor& b, Tensor out) {
    binary_op(ctx, a, b, out, "add", [](float x, float y) { return x + y; });
}

void cpu_mul(CpuContext& ctx, const Tensor& a, const Tensor& b, Tensor out) {
    binary_op(ctx, a, b, out, "mul", [](float x, float y) { return x * y; });
}

void cpu_scale(CpuContext& ctx, const Tensor& x, float s, Tensor out) {
    check_f32_rows(x, "scale", "x");
    check_f32_rows(out, "scale", "out");
    check_same_shape(x, out, "scale");
    const int64_t n = x.ne[0];
    ctx.pool.parallel_for(x.n_rows(), rows_per_chunk(n), [&](int64_t begin, int64_t end, int) {
        for (int64_t i = begin; i < end; ++i) {
            const float* a = row_ptr<const float>(x, i);
            float* o = row_ptr<float>(out, i);
            for (int64_t j = 0; j < n; ++j) o[j] = a[j] * s;
        }
    });
}

void cpu_rms_norm(CpuContext& ctx, const Tensor& x, const Tensor* w, float eps, Tensor out) {
    check_f32_rows(x, "rms_norm", "x");
    check_f32_rows(out, "rms_norm", "out");
    check_same_shape(x, out, "rms_norm");
    const int64_t n = x.ne[0];
    if (w != nullptr) {
        check_f32_rows(*w, "rms_norm", "w");
        SIFT_CHECK(w->ne[0] == n && w->n_rows() == 1, "rms_norm: w must be [{}]", n);
    }
    const float* wd = w != nullptr ? w->ptr<const float>() : nullptr;
    ctx.pool.parallel_for(x.n_rows(), rows_per_chunk(n), [&](int64_t begin, int64_t end, int) {
        for (int64_t i = begin; i < end; ++i) {
            const float* a = row_ptr<const float>(x, i);
            float* o = row_ptr<float>(out, i);
            // Double accumulation: the sum of n squares loses nothing, at no cost that matters.
            double ss = 0;
            for (int64_t j = 0; j < n; ++j) ss += static_cast<double>(a[j]) * a[j];
            const auto inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
            if (wd != nullptr) {
                for (int64_t j = 0; j < n; ++j) o[j] = a[j] * inv * wd[j];
            } else {
                for (int64_t j = 0; j < n; ++j) o[j] = a[j] * inv;
            }
        }
    });
}

void cpu_rope(CpuContext& ctx, const Tensor& x, const Tensor& pos, const RopeParams& p,
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
    const std::vector<double> inv_freq = rope_inv_freq(p, factors);
    const int64_t chunk = std::max<int64_t>(1, kElementsPerChunk / (head_dim * n_head));
    ctx.pool.parallel_for(n_tokens, chunk, [&](int64_t begin, int64_t end, int thread) {
        float* cs = ctx.thread_scratch[thread].get<float>(2 * half);
        for (int64_t t = begin; t < end; ++t) {
            const double position = read_i32(pos, t);
            for (int i = 0; i < half; ++i) {
                const double theta = position * inv_freq[i];
                cs[2 * i] = static_cast<float>(std::cos(theta));
                cs[2 * i + 1] = static_cast<float>(std::sin(theta));
            }
            for (int64_t h = 0; h < n_head; ++h) {
                const float* a = reinterpret_cast<const float*>(
                    static_cast<const uint8_t*>(x.data) + h * x.nb[1] + t * x.nb[2]);
                float* o = reinterpret_cast<float*>(static_cast<uint8_t*>(out.data) +
                                                    h * out.nb[1] + t * out.nb[2]);
                // NeoX rotates (i, i + n_rot/2); the original layout rotates (2i, 2i + 1).
                const int64_t stride = p.neox ? 1 : 2, offset = p.neox ? half : 1;
                for (int i = 0; i < half; ++i) {
                    const int64_t i0 = i * stride, i1 = i0 + offset;
                    const float x0 = a[i0], x1 = a[i1];
                    o[i0] = x0 * cs[2 * i] - x1 * cs[2 * i + 1];
                    o[i1] = x0 * cs[2 * i + 1] + x1 * cs[2 * i];
                }
                if (o != a)
                    std::memcpy(o + p.n_rot, a + p.n_rot, (head_dim - p.n_rot) * sizeof(float));
            }
        }
    });
}

void cpu_swiglu(CpuContext& ctx, const Tensor& gate, const Tensor& up, Tensor out) {
    gated_op(ctx, gate, up, out, "swiglu", [](float g) { return g / (1.0f + std::exp(-g)); });
}

void cpu_geglu(CpuContext& ctx, const Tensor& gate, const Tensor& up, Tensor out) {
    // gelu with the tanh approximation (HF gelu_pytorch_tanh).
    gated_op(ctx, gate, up, out, "geglu", [](float g) {
        constexpr float kSqrt2OverPi = 0.7978845608028654f;
        return 0.5f * g * (1.0f + std::tanh(kSqrt2OverPi * (g + 0.044715f * g * g * g)));
    });
}

void cpu_set_rows(CpuContext& ctx, const Tensor& src, const Tensor& idx, Tensor dst) {
    if (dst.type == DType::Q8_0) return cpu_set_rows_q8_0(ctx, src, idx, dst);  // a Q8_0 KV cache
    check_f32_rows(src, "set_rows", "src");
    SIFT_CHECK(dst.type == DType::F32 || dst.type == DType::F16,
               "set_rows: dst must be F32 or F16");
    SIFT_CHECK(dst.nb[0] == dtype_traits(dst.type).block_bytes,
               "set_rows: dst rows must be contiguous");
    const int64_t width = src.ne[0], n = src.n_rows();
    SIFT_CHECK(idx.type == DType::I32 && idx.ne[0] == n && dst.ne[0] == width, "set_rows: shapes");
    ctx.pool.parallel_for(n, rows_per_chunk(width), [&](int64_t begin, int64_t end, int) {
        for (int64_t t = begin; t < end; ++t) {
            const int32_t row = read_i32(idx, t);
            SIFT_CHECK(row >= 0 && row < dst.n_rows(), "set_rows: row {} outside [0, {})", row,
                       dst.n_rows());
            const float* s = row_ptr<const float>(src, t);
            if (dst.type == DType::F32) {
                std::memcpy(row_ptr<float>(dst, row), s, static_cast<size_t>(width) * 4);
            } else {
                uint16_t* d = row_ptr<uint16_t>(dst, row);
                for (int64_t j = 0; j < width; ++j) d[j] = fp32_to_fp16(s[j]);
            }
        }
    });
}

void cpu_argmax(CpuContext& ctx, const Tensor& x, Tensor out) {
    check_f32_rows(x, "argmax", "x");
    SIFT_CHECK(out.type == DType::I32 && out.ne[0] == x.n_rows(), "argmax: out must be I32 [T]");
    const int64_t n = x.ne[0];
    ctx.pool.parallel_for(x.n_rows(), rows_per_chunk(n), [&](int64_t begin, int64_t end, int) {
        for (int64_t t = begin; t < end; ++t) {
            const float* a = row_ptr<const float>(x, t);
            int64_t best = 0;
            for (int64_t j = 1; j < n; ++j) {
                if (a[j] > a[best]) best = j;  // strict: the lowest index wins ties
            }
            const auto v = static_cast<int32_t>(best);
            std::memcpy(static_cast<uint8_t*>(out.data) + t * out.nb[0], &v, 4);
        }
    });
}

}  // namespace sift::cpu
