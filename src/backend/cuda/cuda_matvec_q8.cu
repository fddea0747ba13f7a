// Decode-path matmul with int8 activations and dp4a, for Q4_K and Q6_K (the bulk of Q4_K_M
// files): x is quantized per 32 values to int8 (scale amax / 127, as llama.cpp's q8_1), and each
// lane dots 32 weights of one super-block with 8 dp4a (4 weights each).
//
// Why not the F32 kernels of cuda_matvec.cu for these two: decoding a weight exactly to F32
// costs ~6 instructions (extract, 2^23 trick, scale, min, FMA), and at 3-4.3 TB/s an SM must
// consume 16-33 weights per clock for Q6_K/Q4_K, which is 100-200 of its 128 lane-instructions
// per clock. Here a weight costs ~1.5 instructions. Measured on an H200 (copy ceiling 4.24 TB/s,
// T = 1, 4096x12288 and 12288x4096): Q4_K 1.31-1.54 TB/s (31-37%) against 0.67-0.71 TB/s for the
// F32 kernel, Q6_K 1.95 TB/s (46%) against 0.81-0.86, Q6_K 4096x151936 output 2.75 TB/s (66%):
// short of the 80% target (see cuda_matvec.cu for what bounds both and the next step). The
// price is the activation rounding: error <= sum |w| * amax(x) / 254, 1e-2-2.4e-2 of max |out|
// in the parity test's small random cases (which derives and checks the bound).
//
// Layout: as the F32 kernels, a warp owns 2 rows (sharing the activation loads) and lanes walk
// 32-weight units u = lane, lane + 32, ...; 8 units make a 256-weight super-block, so a warp
// reads 4 consecutive super-blocks per step (Q4_K: one 16-byte load per lane).
#include <cstdint>

#include "backend/cuda/cuda_dequant.cuh"
#include "backend/cuda/cuda_matmul.cuh"
#include "core/check.h"

namespace sift::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kRows = 2;

// x F32 [k, T] -> per column: xq int8 [k], xd F32 [k / 32] (scales), xs F32 [k / 16] (sums of
// each 16 values of x, for the Q4_K min term, in the order below). One warp per 32 values.
__global__ void quantize_x_q8_kernel(const float* __restrict__ x, int64_t x_stride, int64_t k,
                                     int8_t* __restrict__ xq, float* __restrict__ xd,
                                     float* __restrict__ xs) {
    const int64_t t = blockIdx.x;
    const int64_t blk = static_cast<int64_t>(blockIdx.y) * kWarps + threadIdx.x / 32;
    const int lane = threadIdx.x & 31;
    if (blk * 32 >= k) return;
    const float v = x[t * x_stride + blk * 32 + lane];
    float amax = fabsf(v), sum = v;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, o));
#pragma unroll
    for (int o = 8; o > 0; o >>= 1) sum += __shfl_xor_sync(0xFFFFFFFFu, sum, o);  // per 16
    const float d = amax / 127.0f;
    const int q = amax == 0.0f ? 0 : __float2int_rn(v * (127.0f / amax));
    xq[t * k + blk * 32 + lane] = static_cast<int8_t>(max(-127, min(127, q)));
    if (lane == 0) xd[t * (k / 32) + blk] = d;
    // Sum of 16-value group q = blk * 2 + lane / 16 stored at q with bits 0 and 1 swapped, so the
    // two groups a Q4_K unit needs (64c + 16h and 64c + 32 + 16h) are adjacent.
    const int64_t q16 = blk * 2 + lane / 16;
    const int64_t q16s = (q16 & ~int64_t{3}) | ((q16 & 1) << 1) | ((q16 >> 1) & 1);
    if ((lane & 15) == 0) xs[t * (k / 16) + q16s] = sum;
}

struct Q8Acts {
    const int8_t* q;  // [T][k]
    const float* d;   // [T][k / 32]
    const float* s;   // [T][k / 16]
};

// Raw bytes of one 32-weight unit of one row, loaded before any is used.
struct Q4KUnit {
    uint4 q;      // 16 bytes of qs: 16 weights of sub-block 2c (low nibbles), 16 of 2c + 1
    uint32_t dd;  // d, dmin
    int sc[2], mn[2];
};

struct Q6KUnit {
    uint2 lo, hi, hb;  // ql[64c + l0 ..], ql[64c + 32 + l0 ..], qh[32c + l0 ..]: 8 bytes each
    float ds[4];       // d * scale of quarter qq
};

