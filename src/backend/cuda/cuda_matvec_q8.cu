// Decode-path matmul with int8 activations and dp4a, for Q4_K, Q5_K, Q6_K, Q8_0 and Q4_0 (the
// bulk of K-quant, Q8_0 and Q4_0 files): x is quantized per 32 values to int8 (scale amax / 127, as
// llama.cpp's q8_1), and each lane dots 32 weights (one "unit") with 8 dp4a.
//
// Why not the F32 kernels of cuda_matvec.cu for these: decoding a weight exactly to F32 costs ~6
// instructions, and at 3-4.3 TB/s an SM must consume 16-33 weights per clock for Q6_K/Q4_K, which
// is 100-200 of its 128 lane-instructions per clock. Here a weight costs ~1.5 instructions. The
// price is the activation rounding: error <= sum |w| * amax(x) / 254 (the parity test derives
// and checks that bound).
//
// Shape of the kernels (the earlier one-block-per-8-rows version reached 31-46% of the copy rate
// on an H200):
// - A persistent grid (the blocks that fit on the chip at once) with a warp per row (T = 1) or
//   row pair (T > 1, so each activation load serves two rows), walking rows with a stride of the
//   grid's warp count: no second partial wave.
// - Software pipelining across rows: a warp loads its next step (32 units per row, 2 steps'
//   worth for T = 1) into registers before it computes the current one, so its weight loads stay
//   in flight across row boundaries. Q8_0/Q4_0 (few-byte, 2-byte aligned blocks) instead copy
//   each step's bytes into shared memory with cp.async, kStages steps ahead.
// - x is quantized once per call by a small kernel into global scratch (k + 1.5 k / 8 bytes per
//   column, L1/L2-resident). Quantizing it inside every block into shared memory instead (one
//   launch less) measured slower: each block re-reads the F32 x, 16-384 KB at k = 4096-12288,
//   T = 1-8, before its first dot product.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_dequant.cuh"
#include "backend/cuda/cuda_matmul.cuh"
#include "core/check.h"

namespace sift::cuda {
namespace {

constexpr int kWarps = 8;  // 256 threads: enough lanes to stage x quickly
constexpr int kThreads = kWarps * 32;

// Quantized activations (global scratch, L1/L2-resident), per column c: q int8 [k] at q + c k,
// d F32 [k / 32] (scale per 32 values) at d + c k / 32, s F32 [k / 16] (sums of 16 values, in
// the swapped order of quantize_x_q8_kernel) at s + c k / 16.
struct Q8Acts {
    const int8_t* q;
    const float* d;
    const float* s;
    int k;
};

__host__ __device__ constexpr size_t align16(size_t b) {
    return (b + 15) / 16 * 16;
}

// x F32 [k, T] -> per column: xq int8 [k], xd F32 [k / 32] (scales), xs F32 [k / 16] (sums of
// each 16 values of x, for the Q4_K/Q5_K min term, in the order below). One warp per 32 values.
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
    const int q = amax == 0.0f ? 0 : __float2int_rn(v * (127.0f / amax));
    xq[t * k + blk * 32 + lane] = static_cast<int8_t>(max(-127, min(127, q)));
    if (lane == 0) xd[t * (k / 32) + blk] = amax / 127.0f;
    // Sum of 16-value group q = blk * 2 + lane / 16 stored at q with bits 0 and 1 swapped, so the
    // two groups a Q4_K unit needs (64c + 16h and 64c + 32 + 16h) are adjacent (only K-quants,
    // k % 256 == 0, read them: the swapped index of a partial group of 4 is skipped).
    const int64_t q16 = blk * 2 + lane / 16;
    const int64_t q16s = (q16 & ~int64_t{3}) | ((q16 & 1) << 1) | ((q16 >> 1) & 1);
    if ((lane & 15) == 0 && q16s < k / 16) xs[t * (k / 16) + q16s] = sum;
}

// 4 NW bytes from a 2-byte aligned address: the aligned words holding them (one more when p is
// 2 mod 4; each word read holds a byte of the field) joined with funnel shifts.
template <int NW>
__device__ __forceinline__ void load_a2(const uint8_t* p, uint32_t (&o)[NW]) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    const uint32_t* w = reinterpret_cast<const uint32_t*>(a & ~uintptr_t{3});
    const bool odd = (a & 2) != 0;
    uint32_t v[NW + 1];
#pragma unroll
    for (int i = 0; i < NW; ++i) v[i] = w[i];
    v[NW] = odd ? w[NW] : 0u;
    const uint32_t sh = odd ? 16u : 0u;
#pragma unroll
    for (int i = 0; i < NW; ++i) o[i] = __funnelshift_r(v[i], v[i + 1], sh);
}

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

