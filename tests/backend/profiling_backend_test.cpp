// The profiling wrapper: ops give the same results as the backend it wraps, every call is
// counted under its op and shape, and graphs are not offered (captured ops cannot be timed).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backend/profiling_backend.h"
#include "tests/backend/backend_test_util.h"

namespace sift {
namespace {

TEST(ProfilingBackend, ForwardsOpsAndCountsThemByShape) {
    CpuBackendOptions o;
    o.n_threads = 1;
    o.exact = true;
    std::unique_ptr<Backend> plain = backend_cpu_create(o);
    std::unique_ptr<Backend> profiled = backend_profile_wrap(backend_cpu_create(o));
    EXPECT_EQ(profiled->device(), plain->device());
    EXPECT_FALSE(profiled->graph_supported());  // captured ops could not be timed

    test::TypedMatrix w(DType::F32, 64, 48, 1);
    const std::vector<float> x = test::random_floats(64 * 3, 2);
    const Tensor xt = Tensor::view(const_cast<float*>(x.data()), DType::F32, {64, 3});
    std::vector<float> a(48 * 3), b(48 * 3);
    plain->matmul(w.tensor(), xt, Tensor::view(a.data(), DType::F32, {48, 3}));
    for (int i = 0; i < 2; ++i)
        profiled->matmul(w.tensor(), xt, Tensor::view(b.data(), DType::F32, {48, 3}));
    profiled->rms_norm(Tensor::view(b.data(), DType::F32, {48, 3}), nullptr, 1e-6f,
                       Tensor::view(b.data(), DType::F32, {48, 3}));
    plain->rms_norm(Tensor::view(a.data(), DType::F32, {48, 3}), nullptr, 1e-6f,
                    Tensor::view(a.data(), DType::F32, {48, 3}));
    EXPECT_EQ(a, b);

    // Weights sharing an input: the default loops over matmul, timed as one op.
    test::TypedMatrix w2(DType::F32, 64, 16, 3);
    std::vector<float> c(48 * 3), d(16 * 3);
    const Tensor ws[] = {w.tensor(), w2.tensor()};
    Tensor outs[] = {Tensor::view(c.data(), DType::F32, {48, 3}),
                     Tensor::view(d.data(), DType::F32, {16, 3})};
    profiled->matmul_shared(ws, 2, xt, outs);
    std::vector<float> a_again(48 * 3);
    plain->matmul(w.tensor(), xt, Tensor::view(a_again.data(), DType::F32, {48, 3}));
    EXPECT_EQ(c, a_again);

    const std::string report = backend_profile_report(*profiled);
    EXPECT_NE(report.find("matmul f32 64x48 T<=32"), std::string::npos) << report;
    EXPECT_NE(report.find("rms_norm 48"), std::string::npos) << report;
    EXPECT_NE(report.find("matmul_shared x2 f32 64x(48+16) T<=32"), std::string::npos) << report;
    // The matmul row counts two calls.
    const size_t row = report.rfind('\n', report.find("matmul f32"));
    EXPECT_NE(report.substr(row, report.find("matmul f32") - row).find(" 2 "), std::string::npos)
        << report;
    EXPECT_EQ(backend_profile_report(*plain), "");
}

}  // namespace
}  // namespace sift