// dq_kscale from the 12 scale bytes held in three words (s[0..3], s[4..7], s[8..11]); branch-free
// (j differs between lanes).
__device__ __forceinline__ void kscale_regs(uint32_t s03, uint32_t s47, uint32_t s811, int j,
                                            int* sc, int* m) {
    const int sh = 8 * (j & 3);
    const int lo = static_cast<int>((s03 >> sh) & 0xFF);   // s[j] (j < 4) or s[j - 4]
    const int mid = static_cast<int>((s47 >> sh) & 0xFF);  // s[j + 4] (j < 4) or s[j]
    const int hi = static_cast<int>((s811 >> sh) & 0xFF);  // s[j + 4] (j >= 4)
    *sc = j < 4 ? lo & 63 : (hi & 0xF) | ((lo >> 6) << 4);
    *m = j < 4 ? mid & 63 : (hi >> 4) | ((mid >> 6) << 4);
}

// Unit u of a Q4_K row: super-block u / 8; c = (u / 2) % 4, h = u % 2: elements
// 64c + 16h + [0, 16) (sub-block 2c, low nibbles) and the same + 32 (sub-block 2c + 1, high).
__device__ __forceinline__ Q4KUnit load_q4_K(const uint8_t* row, int64_t u) {
    const uint8_t* b = row + (u >> 3) * 144;
    const int c = static_cast<int>(u >> 1) & 3, h = static_cast<int>(u) & 1;
    Q4KUnit r;
    r.q = *reinterpret_cast<const uint4*>(b + 16 + 32 * c + 16 * h);
    // d, dmin and the 12 scale bytes in one 16-byte load (few load instructions per weight is
    // what bounds these kernels: L1 serves one wavefront per clock).
    const uint4 hd = *reinterpret_cast<const uint4*>(b);
    r.dd = hd.x;
    kscale_regs(hd.y, hd.z, hd.w, 2 * c, &r.sc[0], &r.mn[0]);
    kscale_regs(hd.y, hd.z, hd.w, 2 * c + 1, &r.sc[1], &r.mn[1]);
    return r;
}

// Unit u of a Q6_K row: super-block u / 8; c = (u / 4) % 2, l0 = 8 (u % 4): l in [l0, l0 + 8)
// of 128-chunk c for all four quarters qq (elements 128c + 32qq + l, scale 8c + 2qq + l0 / 16).
__device__ __forceinline__ Q6KUnit load_q6_K(const uint8_t* row, int64_t u) {
    const uint8_t* b = row + (u >> 3) * 210;
    const int c = static_cast<int>(u >> 2) & 1, l0 = 8 * (static_cast<int>(u) & 3);
    Q6KUnit r;
    r.lo = dq_u64_a2(b + 64 * c + l0);
    r.hi = dq_u64_a2(b + 64 * c + 32 + l0);
    r.hb = dq_u64_a2(b + 128 + 32 * c + l0);
    const float d = dq_half(dq_u16(b + 208));
    const uint2 sw = dq_u64_a2(b + 192 + 8 * c);  // scales[8c .. 8c + 8)
#pragma unroll
    for (int qq = 0; qq < 4; ++qq) {
        const int idx = 2 * qq + l0 / 16;
        const uint32_t byte = ((idx < 4 ? sw.x : sw.y) >> (8 * (idx & 3))) & 0xFF;
        r.ds[qq] = d * static_cast<float>(static_cast<int8_t>(byte));
    }
    return r;
}

template <int NT>
__device__ __forceinline__ void dot_q4_K(const Q4KUnit (&w)[kRows], int64_t u, int64_t k,
                                         const Q8Acts& x, int nt, float (&acc)[kRows][NT]) {
    const int64_t blk = u >> 3;
    const int c = static_cast<int>(u >> 1) & 3, h = static_cast<int>(u) & 1;
    const int64_t e_lo = blk * 256 + 64 * c + 16 * h;
#pragma unroll
    for (int col = 0; col < NT; ++col) {
        if (col >= nt) break;
        const int4 xlo = *reinterpret_cast<const int4*>(x.q + col * k + e_lo);
        const int4 xhi = *reinterpret_cast<const int4*>(x.q + col * k + e_lo + 32);
        const float2 dx = *reinterpret_cast<const float2*>(x.d + col * (k / 32) + blk * 8 + 2 * c);
        // xs pairs the sums of elements 64c + 16h and 64c + 32 + 16h (quantize_x_q8_kernel).
        const float2 sx =
            *reinterpret_cast<const float2*>(x.s + col * (k / 16) + blk * 16 + 4 * c + 2 * h);
        const float dlo = dx.x, dhi = dx.y, slo = sx.x, shi = sx.y;
        const int xl[4] = {xlo.x, xlo.y, xlo.z, xlo.w};
        const int xh[4] = {xhi.x, xhi.y, xhi.z, xhi.w};
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
            const uint32_t qw[4] = {w[r].q.x, w[r].q.y, w[r].q.z, w[r].q.w};
            int lo = 0, hi = 0;
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                lo = __dp4a(static_cast<int>(qw[j] & 0x0F0F0F0Fu), xl[j], lo);
                hi = __dp4a(static_cast<int>((qw[j] >> 4) & 0x0F0F0F0Fu), xh[j], hi);
            }
            const float d = dq_half(static_cast<uint16_t>(w[r].dd & 0xFFFF));
            const float dmin = dq_half(static_cast<uint16_t>(w[r].dd >> 16));
            const float dot = w[r].sc[0] * dlo * static_cast<float>(lo) +
                              w[r].sc[1] * dhi * static_cast<float>(hi);
            const float mins = w[r].mn[0] * slo + w[r].mn[1] * shi;
            acc[r][col] += d * dot - dmin * mins;
        }
    }
}

