// Row-wise CPU ops against plain references. Bounds, with u = 2^-24:
//   get_rows, set_rows, add, mul, scale, argmax: exact (the same conversion functions; one
//     correctly rounded IEEE operation per element).
//   rms_norm: the kernel sums squares in double, then rounds 1/rms once and does two F32
//     multiplies: <= 3u relative, checked at 4u.
//   rope: cos/sin rounded to F32 (u each), two products and a sum (3 roundings): the error is at
//     most 5u (|x0| + |x1|), checked at 6u.
//   swiglu: expf (1 ulp), 1 + e, a division and a product: <= 5u relative, checked at 8u.
//   geglu: the (1 + tanh z) factor carries an absolute error of a few u (tanhf's ulp and z's
//     own 4u relative rounding), the rest 4u relative: checked at 16u (|out| + |0.5 g up|).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "tests/backend/backend_test_util.h"

namespace sift {
namespace {

using test::kF32Eps;

cpu::CpuContext& context() {
    static cpu::CpuContext ctx(2, false, cpu::cpu_isa_detect());
    return ctx;
}

class GetRowsTest : public ::testing::TestWithParam<DType> {};

TEST_P(GetRowsTest, DequantizesTheChosenRows) {
    const DType type = GetParam();
    const int64_t width = dtype_traits(type).block_size == 256 ? 512 : 96;
    test::TypedMatrix table(type, width, 10, 3, dtype_traits(type).block_bytes);
    const std::vector<int32_t> ids = {3, 0, 9, 3, 7};
    std::vector<float> out(static_cast<size_t>(width * ids.size()));
    cpu::cpu_get_rows(context(), table.tensor(),
                      Tensor::view(const_cast<int32_t*>(ids.data()), DType::I32, {5}),
                      Tensor::view(out.data(), DType::F32, {width, 5}));
    for (size_t t = 0; t < ids.size(); ++t) {
        for (int64_t j = 0; j < width; ++j) {
            ASSERT_EQ(out[t * width + j], table.values[ids[t] * width + j])
                << "token " << t << " col " << j;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Cpu, GetRowsTest, ::testing::ValuesIn(test::kComputableTypes),
                         [](const ::testing::TestParamInfo<DType>& info) {
                             return std::string(dtype_name(info.param));
                         });

// [n, T] views with a column stride of n + 3 floats.
struct Strided {
    std::vector<float> data;
    Tensor t;
    Strided(int64_t n, int64_t cols, uint64_t seed)
        : data(test::random_floats((n + 3) * cols, seed)) {
        t = Tensor::view(data.data(), DType::F32, {n, cols});
        t.nb[1] = (n + 3) * 4;
        t.nb[2] = t.nb[3] = t.nb[1] * cols;
    }
    float at(int64_t i, int64_t col) const {
        return data[static_cast<size_t>(col * (n() + 3) + i)];
    }
    int64_t n() const { return t.ne[0]; }
};

TEST(Elementwise, AddMulScaleFullAndBroadcast_n37_t5_strided) {
    for (bool broadcast : {false, true}) {
        Strided a(37, 5, 1), b(37, broadcast ? 1 : 5, 2), out(37, 5, 3);
        cpu::cpu_add(context(), a.t, b.t, out.t);
        for (int64_t c = 0; c < 5; ++c) {
            for (int64_t i = 0; i < 37; ++i)
                ASSERT_EQ(out.at(i, c), a.at(i, c) + b.at(i, broadcast ? 0 : c));
        }
        cpu::cpu_mul(context(), a.t, b.t, out.t);
        for (int64_t c = 0; c < 5; ++c) {
            for (int64_t i = 0; i < 37; ++i)
                ASSERT_EQ(out.at(i, c), a.at(i, c) * b.at(i, broadcast ? 0 : c));
        }
    }
    Strided x(37, 5, 4), y(37, 5, 5);
    cpu::cpu_scale(context(), x.t, 0.37f, y.t);
    for (int64_t c = 0; c < 5; ++c) {
        for (int64_t i = 0; i < 37; ++i) ASSERT_EQ(y.at(i, c), x.at(i, c) * 0.37f);
    }
}

TEST(Elementwise, AddInPlaceThreeDims_n4096_h3_t12) {
    // 147K elements: several parallel chunks. out aliases a.
    const int64_t n = 4096, h = 3, t = 12;
    std::vector<float> a = test::random_floats(n * h * t, 6), b = test::random_floats(n, 7),
                       before = a;
    const Tensor at = Tensor::view(a.data(), DType::F32, {n, h, t});
    cpu::cpu_add(context(), at, Tensor::view(b.data(), DType::F32, {n}), at);
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], before[i] + b[i % n]);
}

TEST(Elementwise, RmsNorm_n37_t6_weighted_and_plain) {
    for (bool weighted : {true, false}) {
        Strided x(37, 6, 8), out(37, 6, 9);
        std::vector<float> w = test::random_floats(37, 10);
        const Tensor wt = Tensor::view(w.data(), DType::F32, {37});
        cpu::cpu_rms_norm(context(), x.t, weighted ? &wt : nullptr, 1e-6f, out.t);
        for (int64_t c = 0; c < 6; ++c) {
            double ss = 0;
            for (int64_t i = 0; i < 37; ++i) ss += static_cast<double>(x.at(i, c)) * x.at(i, c);
            const double inv = 1.0 / std::sqrt(ss / 37 + 1e-6f);
            for (int64_t i = 0; i < 37; ++i) {
                const double ref = x.at(i, c) * inv * (weighted ? w[i] : 1.0);
                ASSERT_NEAR(out.at(i, c), ref, 4 * kF32Eps * std::fabs(ref) + 1e-30)
                    << i << "," << c;
            }
        }
    }
}

struct RopeCase {
    const char* name;
    bool neox;
    int32_t n_rot;
    float freq_scale;
    bool factors;
};

class RopeTest : public ::testing::TestWithParam<RopeCase> {};

TEST_P(RopeTest, RotatesPairsByPosition_hd64_h3_t4) {
    const RopeCase& rc = GetParam();
    const int64_t hd = 64, nh = 3, nt = 4;
    std::vector<float> x = test::random_floats(hd * nh * nt, 11), out(x.size(), 0.0f);
    std::vector<int32_t> pos = {0, 5, 1000, 40000};  // non-contiguous, large
    std::vector<float> ff(static_cast<size_t>(rc.n_rot / 2));
    for (size_t i = 0; i < ff.size(); ++i) ff[i] = 1.0f + static_cast<float>(i % 5);
    const Tensor fft = Tensor::view(ff.data(), DType::F32, {rc.n_rot / 2});
    RopeParams p;
    p.n_rot = rc.n_rot;
    p.neox = rc.neox;
    p.freq_base = 1e6f;
    p.freq_scale = rc.freq_scale;
    p.freq_factors = rc.factors ? &fft : nullptr;
    const Tensor xt = Tensor::view(x.data(), DType::F32, {hd, nh, nt});
    cpu::cpu_rope(context(), xt, Tensor::view(pos.data(), DType::I32, {nt}), p,
                  Tensor::view(out.data(), DType::F32, {hd, nh, nt}));
    const int half = rc.n_rot / 2;
    for (int64_t t = 0; t < nt; ++t) {
        for (int64_t h = 0; h < nh; ++h) {
            const float* a = x.data() + (t * nh + h) * hd;
            const float* o = out.data() + (t * nh + h) * hd;
            for (int i = 0; i < half; ++i) {
                const double theta = pos[t] * static_cast<double>(rc.freq_scale) *
                                     std::pow(1e6, -2.0 * i / rc.n_rot) /
                                     (rc.factors ? ff[i] : 1.0);
                const int i0 = rc.neox ? i : 2 * i, i1 = rc.neox ? i + half : 2 * i + 1;
                const double r0 = a[i0] * std::cos(theta) - a[i1] * std::sin(theta);
                const double r1 = a[i0] * std::sin(theta) + a[i1] * std::cos(theta);
                const double tol = 6 * kF32Eps * (std::fabs(a[i0]) + std::fabs(a[i1]));
                ASSERT_NEAR(o[i0], r0, tol) << "t " << t << " h " << h << " i " << i;
                ASSERT_NEAR(o[i1], r1, tol) << "t " << t << " h " << h << " i " << i;
            }
            for (int64_t d = rc.n_rot; d < hd; ++d)
                ASSERT_EQ(o[d], a[d]) << "pass-through dim " << d;
        }
    }
    // In place gives the same result.
    cpu::cpu_rope(context(), xt, Tensor::view(pos.data(), DType::I32, {nt}), p, xt);
    EXPECT_EQ(x, out);
}

INSTANTIATE_TEST_SUITE_P(
    Cpu, RopeTest,
    ::testing::Values(RopeCase{"normal_full", false, 64, 1.0f, false},
                      RopeCase{"neox_full", true, 64, 1.0f, false},
                      RopeCase{"normal_partial32_scale0p5", false, 32, 0.5f, false},
                      RopeCase{"neox_partial16_factors", true, 16, 1.0f, true}),
    [](const ::testing::TestParamInfo<RopeCase>& info) { return info.param.name; });

TEST(Elementwise, SwigluGeglu_n300_t7) {
    const int64_t n = 300, t = 7;
    std::vector<float> g = test::random_floats(n * t, 12, 3.0f), u = test::random_floats(n * t, 13);
    g[0] = -30;  // saturated ends
    g[1] = 30;
    std::vector<float> out(g.size());
    const Tensor gt = Tensor::view(g.data(), DType::F32, {n, t}),
                 ut = Tensor::view(u.data(), DType::F32, {n, t});
    const Tensor ot = Tensor::view(out.data(), DType::F32, {n, t});
    cpu::cpu_swiglu(context(), gt, ut, ot);
    for (size_t i = 0; i < g.size(); ++i) {
        const double ref = g[i] / (1.0 + std::exp(-static_cast<double>(g[i]))) * u[i];
        ASSERT_NEAR(out[i], ref, 8 * kF32Eps * std::fabs(ref) + 1e-30) << i;
    }
    cpu::cpu_geglu(context(), gt, ut, ot);
    for (size_t i = 0; i < g.size(); ++i) {
        const double x = g[i];
        const double ref =
            0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))) * u[i];
        ASSERT_NEAR(out[i], ref,
                    16 * kF32Eps * (std::fabs(ref) + std::fabs(0.5 * x * u[i])) + 1e-30)
            << i;
    }
}

