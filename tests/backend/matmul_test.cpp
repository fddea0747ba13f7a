// CPU matmul for every computable weight type, both modes and every ISA this machine runs,
// against a double-precision product of the dequantized weights.
//
// Bounds (u = 2^-24, S = sum_i |w_i x_i| for one output):
//   exact mode, and F32/F16/BF16 weights in either mode (their conversion to F32 is exact): the
//     weights the kernel multiplies are the reference's, so only F32 summation error remains,
//     at most (k - 1) u S for any summation order; the bound is k u S.
//   fast mode: activations become x^ = d q per block with d = max|x_block| / 127, so
//     |x - x^| <= max|x_block| / 254 and the product moves by at most E = sum_i |w_i| max|x_b(i)| /
//     254. Integer sums are exact; the few F32 roundings per block add at most 2 k u S. Bound: E +
//     2 k u S. On Gaussian data the relative RMS error is ~(amax / sigma) / (127 sqrt(12)) ~ 0.6%,
//     and we check it stays under 1e-2.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "tests/backend/backend_test_util.h"

namespace sift {
namespace {

using test::kF32Eps;

struct MatmulCase {
    DType type;
    int64_t k, n, t;
    bool exact;
    cpu::CpuIsa isa;
    bool strided;  // padded weight rows, x columns and out columns
};

std::string case_name(const MatmulCase& c) {
    return std::string(dtype_name(c.type)) + "_k" + std::to_string(c.k) + "_n" +
           std::to_string(c.n) + "_t" + std::to_string(c.t) + (c.exact ? "_exact_" : "_fast_") +
           test::isa_tag(c.isa) + (c.strided ? "_strided" : "");
}

std::vector<MatmulCase> matmul_cases() {
    std::vector<MatmulCase> cases;
    for (DType type : test::kComputableTypes) {
        const int64_t bs = dtype_traits(type).block_size;
        const bool float_type = bs == 1;
        // k: one block (or a k not a multiple of 8), a few blocks, one past the exact path's
        // 1024-element k block, and one past the fast kernels' 128 KB activation tile (so partial
        // sums accumulate across k blocks in both modes).
        const int64_t k_small = float_type ? 37 : bs;
        const int64_t k_mid = float_type ? 200 : (bs == 256 ? 768 : 96);
        const int64_t k_big = float_type ? 1100 : (bs == 256 ? 4096 : 3200);
        const int64_t k_huge = float_type ? 8200 : (bs == 256 ? 13056 : 13120);
        // n, T: single rows/tokens, odd sizes (partial tiles), and more than one 64-row x 64-token
        // work item.
        const int64_t shapes[][3] = {{k_small, 1, 1}, {k_mid, 37, 5},  {k_mid, 130, 70},
                                     {k_big, 9, 3},   {k_big, 70, 17}, {k_huge, 3, 2}};
        for (const auto& s : shapes) {
            for (bool exact : {false, true}) {
                for (cpu::CpuIsa isa : test::available_isas()) {
                    const bool strided = s[1] == 37 || s[1] == 9;
                    cases.push_back({type, s[0], s[1], s[2], exact, isa, strided});
                }
            }
        }
    }
    return cases;
}

class MatmulTest : public ::testing::TestWithParam<MatmulCase> {};

TEST_P(MatmulTest, MatchesDoublePrecisionOfDequantizedWeights) {
    const MatmulCase& c = GetParam();
    const int64_t pad = c.strided ? 3 : 0;
    test::TypedMatrix w(c.type, c.k, c.n, 100 + c.k + c.n,
                        c.strided ? dtype_traits(c.type).block_bytes : 0);
    const int64_t x_stride = c.k + pad, out_stride = c.n + pad;
    std::vector<float> x = test::random_floats(x_stride * c.t, 7 + c.t);
    std::vector<float> out(static_cast<size_t>(out_stride * c.t), -12345.0f);

    Tensor xt = Tensor::view(x.data(), DType::F32, {c.k, c.t});
    xt.nb[1] = x_stride * 4;
    Tensor ot = Tensor::view(out.data(), DType::F32, {c.n, c.t});
    ot.nb[1] = out_stride * 4;
    cpu::CpuContext ctx(2, c.exact, c.isa);
    cpu::cpu_matmul(ctx, w.tensor(), xt, ot);

    const bool fast_quant = !c.exact && dtype_traits(c.type).block_size > 1;
    const int64_t act_block = dtype_traits(c.type).block_size == 256 ? 256 : 32;
    double err2 = 0, ref2 = 0;
    for (int64_t t = 0; t < c.t; ++t) {
        const float* xc = x.data() + t * x_stride;
        for (int64_t r = 0; r < c.n; ++r) {
            const float* wr = w.values.data() + r * c.k;
            double ref = 0, abs_sum = 0, quant_err = 0;
            for (int64_t i = 0; i < c.k; ++i) {
                ref += static_cast<double>(wr[i]) * xc[i];
                abs_sum += std::fabs(static_cast<double>(wr[i]) * xc[i]);
            }
            double bound = static_cast<double>(c.k) * kF32Eps * abs_sum;
            if (fast_quant) {
                for (int64_t b = 0; b < c.k; b += act_block) {
                    double amax = 0, wsum = 0;
                    for (int64_t i = b; i < b + act_block; ++i) {
                        amax = std::max(amax, static_cast<double>(std::fabs(xc[i])));
                        wsum += std::fabs(wr[i]);
                    }
                    quant_err += wsum * amax / 254.0;
                }
                bound = quant_err * 1.001 + 2 * bound;
            }
            const double got = out[static_cast<size_t>(t * out_stride + r)];
            ASSERT_LE(std::fabs(got - ref), bound + 1e-30)
                << "row " << r << " token " << t << " ref " << ref;
            err2 += (got - ref) * (got - ref);
            ref2 += ref * ref;
        }
        for (int64_t r = c.n; r < out_stride; ++r) {
            ASSERT_EQ(out[static_cast<size_t>(t * out_stride + r)], -12345.0f) << "padding written";
        }
    }
    // The statistical check needs enough outputs; single dots can cancel to near zero.
    if (fast_quant && c.n * c.t >= 64) {
        EXPECT_LT(std::sqrt(err2 / ref2), 1e-2) << "relative RMS error vs the exact product";
    }
}

INSTANTIATE_TEST_SUITE_P(Cpu, MatmulTest, ::testing::ValuesIn(matmul_cases()),
                         [](const ::testing::TestParamInfo<MatmulCase>& info) {
                             return case_name(info.param);
                         });

// The fast and exact kernels must agree on a realistic shape to the activation-rounding level,
// and the fast AVX2 and scalar kernels (same integer sums) to F32 rounding.
TEST(Matmul, FastAvx2AgreesWithFastScalar) {
    if (cpu::cpu_isa_detect() != cpu::CpuIsa::ISA_AVX2) GTEST_SKIP() << "no AVX2 on this CPU";
    for (DType type : test::kComputableTypes) {
        const int64_t k = 512, n = 33, t = 9;
        test::TypedMatrix w(type, k, n, 5);
        std::vector<float> x = test::random_floats(k * t, 6);
        std::vector<float> a(static_cast<size_t>(n * t)), b(a.size());
        const Tensor xt = Tensor::view(x.data(), DType::F32, {k, t});
        cpu::CpuContext scalar(1, false, cpu::CpuIsa::ISA_SCALAR),
            avx2(2, false, cpu::CpuIsa::ISA_AVX2);
        cpu::cpu_matmul(scalar, w.tensor(), xt, Tensor::view(a.data(), DType::F32, {n, t}));
        cpu::cpu_matmul(avx2, w.tensor(), xt, Tensor::view(b.data(), DType::F32, {n, t}));
        for (int64_t tt = 0; tt < t; ++tt) {
            for (int64_t r = 0; r < n; ++r) {
                double abs_sum = 0;
                for (int64_t i = 0; i < k; ++i)
                    abs_sum += std::fabs(w.values[r * k + i] * x[tt * k + i]);
                // Both sum the same integers; F32 scaling and summation order differ: 2 k u S each.
                const size_t o = static_cast<size_t>(tt * n + r);
                ASSERT_LE(std::fabs(a[o] - b[o]), 4 * k * kF32Eps * abs_sum + 1e-30)
                    << dtype_name(type) << " row " << r << " token " << tt;
            }
        }
    }
}

TEST(Matmul, AvxQuantizersMatchScalarBitForBit) {
    if (cpu::cpu_isa_detect() != cpu::CpuIsa::ISA_AVX2) GTEST_SKIP() << "no AVX2 on this CPU";
    for (DType type : {DType::Q8_0, DType::Q4_K}) {
        const cpu::MatmulKernel* avx = cpu::matmul_kernel_avx2(type, false);
        const cpu::MatmulKernel* ref = cpu::matmul_kernel_scalar(type);
        const int64_t k = 1024;
        std::vector<float> x = test::random_floats(k, 11, 3.0f);
        x[5] = 0;
        std::fill(x.begin() + 256, x.begin() + 512, 0.0f);  // an all-zero block: d = 0
        const int64_t bytes = cpu::act_row_bytes(avx->act, k);
        std::vector<uint8_t> a(static_cast<size_t>(bytes)), b(a.size());
        avx->quantize(x.data(), a.data(), k);
        ref->quantize(x.data(), b.data(), k);
        EXPECT_EQ(a, b) << dtype_name(type);
    }
}

}  // namespace
}  // namespace sift
