// Op parity of the fused norm ops (ops.h add_rms_norm, rms_norm_rope): the CUDA kernels against
// the CPU reference's composition (add then rms_norm; rms_norm then rope), over odd and aligned
// widths, T = 1, aliasing, head dims 16..256, both RoPE layouts, partial rotation, frequency
// factors and positions up to 128K.
//
// Error bounds (max |got - ref| / max |ref|): the sum a + b is one IEEE add on both sides; the
// sum of squares is an F32 tree on the GPU and a double loop on the CPU (~log2(n) 2^-24), the
// scale the same double formula: rms_norm's 2e-6. The rotation after it multiplies values
// already within that bound by cos/sin rounded the same way on both sides: 3e-6.
//
// BF16 outputs (a GEMM's input written by its producer): bit for bit the F32 output of the same
// kernel rounded to nearest even, and a matmul fed BF16 x equals one fed the F32 x it came from.
#include <gtest/gtest.h>

#include <random>

#include "backend/cuda/cuda_ops.h"
#include "tensor/quant.h"
#include "tests/cuda/cuda_test_util.h"

namespace sift {
namespace {

using test::DeviceTensor;
using test::max_rel_error;
using test::random_normal;

void sync(cuda::CudaContext& ctx) {
    SIFT_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
}

Tensor host_view(std::vector<float>& v, std::initializer_list<int64_t> ne) {
    return Tensor::view(v.data(), DType::F32, ne);
}

Tensor device_view(const DeviceTensor& d, std::initializer_list<int64_t> ne) {
    return Tensor::view(d.t().data, DType::F32, ne, Device::DEVICE_CUDA);
}

TEST(FusedNormParity, AddRmsNorm) {
    SIFT_REQUIRE_CUDA();
    constexpr double kBound = 2e-6;
    struct Shape {
        int64_t n, rows;
    };
    const Shape shapes[] = {{7, 3},     {37, 37},  {128, 5},  {1024, 33},
                            {1026, 17}, {4096, 1}, {4096, 9}, {5123, 2}};
    for (const Shape& s : shapes) {
        for (bool with_w : {false, true}) {
            for (bool alias_sum : {false, true}) {
                SCOPED_TRACE(::testing::Message() << "n=" << s.n << " rows=" << s.rows
                                                  << " w=" << with_w << " alias=" << alias_sum);
                const auto count = static_cast<size_t>(s.n * s.rows);
                std::vector<float> a = random_normal(count, 1, 2.0f);
                std::vector<float> b = random_normal(count, 2, 1.0f);
                std::vector<float> w = random_normal(static_cast<size_t>(s.n), 3);
                std::vector<float> ref_sum(count), ref_out(count);
                Backend& cpu = test::cpu_reference();
                cpu.add(host_view(a, {s.n, s.rows}), host_view(b, {s.n, s.rows}),
                        host_view(ref_sum, {s.n, s.rows}));
                Tensor w_host = host_view(w, {s.n});
                cpu.rms_norm(host_view(ref_sum, {s.n, s.rows}), with_w ? &w_host : nullptr, 1e-6f,
                             host_view(ref_out, {s.n, s.rows}));

                DeviceTensor ad(DType::F32, {s.n, s.rows}), bd(DType::F32, {s.n, s.rows}),
                    sd(DType::F32, {s.n, s.rows}), od(DType::F32, {s.n, s.rows}),
                    wd(DType::F32, {s.n});
                ad.upload(a.data());
                bd.upload(b.data());
                wd.upload(w.data());
                sd.poison();
                od.poison();
                cuda::cuda_add_rms_norm(ctx, ad.t(), bd.t(), with_w ? &wd.t() : nullptr, 1e-6f,
                                        alias_sum ? ad.t() : sd.t(), od.t());
                sync(ctx);
                const std::vector<float> got_sum =
                    alias_sum ? ad.download<float>() : sd.download<float>();
                EXPECT_EQ(max_rel_error(got_sum, ref_sum), 0.0);
                EXPECT_LE(max_rel_error(od.download<float>(), ref_out), kBound);
            }
        }
    }
}

TEST(FusedNormParity, RmsNormRope) {
    SIFT_REQUIRE_CUDA();
    constexpr double kBound = 3e-6;
    struct Case {
        int64_t head_dim;
        int n_rot;
        bool neox, factors;
        int64_t n_head, n_tokens;
    };
    // Head dims 6 (no float4 rows: the composed fallback) .. 256; 1 and 37 tokens; head counts
    // below, at and above the kernel's 8 warps.
    const Case cases[] = {{128, 128, true, false, 16, 37}, {128, 128, true, false, 8, 1},
                          {128, 128, false, true, 3, 37},  {128, 64, true, false, 12, 5},
                          {64, 64, false, false, 9, 37},   {256, 256, true, true, 4, 7},
                          {256, 128, false, false, 2, 3},  {16, 16, true, false, 17, 11},
                          {6, 6, true, false, 3, 5}};
    for (const Case& rc : cases) {
        for (bool with_w : {false, true}) {
            for (bool alias : {false, true}) {
                SCOPED_TRACE(::testing::Message()
                             << "head_dim=" << rc.head_dim << " n_rot=" << rc.n_rot << " neox="
                             << rc.neox << " factors=" << rc.factors << " heads=" << rc.n_head
                             << " T=" << rc.n_tokens << " w=" << with_w << " alias=" << alias);
                const int64_t d = rc.head_dim, nh = rc.n_head, nt = rc.n_tokens;
                const auto count = static_cast<size_t>(d * nh * nt);
                std::vector<float> x = random_normal(count, 20, 3.0f);
                std::vector<float> w = random_normal(static_cast<size_t>(d), 21);
                std::vector<int32_t> pos(static_cast<size_t>(nt));
                std::mt19937 rng(4);
                for (int64_t t = 0; t < nt; ++t) pos[t] = t == 0 ? 0 : rng() % 131072;
                pos.back() = 131071;
                std::vector<float> factors(static_cast<size_t>(rc.n_rot / 2));
                for (size_t i = 0; i < factors.size(); ++i) factors[i] = 1.0f + 0.37f * i;
                const auto n_factors = static_cast<int64_t>(factors.size());

                RopeParams p;
                p.n_rot = rc.n_rot;
                p.neox = rc.neox;
                p.freq_base = 1000000;
                Tensor factors_host = Tensor::view(factors.data(), DType::F32, {n_factors});
                p.freq_factors = rc.factors ? &factors_host : nullptr;
                std::vector<float> ref(count);
                Tensor w_host = host_view(w, {d});
                Backend& cpu = test::cpu_reference();
                cpu.rms_norm(host_view(x, {d, nh, nt}), with_w ? &w_host : nullptr, 1e-6f,
                             host_view(ref, {d, nh, nt}));
                cpu.rope(host_view(ref, {d, nh, nt}), Tensor::view(pos.data(), DType::I32, {nt}), p,
                         host_view(ref, {d, nh, nt}));

                DeviceTensor xd(DType::F32, {d, nh, nt}), od(DType::F32, {d, nh, nt}),
                    wd(DType::F32, {d}), pd(DType::I32, {nt}), fd(DType::F32, {n_factors});
                xd.upload(x.data());
                wd.upload(w.data());
                pd.upload(pos.data());
                fd.upload(factors.data());
                od.poison();
                p.freq_factors = rc.factors ? &fd.t() : nullptr;
                const Tensor xg = device_view(xd, {d, nh, nt});
                cuda::cuda_rms_norm_rope(ctx, xg, with_w ? &wd.t() : nullptr, 1e-6f, pd.t(), p,
                                         alias ? xg : device_view(od, {d, nh, nt}));
                sync(ctx);
                const std::vector<float> got = alias ? xd.download<float>() : od.download<float>();
                EXPECT_LE(max_rel_error(got, ref), kBound);
            }
        }
    }
}

// The F32 output of an op rounded to BF16 on the host, as the bits a BF16 output must have.
std::vector<uint16_t> rounded(const std::vector<float>& v) {
    std::vector<uint16_t> r(v.size());
    for (size_t i = 0; i < v.size(); ++i) r[i] = fp32_to_bf16(v[i]);
    return r;
}

TEST(FusedNormParity, Bf16OutputsAreTheRoundedF32Outputs) {
    SIFT_REQUIRE_CUDA();
    // Widths through the warp-per-row, float4 and scalar paths.
    for (const int64_t n : {128, 1024, 4099}) {
        SCOPED_TRACE(::testing::Message() << "n=" << n);
        const int64_t rows = 9;
        const auto count = static_cast<size_t>(n * rows);
        std::vector<float> a = random_normal(count, 31, 2.0f), b = random_normal(count, 32);
        std::vector<float> w = random_normal(static_cast<size_t>(n), 33);
        DeviceTensor ad(DType::F32, {n, rows}), bd(DType::F32, {n, rows}), wd(DType::F32, {n}),
            sd(DType::F32, {n, rows}), f32(DType::F32, {n, rows}), bf(DType::BF16, {n, rows});
        ad.upload(a.data());
        bd.upload(b.data());
        wd.upload(w.data());
        auto check = [&](const char* op) {
            sync(ctx);
            EXPECT_EQ(bf.download<uint16_t>(), rounded(f32.download<float>())) << op;
        };
        cuda::cuda_rms_norm(ctx, ad.t(), &wd.t(), 1e-6f, f32.t());
        cuda::cuda_rms_norm(ctx, ad.t(), &wd.t(), 1e-6f, bf.t());
        check("rms_norm");
        cuda::cuda_add_rms_norm(ctx, ad.t(), bd.t(), &wd.t(), 1e-6f, sd.t(), f32.t());
        cuda::cuda_add_rms_norm(ctx, ad.t(), bd.t(), &wd.t(), 1e-6f, sd.t(), bf.t());
        check("add_rms_norm");
        cuda::cuda_swiglu(ctx, ad.t(), bd.t(), f32.t());
        cuda::cuda_swiglu(ctx, ad.t(), bd.t(), bf.t());
        check("swiglu");
        cuda::cuda_geglu(ctx, ad.t(), bd.t(), f32.t());
        cuda::cuda_geglu(ctx, ad.t(), bd.t(), bf.t());
        check("geglu");
    }
}

TEST(FusedNormParity, MatmulOfBf16InputEqualsMatmulOfItsF32Source) {
    SIFT_REQUIRE_CUDA();
    const int64_t k = 1024, n = 768, t = 300;  // t above the matrix-vector widths: a GEMM
    std::vector<float> x = random_normal(static_cast<size_t>(k * t), 41);
    std::vector<uint16_t> w(static_cast<size_t>(k * n)), xb = rounded(x);
    for (size_t i = 0; i < w.size(); ++i) w[i] = fp32_to_bf16(0.05f * ((i * 7919) % 101 - 50.0f));
    DeviceTensor wd(DType::BF16, {k, n}), xd(DType::F32, {k, t}), xbd(DType::BF16, {k, t}),
        o1(DType::F32, {n, t}), o2(DType::F32, {n, t});
    wd.upload(w.data());
    xd.upload(x.data());
    xbd.upload(xb.data());
    ASSERT_EQ(cuda::cuda_matmul_input_type(wd.t(), t), DType::BF16);
    ASSERT_EQ(cuda::cuda_matmul_input_type(wd.t(), 1), DType::F32);
    cuda::cuda_matmul(ctx, wd.t(), xd.t(), o1.t());
    sync(ctx);
    const std::vector<float> ref = o1.download<float>();
    o2.poison();
    cuda::cuda_matmul(ctx, wd.t(), xbd.t(), o2.t());
    sync(ctx);
    EXPECT_EQ(o2.download<float>(), ref);
    // Shared by several weights (q/k/v): the same products.
    o1.poison();
    o2.poison();
    const Tensor ws[] = {wd.t(), wd.t()};
    Tensor outs[] = {o1.t(), o2.t()};
    cuda::cuda_matmul_shared(ctx, ws, 2, xbd.t(), outs);
    sync(ctx);
    EXPECT_EQ(o1.download<float>(), ref);
    EXPECT_EQ(o2.download<float>(), ref);
}

}  // namespace
}  // namespace sift
