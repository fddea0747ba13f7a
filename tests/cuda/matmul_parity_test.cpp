// Parity of cuda_matmul and cuda_get_rows with the exact CPU backend, for every weight type.
//
// Error bounds are derived per case from the data (not tuned): with S = max over outputs of
// sum_i |w_i x_i| (the sum of absolute products), u = 2^-24 the F32 unit roundoff and k the dot
// length,
//  - F32 paths (matvec kernels, SGEMM): both sides accumulate k products in F32 in different
//    orders, so |got - ref| <= 2 * gamma_k * S ~= 2 k u S (Higham, the classic dot-product bound).
//  - int8-activation matvec (Q4_K/Q5_K/Q6_K/Q8_0/Q4_0): x is rounded to int8 per 32 values with
//    scale amax / 127, so each x_i moves by at most amax / 254: the dot moves by at most
//    sum |w_i| * amax(x column) / 254, plus the F32 bound above.
//  - bf16 GEMM: each input is rounded to bf16 (8 significant bits: relative 2^-8 each), so each
//    product is off by at most (2^-7 + 2^-16) relative, plus the F32 accumulation:
//    (2^-7 + 2^-16 + 2 k u) S.
// Each is divided by max |ref| to compare with max_rel_error. Typical errors are far below these
// worst cases (random signs); the largest seen per type and path is printed.
// get_rows must be bit-identical to the CPU dequantizers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_matmul.cuh"
#include "backend/cuda/cuda_ops.h"
#include "tensor/quant.h"
#include "tests/backend/backend_test_util.h"
#include "tests/cuda/cuda_test_util.h"