// Dot of a Q4_K/Q5_K unit u (unsigned weights lo: sub-block 2c, elements 64c + 16h + [0, 16);
// hi: sub-block 2c + 1, the same + 32; hd: the block's d, dmin and scales) with column col of x:
// d (sc0 xd0 lo.x + sc1 xd1 hi.x) - dmin (m0 sum0 + m1 sum1).
__device__ __forceinline__ float kquant_dot(const uint4& lo, const uint4& hi, const uint4& hd,
                                            int u, const Q8Acts& x, int col) {
    const int blk = u >> 3, c = (u >> 1) & 3, h = u & 1;
    const int e_lo = blk * 256 + 64 * c + 16 * h;
    const int8_t* xq = x.q + col * x.k;
    const int4 xlo = *reinterpret_cast<const int4*>(xq + e_lo);
    const int4 xhi = *reinterpret_cast<const int4*>(xq + e_lo + 32);
    const float2 dx = *reinterpret_cast<const float2*>(x.d + col * (x.k / 32) + blk * 8 + 2 * c);
    // s pairs the sums of elements 64c + 16h and 64c + 32 + 16h (quantize_x_q8_kernel).
    const float2 sx =
        *reinterpret_cast<const float2*>(x.s + col * (x.k / 16) + blk * 16 + 4 * c + 2 * h);
    int dl = __dp4a(static_cast<int>(lo.x), xlo.x, 0);
    dl = __dp4a(static_cast<int>(lo.y), xlo.y, dl);
    dl = __dp4a(static_cast<int>(lo.z), xlo.z, dl);
    dl = __dp4a(static_cast<int>(lo.w), xlo.w, dl);
    int dh = __dp4a(static_cast<int>(hi.x), xhi.x, 0);
    dh = __dp4a(static_cast<int>(hi.y), xhi.y, dh);
    dh = __dp4a(static_cast<int>(hi.z), xhi.z, dh);
    dh = __dp4a(static_cast<int>(hi.w), xhi.w, dh);
    int sc0, mn0, sc1, mn1;
    kscale_regs(hd.y, hd.z, hd.w, 2 * c, &sc0, &mn0);
    kscale_regs(hd.y, hd.z, hd.w, 2 * c + 1, &sc1, &mn1);
    const float d = dq_half(static_cast<uint16_t>(hd.x & 0xFFFF));
    const float dmin = dq_half(static_cast<uint16_t>(hd.x >> 16));
    const float dot = sc0 * dx.x * static_cast<float>(dl) + sc1 * dx.y * static_cast<float>(dh);
    const float mins = mn0 * sx.x + mn1 * sx.y;
    return d * dot - dmin * mins;
}

// Q4_K unit u: super-block u / 8; c = (u / 2) % 4, h = u % 2: elements 64c + 16h + [0, 16)
// (sub-block 2c, low nibbles) and the same + 32 (sub-block 2c + 1, high nibbles). Raw bytes only
// (decoded in dot): two 16-byte loads.
struct Q4KOps {
    static constexpr int kBlockBytes = 144;
    struct Unit {
        uint4 q;   // qs[32c + 16h ..]: 16 weights of sub-block 2c (low), 16 of 2c + 1 (high)
        uint4 hd;  // d, dmin, scales[12]
    };
    static __device__ __forceinline__ Unit load(const uint8_t* row, int u) {
        const uint8_t* b = row + (u >> 3) * 144;
        const int c = (u >> 1) & 3, h = u & 1;
        return {*reinterpret_cast<const uint4*>(b + 16 + 32 * c + 16 * h),
                *reinterpret_cast<const uint4*>(b)};
    }
    // Dot of unit u with column col of x.
    static __device__ __forceinline__ float dot(const Unit& w, int u, const Q8Acts& x, int col) {
        const uint4 lo = {w.q.x & 0x0F0F0F0Fu, w.q.y & 0x0F0F0F0Fu, w.q.z & 0x0F0F0F0Fu,
                          w.q.w & 0x0F0F0F0Fu};
        const uint4 hi = {(w.q.x >> 4) & 0x0F0F0F0Fu, (w.q.y >> 4) & 0x0F0F0F0Fu,
                          (w.q.z >> 4) & 0x0F0F0F0Fu, (w.q.w >> 4) & 0x0F0F0F0Fu};
        return kquant_dot(lo, hi, w.hd, u, x, col);
    }
};

