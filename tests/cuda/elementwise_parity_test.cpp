// Op parity: the CUDA row-wise ops against the exact CPU backend on random data, over odd sizes
// (not multiples of 4 or 32: the scalar paths), aligned sizes (float4 paths), T = 1, broadcast,
// aliasing (out = input) and strided views.
//
// Error bounds (max |got - ref| / max |ref|), from the arithmetic:
//   add, mul, scale: one IEEE operation per element, the same on both sides: exact (0).
//   rms_norm: the sum of squares is an F32 tree on the GPU (relative error ~log2(n) 2^-24) and a
//     double loop on the CPU; the scale 1/sqrt is then the same double formula: 2e-6.
//   rope: cos/sin in double then rounded to float on both sides; the products may be fused
//     (FMA) on one side only: a few ulp of the largest term: 1e-6.
//   swiglu, geglu: expf/tanhf of CUDA (<= 2 ulp) against glibc's: 2e-6.
//   set_rows: a copy or a round-to-nearest-even F16 conversion on both sides: bit-exact.
//   argmax: exact, with ties resolved to the lowest index.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "backend/cuda/cuda_ops.h"
#include "tensor/quant.h"
#include "tests/cuda/cuda_test_util.h"

namespace sift {
namespace {

using test::DeviceTensor;
using test::max_rel_error;
using test::random_normal;

// A host copy and a device copy of the same F32 [n, rows] data.
struct Pair {
    std::vector<float> host;
    std::unique_ptr<DeviceTensor> dev;
    Tensor cpu;  // view of host
    Pair(int64_t n, int64_t rows, uint64_t seed, float stddev = 1.0f)
        : host(random_normal(static_cast<size_t>(n * rows), seed, stddev)),
          dev(std::make_unique<DeviceTensor>(DType::F32, std::initializer_list<int64_t>{n, rows})),
          cpu(Tensor::view(host.data(), DType::F32, {n, rows})) {
        dev->upload(host.data());
    }
    const Tensor& gpu() const { return dev->t(); }
    std::vector<float> download() { return dev->download<float>(); }
};

void sync(cuda::CudaContext& ctx) {
    SIFT_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
}

struct Shape {
    int64_t n, rows;
};
const Shape kShapes[] = {{1, 1}, {7, 3}, {37, 37}, {128, 1}, {4096, 5}, {4099, 2}, {5120, 33}};

enum class BinOp { ADD, MUL };

void check_binary(BinOp op, bool broadcast, bool alias) {
    SIFT_REQUIRE_CUDA();
    for (const Shape& s : kShapes) {
        SCOPED_TRACE(::testing::Message() << "n=" << s.n << " rows=" << s.rows
                                          << " broadcast=" << broadcast << " alias=" << alias);
        Pair a(s.n, s.rows, 1), b(s.n, broadcast ? 1 : s.rows, 2), out(s.n, s.rows, 3);
        std::vector<float> ref(a.host.size());
        Tensor ref_t = Tensor::view(ref.data(), DType::F32, {s.n, s.rows});
        Backend& cpu = test::cpu_reference();
        if (op == BinOp::ADD) {
            cpu.add(a.cpu, b.cpu, ref_t);
        } else {
            cpu.mul(a.cpu, b.cpu, ref_t);
        }
        Tensor dst = alias ? a.gpu() : out.gpu();
        if (!alias) out.dev->poison();
        if (op == BinOp::ADD) {
            cuda::cuda_add(ctx, a.gpu(), b.gpu(), dst);
        } else {
            cuda::cuda_mul(ctx, a.gpu(), b.gpu(), dst);
        }
        sync(ctx);
        const double err = max_rel_error(alias ? a.download() : out.download(), ref);
        EXPECT_EQ(err, 0.0);
    }
}

TEST(ElementwiseParity, Add) {
    check_binary(BinOp::ADD, false, false);
}
TEST(ElementwiseParity, AddBroadcast) {
    check_binary(BinOp::ADD, true, false);
}
TEST(ElementwiseParity, AddAliased) {
    check_binary(BinOp::ADD, false, true);
    check_binary(BinOp::ADD, true, true);
}
TEST(ElementwiseParity, Mul) {
    check_binary(BinOp::MUL, false, false);
    check_binary(BinOp::MUL, true, false);
    check_binary(BinOp::MUL, true, true);
}

TEST(ElementwiseParity, ScaleAndAliased) {
    SIFT_REQUIRE_CUDA();
    for (const Shape& s : kShapes) {
        for (bool alias : {false, true}) {
            SCOPED_TRACE(::testing::Message()
                         << "n=" << s.n << " rows=" << s.rows << " alias=" << alias);
            Pair x(s.n, s.rows, 4), out(s.n, s.rows, 5);
            std::vector<float> ref(x.host.size());
            test::cpu_reference().scale(x.cpu, 0.37f,
                                        Tensor::view(ref.data(), DType::F32, {s.n, s.rows}));
            out.dev->poison();
            cuda::cuda_scale(ctx, x.gpu(), 0.37f, alias ? x.gpu() : out.gpu());
            sync(ctx);
            EXPECT_EQ(max_rel_error(alias ? x.download() : out.download(), ref), 0.0);
        }
    }
}

// A view of rows [1, rows) of a tensor whose rows are padded by 4 floats: not 16-byte aligned
// row starts, so the scalar paths run on shapes that would otherwise take float4.
TEST(ElementwiseParity, AddStridedView) {
    SIFT_REQUIRE_CUDA();
    const int64_t n = 64, rows = 9, padded = n + 3;
    Pair a(padded, rows, 6), b(padded, rows, 7), out(padded, rows, 8);
    auto view = [&](const Tensor& t) {
        Tensor v = t;
        v.ne[0] = n;
        v.ne[1] = rows - 1;
        v.data = static_cast<float*>(t.data) + padded;  // skip row 0
        v.nb[2] = v.nb[3] = v.nb[1] * (rows - 1);
        return v;
    };
    std::vector<float> ref = out.host;
    test::cpu_reference().add(view(a.cpu), view(b.cpu),
                              view(Tensor::view(ref.data(), DType::F32, {padded, rows})));
    cuda::cuda_add(ctx, view(a.gpu()), view(b.gpu()), view(out.gpu()));
    sync(ctx);
    EXPECT_EQ(max_rel_error(out.download(), ref), 0.0);  // untouched padding must stay as it was
}

TEST(ElementwiseParity, RmsNorm) {
    SIFT_REQUIRE_CUDA();
    constexpr double kBound = 2e-6;
    const Shape shapes[] = {{16, 7},  {37, 37},  {128, 96},  {128, 1001}, {512, 5},
                            {516, 3}, {4096, 1}, {4096, 37}, {5123, 3}};
    for (const Shape& s : shapes) {
        for (bool with_w : {false, true}) {
            for (bool alias : {false, true}) {
                SCOPED_TRACE(::testing::Message() << "n=" << s.n << " rows=" << s.rows
                                                  << " w=" << with_w << " alias=" << alias);
                Pair x(s.n, s.rows, 10, 3.0f), w(s.n, 1, 11), out(s.n, s.rows, 12);
                std::vector<float> ref(x.host.size());
                test::cpu_reference().rms_norm(x.cpu, with_w ? &w.cpu : nullptr, 1e-6f,
                                               Tensor::view(ref.data(), DType::F32, {s.n, s.rows}));
                out.dev->poison();
                cuda::cuda_rms_norm(ctx, x.gpu(), with_w ? &w.gpu() : nullptr, 1e-6f,
                                    alias ? x.gpu() : out.gpu());
                sync(ctx);
                const double err = max_rel_error(alias ? x.download() : out.download(), ref);
                EXPECT_LE(err, kBound);
            }
        }
    }
}

TEST(ElementwiseParity, Rope) {
    SIFT_REQUIRE_CUDA();
    constexpr double kBound = 1e-6;
    struct RopeCase {
        int64_t head_dim;
        int n_rot;
        bool neox, factors;
        float scale;
    };
    const RopeCase cases[] = {{64, 64, false, false, 1.0f},  {64, 64, true, false, 1.0f},
                              {128, 128, true, true, 1.0f},  {128, 64, true, false, 0.25f},
                              {128, 32, false, true, 1.0f},  {16, 16, true, false, 1.0f},
                              {256, 256, false, false, 0.5f}};
    const int64_t n_head = 3, n_tokens = 37;
    for (const RopeCase& rc : cases) {
        for (bool alias : {false, true}) {
            SCOPED_TRACE(::testing::Message()
                         << "head_dim=" << rc.head_dim << " n_rot=" << rc.n_rot
                         << " neox=" << rc.neox << " factors=" << rc.factors << " alias=" << alias);
            const int64_t width = rc.head_dim * n_head;
            Pair x(width, n_tokens, 20), out(width, n_tokens, 21);
            Tensor xc = Tensor::view(x.host.data(), DType::F32, {rc.head_dim, n_head, n_tokens});
            Tensor xg = Tensor::view(x.gpu().data, DType::F32, {rc.head_dim, n_head, n_tokens},
                                     Device::DEVICE_CUDA);
            Tensor og = Tensor::view(out.gpu().data, DType::F32, {rc.head_dim, n_head, n_tokens},
                                     Device::DEVICE_CUDA);
            // Positions up to 128K, unordered, with repeats and 0.
            std::vector<int32_t> pos(n_tokens);
            std::mt19937 rng(3);
            for (int64_t t = 0; t < n_tokens; ++t) pos[t] = t < 2 ? 0 : rng() % 131072;
            pos[n_tokens - 1] = 131071;
            DeviceTensor pos_d(DType::I32, {n_tokens});
            pos_d.upload(pos.data());
            std::vector<float> factors(rc.n_rot / 2);
            for (size_t i = 0; i < factors.size(); ++i) factors[i] = 1.0f + 0.37f * i;
            DeviceTensor factors_d(DType::F32, {static_cast<int64_t>(factors.size())});
            factors_d.upload(factors.data());
            Tensor factors_c =
                Tensor::view(factors.data(), DType::F32, {static_cast<int64_t>(factors.size())});

            RopeParams p;
            p.n_rot = rc.n_rot;
            p.neox = rc.neox;
            p.freq_base = 500000;
            p.freq_scale = rc.scale;
            p.freq_factors = rc.factors ? &factors_c : nullptr;
            std::vector<float> ref(x.host.size());
            test::cpu_reference().rope(
                xc, Tensor::view(pos.data(), DType::I32, {n_tokens}), p,
                Tensor::view(ref.data(), DType::F32, {rc.head_dim, n_head, n_tokens}));
            p.freq_factors = rc.factors ? &factors_d.t() : nullptr;
            out.dev->poison();
            cuda::cuda_rope(ctx, xg, pos_d.t(), p, alias ? xg : og);
            sync(ctx);
            EXPECT_LE(max_rel_error(alias ? x.download() : out.download(), ref), kBound);
        }
    }
}

TEST(ElementwiseParity, SwigluGeglu) {
    SIFT_REQUIRE_CUDA();
    constexpr double kBound = 2e-6;
    for (const Shape& s : kShapes) {
        for (bool geglu : {false, true}) {
            SCOPED_TRACE(::testing::Message()
                         << "n=" << s.n << " rows=" << s.rows << " geglu=" << geglu);
            Pair g(s.n, s.rows, 30, 3.0f), u(s.n, s.rows, 31), out(s.n, s.rows, 32);
            std::vector<float> ref(g.host.size());
            Tensor ref_t = Tensor::view(ref.data(), DType::F32, {s.n, s.rows});
            out.dev->poison();
            if (geglu) {
                test::cpu_reference().geglu(g.cpu, u.cpu, ref_t);
                cuda::cuda_geglu(ctx, g.gpu(), u.gpu(), out.gpu());
            } else {
                test::cpu_reference().swiglu(g.cpu, u.cpu, ref_t);
                cuda::cuda_swiglu(ctx, g.gpu(), u.gpu(), out.gpu());
            }
            sync(ctx);
            EXPECT_LE(max_rel_error(out.download(), ref), kBound);
        }
    }
}

// Rows written into a cache whose rows are padded (a strided view), the rest left untouched.
TEST(ElementwiseParity, SetRows) {
    SIFT_REQUIRE_CUDA();
    for (DType type : {DType::F32, DType::F16}) {
        for (int64_t width : {int64_t{8}, int64_t{37}, int64_t{1024}, int64_t{4100}}) {
            for (int64_t n : {int64_t{1}, int64_t{37}}) {
                SCOPED_TRACE(::testing::Message()
                             << "type=" << dtype_name(type) << " width=" << width << " n=" << n);
                const int64_t n_rows = 64, padded = width + 8;
                const int64_t elt = type == DType::F32 ? 4 : 2;
                Pair src(width, n, 40);
                std::vector<uint8_t> cache(static_cast<size_t>(padded * n_rows * elt));
                std::mt19937 rng(5);
                for (auto& b : cache) b = static_cast<uint8_t>(rng());
                std::vector<int32_t> idx(n);
                std::vector<int32_t> perm(n_rows);
                for (int i = 0; i < n_rows; ++i) perm[i] = i;
                std::shuffle(perm.begin(), perm.end(), rng);
                for (int64_t t = 0; t < n; ++t) idx[t] = perm[t];
                DeviceTensor idx_d(DType::I32, {n});
                idx_d.upload(idx.data());
                DeviceTensor cache_d(DType::I8, {padded * n_rows * elt});
                cache_d.upload(cache.data());
                auto dst_view = [&](void* data, Device dev) {
                    Tensor t = Tensor::view(data, type, {width, n_rows}, dev);
                    t.nb[1] = padded * elt;
                    t.nb[2] = t.nb[3] = t.nb[1] * n_rows;
                    return t;
                };
                test::cpu_reference().set_rows(src.cpu, Tensor::view(idx.data(), DType::I32, {n}),
                                               dst_view(cache.data(), Device::DEVICE_CPU));
                cuda::cuda_set_rows(ctx, src.gpu(), idx_d.t(),
                                    dst_view(cache_d.t().data, Device::DEVICE_CUDA));
                sync(ctx);
                const std::vector<uint8_t> got = cache_d.download<uint8_t>();
                EXPECT_TRUE(got == cache) << "bytes differ";
            }
        }
    }
}

TEST(ElementwiseParity, Argmax) {
    SIFT_REQUIRE_CUDA();
    // Rows of one block and of many (the last block merging the others' pairs), more rows
    // than SMs (one block each), and more than a grid's y dimension holds (65,535).
    const Shape shapes[] = {{1, 1},     {37, 7},     {32000, 3},  {151936, 2},
                            {4097, 37}, {100003, 5}, {2048, 300}, {3, 70000}};
    for (const Shape& s : shapes) {
        SCOPED_TRACE(::testing::Message() << "n=" << s.n << " rows=" << s.rows);
        Pair x(s.n, s.rows, 50);
        // Coarse values: many ties, so the lowest-index rule is exercised.
        for (float& v : x.host) v = std::round(v * 2.0f) / 2.0f;
        // Special rows (where there are enough): NaN first (the CPU's loop then answers 0), NaNs
        // and -inf only (the first -inf), all NaN, and a maximum in the last value.
        const float nan = std::numeric_limits<float>::quiet_NaN();
        const float inf = std::numeric_limits<float>::infinity();
        auto row = [&](int64_t r) { return x.host.data() + r * s.n; };
        if (s.rows >= 5 && s.n >= 4) {
            row(0)[0] = nan;
            for (int64_t j = 0; j < s.n; ++j) row(1)[j] = j % 3 == 0 ? nan : -inf;
            for (int64_t j = 0; j < s.n; ++j) row(2)[j] = nan;
            row(3)[s.n - 1] = 1e30f;
            for (int64_t j = 0; j < s.n; ++j) row(4)[j] = j < s.n / 2 ? nan : row(4)[j];
        }
        x.dev->upload(x.host.data());
        std::vector<int32_t> ref(s.rows);
        test::cpu_reference().argmax(x.cpu, Tensor::view(ref.data(), DType::I32, {s.rows}));
        DeviceTensor out(DType::I32, {s.rows});
        for (int rep = 0; rep < 2; ++rep) {  // the second call finds its counters reset
            out.poison();
            cuda::cuda_argmax(ctx, x.gpu(), out.t());
            sync(ctx);
            EXPECT_EQ(out.download<int32_t>(), ref) << "call " << rep;
        }
    }
}

}  // namespace
}  // namespace sift