TEST(Elementwise, SetRowsF32AndF16_w40_t3) {
    const int64_t w = 40, rows = 6;
    std::vector<float> src = test::random_floats(w * 3, 14);
    std::vector<int32_t> idx = {4, 1, 5};
    std::vector<float> dst32(static_cast<size_t>(w * rows), 9.0f);
    std::vector<uint16_t> dst16(dst32.size(), 0x1234);
    const Tensor st = Tensor::view(src.data(), DType::F32, {w, 3});
    const Tensor it = Tensor::view(idx.data(), DType::I32, {3});
    cpu::cpu_set_rows(context(), st, it, Tensor::view(dst32.data(), DType::F32, {w, rows}));
    cpu::cpu_set_rows(context(), st, it, Tensor::view(dst16.data(), DType::F16, {w, rows}));
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t t = r == 4 ? 0 : r == 1 ? 1 : r == 5 ? 2 : -1;
        for (int64_t j = 0; j < w; ++j) {
            const size_t o = static_cast<size_t>(r * w + j);
            if (t < 0) {
                ASSERT_EQ(dst32[o], 9.0f);
                ASSERT_EQ(dst16[o], 0x1234);
            } else {
                ASSERT_EQ(dst32[o], src[t * w + j]);
                ASSERT_EQ(dst16[o], fp32_to_fp16(src[t * w + j]));
            }
        }
    }
}

TEST(Elementwise, ArgmaxLowestIndexWinsTies_n1000_t4) {
    const int64_t n = 1000;
    std::vector<float> x = test::random_floats(n * 4, 15);
    x[0 * n + 17] = 50;
    x[1 * n + 3] = 60;
    x[1 * n + 900] = 60;  // tie: 3 wins
    x[2 * n + 999] = 70;  // last element
    x[3 * n + 0] = 80;    // first element
    std::vector<int32_t> out(4, -1);
    cpu::cpu_argmax(context(), Tensor::view(x.data(), DType::F32, {n, 4}),
                    Tensor::view(out.data(), DType::I32, {4}));
    EXPECT_EQ(out, (std::vector<int32_t>{17, 3, 999, 0}));
}

}  // namespace
}  // namespace sift