// Q5_K unit u: as Q4_K (176-byte blocks: d, dmin, scales[12], qh[32], qs[128]); bit 4 of element
// 64c + 32h' + l is bit 2c + h' of qh[l], and the unit's l run over 16h + [0, 16).
struct Q5KOps {
    static constexpr int kBlockBytes = 176;
    struct Unit {
        uint4 q;   // qs[32c + 16h ..]
        uint4 qh;  // qh[16h ..]
        uint4 hd;  // d, dmin, scales[12]
    };
    static __device__ __forceinline__ Unit load(const uint8_t* row, int u) {
        const uint8_t* b = row + (u >> 3) * 176;
        const int c = (u >> 1) & 3, h = u & 1;
        return {*reinterpret_cast<const uint4*>(b + 48 + 32 * c + 16 * h),
                *reinterpret_cast<const uint4*>(b + 16 + 16 * h),
                *reinterpret_cast<const uint4*>(b)};
    }
    static __device__ __forceinline__ float dot(const Unit& w, int u, const Q8Acts& x, int col) {
        const int c = (u >> 1) & 3;
        const uint32_t qw[4] = {w.q.x, w.q.y, w.q.z, w.q.w};
        const uint32_t hw[4] = {w.qh.x, w.qh.y, w.qh.z, w.qh.w};
        uint32_t l[4], h[4];  // the 5-bit weights of sub-blocks 2c and 2c + 1
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            l[j] = (qw[j] & 0x0F0F0F0Fu) | (((hw[j] >> (2 * c)) & 0x01010101u) << 4);
            h[j] = ((qw[j] >> 4) & 0x0F0F0F0Fu) | (((hw[j] >> (2 * c + 1)) & 0x01010101u) << 4);
        }
        const uint4 lo = make_uint4(l[0], l[1], l[2], l[3]);
        const uint4 hi = make_uint4(h[0], h[1], h[2], h[3]);
        return kquant_dot(lo, hi, w.hd, u, x, col);
    }
};

