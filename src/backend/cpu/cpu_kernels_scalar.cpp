// Portable scalar matmul kernels for every computable weight type: the fallback on CPUs without
// AVX2 and the readable statement of each format's dot product. Integer sums are formed exactly
// as the SIMD kernels form them, so both agree to float rounding.
#include <cmath>
#include <cstring>

#include "backend/cpu/cpu_kernels.h"
#include "core/check.h"
#include "tensor/quant.h"
#include "tensor/quant_blocks.h"

namespace sift::cpu {

CpuIsa cpu_isa_detect() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c")) {
        return CpuIsa::ISA_AVX2;
    }
#endif
    return CpuIsa::ISA_SCALAR;
}

const char* cpu_isa_name(CpuIsa isa) {
    return isa == CpuIsa::ISA_AVX2 ? "avx2" : "scalar";
}

int64_t act_block_size(ActFormat format) {
    switch (format) {
        case ActFormat::ACT_F32:
            return 1;
        case ActFormat::ACT_Q8_0X:
            return kQK8_0;
        case ActFormat::ACT_Q8_K:
            return kQK_K;
    }
    return 1;
}

int64_t act_row_bytes(ActFormat format, int64_t k) {
    switch (format) {
        case ActFormat::ACT_F32:
            return k * 4;
        case ActFormat::ACT_Q8_0X:
            return k / kQK8_0 * static_cast<int64_t>(sizeof(block_q8_0x));
        case ActFormat::ACT_Q8_K:
            return k / kQK_K * static_cast<int64_t>(sizeof(block_q8_Kx));
    }
    return 0;
}

namespace {

// Symmetric 8-bit quantization of n values: d = max|x| / 127, q = round-to-even(x / d).
float quantize_symmetric(const float* x, int8_t* q, int n) {
    float amax = 0;
    for (int i = 0; i < n; ++i) amax = std::fmax(amax, std::fabs(x[i]));
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    for (int i = 0; i < n; ++i) {
        const float v = std::nearbyint(x[i] * id);
        q[i] = static_cast<int8_t>(std::fmax(-127.0f, std::fmin(127.0f, v)));
    }
    return d;
}

int nibble(const uint8_t* qs, int j, int half) {
    return j < half ? (qs[j] & 0xF) : (qs[j - half] >> 4);
}

// Legacy formats: dot of one weight block with one activation block, as d_w * d_x * sum(q * y)
// plus the zero-point term (offset or min) times s = d_x * sum(y).
float dot_q8_0(const uint8_t* w, const block_q8_0x* y, int64_t nb) {
    const auto* b = reinterpret_cast<const block_q8_0*>(w);
    float sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int32_t s = 0;
        for (int j = 0; j < kQK8_0; ++j) s += b[i].qs[j] * y[i].qs[j];
        sum += fp16_to_fp32(b[i].d) * y[i].d * static_cast<float>(s);
    }
    return sum;
}

float dot_q4_0(const uint8_t* w, const block_q8_0x* y, int64_t nb) {
    const auto* b = reinterpret_cast<const block_q4_0*>(w);
    float sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int32_t s = 0;
        for (int j = 0; j < kQK4_0; ++j) s += nibble(b[i].qs, j, kQK4_0 / 2) * y[i].qs[j];
        const float d = fp16_to_fp32(b[i].d);
        sum += d * y[i].d * static_cast<float>(s) - 8 * d * y[i].s;
    }
    return sum;
}

float dot_q4_1(const uint8_t* w, const block_q8_0x* y, int64_t nb) {
    const auto* b = reinterpret_cast<const block_q4_1*>(w);
    float sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int32_t s = 0;
        for (int j = 0; j < kQK4_1; ++j) s += nibble(b[i].qs, j, kQK4_1 / 2) * y[i].qs[j];
        sum +=
            fp16_to_fp32(b[i].d) * y[i].d * static_cast<float>(s) + fp16_to_fp32(b[i].m) * y[i].s;
    }
    return sum;
}

template <typename Block>
int q5_value(const Block& b, int j) {
    uint32_t qh;
    std::memcpy(&qh, b.qh, 4);
    return nibble(b.qs, j, 16) | static_cast<int>((qh >> j) & 1) << 4;
}

float dot_q5_0(const uint8_t* w, const block_q8_0x* y, int64_t nb) {
    const auto* b = reinterpret_cast<const block_q5_0*>(w);
    float sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int32_t s = 0;
        for (int j = 0; j < kQK5_0; ++j) s += q5_value(b[i], j) * y[i].qs[j];
        const float d = fp16_to_fp32(b[i].d);
        sum += d * y[i].d * static_cast<float>(s) - 16 * d * y[i].s;
    }
    return sum;
}