namespace sift {
namespace {

using cuda::kMatvecMaxCols;
using test::TypedMatrix;

constexpr double kU = 1.0 / (1 << 24);

bool is_float_type(DType t) {
    return t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

// Row lengths to test: one block and several blocks (plus an odd width for the float types).
std::vector<int64_t> test_widths(DType t) {
    const int64_t b = dtype_traits(t).block_size;
    if (b == 1) return {1, 7, 64, 264};
    return {b, 3 * b};
}

std::string case_name(DType t, int64_t n, int64_t k, int64_t nt, int64_t pad) {
    return std::string(dtype_name(t)) + " n=" + std::to_string(n) + " k=" + std::to_string(k) +
           " T=" + std::to_string(nt) + " pad=" + std::to_string(pad);
}

struct MaxErr {
    double err = 0, bound = 0;
};

class CudaMatmulParity : public ::testing::TestWithParam<DType> {};

TEST_P(CudaMatmulParity, MatchesExactCpu) {
    SIFT_REQUIRE_CUDA();
    const DType type = GetParam();
    std::map<std::string, MaxErr> worst;  // per path
    uint64_t seed = 1;
    for (int64_t k : test_widths(type)) {
        for (int64_t n : {1, 7, 33}) {
            for (int64_t nt : {1, 2, 5, 8, 9, 64, 300}) {
                for (int64_t pad : {0, 1}) {
                    if (pad && n != 7) continue;  // padded strides: one row count is enough
                    const std::string name = case_name(type, n, k, nt, pad);
                    SCOPED_TRACE(name);
                    // Padding: 16 bytes between weight rows (keeps every type's alignment), 4
                    // floats between x columns, 3 between out columns.
                    TypedMatrix w(type, k, n, seed++, pad ? 16 : 0);
                    const int64_t xs = k + (pad ? 4 : 0), os = n + (pad ? 3 : 0);
                    std::vector<float> x = test::random_normal(xs * nt, seed++);
                    Tensor w_host = w.tensor();
                    Tensor x_host = Tensor::view(x.data(), DType::F32, {xs, nt});
                    x_host.ne[0] = k;
                    std::vector<float> ref_buf(os * nt, 0.0f);
                    Tensor ref_t = Tensor::view(ref_buf.data(), DType::F32, {os, nt});
                    ref_t.ne[0] = n;
                    test::cpu_reference().matmul(w_host, x_host, ref_t);

                    test::DeviceTensor wd(DType::I8, {static_cast<int64_t>(w.bytes.size())});
                    wd.upload(w.bytes.data());
                    test::DeviceTensor xd(DType::F32, {xs, nt});
                    xd.upload(x.data());
                    test::DeviceTensor od(DType::F32, {os, nt});
                    Tensor w_dev = w_host;
                    w_dev.data = wd.t().data;
                    w_dev.device = Device::DEVICE_CUDA;
                    Tensor x_dev = xd.t();
                    x_dev.ne[0] = k;
                    Tensor o_dev = od.t();
                    o_dev.ne[0] = n;

                    std::vector<float> ref;
                    double s_max = 0;   // max over outputs of sum |w x|
                    double q8_max = 0;  // max over outputs of sum |w| * amax(x column) / 254
                    for (int64_t t = 0; t < nt; ++t) {
                        double amax = 0;
                        for (int64_t i = 0; i < k; ++i) {
                            amax = std::max(amax, std::fabs(double(x[t * xs + i])));
                        }
                        for (int64_t r = 0; r < n; ++r) {
                            ref.push_back(ref_buf[t * os + r]);
                            double s = 0, sw = 0;
                            for (int64_t i = 0; i < k; ++i) {
                                const double wi = std::fabs(double(w.values[r * k + i]));
                                s += wi * std::fabs(double(x[t * xs + i]));
                                sw += wi;
                            }
                            s_max = std::max(s_max, s);
                            q8_max = std::max(q8_max, sw * amax / 254);
                        }
                    }
                    double max_ref = 0;
                    for (float v : ref) max_ref = std::max(max_ref, std::fabs(double(v)));
                    max_ref = std::max(max_ref, 1e-30);

                    // (path, absolute bound): the paths cuda_matmul may take for this T, each
                    // run directly, then cuda_matmul itself (whichever it picks).
                    std::vector<std::pair<std::string, double>> paths;
                    const double f32_abs = 2.0 * k * kU * s_max;
                    if (nt <= kMatvecMaxCols) {
                        paths.emplace_back("matvec-f32", f32_abs);
                        if (cuda::matvec_q8_supported(w_dev)) {
                            paths.emplace_back("matvec-q8", q8_max + f32_abs);
                        }
                    } else if (type == DType::F32) {
                        paths.emplace_back("sgemm-f32", f32_abs);
                    } else {
                        paths.emplace_back("gemm-bf16",
                                           (1.0 / 128 + 1.0 / (1 << 16)) * s_max + f32_abs);
                    }
                    double widest = 0;
                    for (const auto& p : paths) widest = std::max(widest, p.second);
                    paths.emplace_back("cuda_matmul", widest);
                    for (const auto& [path, abs_bound] : paths) {
                        SCOPED_TRACE(path);
                        od.poison();
                        if (path == "matvec-f32") {
                            cuda::cuda_matvec_f32(ctx, w_dev, x_dev, o_dev);
                        } else if (path == "matvec-q8") {
                            cuda::cuda_matvec_q8(ctx, w_dev, x_dev, o_dev);
                        } else {
                            cuda::cuda_matmul(ctx, w_dev, x_dev, o_dev);
                        }
                        const std::vector<float> got_buf = od.download<float>();
                        std::vector<float> got;
                        for (int64_t t = 0; t < nt; ++t) {
                            for (int64_t r = 0; r < n; ++r) got.push_back(got_buf[t * os + r]);
                        }
                        const double bound = abs_bound / max_ref;
                        const double err = test::max_rel_error(got, ref);
                        EXPECT_LE(err, bound);
                        // And the typical size (random signs): F32 paths ~1e-6, bf16 ~1e-3, int8
                        // activations ~1e-2 (K-quant weights before the min offset are all
                        // non-negative, so the rounding of x cancels less than for centered ones).
                        const bool f32 = path == "matvec-f32" || path == "sgemm-f32" ||
                                         (path == "cuda_matmul" && widest == f32_abs);
                        const bool q8 = path == "matvec-q8" ||
                                        (path == "cuda_matmul" &&
                                         cuda::matvec_q8_supported(w_dev) && nt <= kMatvecMaxCols);
                        EXPECT_LE(err, f32 ? 1e-5 : q8 ? 5e-2 : 1e-2);
                        MaxErr& m = worst[path];
                        m.err = std::max(m.err, err);
                        m.bound = std::max(m.bound, bound);
                    }
                }
            }
        }
    }
    for (const auto& [path, m] : worst) {
        std::printf("[ matmul   ] %-5s %-10s max rel err %.3g (largest bound %.3g)\n",
                    std::string(dtype_name(type)).c_str(), path.c_str(), m.err, m.bound);
    }
}

// The int8-activation kernels at decode sizes: row counts that leave the last row group of a
// warp part-empty (9001 and 65 rows, 2 or 4 rows per warp), one load batch and many per row
// (k = 4096 and 24576), and for Q4_K/Q5_K at T = 8 the persistent kernel with more rows than its
// grid has warps (each warp carrying its loads across row boundaries).
class CudaMatvecQ8Long : public ::testing::TestWithParam<DType> {};

TEST_P(CudaMatvecQ8Long, MatchesExactCpuWithinInt8Bound) {
    SIFT_REQUIRE_CUDA();
    const DType type = GetParam();
    struct Case {
        int64_t k, n, nt;
    };
    uint64_t seed = 500;
    for (const Case& c :
         {Case{4096, 9001, 1}, Case{4096, 9001, 3}, Case{4096, 9001, 8}, Case{24576, 65, 8}}) {
        SCOPED_TRACE(case_name(type, c.n, c.k, c.nt, 0));
        TypedMatrix w(type, c.k, c.n, seed++);
        std::vector<float> x = test::random_normal(c.k * c.nt, seed++);
        std::vector<float> ref(c.n * c.nt);
        test::cpu_reference().matmul(w.tensor(), Tensor::view(x.data(), DType::F32, {c.k, c.nt}),
                                     Tensor::view(ref.data(), DType::F32, {c.n, c.nt}));
        test::DeviceTensor wd(DType::I8, {static_cast<int64_t>(w.bytes.size())});
        wd.upload(w.bytes.data());
        test::DeviceTensor xd(DType::F32, {c.k, c.nt});
        xd.upload(x.data());
        test::DeviceTensor od(DType::F32, {c.n, c.nt});
        Tensor w_dev = w.tensor();
        w_dev.data = wd.t().data;
        w_dev.device = Device::DEVICE_CUDA;
        ASSERT_TRUE(cuda::matvec_q8_supported(w_dev));
        od.poison();
        cuda::cuda_matmul(ctx, w_dev, xd.t(), od.t());
        const std::vector<float> got = od.download<float>();
        // Per output: sum |w| * amax(x column) / 254 (int8 rounding of x) + 2 k u sum |w x|.
        double worst = 0;
        for (int64_t t = 0; t < c.nt; ++t) {
            double amax = 0;
            for (int64_t i = 0; i < c.k; ++i) {
                amax = std::max(amax, std::fabs(double(x[t * c.k + i])));
            }
            for (int64_t r = 0; r < c.n; ++r) {
                double sw = 0, s = 0;
                for (int64_t i = 0; i < c.k; ++i) {
                    const double wi = std::fabs(double(w.values[r * c.k + i]));
                    sw += wi;
                    s += wi * std::fabs(double(x[t * c.k + i]));
                }
                const double bound = sw * amax / 254 + 2.0 * c.k * kU * s;
                const double err = std::fabs(double(got[t * c.n + r]) - ref[t * c.n + r]);
                ASSERT_TRUE(std::isfinite(got[t * c.n + r])) << "row " << r << " col " << t;
                ASSERT_LE(err, bound) << "row " << r << " col " << t;
                worst = std::max(worst, err / bound);
            }
        }
        std::printf("[ matvec8 ] %-5s k=%-5lld n=%-5lld T=%lld max err / bound %.3g\n",
                    std::string(dtype_name(type)).c_str(), static_cast<long long>(c.k),
                    static_cast<long long>(c.n), static_cast<long long>(c.nt), worst);
    }
}

class CudaGetRowsParity : public ::testing::TestWithParam<DType> {};

TEST_P(CudaGetRowsParity, BitIdenticalToCpu) {
    SIFT_REQUIRE_CUDA();
    const DType type = GetParam();
    uint64_t seed = 100;
    for (int64_t width : test_widths(type)) {
        for (int64_t pad : {0, 1}) {
            SCOPED_TRACE(case_name(type, 33, width, 6, pad));
            TypedMatrix table(type, width, 33, seed++, pad ? 16 : 0);
            const std::vector<int32_t> ids = {5, 0, 32, 5, 17, 31};
            const int64_t n = static_cast<int64_t>(ids.size());
            const int64_t os = width + (pad ? 3 : 0);
            std::vector<float> ref_buf(os * n, 0.0f);
            Tensor ref_t = Tensor::view(ref_buf.data(), DType::F32, {os, n});
            ref_t.ne[0] = width;
            Tensor ids_host = Tensor::view(const_cast<int32_t*>(ids.data()), DType::I32, {n});
            test::cpu_reference().get_rows(table.tensor(), ids_host, ref_t);

            test::DeviceTensor td(DType::I8, {static_cast<int64_t>(table.bytes.size())});
            td.upload(table.bytes.data());
            test::DeviceTensor idd(DType::I32, {n});
            idd.upload(ids.data());
            test::DeviceTensor od(DType::F32, {os, n});
            od.poison();
            Tensor t_dev = table.tensor();
            t_dev.data = td.t().data;
            t_dev.device = Device::DEVICE_CUDA;
            Tensor o_dev = od.t();
            o_dev.ne[0] = width;
            cuda::cuda_get_rows(ctx, t_dev, idd.t(), o_dev);
            const std::vector<float> got = od.download<float>();
            int64_t mismatches = 0;
            for (int64_t t = 0; t < n; ++t) {
                EXPECT_EQ(0, std::memcmp(&got[t * os], &ref_buf[t * os], width * sizeof(float)));
                for (int64_t i = 0; i < width; ++i) {
                    const float want = table.values[ids[t] * width + i];
                    mismatches += std::memcmp(&got[t * os + i], &want, sizeof(float)) != 0;
                }
            }
            EXPECT_EQ(mismatches, 0);
        }
    }
}

// Values from a wide range of F16/BF16 bits (subnormals, large magnitudes): get_rows must pass
// every bit pattern through exactly.
TEST(CudaGetRowsBits, HalfBitPatternsExact) {
    SIFT_REQUIRE_CUDA();
    for (DType type : {DType::F16, DType::BF16}) {
        const int64_t width = 1024, rows = 64;  // every 16-bit pattern once
        std::vector<uint16_t> bits(width * rows);
        for (size_t i = 0; i < bits.size(); ++i) bits[i] = static_cast<uint16_t>(i);
        std::vector<int32_t> ids(rows);
        for (int32_t i = 0; i < rows; ++i) ids[i] = i;
        std::vector<float> ref(width * rows);
        test::cpu_reference().get_rows(Tensor::view(bits.data(), type, {width, rows}),
                                       Tensor::view(ids.data(), DType::I32, {rows}),
                                       Tensor::view(ref.data(), DType::F32, {width, rows}));
        test::DeviceTensor td(type, {width, rows});
        td.upload(bits.data());
        test::DeviceTensor idd(DType::I32, {rows});
        idd.upload(ids.data());
        test::DeviceTensor od(DType::F32, {width, rows});
        od.poison();
        cuda::cuda_get_rows(ctx, td.t(), idd.t(), od.t());
        const std::vector<float> got = od.download<float>();
        EXPECT_EQ(0, std::memcmp(got.data(), ref.data(), ref.size() * sizeof(float)))
            << dtype_name(type);
    }
}

std::string type_param_name(const ::testing::TestParamInfo<DType>& info) {
    return std::string(dtype_name(info.param));
}

// Several weights on one input (q/k/v): the same bits as one matmul per weight, on every path
// (decode matvecs, one launch per run of one type, the shared bf16 conversion, F32 SGEMM), with
// mixed types falling back.
TEST(CudaMatmulShared, EqualsSeparateProducts) {
    SIFT_REQUIRE_CUDA();
    // Runs of one type go in one launch (segments), with row counts 64, 97, 130: odd ones
    // end a segment mid-item.
    const std::vector<std::vector<DType>> type_sets = {{DType::Q4_K, DType::Q4_K, DType::Q6_K},
                                                       {DType::BF16, DType::BF16, DType::BF16},
                                                       {DType::Q8_0, DType::Q8_0, DType::Q8_0},
                                                       {DType::F16, DType::F16},
                                                       {DType::F32, DType::BF16},
                                                       {DType::Q8_0, DType::F16}};
    uint64_t seed = 100;
    for (const std::vector<DType>& types : type_sets) {
        for (int64_t nt : {1, 8, 9, 300}) {
            const int64_t k = 512;
            SCOPED_TRACE(::testing::Message()
                         << dtype_name(types[0]) << " x" << types.size() << " T=" << nt);
            std::vector<TypedMatrix> w;
            std::vector<std::unique_ptr<test::DeviceTensor>> wd, shared_out, single_out;
            std::vector<Tensor> ws, outs;
            test::DeviceTensor xd(DType::F32, {k, nt});
            xd.upload(test::random_normal(k * nt, seed++).data());
            for (size_t i = 0; i < types.size(); ++i)
                w.emplace_back(types[i], k, 64 + 33 * static_cast<int64_t>(i), seed++);
            for (size_t i = 0; i < types.size(); ++i) {
                const int64_t n = w[i].rows;
                wd.push_back(std::make_unique<test::DeviceTensor>(
                    DType::I8,
                    std::initializer_list<int64_t>{static_cast<int64_t>(w[i].bytes.size())}));
                wd.back()->upload(w[i].bytes.data());
                Tensor t = w[i].tensor();
                t.data = wd.back()->t().data;
                t.device = Device::DEVICE_CUDA;
                ws.push_back(t);
                shared_out.push_back(std::make_unique<test::DeviceTensor>(
                    DType::F32, std::initializer_list<int64_t>{n, nt}));
                single_out.push_back(std::make_unique<test::DeviceTensor>(
                    DType::F32, std::initializer_list<int64_t>{n, nt}));
                outs.push_back(shared_out.back()->t());
            }
            cuda::cuda_matmul_shared(ctx, ws.data(), ws.size(), xd.t(), outs.data());
            for (size_t i = 0; i < ws.size(); ++i)
                cuda::cuda_matmul(ctx, ws[i], xd.t(), single_out[i]->t());
            for (size_t i = 0; i < ws.size(); ++i)
                EXPECT_TRUE(shared_out[i]->download<float>() == single_out[i]->download<float>())
                    << "weight " << i;
        }
    }
}

// matmul_gated against the composed products on the GPU (matmul_shared, then act(g) * u on
// the host): out = act(g) * u per value within a bound from how the fused paths round. Matvec
// paths (T <= 4, one kernel reading the gate and up rows) compute the same dots in another
// association: |dg| <= 2 k u S with S <= ~k |w||x|, taken as 2^-10 of |g||u| + |out| plus 1e-4
// of max |out|. The GEMM path (T > 8) keeps g and u in BF16 (2^-8 relative each; act' <= 1.13
// for silu and gelu) and may write BF16: 2^-7 (|g||u| + |out|) + 1e-4 max |out|. T = 5-8 falls
// back to the composed ops.
TEST(CudaMatmulGated, MatchesComposedProducts) {
    SIFT_REQUIRE_CUDA();
    uint64_t seed = 500;
    for (DType type : {DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_0, DType::Q4_0, DType::BF16,
                       DType::F16, DType::F32, DType::Q5_0}) {
        for (int64_t nt : {1, 2, 3, 4, 8, 9, 300}) {
            for (GatedAct act : {GatedAct::GATED_SILU, GatedAct::GATED_GELU}) {
                for (DType out_type : {DType::F32, DType::BF16}) {
                    // BF16 out only where down's bf16 GEMM would take it.
                    if (out_type == DType::BF16 && (nt <= kMatvecMaxCols || type == DType::F32))
                        continue;
                    const int64_t k = 512, n = 99;
                    const bool gelu = act == GatedAct::GATED_GELU;
                    SCOPED_TRACE(::testing::Message()
                                 << dtype_name(type) << " T=" << nt << (gelu ? " gelu" : " silu")
                                 << " out " << dtype_name(out_type));
                    TypedMatrix wg(type, k, n, seed++), wu(type, k, n, seed++);
                    test::DeviceTensor wgd(DType::I8, {static_cast<int64_t>(wg.bytes.size())});
                    test::DeviceTensor wud(DType::I8, {static_cast<int64_t>(wu.bytes.size())});
                    wgd.upload(wg.bytes.data());
                    wud.upload(wu.bytes.data());
                    Tensor tg = wg.tensor(), tu = wu.tensor();
                    tg.data = wgd.t().data;
                    tu.data = wud.t().data;
                    tg.device = tu.device = Device::DEVICE_CUDA;
                    test::DeviceTensor xd(DType::F32, {k, nt});
                    xd.upload(test::random_normal(k * nt, seed++).data());
                    test::DeviceTensor g(DType::F32, {n, nt}), u(DType::F32, {n, nt});
                    test::DeviceTensor gs(DType::F32, {n, nt}), us(DType::F32, {n, nt});
                    test::DeviceTensor out(out_type, {n, nt});
                    const Tensor ws[] = {tg, tu};
                    Tensor outs[] = {g.t(), u.t()};
                    cuda::cuda_matmul_shared(ctx, ws, 2, xd.t(), outs);
                    out.poison();
                    cuda::cuda_matmul_gated(ctx, tg, tu, xd.t(), act, gs.t(), us.t(), out.t());
                    const std::vector<float> gv = g.download<float>(), uv = u.download<float>();
                    std::vector<float> got(static_cast<size_t>(n * nt));
                    if (out_type == DType::F32) {
                        got = out.download<float>();
                    } else {
                        const std::vector<uint16_t> b = out.download<uint16_t>();
                        for (size_t i = 0; i < b.size(); ++i) got[i] = bf16_to_fp32(b[i]);
                    }
                    std::vector<double> ref(got.size());
                    double max_ref = 0;
                    for (size_t i = 0; i < ref.size(); ++i) {
                        const double x = gv[i], y = uv[i];
                        const double a = gelu ? 0.5 * x *
                                                    (1 + std::tanh(0.7978845608028654 *
                                                                   (x + 0.044715 * x * x * x)))
                                              : x / (1 + std::exp(-x));
                        ref[i] = a * y;
                        max_ref = std::max(max_ref, std::abs(ref[i]));
                    }
                    const double rel = nt > kMatvecMaxCols ? 1.0 / 128 : 1.0 / 1024;
                    double worst = 0;
                    for (size_t i = 0; i < ref.size(); ++i) {
                        const double bound =
                            rel * (std::abs(gv[i] * uv[i]) + std::abs(ref[i])) + 1e-4 * max_ref;
                        const double err = std::abs(got[i] - ref[i]);
                        ASSERT_LE(err, bound) << "value " << i << " ref " << ref[i];
                        worst = std::max(worst, err / bound);
                    }
                    if (act == GatedAct::GATED_SILU && out_type == DType::F32 && nt <= 9)
                        std::printf("[ gated    ] %-5s T=%-3lld max err / bound %.3g\n",
                                    std::string(dtype_name(type)).c_str(),
                                    static_cast<long long>(nt), worst);
                }
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, CudaMatmulParity, ::testing::ValuesIn(test::kComputableTypes),
                         type_param_name);
INSTANTIATE_TEST_SUITE_P(Int8Types, CudaMatvecQ8Long,
                         ::testing::Values(DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_0,
                                           DType::Q4_0),
                         type_param_name);
INSTANTIATE_TEST_SUITE_P(AllTypes, CudaGetRowsParity, ::testing::ValuesIn(test::kComputableTypes),
                         type_param_name);

}  // namespace
}  // namespace sift