// Q6_K unit u: super-block u / 8; c = (u / 4) % 2, l0 = 8 (u % 4): l in [l0, l0 + 8) of
// 128-chunk c for all four quarters qq (elements 128c + 32qq + l, scale 8c + 2qq + l0 / 16).
// 210-byte blocks are only 2-byte aligned: fields are read as aligned words (load_a2).
struct Q6KOps {
    static constexpr int kBlockBytes = 210;
    struct Unit {
        uint32_t lo[2], hi[2], hb[2];  // ql[64c + l0 ..], ql[64c + 32 + l0 ..], qh[32c + l0 ..]
        uint32_t sw[2];                // scales[8c .. 8c + 8)
        uint32_t d;                    // the half d in the low 16 bits
    };
    static __device__ __forceinline__ Unit load(const uint8_t* row, int u) {
        const uint8_t* b = row + (u >> 3) * 210;
        const int c = (u >> 2) & 1, l0 = 8 * (u & 3);
        Unit r;
        load_a2<2>(b + 64 * c + l0, r.lo);
        load_a2<2>(b + 64 * c + 32 + l0, r.hi);
        load_a2<2>(b + 128 + 32 * c + l0, r.hb);
        load_a2<2>(b + 192 + 8 * c, r.sw);
        r.d = dq_u16(b + 208);
        return r;
    }
    static __device__ __forceinline__ float dot(const Unit& w, int u, const Q8Acts& x, int col) {
        const int blk = u >> 3, c = (u >> 2) & 1, l0 = 8 * (u & 3);
        const int e0 = blk * 256 + 128 * c + l0;
        const int8_t* xq = x.q + col * x.k;
        int2 xw[4];
#pragma unroll
        for (int qq = 0; qq < 4; ++qq) xw[qq] = *reinterpret_cast<const int2*>(xq + e0 + 32 * qq);
        const float4 xd =
            *reinterpret_cast<const float4*>(x.d + col * (x.k / 32) + blk * 8 + 4 * c);
        int sum[4] = {0, 0, 0, 0};
#pragma unroll
        for (int j = 0; j < 2; ++j) {
            const uint32_t l = w.lo[j], hh = w.hi[j], qh = w.hb[j];
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
        const float d = dq_half(static_cast<uint16_t>(w.d));
        const float xds[4] = {xd.x, xd.y, xd.z, xd.w};
        float a = 0;
#pragma unroll
        for (int qq = 0; qq < 4; ++qq) {
            const int idx = 2 * qq + l0 / 16;
            const uint32_t sw = idx < 4 ? w.sw[0] : w.sw[1];
            const auto s = static_cast<int8_t>((sw >> (8 * (idx & 3))) & 0xFF);
            a += static_cast<float>(s) * xds[qq] * static_cast<float>(sum[qq]);
        }
        return d * a;
    }
};

// Q8_0 unit u: block u (34 bytes: half d, int8 qs[32]).
struct Q80Ops {
    static constexpr int kBlockBytes = 34, kUnitsPerBlock = 1;
    struct Unit {
        uint32_t q[8];
        uint32_t d;
    };
    static __device__ __forceinline__ Unit load(const uint8_t* row, int u) {
        const uint8_t* b = row + u * 34;
        Unit r;
        load_a2<8>(b + 2, r.q);
        r.d = dq_u16(b);
        return r;
    }
    static __device__ __forceinline__ float dot(const Unit& w, int u, const Q8Acts& x, int col) {
        const int8_t* xq = x.q + col * x.k + 32 * u;
        const int4 a = *reinterpret_cast<const int4*>(xq);
        const int4 b = *reinterpret_cast<const int4*>(xq + 16);
        const int xv[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
        int s = 0;
#pragma unroll
        for (int j = 0; j < 8; ++j) s = __dp4a(static_cast<int>(w.q[j]), xv[j], s);
        return dq_half(static_cast<uint16_t>(w.d)) * x.d[col * (x.k / 32) + u] *
               static_cast<float>(s);
    }
};

// Q4_0 unit u: block u (18 bytes: half d, qs[16]; element i < 16 is the low nibble of qs[i],
// element i + 16 the high one, value nibble - 8).
struct Q40Ops {
    static constexpr int kBlockBytes = 18, kUnitsPerBlock = 1;
    struct Unit {
        uint32_t q[4];
        uint32_t d;
    };
    static __device__ __forceinline__ Unit load(const uint8_t* row, int u) {
        const uint8_t* b = row + u * 18;
        Unit r;
        load_a2<4>(b + 2, r.q);
        r.d = dq_u16(b);
        return r;
    }
    static __device__ __forceinline__ float dot(const Unit& w, int u, const Q8Acts& x, int col) {
        const int8_t* xq = x.q + col * x.k + 32 * u;
        const int4 a = *reinterpret_cast<const int4*>(xq);
        const int4 b = *reinterpret_cast<const int4*>(xq + 16);
        const int xl[4] = {a.x, a.y, a.z, a.w};
        const int xh[4] = {b.x, b.y, b.z, b.w};
        int s = 0;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            s = __dp4a(static_cast<int>(__vsub4(w.q[j] & 0x0F0F0F0Fu, 0x08080808u)), xl[j], s);
            s = __dp4a(static_cast<int>(__vsub4((w.q[j] >> 4) & 0x0F0F0F0Fu, 0x08080808u)), xh[j],
                       s);
        }
        return dq_half(static_cast<uint16_t>(w.d)) * x.d[col * (x.k / 32) + u] *
               static_cast<float>(s);
    }
};

// Rows per warp and units per lane per step: T = 1 takes one row and two units (each activation
// load serves one row, two units keep 32-64 bytes per lane in flight); T > 1 two rows of one unit
// (each activation load serves both rows, the same bytes in flight).
template <int NT>
constexpr int rows_per_warp() {
    return NT == 1 ? 1 : 2;
}
template <int NT>
constexpr int units_per_step() {
    return NT == 1 ? 2 : 1;
}

// w [k, n] rows of w_stride bytes; xa: x quantized, nt columns; out F32 [n, nt] (column stride
// out_stride floats). NT >= nt is the compiled column count.
template <typename Ops, int NT>
__global__ void __launch_bounds__(kThreads)
    matvec_q8_kernel(const uint8_t* __restrict__ w, int64_t w_stride, int n, int k, Q8Acts xa,
                     float* __restrict__ out, int64_t out_stride, int nt) {
    constexpr int R = rows_per_warp<NT>(), U = units_per_step<NT>();
    using Unit = typename Ops::Unit;
    const int lane = threadIdx.x & 31;
    const int n_units = k / 32;
    const int steps_per_row = (n_units + 32 * U - 1) / (32 * U);
    const int n_items = (n + R - 1) / R;  // row groups
    const int item_stride = gridDim.x * kWarps;

    // Loads step st of row group it into buf (units past the row are skipped; dot skips them).
    auto load_step = [&](Unit(&buf)[U][R], int it, int st) {
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const int row = min(it * R + r, n - 1);
            const uint8_t* wr = w + static_cast<int64_t>(row) * w_stride;
#pragma unroll
            for (int j = 0; j < U; ++j) {
                const int u = (st * U + j) * 32 + lane;
                if (u < n_units) buf[j][r] = Ops::load(wr, u);
            }
        }
    };