float dot_q5_1(const uint8_t* w, const block_q8_0x* y, int64_t nb) {
    const auto* b = reinterpret_cast<const block_q5_1*>(w);
    float sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int32_t s = 0;
        for (int j = 0; j < kQK5_1; ++j) s += q5_value(b[i], j) * y[i].qs[j];
        sum +=
            fp16_to_fp32(b[i].d) * y[i].d * static_cast<float>(s) + fp16_to_fp32(b[i].m) * y[i].s;
    }
    return sum;
}

// K-quants against Q8_K: d * d_x * sum_j sc_j * sum(q * y) - dmin * d_x * sum_j m_j * sum(y).
float dot_q4_K(const uint8_t* w, const block_q8_Kx* y, int64_t nb) {
    const auto* b = reinterpret_cast<const block_q4_K*>(w);
    float sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int32_t isum = 0, msum = 0;
        for (int j = 0; j < 8; ++j) {
            uint8_t sc, m;
            kquant_scale_min(j, b[i].scales, &sc, &m);
            const uint8_t* q = b[i].qs + 32 * (j / 2);
            const int8_t* yq = y[i].qs + 32 * j;
            int32_t s = 0;
            for (int l = 0; l < 32; ++l) s += (j % 2 ? q[l] >> 4 : q[l] & 0xF) * yq[l];
            isum += sc * s;
            msum += m * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        }
        sum += fp16_to_fp32(b[i].d) * y[i].d * static_cast<float>(isum) -
               fp16_to_fp32(b[i].dmin) * y[i].d * static_cast<float>(msum);
    }
    return sum;
}

float dot_q5_K(const uint8_t* w, const block_q8_Kx* y, int64_t nb) {
    const auto* b = reinterpret_cast<const block_q5_K*>(w);
    float sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int32_t isum = 0, msum = 0;
        for (int j = 0; j < 8; ++j) {
            uint8_t sc, m;
            kquant_scale_min(j, b[i].scales, &sc, &m);
            const uint8_t* q = b[i].qs + 32 * (j / 2);
            const int8_t* yq = y[i].qs + 32 * j;
            int32_t s = 0;
            for (int l = 0; l < 32; ++l) {
                const int lo = j % 2 ? q[l] >> 4 : q[l] & 0xF;
                s += (lo | ((b[i].qh[l] >> j) & 1) << 4) * yq[l];
            }
            isum += sc * s;
            msum += m * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        }
        sum += fp16_to_fp32(b[i].d) * y[i].d * static_cast<float>(isum) -
               fp16_to_fp32(b[i].dmin) * y[i].d * static_cast<float>(msum);
    }
    return sum;
}

// Q6_K: element 128h + 32t + l takes its low 4 bits from ql[64h + 32(t%2) + l] (low nibble for
// t < 2, high for t >= 2) and its high 2 bits from bits 2t..2t+1 of qh[32h + l].
float dot_q6_K(const uint8_t* w, const block_q8_Kx* y, int64_t nb) {
    const auto* b = reinterpret_cast<const block_q6_K*>(w);
    float sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int32_t isum = 0;
        for (int e = 0; e < kQK_K; e += 16) {  // one scale per 16 elements
            const int h = e / 128, t = (e % 128) / 32;
            int32_t s = 0;
            for (int l = e % 32; l < e % 32 + 16; ++l) {
                const uint8_t ql = b[i].ql[64 * h + 32 * (t % 2) + l];
                const int lo = t < 2 ? ql & 0xF : ql >> 4;
                const int hi = (b[i].qh[32 * h + l] >> (2 * t)) & 3;
                s += ((lo | hi << 4) - 32) * y[i].qs[e - e % 32 + l];
            }
            isum += b[i].scales[e / 16] * s;
        }
        sum += fp16_to_fp32(b[i].d) * y[i].d * static_cast<float>(isum);
    }
    return sum;
}

template <typename Conv>
float dot_float(const uint8_t* w, const float* x, int64_t n, Conv conv) {
    float sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += conv(w, i) * x[i];
    return sum;
}

float dot_f32(const uint8_t* w, const float* x, int64_t n) {
    return dot_float(w, x, n, [](const uint8_t* p, int64_t i) {
        float v;
        std::memcpy(&v, p + 4 * i, 4);
        return v;
    });
}

float dot_f16(const uint8_t* w, const float* x, int64_t n) {
    return dot_float(w, x, n, [](const uint8_t* p, int64_t i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        return fp16_to_fp32(h);
    });
}