template <int NT>
__device__ __forceinline__ void dot_q6_K(const Q6KUnit (&w)[kRows], int64_t u, int64_t k,
                                         const Q8Acts& x, int nt, float (&acc)[kRows][NT]) {
    const int64_t blk = u >> 3;
    const int c = static_cast<int>(u >> 2) & 1, l0 = 8 * (static_cast<int>(u) & 3);
    const int64_t e0 = blk * 256 + 128 * c + l0;
#pragma unroll
    for (int col = 0; col < NT; ++col) {
        if (col >= nt) break;
        int2 xw[4];
        float xdq[4];
#pragma unroll
        for (int qq = 0; qq < 4; ++qq) {
            xw[qq] = *reinterpret_cast<const int2*>(x.q + col * k + e0 + 32 * qq);
            xdq[qq] = x.d[col * (k / 32) + blk * 8 + 4 * c + qq];
        }
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
            int sum[4] = {0, 0, 0, 0};
#pragma unroll
            for (int j = 0; j < 2; ++j) {
                const uint32_t l = j ? w[r].lo.y : w[r].lo.x;
                const uint32_t hh = j ? w[r].hi.y : w[r].hi.x;
                const uint32_t qh = j ? w[r].hb.y : w[r].hb.x;
                const uint32_t q[4] = {(l & 0x0F0F0F0Fu) | ((qh << 4) & 0x30303030u),
                                       (hh & 0x0F0F0F0Fu) | ((qh << 2) & 0x30303030u),
                                       ((l >> 4) & 0x0F0F0F0Fu) | (qh & 0x30303030u),
                                       ((hh >> 4) & 0x0F0F0F0Fu) | ((qh >> 2) & 0x30303030u)};
#pragma unroll
                for (int qq = 0; qq < 4; ++qq) {
                    // q - 32 per byte (wrapping): signed weights in [-32, 31].
                    sum[qq] = __dp4a(static_cast<int>(__vsub4(q[qq], 0x20202020u)),
                                     j ? xw[qq].y : xw[qq].x, sum[qq]);
                }
            }
            float a = 0;
#pragma unroll
            for (int qq = 0; qq < 4; ++qq) a += w[r].ds[qq] * xdq[qq] * static_cast<float>(sum[qq]);
            acc[r][col] += a;
        }
    }
}

struct Q4KOps {
    using Unit = Q4KUnit;
    static __device__ __forceinline__ Unit load(const uint8_t* row, int64_t u) {
        return load_q4_K(row, u);
    }
    template <int NT>
    static __device__ __forceinline__ void dot(const Unit (&w)[kRows], int64_t u, int64_t k,
                                               const Q8Acts& x, int nt, float (&acc)[kRows][NT]) {
        dot_q4_K<NT>(w, u, k, x, nt, acc);
    }
};

struct Q6KOps {
    using Unit = Q6KUnit;
    static __device__ __forceinline__ Unit load(const uint8_t* row, int64_t u) {
        return load_q6_K(row, u);
    }
    template <int NT>
    static __device__ __forceinline__ void dot(const Unit (&w)[kRows], int64_t u, int64_t k,
                                               const Q8Acts& x, int nt, float (&acc)[kRows][NT]) {
        dot_q6_K<NT>(w, u, k, x, nt, acc);
    }
};

// Units a lane loads per step before using any: 2 units x 2 rows keep 64-96 bytes in flight.
constexpr int kUnitsPerStep = 2;

