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

#include <memory>
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

// attention_prep's kernel against the ops it fuses on the same GPU (rms_norm_rope or rope on
// q and k, set_rows of k and v): the same arithmetic in the same order, so q, k and both whole
// caches (untouched rows included) must be identical bit for bit; a cell out of range is
// skipped by both.
TEST(FusedNormParity, AttentionPrepEqualsComposedOps) {
    SIFT_REQUIRE_CUDA();
    struct Case {
        int64_t head_dim, n_head, n_kv, n_tokens;
        bool norm, neox, factors;
        int32_t n_rot;
        DType kt, vt;
    };
    const Case cases[] = {{128, 16, 8, 1, true, true, false, 128, DType::F16, DType::F16},
                          {128, 16, 8, 37, true, true, false, 128, DType::F16, DType::F16},
                          {64, 8, 2, 5, false, false, true, 32, DType::F32, DType::F32},
                          {256, 8, 4, 9, true, true, false, 256, DType::F16, DType::F32},
                          {80, 6, 3, 3, false, true, false, 80, DType::F32, DType::F16}};
    const int64_t n_cells = 64;
    for (const Case& c : cases) {
        SCOPED_TRACE(::testing::Message() << "head_dim=" << c.head_dim << " T=" << c.n_tokens
                                          << " norm=" << c.norm << " neox=" << c.neox);
        const int64_t d = c.head_dim, nt = c.n_tokens, kv = d * c.n_kv;
        const std::vector<float> q = random_normal(static_cast<size_t>(d * c.n_head * nt), 50);
        const std::vector<float> k = random_normal(static_cast<size_t>(kv * nt), 51);
        const std::vector<float> v = random_normal(static_cast<size_t>(kv * nt), 52);
        const std::vector<float> wq = random_normal(static_cast<size_t>(d), 53);
        const std::vector<float> wk = random_normal(static_cast<size_t>(d), 54);
        std::vector<int32_t> pos(static_cast<size_t>(nt)), cells(static_cast<size_t>(nt));
        for (int64_t t = 0; t < nt; ++t) {
            pos[t] = static_cast<int32_t>(1000 + 7919 * t);
            cells[t] = static_cast<int32_t>((t * 13 + 5) % n_cells);
        }
        if (nt > 2) cells[1] = -1;  // skipped
        std::vector<float> factors(static_cast<size_t>(c.n_rot / 2));
        for (size_t i = 0; i < factors.size(); ++i) factors[i] = 1.0f + 0.25f * i;

        struct Side {
            std::unique_ptr<DeviceTensor> q, k, v, ck, cv;
        };
        DeviceTensor wqd(DType::F32, {d}), wkd(DType::F32, {d}), pd(DType::I32, {nt}),
            cd(DType::I32, {nt}), fd(DType::F32, {static_cast<int64_t>(factors.size())});
        wqd.upload(wq.data());
        wkd.upload(wk.data());
        pd.upload(pos.data());
        cd.upload(cells.data());
        fd.upload(factors.data());
        RopeParams p;
        p.n_rot = c.n_rot;
        p.neox = c.neox;
        p.freq_base = 500000;
        p.freq_factors = c.factors ? &fd.t() : nullptr;
        auto make_side = [&]() {
            Side sd;
            sd.q = std::make_unique<DeviceTensor>(DType::F32,
                                                  std::initializer_list<int64_t>{d, c.n_head, nt});
            sd.k = std::make_unique<DeviceTensor>(DType::F32,
                                                  std::initializer_list<int64_t>{d, c.n_kv, nt});
            sd.v = std::make_unique<DeviceTensor>(DType::F32,
                                                  std::initializer_list<int64_t>{d, c.n_kv, nt});
            sd.ck =
                std::make_unique<DeviceTensor>(c.kt, std::initializer_list<int64_t>{kv, n_cells});
            sd.cv =
                std::make_unique<DeviceTensor>(c.vt, std::initializer_list<int64_t>{kv, n_cells});
            sd.q->upload(q.data());
            sd.k->upload(k.data());
            sd.v->upload(v.data());
            sd.ck->poison();
            sd.cv->poison();
            return sd;
        };
        Side fused = make_side(), composed = make_side();
        const Tensor* nq = c.norm ? &wqd.t() : nullptr;
        const Tensor* nk = c.norm ? &wkd.t() : nullptr;
        ASSERT_TRUE(cuda::cuda_attention_prep(ctx, fused.q->t(), fused.k->t(), fused.v->t(), c.norm,
                                              nq, nk, 1e-6f, pd.t(), p, cd.t(), fused.ck->t(),
                                              fused.cv->t()));
        if (c.norm) {
            cuda::cuda_rms_norm_rope(ctx, composed.q->t(), nq, 1e-6f, pd.t(), p, composed.q->t());
            cuda::cuda_rms_norm_rope(ctx, composed.k->t(), nk, 1e-6f, pd.t(), p, composed.k->t());
        } else {
            cuda::cuda_rope(ctx, composed.q->t(), pd.t(), p, composed.q->t());
            cuda::cuda_rope(ctx, composed.k->t(), pd.t(), p, composed.k->t());
        }
        const Tensor k_rows =
            Tensor::view(composed.k->t().data, DType::F32, {kv, nt}, Device::DEVICE_CUDA);
        const Tensor v_rows =
            Tensor::view(composed.v->t().data, DType::F32, {kv, nt}, Device::DEVICE_CUDA);
        cuda::cuda_set_rows(ctx, k_rows, cd.t(), composed.ck->t());
        cuda::cuda_set_rows(ctx, v_rows, cd.t(), composed.cv->t());
        sync(ctx);
        EXPECT_EQ(fused.q->download<float>(), composed.q->download<float>());
        EXPECT_EQ(fused.k->download<float>(), composed.k->download<float>());
        EXPECT_EQ(fused.ck->download<uint8_t>(), composed.ck->download<uint8_t>());
        EXPECT_EQ(fused.cv->download<uint8_t>(), composed.cv->download<uint8_t>());
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