    int it = blockIdx.x * kWarps + threadIdx.x / 32, st = 0;
    Unit cur[U][R];
    if (it < n_items) load_step(cur, it, st);

    float acc[R][NT] = {};
    while (it < n_items) {
        int next_it = it, next_st = st + 1;
        if (next_st == steps_per_row) next_st = 0, next_it += item_stride;
        Unit nxt[U][R];
        if (next_it < n_items) load_step(nxt, next_it, next_st);
#pragma unroll
        for (int j = 0; j < U; ++j) {
            const int u = (st * U + j) * 32 + lane;
            if (u >= n_units) continue;
#pragma unroll
            for (int c = 0; c < NT; ++c) {
                if (c >= nt) break;
#pragma unroll
                for (int r = 0; r < R; ++r) acc[r][c] += Ops::dot(cur[j][r], u, xa, c);
            }
        }
        if (next_st == 0) {  // row group done: reduce and write
#pragma unroll
            for (int r = 0; r < R; ++r) {
#pragma unroll
                for (int c = 0; c < NT; ++c) {
                    float s = acc[r][c];
#pragma unroll
                    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xFFFFFFFFu, s, o);
                    const int row = it * R + r;
                    if (lane == 0 && row < n && c < nt) {
                        out[c * out_stride + row] = s;
                    }
                    acc[r][c] = 0.0f;
                }
            }
        }
        it = next_it, st = next_st;
#pragma unroll
        for (int j = 0; j < U; ++j) {
#pragma unroll
            for (int r = 0; r < R; ++r) cur[j][r] = nxt[j][r];
        }
    }
}

// The staged variant, for the types whose blocks are only 2-byte aligned (Q6_K 210 bytes, Q8_0
// 34, Q4_0 18): read per lane, their fields take 10-13 narrow loads per 32 weights, each warp
// load touching ~8 L1 lines, and L1 (one line per clock) caps such a kernel near half the
// bandwidth. Here each warp copies the bytes of its step (32 units of each of its rows, one
// contiguous span per row) into its own shared-memory slot with 16-byte cp.async, kStages steps
// ahead, and the lanes decode their units from shared memory with the same Ops::load.
constexpr int kStages = 3;

__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
    const auto d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src),
                 "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::);
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Bytes of one row's span per step, and of a slot holding it (16-byte aligned copy: up to 15
// bytes before and after).
template <typename Ops, int NT>
constexpr int span_bytes() {
    return 32 * units_per_step<NT>() / Ops::kUnitsPerBlock * Ops::kBlockBytes;
}
template <typename Ops, int NT>
constexpr int slot_bytes() {
    return rows_per_warp<NT>() * static_cast<int>(align16(span_bytes<Ops, NT>() + 32));
}
template <typename Ops, int NT>
size_t staged_smem_bytes() {
    return static_cast<size_t>(kWarps) * kStages * slot_bytes<Ops, NT>();
}

