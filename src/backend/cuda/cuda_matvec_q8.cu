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
// Two kernels (launch_q8 picks one per type and column count, with the measurements):
// - The row kernel: a warp per R rows (each activation load serving R rows: 2 at T = 1-4 for the
//   K-quants, 4 at T = 5-8), all weight loads of a batch (R x U units per lane, 4 in all) issued
//   before any is used, 16-byte loads that skip L1 and ask L2 for 256 bytes per miss; one warp
//   item per warp, small blocks, and programmatic dependent launch: the first batch's weight
//   loads are in flight while the quantize kernel before it still runs.
// - The persistent kernel (Q4_K/Q5_K at T = 5-8): as many blocks as fit at once, warps walking
//   row pairs with a stride of the grid's warp count and loading their next step before
//   computing the current one.
// x is quantized once per call by a small kernel into global scratch (k + 1.5 k / 8 bytes per
// column, L1/L2-resident). Quantizing it inside every block into shared memory instead (one
// launch less) measured slower: each block re-reads the F32 x, 16-384 KB at k = 4096-12288,
// T = 1-8, before its first dot product.
//
// What bounds them now (H200, T = 1): not the fixed cost per call alone. On the 4096x151936
// output matrix (350-510 MB) Q4_K reads at ~66% of the copy rate and Q6_K at ~62%, while Q8_0
// reaches 94%; going from 1 to 2 rows per warp (half the activation loads per weight byte) gained
// 6-29% at equal bytes in flight. The K-quants' load and decode instructions per byte (Q4_K 18
// bytes and Q6_K 26 per 32-weight unit against Q8_0's 34; Q6_K's 13 narrow loads and 4
// activation loads per unit) cap them before the bandwidth does.
#include <algorithm>
#include <cstdint>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_dequant.cuh"
#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/cuda_matmul.cuh"
#include "backend/cuda/cuda_rows.cuh"
#include "core/check.h"