template <typename Ops, int NT>
__global__ void __launch_bounds__(kWarps * 32)
    matvec_q8_kernel(const uint8_t* __restrict__ w, int64_t w_stride, int64_t n, int64_t k,
                     Q8Acts x, float* __restrict__ out, int64_t out_stride, int nt) {
    const int lane = threadIdx.x & 31;
    const int64_t row0 = (static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32) * kRows;
    if (row0 >= n) return;
    const int n_rows = n - row0 < kRows ? static_cast<int>(n - row0) : kRows;
    const uint8_t* w_row[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) w_row[r] = w + (row0 + (r < n_rows ? r : 0)) * w_stride;

    float acc[kRows][NT] = {};
    const int64_t n_units = k / 32;
    constexpr int U = kUnitsPerStep;
    int64_t u = lane;
    for (; u + 32 * (U - 1) < n_units; u += 32 * U) {
        typename Ops::Unit raw[U][kRows];
#pragma unroll
        for (int j = 0; j < U; ++j) {
#pragma unroll
            for (int r = 0; r < kRows; ++r) raw[j][r] = Ops::load(w_row[r], u + 32 * j);
        }
#pragma unroll
        for (int j = 0; j < U; ++j) Ops::template dot<NT>(raw[j], u + 32 * j, k, x, nt, acc);
    }
    for (; u < n_units; u += 32) {
        typename Ops::Unit raw[kRows];
#pragma unroll
        for (int r = 0; r < kRows; ++r) raw[r] = Ops::load(w_row[r], u);
        Ops::template dot<NT>(raw, u, k, x, nt, acc);
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
#pragma unroll
        for (int col = 0; col < NT; ++col) {
            float s = acc[r][col];
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xFFFFFFFFu, s, o);
            if (lane == 0 && r < n_rows && col < nt) out[col * out_stride + row0 + r] = s;
        }
    }
}

template <int NT>
void launch_q8(CudaContext& ctx, const Tensor& w, Q8Acts xa, Tensor out, int nt) {
    const int64_t k = w.ne[0], n = w.ne[1];
    const unsigned grid = grid_1d(n, kWarps * kRows);
    const auto* wp = static_cast<const uint8_t*>(w.data);
    if (w.type == DType::Q4_K) {
        matvec_q8_kernel<Q4KOps, NT><<<grid, kWarps * 32, 0, ctx.stream>>>(
            wp, w.nb[1], n, k, xa, out.ptr<float>(), out.nb[1] / 4, nt);
    } else {
        matvec_q8_kernel<Q6KOps, NT><<<grid, kWarps * 32, 0, ctx.stream>>>(
            wp, w.nb[1], n, k, xa, out.ptr<float>(), out.nb[1] / 4, nt);
    }
    SIFT_CUDA_LAUNCH_CHECK();
}

}  // namespace

bool matvec_q8_supported(const Tensor& w) {
    if (w.type == DType::Q4_K) {  // one 16-byte load per lane needs 16-byte aligned rows
        return reinterpret_cast<uintptr_t>(w.data) % 16 == 0 && w.nb[1] % 16 == 0;
    }
    return w.type == DType::Q6_K;
}

void cuda_matvec_q8(CudaContext& ctx, const Tensor& w, const Tensor& x, Tensor out) {
    SIFT_CHECK(matvec_q8_supported(w), "matvec_q8: {} rows unsupported", dtype_name(w.type));
    check_weight_alignment(w, "matmul");
    const int64_t k = w.ne[0];
    const int nt = static_cast<int>(x.ne[1]);
    SIFT_CHECK(nt >= 1 && nt <= kMatvecMaxCols && k % 256 == 0, "matvec_q8: shape");
    // Scratch: xq [T][k] int8, xd [T][k/32], xs [T][k/16]; each part 256-byte aligned.
    const size_t q_bytes = (static_cast<size_t>(nt * k) + 255) / 256 * 256;
    const size_t d_bytes = (static_cast<size_t>(nt * k / 32) * 4 + 255) / 256 * 256;
    const size_t s_bytes = static_cast<size_t>(nt * k / 16) * 4;
    auto* base = static_cast<uint8_t*>(ctx.scratch_b.get(q_bytes + d_bytes + s_bytes));
    Q8Acts xa{reinterpret_cast<int8_t*>(base), reinterpret_cast<float*>(base + q_bytes),
              reinterpret_cast<float*>(base + q_bytes + d_bytes)};
    quantize_x_q8_kernel<<<dim3(static_cast<unsigned>(nt), grid_1d(k / 32, kWarps)), kWarps * 32, 0,
                           ctx.stream>>>(x.ptr<const float>(), x.nb[1] / 4, k,
                                         const_cast<int8_t*>(xa.q), const_cast<float*>(xa.d),
                                         const_cast<float*>(xa.s));
    SIFT_CUDA_LAUNCH_CHECK();
    if (nt == 1) {
        launch_q8<1>(ctx, w, xa, out, nt);
    } else if (nt == 2) {
        launch_q8<2>(ctx, w, xa, out, nt);
    } else if (nt <= 4) {
        launch_q8<4>(ctx, w, xa, out, nt);
    } else {
        launch_q8<8>(ctx, w, xa, out, nt);
    }
}

}  // namespace sift::cuda