// As matvec_q8_kernel; w_bytes: bytes from w to the end of the last row (no copy reads past).
template <typename Ops, int NT>
__global__ void __launch_bounds__(kThreads)
    matvec_q8_staged_kernel(const uint8_t* __restrict__ w, int64_t w_stride, int64_t w_bytes, int n,
                            int k, Q8Acts xa, float* __restrict__ out, int64_t out_stride, int nt) {
    constexpr int R = rows_per_warp<NT>(), U = units_per_step<NT>();
    constexpr int kSpan = span_bytes<Ops, NT>();
    constexpr int kRowSlot = static_cast<int>(align16(kSpan + 32));
    extern __shared__ uint4 smem[];
    const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    uint8_t* slots =
        reinterpret_cast<uint8_t*>(smem) + static_cast<size_t>(warp) * kStages * R * kRowSlot;

    const int n_units = k / 32;
    const int64_t row_bytes =
        static_cast<int64_t>(n_units / Ops::kUnitsPerBlock) * Ops::kBlockBytes;
    const int steps_per_row = (n_units + 32 * U - 1) / (32 * U);
    const int n_items = (n + R - 1) / R;
    const int item_stride = gridDim.x * kWarps;
    auto advance = [&](int& it, int& st) {
        if (++st == steps_per_row) st = 0, it += item_stride;
    };
    // Byte offset in w of the span of step st of row it * R + r, and of its 16-byte aligned start.
    auto span_start = [&](int it, int st, int r) {
        const int row = min(it * R + r, n - 1);
        return static_cast<int64_t>(row) * w_stride + static_cast<int64_t>(st) * kSpan;
    };
    auto issue = [&](int slot, int it, int st) {
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const int64_t start = span_start(it, st, r);
            const int64_t row_end = start - static_cast<int64_t>(st) * kSpan + row_bytes;
            const int64_t end = min(start + kSpan, row_end);
            const int64_t start_al = start & ~int64_t{15};
            const int chunks = static_cast<int>((end - start_al + 15) / 16);
            uint8_t* dst = slots + (slot * R + r) * kRowSlot;
            for (int i = lane; i < chunks; i += 32) {
                const int64_t g = start_al + 16 * i;
                const int bytes = static_cast<int>(max(int64_t{0}, min(int64_t{16}, w_bytes - g)));
                cp_async16(dst + 16 * i, w + (bytes > 0 ? g : 0), bytes);
            }
        }
    };

    int it = blockIdx.x * kWarps + warp, st = 0;
    int iss_it = it, iss_st = st;
#pragma unroll
    for (int s = 0; s < kStages - 1; ++s) {
        if (iss_it < n_items) issue(s, iss_it, iss_st);
        cp_async_commit();
        advance(iss_it, iss_st);
    }

    float acc[R][NT] = {};
    int slot = 0;
    while (it < n_items) {
        if (iss_it < n_items) issue((slot + kStages - 1) % kStages, iss_it, iss_st);
        cp_async_commit();
        advance(iss_it, iss_st);
        cp_async_wait<kStages - 1>();  // this step's copy has landed
        __syncwarp();
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const int64_t start = span_start(it, st, r);
            // A row pointer such that unit u of the row lands in the slot.
            const uint8_t* row =
                slots + (slot * R + r) * kRowSlot + (start & 15) - static_cast<int64_t>(st) * kSpan;
#pragma unroll
            for (int j = 0; j < U; ++j) {
                const int u = (st * U + j) * 32 + lane;
                if (u >= n_units) continue;
                const typename Ops::Unit raw = Ops::load(row, u);
#pragma unroll
                for (int c = 0; c < NT; ++c) {
                    if (c >= nt) break;
                    acc[r][c] += Ops::dot(raw, u, xa, c);
                }
            }
        }
        __syncwarp();  // every lane is done with the slot before it is refilled
        int next_it = it, next_st = st;
        advance(next_it, next_st);
        if (next_st == 0) {
#pragma unroll
            for (int r = 0; r < R; ++r) {
#pragma unroll
                for (int c = 0; c < NT; ++c) {
                    float v = acc[r][c];
#pragma unroll
                    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
                    const int row = it * R + r;
                    if (lane == 0 && row < n && c < nt) out[c * out_stride + row] = v;
                    acc[r][c] = 0.0f;
                }
            }
        }
        it = next_it, st = next_st;
        slot = (slot + 1) % kStages;
    }
    cp_async_wait<0>();
}