namespace sift::cuda {
namespace {

constexpr int kWarps = 8;  // warps per block of the quantize and persistent kernels
constexpr int kThreads = kWarps * 32;
// Warps per block of the row kernel: small blocks balance over the SMs as they finish (not tuned:
// 2 and 8 were not measured; the launch bound stays kThreads).
constexpr int kRowWarps = 4;

// Quantized activations (global scratch, L1/L2-resident), per column c: q int8 [k] at q + c k,
// d F32 [k / 32] (scale per 32 values) at d + c k / 32, s F32 [k / 16] (sums of 16 values, in
// the swapped order of quantize_x_q8_kernel) at s + c k / 16.
struct Q8Acts {
    const int8_t* q;
    const float* d;
    const float* s;
    int k;
};

// x F32 [k, T] -> per column: xq int8 [k], xd F32 [k / 32] (scales), xs F32 [k / 16] (sums of
// each 16 values of x, for the Q4_K/Q5_K min term, in the order below). One warp per 32 values.
__global__ void quantize_x_q8_kernel(const float* __restrict__ x, int64_t x_stride, int64_t k,
                                     int8_t* __restrict__ xq, float* __restrict__ xd,
                                     float* __restrict__ xs) {
    // x comes from the kernel before, and xq/xd/xs may still be read by the one before that
    // (the previous matvec): nothing is read or written before the wait. The matvec after may
    // then start and issue its weight loads while this runs.
    pdl_wait();
    pdl_launch_dependents();
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

// Weight loads. kPlain: ordinary loads (the persistent kernel). kStream: read-only global loads
// that ask L2 to fetch 256 bytes per miss (fewer, larger DRAM requests); 16-byte loads also skip L1
// (each byte is used by one load instruction), while 2- and 4-byte loads keep L1, since
// neighbouring lanes and the other words of a field re-read the same lines.
enum class Ld { kPlain, kStream };

template <Ld L>
__device__ __forceinline__ uint4 ld_w16(const uint8_t* p) {
    if constexpr (L == Ld::kStream) {
        uint4 v;
        asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
                     : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                     : "l"(p));
        return v;
    } else {
        return *reinterpret_cast<const uint4*>(p);
    }
}

template <Ld L>
__device__ __forceinline__ uint32_t ld_w4(const uint32_t* p) {
    if constexpr (L == Ld::kStream) {
        uint32_t v;
        asm volatile("ld.global.nc.L2::256B.u32 %0, [%1];" : "=r"(v) : "l"(p));
        return v;
    } else {
        return *p;
    }
}

template <Ld L>
__device__ __forceinline__ uint32_t ld_w2(const uint8_t* p) {
    if constexpr (L == Ld::kStream) {
        uint16_t v;
        asm volatile("ld.global.nc.L2::256B.u16 %0, [%1];" : "=h"(v) : "l"(p));
        return v;
    } else {
        return dq_u16(p);
    }
}

// 4 NW bytes from a 2-byte aligned address: the aligned words holding them (one more when p is
// 2 mod 4; each word read holds a byte of the field) joined with funnel shifts.
template <int NW, Ld L = Ld::kPlain>
__device__ __forceinline__ void load_a2(const uint8_t* p, uint32_t (&o)[NW]) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    const uint32_t* w = reinterpret_cast<const uint32_t*>(a & ~uintptr_t{3});
    const bool odd = (a & 2) != 0;
    uint32_t v[NW + 1];
#pragma unroll
    for (int i = 0; i < NW; ++i) v[i] = ld_w4<L>(w + i);
    v[NW] = odd ? ld_w4<L>(w + NW) : 0u;
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
    template <Ld L = Ld::kPlain>
    static __device__ __forceinline__ Unit load(const uint8_t* row, int u) {
        const uint8_t* b = row + (u >> 3) * 144;
        const int c = (u >> 1) & 3, h = u & 1;
        return {ld_w16<L>(b + 16 + 32 * c + 16 * h), ld_w16<L>(b)};
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
    template <Ld L = Ld::kPlain>
    static __device__ __forceinline__ Unit load(const uint8_t* row, int u) {
        const uint8_t* b = row + (u >> 3) * 176;
        const int c = (u >> 1) & 3, h = u & 1;
        return {ld_w16<L>(b + 48 + 32 * c + 16 * h), ld_w16<L>(b + 16 + 16 * h), ld_w16<L>(b)};
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
    template <Ld L = Ld::kPlain>
    static __device__ __forceinline__ Unit load(const uint8_t* row, int u) {
        const uint8_t* b = row + (u >> 3) * 210;
        const int c = (u >> 2) & 1, l0 = 8 * (u & 3);
        Unit r;
        load_a2<2, L>(b + 64 * c + l0, r.lo);
        load_a2<2, L>(b + 64 * c + 32 + l0, r.hi);
        load_a2<2, L>(b + 128 + 32 * c + l0, r.hb);
        load_a2<2, L>(b + 192 + 8 * c, r.sw);
        r.d = ld_w2<L>(b + 208);
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
                // q - 32 per byte (q < 64: (q | 0x80) - 0x20 borrows nothing, ^ 0x80 wraps
                // it back): signed weights in [-32, 31], 3 simple ops instead of __vsub4.
                const uint32_t qs = ((q[qq] | 0x80808080u) - 0x20202020u) ^ 0x80808080u;
                sum[qq] = __dp4a(static_cast<int>(qs), j ? xw[qq].y : xw[qq].x, sum[qq]);
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
    static constexpr int kBlockBytes = 34;
    struct Unit {
        uint32_t q[8];
        uint32_t d;
    };
    template <Ld L = Ld::kPlain>
    static __device__ __forceinline__ Unit load(const uint8_t* row, int u) {
        const uint8_t* b = row + u * 34;
        Unit r;
        load_a2<8, L>(b + 2, r.q);
        r.d = ld_w2<L>(b);
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

// n - 8 per byte for bytes n < 16, as signed bytes (the borrow-free form of __vsub4).
__device__ __forceinline__ uint32_t nibbles_minus8(uint32_t n) {
    return ((n | 0x80808080u) - 0x08080808u) ^ 0x80808080u;
}

// Q4_0 unit u: block u (18 bytes: half d, qs[16]; element i < 16 is the low nibble of qs[i],
// element i + 16 the high one, value nibble - 8).
struct Q40Ops {
    static constexpr int kBlockBytes = 18;
    struct Unit {
        uint32_t q[4];
        uint32_t d;
    };
    template <Ld L = Ld::kPlain>
    static __device__ __forceinline__ Unit load(const uint8_t* row, int u) {
        const uint8_t* b = row + u * 18;
        Unit r;
        load_a2<4, L>(b + 2, r.q);
        r.d = ld_w2<L>(b);
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
            s = __dp4a(static_cast<int>(nibbles_minus8(w.q[j] & 0x0F0F0F0Fu)), xl[j], s);
            s = __dp4a(static_cast<int>(nibbles_minus8((w.q[j] >> 4) & 0x0F0F0F0Fu)), xh[j], s);
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
    pdl_prologue();
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
                if (u < n_units) buf[j][r] = Ops::template load<>(wr, u);
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

// The row kernel: a warp per R rows (R > 1 shares each activation load between rows), all of a
// row's units walked by the 32 lanes in batches of U units per lane whose loads (U x R units, all
// independent) are issued before any is used. Not persistent: one warp item per warp of the grid,
// so the blocks (kRowWarps warps) balance over the SMs as they finish; the first batch's weight
// loads go out before pdl_wait, overlapping the quantize kernel (and the tail of the matvec
// before). Gated (matmul_gated, w2 not null): a warp's first R / 2 rows come from w (gate) and
// the other R / 2 are the same rows of w2 (up), and it writes act(gate) * up for R / 2 rows.
using Gated = MatvecGated;

// Registers of the row kernel: Q4_K at one column, 2 rows x 2 units (plain and gated), is held
// to 80 (6 blocks of 4 warps per SM; the compiler chose 93): H100, bench_cuda_matmul_bench,
// us per call, default vs capped: ffn_up 15.7 vs 14.9, output 137 vs 131, q/o and ffn_down
// equal; tg128 8B 310-314 vs 316 in one call. Q6_K lost with the same cap (ffn_down 21.8 vs
// 23.0, q/o 9.8 vs 10.1) and at 64 registers everything lost (tg128 284).
template <typename Ops, int NT, int R, int U>
constexpr bool rows_capped() {
    return std::is_same_v<Ops, Q4KOps> && NT == 1 && R == 2 && U == 2;
}

template <typename Ops, int NT, int R, int U>
__global__ void __launch_bounds__(rows_capped<Ops, NT, R, U>() ? kRowWarps * 32 : kThreads,
                                  rows_capped<Ops, NT, R, U>() ? 6 : 1)
    matvec_q8_rows_kernel(const uint8_t* __restrict__ w, int64_t w_stride, int n, int k, Q8Acts xa,
                          float* __restrict__ out, int64_t out_stride, int nt, Gated gated,
                          MatvecSegments segs) {
    pdl_launch_dependents();
    using Unit = typename Ops::Unit;
    const int lane = threadIdx.x & 31;
    const bool gate_up = gated.w2 != nullptr;
    const int rows_out = gate_up ? R / 2 : R;  // output rows per warp
    if (segs.count > 0) {                      // several matrices: grid row blockIdx.y's
        w = pick3(segs.w, blockIdx.y);
        out = pick3(segs.out, blockIdx.y);
        out_stride = pick3(segs.out_stride, blockIdx.y);
        n = static_cast<int>(pick3(segs.n, blockIdx.y));
    }
    const int row0 = (blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32) * rows_out;
    if (row0 >= n) {  // every block waits: the grid completes only after the one before it
        pdl_wait();
        return;
    }
    const int n_units = k / 32;
    const uint8_t* wr[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
        const uint8_t* base = gate_up && r >= R / 2 ? gated.w2 : w;
        const int row = row0 + (gate_up && r >= R / 2 ? r - R / 2 : r);
        wr[r] = base + static_cast<int64_t>(min(row, n - 1)) * w_stride;
    }

    float acc[R][NT] = {};
    for (int base = 0; base < n_units; base += 32 * U) {
        Unit buf[U][R];
#pragma unroll
        for (int j = 0; j < U; ++j) {
            const int u = base + 32 * j + lane;
#pragma unroll
            for (int r = 0; r < R; ++r) {
                if (u < n_units) buf[j][r] = Ops::template load<Ld::kStream>(wr[r], u);
            }
        }
        if (base == 0) pdl_wait();  // x is quantized
#pragma unroll
        for (int j = 0; j < U; ++j) {
            const int u = base + 32 * j + lane;
            if (u >= n_units) continue;
#pragma unroll
            for (int c = 0; c < NT; ++c) {
                if (c >= nt) break;
#pragma unroll
                for (int r = 0; r < R; ++r) acc[r][c] += Ops::dot(buf[j][r], u, xa, c);
            }
        }
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int c = 0; c < NT; ++c) {
#pragma unroll
            for (int o = 16; o > 0; o >>= 1)
                acc[r][c] += __shfl_xor_sync(0xFFFFFFFFu, acc[r][c], o);
        }
    }
    if (lane != 0) return;
#pragma unroll
    for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int c = 0; c < NT; ++c) {
            if (c >= nt) break;
            if (!gate_up) {
                if (row0 + r < n) out[c * out_stride + row0 + r] = acc[r][c];
            } else if (r < R / 2 && row0 + r < n) {
                out[c * out_stride + row0 + r] =
                    gated_act(acc[r][c], acc[r + R / 2][c], gated.gelu);
            }
        }
    }
}

// Blocks of a kernel that fit on one SM, asked once per kernel.
int blocks_per_sm(const void* kernel) {
    static std::mutex mu;
    static std::vector<std::pair<const void*, int>> cache;
    const std::lock_guard<std::mutex> lock(mu);
    for (const auto& [key, v] : cache) {
        if (key == kernel) return v;
    }
    int blocks = 0;
    SIFT_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, kThreads, 0));
    SIFT_CHECK(blocks > 0, "matvec_q8: no block fits");
    cache.emplace_back(kernel, blocks);
    return blocks;
}

template <typename Ops, int NT>
void launch_persistent(CudaContext& ctx, const Tensor& w, Q8Acts xa, float* out, int64_t out_stride,
                       int nt) {
    const int k = static_cast<int>(w.ne[0]), n = static_cast<int>(w.ne[1]);
    const int64_t items = (n + rows_per_warp<NT>() - 1) / rows_per_warp<NT>();
    auto* const kernel = &matvec_q8_kernel<Ops, NT>;
    const int64_t resident =
        static_cast<int64_t>(ctx.sm_count) * blocks_per_sm(reinterpret_cast<const void*>(kernel));
    const auto grid =
        static_cast<unsigned>(std::min<int64_t>(resident, (items + kWarps - 1) / kWarps));
    launch_pdl(ctx, kernel, dim3(grid), dim3(kThreads), 0, static_cast<const uint8_t*>(w.data),
               w.nb[1], n, k, xa, out, out_stride, nt);
}

template <typename Ops, int NT, int R, int U>
void launch_rows(CudaContext& ctx, const Tensor& w, Q8Acts xa, float* out, int64_t out_stride,
                 int nt, Gated gated = {}, MatvecSegments segs = {}) {
    const int k = static_cast<int>(w.ne[0]), n = static_cast<int>(w.ne[1]);
    const int rows_out = gated.w2 != nullptr ? R / 2 : R;
    const int64_t items = (segs.max_rows(n) + rows_out - 1) / rows_out;
    launch_pdl(ctx, &matvec_q8_rows_kernel<Ops, NT, R, U>,
               dim3(static_cast<unsigned>((items + kRowWarps - 1) / kRowWarps),
                    static_cast<unsigned>(std::max(1, segs.count))),
               dim3(kRowWarps * 32), 0, static_cast<const uint8_t*>(w.data), w.nb[1], n, k, xa, out,
               out_stride, nt, gated, segs);
}

// The kernel and its rows x units per warp, per type and column count, from
// bench_cuda_matmul_bench on an H200 (2026-11-27; us per call against the previous kernels; the
// numbers are in docs/BENCHMARKS.md):
// - T = 1: 2 rows x 2 units for the K-quants (each activation load serves two rows; measured
//   ahead of 1 x 4, 1 x 8 and 1 x 4 at 64 registers on every 8B shape, the 4096x151936 output
//   matrix included: Q4_K 4096x12288 14.3 vs 17.8, Q6_K 20.3 vs 28.1, output Q6_K 197 vs 255;
//   Q5_K, not measured in this form, by analogy with Q4_K);
//   1 x 4 for Q8_0/Q4_0 (measured: Q8_0 4096x12288 19.2 vs 22.8; 2 x 2 not measured for them).
// - T = 2-4: 2 rows x 2 units (5-37% less time than the persistent kernel on every measured case;
//   4 x 1 ran from 10% faster at k = 4096 to 18% slower at k = 12288).
// - T = 5-8: 4 rows x 1 unit (Q6_K 4096x12288 47.0 vs 57.4, 12288x4096 51.1 vs 71.0; Q8_0 36.1
//   vs 57.3 and 49.6 vs 68.8), except Q4_K/Q5_K, which stay on the persistent kernel (Q4_K 34.5
//   vs 36.3 for 4 x 1, 38.4 vs 39.1). 2 x 2 lost at k = 12288 (6 batches per row, no overlap).
// Q4_K/Q5_K at T = 5-8 run the persistent kernel (measured, above).
template <typename Ops>
constexpr bool persistent_at_8() {
    return std::is_same_v<Ops, Q4KOps> || std::is_same_v<Ops, Q5KOps>;
}

// segs: several weights in one launch (the rows kernel only; the persistent kernel's callers
// launch them one by one, see cuda_matvec_q8_shared).
template <typename Ops, int NT>
void launch_q8(CudaContext& ctx, const Tensor& w, Q8Acts xa, float* out, int64_t out_stride, int nt,
               const MatvecSegments& segs = {}) {
    constexpr bool kKQuant = Ops::kBlockBytes >= 144;  // Q4_K, Q5_K, Q6_K: 8 units per block
    if constexpr (NT == 1) {
        if constexpr (kKQuant) {
            launch_rows<Ops, NT, 2, 2>(ctx, w, xa, out, out_stride, nt, {}, segs);
        } else {
            launch_rows<Ops, NT, 1, 4>(ctx, w, xa, out, out_stride, nt, {}, segs);
        }
    } else if constexpr (NT < kMatvecMaxCols) {
        launch_rows<Ops, NT, 2, 2>(ctx, w, xa, out, out_stride, nt, {}, segs);
    } else if constexpr (persistent_at_8<Ops>()) {
        SIFT_CHECK(segs.count == 0, "matvec_q8: segments on the persistent kernel");
        launch_persistent<Ops, NT>(ctx, w, xa, out, out_stride, nt);
    } else {
        launch_rows<Ops, NT, 4, 1>(ctx, w, xa, out, out_stride, nt, {}, segs);
    }
}

template <typename Ops>
void launch_q8_cols(CudaContext& ctx, const Tensor& w, Q8Acts xa, float* out, int64_t out_stride,
                    int nt, const MatvecSegments& segs = {}) {
    // Compiled column counts 1, 2, 4, 8: T = 3 runs the 4-column kernel with one column masked.
    if (nt == 1) {
        launch_q8<Ops, 1>(ctx, w, xa, out, out_stride, nt, segs);
    } else if (nt == 2) {
        launch_q8<Ops, 2>(ctx, w, xa, out, out_stride, nt, segs);
    } else if (nt <= 4) {
        launch_q8<Ops, 4>(ctx, w, xa, out, out_stride, nt, segs);
    } else {
        launch_q8<Ops, 8>(ctx, w, xa, out, out_stride, nt, segs);
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
    launch_pdl(ctx, &quantize_x_q8_kernel, dim3(static_cast<unsigned>(nt), grid_1d(k / 32, kWarps)),
               dim3(kThreads), 0, x.ptr<const float>(), static_cast<int64_t>(x.nb[1] / 4), k, xq,
               xd, xs);
    return Q8Acts{xq, xd, xs, static_cast<int>(k)};
}

// w must be matvec_q8_supported (cuda_matvec_q8_shared checks every weight before quantizing).
// f(Ops{}) with the decoder of a matvec_q8_supported type.
template <typename F>
void dispatch_q8_ops(DType type, F&& f) {
    switch (type) {
        case DType::Q4_K:
            return f(Q4KOps{});
        case DType::Q5_K:
            return f(Q5KOps{});
        case DType::Q6_K:
            return f(Q6KOps{});
        case DType::Q8_0:
            return f(Q80Ops{});
        default:
            return f(Q40Ops{});
    }
}

void matvec_q8_acts(CudaContext& ctx, const Tensor& w, const Q8Acts& xa, int nt, Tensor out,
                    const MatvecSegments& segs = {}) {
    check_weight_alignment(w, "matmul");
    float* op = out.ptr<float>();
    const int64_t os = out.nb[1] / 4;
    dispatch_q8_ops(w.type,
                    [&](auto ops) { launch_q8_cols<decltype(ops)>(ctx, w, xa, op, os, nt, segs); });
}

}  // namespace

void cuda_matvec_q8(CudaContext& ctx, const Tensor& w, const Tensor& x, Tensor out) {
    cuda_matvec_q8_shared(ctx, &w, 1, x, &out);
}

void cuda_matvec_q8_gated(CudaContext& ctx, const Tensor& w_gate, const Tensor& w_up,
                          const Tensor& x, bool gelu, Tensor out) {
    SIFT_CHECK(matvec_q8_supported(w_gate) && matvec_q8_supported(w_up) &&
                   w_up.type == w_gate.type && w_up.ne == w_gate.ne && w_up.nb == w_gate.nb,
               "matmul_gated: gate and up weights differ in type or layout");
    const int nt = static_cast<int>(x.ne[1]);
    SIFT_CHECK(nt >= 1 && nt <= kMatvecGatedMaxCols, "matmul_gated: {} columns", nt);
    check_weight_alignment(w_gate, "matmul");
    check_weight_alignment(w_up, "matmul");
    const Q8Acts xa = quantize_acts(ctx, x);
    const Gated gated{static_cast<const uint8_t*>(w_up.data), gelu};
    float* op = out.ptr<float>();
    const int64_t os = out.nb[1] / 4;
    // One gate and one up row per warp, 2 units of loads each (the K-quants' 2 x 2 at T = 1-4).
    dispatch_q8_ops(w_gate.type, [&](auto ops) {
        using Ops = decltype(ops);
        if (nt == 1) {
            launch_rows<Ops, 1, 2, 2>(ctx, w_gate, xa, op, os, nt, gated);
        } else if (nt == 2) {
            launch_rows<Ops, 2, 2, 2>(ctx, w_gate, xa, op, os, nt, gated);
        } else {
            launch_rows<Ops, 4, 2, 2>(ctx, w_gate, xa, op, os, nt, gated);
        }
    });
}

void cuda_matvec_q8_shared(CudaContext& ctx, const Tensor* ws, size_t n, const Tensor& x,
                           Tensor* outs) {
    if (n == 0) return;
    for (size_t i = 0; i < n; ++i)
        SIFT_CHECK(matvec_q8_supported(ws[i]), "matvec_q8: {} rows unsupported",
                   dtype_name(ws[i].type));
    const Q8Acts xa = quantize_acts(ctx, x);
    const int nt = static_cast<int>(x.ne[1]);
    // Runs of consecutive weights of one type and layout go in one launch (q/k/v: one launch, or
    // two where v has more bits); the persistent kernel (Q4_K/Q5_K at T > 4) takes one each.
    const bool persistent = nt > 4;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        const bool can_join =
            !(persistent && (ws[i].type == DType::Q4_K || ws[i].type == DType::Q5_K));
        while (can_join && j < n && j - i < static_cast<size_t>(kMatvecSegments) &&
               ws[j].type == ws[i].type && ws[j].ne[0] == ws[i].ne[0] && ws[j].nb[1] == ws[i].nb[1])
            ++j;
        const MatvecSegments segs =
            j - i > 1 ? matvec_segments(ws + i, outs + i, j - i) : MatvecSegments{};
        matvec_q8_acts(ctx, ws[i], xa, nt, outs[i], segs);
        i = j;
    }
}

}  // namespace sift::cuda