float dot_bf16(const uint8_t* w, const float* x, int64_t n) {
    return dot_float(w, x, n, [](const uint8_t* p, int64_t i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        return bf16_to_fp32(h);
    });
}

// The tile is a plain loop over its (row, column) dots.
template <typename Act, float (*Dot)(const uint8_t*, const Act*, int64_t)>
void tile_scalar(const TileArgs& a) {
    for (int c = 0; c < a.n_cols; ++c) {
        const Act* x = reinterpret_cast<const Act*>(a.x + c * a.x_stride);
        float* out = a.out + c * a.out_stride;
        for (int r = 0; r < a.n_rows; ++r) {
            const float v = Dot(a.w + r * a.w_stride, x, a.n_blocks);
            out[r] = a.accumulate ? out[r] + v : v;
        }
    }
}

}  // namespace

void quantize_act_q8_0x_scalar(const float* x, void* dst, int64_t k) {
    auto* y = static_cast<block_q8_0x*>(dst);
    for (int64_t i = 0; i < k / kQK8_0; ++i) {
        y[i].d = quantize_symmetric(x + i * kQK8_0, y[i].qs, kQK8_0);
        int32_t s = 0;
        for (int j = 0; j < kQK8_0; ++j) s += y[i].qs[j];
        y[i].s = y[i].d * static_cast<float>(s);
    }
}

void quantize_act_q8_K_scalar(const float* x, void* dst, int64_t k) {
    auto* y = static_cast<block_q8_Kx*>(dst);
    for (int64_t i = 0; i < k / kQK_K; ++i) {
        y[i].d = quantize_symmetric(x + i * kQK_K, y[i].qs, kQK_K);
        for (int j = 0; j < kQK_K / 16; ++j) {
            int s = 0;
            for (int l = 0; l < 16; ++l) s += y[i].qs[16 * j + l];
            y[i].bsums[j] = static_cast<int16_t>(s);
        }
        for (int j = 0; j < kQK_K / 32; ++j) {
            y[i].msums[j] = y[i].d * static_cast<float>(y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        }
    }
}

const MatmulKernel* matmul_kernel_scalar(DType type) {
    using enum ActFormat;
    static const MatmulKernel f32{ACT_F32, 4, 4, tile_scalar<float, dot_f32>, nullptr};
    static const MatmulKernel f16{ACT_F32, 4, 4, tile_scalar<float, dot_f16>, nullptr};
    static const MatmulKernel bf16{ACT_F32, 4, 4, tile_scalar<float, dot_bf16>, nullptr};
    static const MatmulKernel q8_0{ACT_Q8_0X, 4, 4, tile_scalar<block_q8_0x, dot_q8_0>,
                                   quantize_act_q8_0x_scalar};
    static const MatmulKernel q4_0{ACT_Q8_0X, 4, 4, tile_scalar<block_q8_0x, dot_q4_0>,
                                   quantize_act_q8_0x_scalar};
    static const MatmulKernel q4_1{ACT_Q8_0X, 4, 4, tile_scalar<block_q8_0x, dot_q4_1>,
                                   quantize_act_q8_0x_scalar};
    static const MatmulKernel q5_0{ACT_Q8_0X, 4, 4, tile_scalar<block_q8_0x, dot_q5_0>,
                                   quantize_act_q8_0x_scalar};
    static const MatmulKernel q5_1{ACT_Q8_0X, 4, 4, tile_scalar<block_q8_0x, dot_q5_1>,
                                   quantize_act_q8_0x_scalar};
    static const MatmulKernel q4_k{ACT_Q8_K, 4, 4, tile_scalar<block_q8_Kx, dot_q4_K>,
                                   quantize_act_q8_K_scalar};
    static const MatmulKernel q5_k{ACT_Q8_K, 4, 4, tile_scalar<block_q8_Kx, dot_q5_K>,
                                   quantize_act_q8_K_scalar};
    static const MatmulKernel q6_k{ACT_Q8_K, 4, 4, tile_scalar<block_q8_Kx, dot_q6_K>,
                                   quantize_act_q8_K_scalar};
    switch (type) {
        case DType::F32:
            return &f32;
        case DType::F16:
            return &f16;
        case DType::BF16:
            return &bf16;
        case DType::Q8_0:
            return &q8_0;
        case DType::Q4_0:
            return &q4_0;
        case DType::Q4_1:
            return &q4_1;
        case DType::Q5_0:
            return &q5_0;
        case DType::Q5_1:
            return &q5_1;
        case DType::Q4_K:
            return &q4_k;
        case DType::Q5_K:
            return &q5_k;
        case DType::Q6_K:
            return &q6_k;
        default:
            return nullptr;
    }
}

}  // namespace sift::cpu