// Blocks of a kernel that fit on one SM with `smem` bytes of dynamic shared memory, asked once
// per (kernel, smem); a kernel's dynamic shared-memory limit is raised to the device's once.
int blocks_per_sm(const CudaContext& ctx, const void* kernel, size_t smem) {
    static std::mutex mu;
    static std::vector<std::pair<std::pair<const void*, size_t>, int>> cache;
    static std::vector<const void*> raised;
    const std::lock_guard<std::mutex> lock(mu);
    for (const auto& [key, v] : cache) {
        if (key.first == kernel && key.second == smem) return v;
    }
    if (std::find(raised.begin(), raised.end(), kernel) == raised.end()) {
        SIFT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             static_cast<int>(ctx.smem_optin)));
        raised.push_back(kernel);
    }
    int blocks = 0;
    SIFT_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, kThreads, smem));
    SIFT_CHECK(blocks > 0, "matvec_q8: no block fits ({} bytes of shared memory)", smem);
    cache.push_back({{kernel, smem}, blocks});
    return blocks;
}

// Types read through the staged kernel: 2-byte aligned blocks of few bytes, whose per-lane field
// loads measured slower than staging (Q8_0 4096x12288: 22 us staged vs 28.5 us for the per-lane
// F32 kernel, H200). Q6_K (210 bytes) staged measured no better than per lane (28.7 vs 27.6 us),
// Q4_K/Q5_K (16-byte fields) worse (20.7 vs 17.2 us), so they load per lane. Open: Q6_K here is
// slower than the previous 2-rows-per-warp, 2-units-per-step kernel (21.3 us at that shape).
template <typename Ops>
constexpr bool kStagedOps = Ops::kBlockBytes < 64;

template <typename Ops, int NT>
void launch_q8(CudaContext& ctx, const Tensor& w, Q8Acts xa, float* out, int64_t out_stride,
               int nt) {
    const int k = static_cast<int>(w.ne[0]), n = static_cast<int>(w.ne[1]);
    const int64_t items = (n + rows_per_warp<NT>() - 1) / rows_per_warp<NT>();
    const auto* wp = static_cast<const uint8_t*>(w.data);
    const auto grid_for = [&](const void* kernel, size_t smem) {
        const int64_t resident =
            static_cast<int64_t>(ctx.sm_count) * blocks_per_sm(ctx, kernel, smem);
        return static_cast<unsigned>(std::min<int64_t>(resident, (items + kWarps - 1) / kWarps));
    };
    if constexpr (kStagedOps<Ops>) {
        const size_t smem = staged_smem_bytes<Ops, NT>();
        auto* const kernel = &matvec_q8_staged_kernel<Ops, NT>;
        const int64_t w_bytes = (n - 1) * w.nb[1] + k / 32 / Ops::kUnitsPerBlock * Ops::kBlockBytes;
        kernel<<<grid_for(reinterpret_cast<const void*>(kernel), smem), kThreads, smem,
                 ctx.stream>>>(wp, w.nb[1], w_bytes, n, k, xa, out, out_stride, nt);
    } else {
        auto* const kernel = &matvec_q8_kernel<Ops, NT>;
        kernel<<<grid_for(reinterpret_cast<const void*>(kernel), 0), kThreads, 0, ctx.stream>>>(
            wp, w.nb[1], n, k, xa, out, out_stride, nt);
    }
    SIFT_CUDA_LAUNCH_CHECK();
}

template <typename Ops>
void launch_q8_cols(CudaContext& ctx, const Tensor& w, Q8Acts xa, float* out, int64_t out_stride,
                    int nt) {
    // Compiled column counts 1, 2, 4, 8: T = 3 runs the 4-column kernel with one column masked.
    if (nt == 1) {
        launch_q8<Ops, 1>(ctx, w, xa, out, out_stride, nt);
    } else if (nt == 2) {
        launch_q8<Ops, 2>(ctx, w, xa, out, out_stride, nt);
    } else if (nt <= 4) {
        launch_q8<Ops, 4>(ctx, w, xa, out, out_stride, nt);
    } else {
        launch_q8<Ops, 8>(ctx, w, xa, out, out_stride, nt);
    }
}

}  // namespace

bool matvec_q8_supported(const Tensor& w) {
    switch (w.type) {
        case DType::Q4_K:  // 16-byte loads need 16-byte aligned rows
        case DType::Q5_K:
            return reinterpret_cast<uintptr_t>(w.data) % 16 == 0 && w.nb[1] % 16 == 0;
        case DType::Q6_K:
        case DType::Q8_0:
        case DType::Q4_0:
            return true;
        default:
            return false;
    }
}

namespace {

// x quantized to int8 (per 32 values, with the per-16 sums the K-quants' minimums need) in
// scratch_b: xq [T][k] int8, xd [T][k/32], xs [T][k/16]; each part 256-byte aligned.
Q8Acts quantize_acts(CudaContext& ctx, const Tensor& x) {
    const int64_t k = x.ne[0];
    const int nt = static_cast<int>(x.ne[1]);
    SIFT_CHECK(nt >= 1 && nt <= kMatvecMaxCols && k % 32 == 0 && k <= INT32_MAX / kMatvecMaxCols,
               "matvec_q8: shape");
    const size_t q_bytes = (static_cast<size_t>(nt * k) + 255) / 256 * 256;
    const size_t d_bytes = (static_cast<size_t>(nt * k / 32) * 4 + 255) / 256 * 256;
    const size_t s_bytes = static_cast<size_t>(nt * k / 16) * 4;
    auto* base = static_cast<uint8_t*>(ctx.scratch_b.get(q_bytes + d_bytes + s_bytes));
    auto* xq = reinterpret_cast<int8_t*>(base);
    auto* xd = reinterpret_cast<float*>(base + q_bytes);
    auto* xs = reinterpret_cast<float*>(base + q_bytes + d_bytes);
    quantize_x_q8_kernel<<<dim3(static_cast<unsigned>(nt), grid_1d(k / 32, kWarps)), kThreads, 0,
                           ctx.stream>>>(x.ptr<const float>(), x.nb[1] / 4, k, xq, xd, xs);
    SIFT_CUDA_LAUNCH_CHECK();
    return Q8Acts{xq, xd, xs, static_cast<int>(k)};
}

void matvec_q8_acts(CudaContext& ctx, const Tensor& w, const Q8Acts& xa, int nt, Tensor out) {
    SIFT_CHECK(matvec_q8_supported(w), "matvec_q8: {} rows unsupported", dtype_name(w.type));
    check_weight_alignment(w, "matmul");
    float* op = out.ptr<float>();
    const int64_t os = out.nb[1] / 4;
    switch (w.type) {
        case DType::Q4_K:
            launch_q8_cols<Q4KOps>(ctx, w, xa, op, os, nt);
            break;
        case DType::Q5_K:
            launch_q8_cols<Q5KOps>(ctx, w, xa, op, os, nt);
            break;
        case DType::Q6_K:
            launch_q8_cols<Q6KOps>(ctx, w, xa, op, os, nt);
            break;
        case DType::Q8_0:
            launch_q8_cols<Q80Ops>(ctx, w, xa, op, os, nt);
            break;
        default:
            launch_q8_cols<Q40Ops>(ctx, w, xa, op, os, nt);
            break;
    }
}

}  // namespace

void cuda_matvec_q8(CudaContext& ctx, const Tensor& w, const Tensor& x, Tensor out) {
    SIFT_CHECK(matvec_q8_supported(w), "matvec_q8: {} rows unsupported", dtype_name(w.type));
    const Q8Acts xa = quantize_acts(ctx, x);
    matvec_q8_acts(ctx, w, xa, static_cast<int>(x.ne[1]), out);
}

void cuda_matvec_q8_shared(CudaContext& ctx, const Tensor* ws, size_t n, const Tensor& x,
                           Tensor* outs) {
    if (n == 0) return;
    for (size_t i = 0; i < n; ++i)
        SIFT_CHECK(matvec_q8_supported(ws[i]), "matvec_q8: {} rows unsupported",
                   dtype_name(ws[i].type));
    const Q8Acts xa = quantize_acts(ctx, x);
    for (size_t i = 0; i < n; ++i)
        matvec_q8_acts(ctx, ws[i], xa, static_cast<int>(x.ne[1]), outs[i]);
}

}  // namespace sift::cuda
