// Op parity: CUDA attention against the exact CPU backend. Each case builds a KV cache (F16 or
// F32, optionally a strided view: one extra KV head between rows), fills its cells with one or
// two interleaved sequences (optionally with position gaps and empty cells), takes the queries to
// be the last filled cells (as a prefill that has just stored its keys), and compares the output.
//
// Error bound (max |got - ref| / max |ref|):
//   vec kernel (decode, F32 K/V, small head_dim): F32 throughout, like the CPU, only the order of
//     the sums differs: ~sqrt(n) 2^-24 per score and per output sum: 1e-4 leaves a wide margin.
//   tensor-core kernel (F16 K/V, T >= 16, head_dim 64/128/256): Q and P are rounded to F16
//     (2^-11 relative each, F32 accumulation); a score error of ~5e-4 changes the weights by as
//     much, and the outputs are weighted means of V: ~1e-3 of max |out|; bound 2e-3.
#include <gtest/gtest.h>

#include <memory>

#include "backend/cuda/cuda_ops.h"
#include "tensor/quant.h"
#include "tests/cuda/cuda_test_util.h"

namespace sift {
namespace {

using test::DeviceTensor;

struct Case {
    const char* name;
    int64_t head_dim = 128, n_head = 4, n_head_kv = 1, n_tokens = 1, n_cells = 64;
    DType kv = DType::F16;
    int n_seq = 1;          // sequences interleaved in the cache and the batch
    bool gaps = false;      // positions jump by 1..3
    float p_empty = 0;      // fraction of empty cells (seq -1)
    bool strided = false;   // cache view with an extra KV head between rows
    int64_t begin_off = 0;  // cell_begin
    int64_t end_off = 0;    // cell_end = n_cells - end_off
    int32_t window = 0;
    bool mask = false;
    float softcap = 0;
    bool lost_query = false;  // one query of a sequence without cells: sees nothing
};

bool uses_tensor_cores(const Case& c) {
    return c.kv == DType::F16 && c.n_tokens >= 16 &&
           (c.head_dim == 64 || c.head_dim == 128 || c.head_dim == 256);
}

std::ostream& operator<<(std::ostream& os, const Case& c) {
    return os << c.name;
}

class AttentionParity : public ::testing::TestWithParam<Case> {};

TEST_P(AttentionParity, MatchesCpu) {
    SIFT_REQUIRE_CUDA();
    const Case& c = GetParam();
    const double bound = uses_tensor_cores(c) ? 2e-3 : 1e-4;
    const int64_t D = c.head_dim, n_cells = c.n_cells, T = c.n_tokens;
    const int64_t heads_alloc = c.n_head_kv + (c.strided ? 1 : 0);
    const int64_t elt = c.kv == DType::F16 ? 2 : 4;
    std::mt19937 rng(static_cast<uint32_t>(D * 131 + T * 7 + n_cells));

    // Cells: (seq, pos) per cell; positions increase per sequence.
    std::vector<int32_t> cell_seq(n_cells), cell_pos(n_cells);
    std::vector<int32_t> next_pos(c.n_seq, 0);
    std::uniform_real_distribution<float> uni(0, 1);
    for (int64_t i = 0; i < n_cells; ++i) {
        if (i < n_cells - T && uni(rng) < c.p_empty) {  // queried cells stay filled
            cell_seq[i] = -1;
            cell_pos[i] = static_cast<int32_t>(rng() % 1000);
            continue;
        }
        const int s = static_cast<int>(rng() % c.n_seq);
        cell_seq[i] = s;
        cell_pos[i] = next_pos[s];
        next_pos[s] += c.gaps ? 1 + static_cast<int32_t>(rng() % 3) : 1;
    }
    // Queries: the last T cells (already stored, as in prefill).
    std::vector<int32_t> q_seq(T), q_pos(T);
    for (int64_t t = 0; t < T; ++t) {
        q_seq[t] = cell_seq[n_cells - T + t];
        q_pos[t] = cell_pos[n_cells - T + t];
    }
    if (c.lost_query) q_seq[T / 2] = 7;

    // Cache contents (F32 values, stored as F16 where asked: both sides read the same bits).
    const int64_t cache_elems = D * heads_alloc * n_cells;
    std::vector<float> kf = test::random_normal(cache_elems, 1),
                       vf = test::random_normal(cache_elems, 2);
    std::vector<uint8_t> kb(cache_elems * elt), vb(cache_elems * elt);
    for (int64_t i = 0; i < cache_elems; ++i) {
        if (c.kv == DType::F16) {
            reinterpret_cast<uint16_t*>(kb.data())[i] = fp32_to_fp16(kf[i]);
            reinterpret_cast<uint16_t*>(vb.data())[i] = fp32_to_fp16(vf[i]);
        } else {
            reinterpret_cast<float*>(kb.data())[i] = kf[i];
            reinterpret_cast<float*>(vb.data())[i] = vf[i];
        }
    }
    std::vector<float> q = test::random_normal(D * c.n_head * T, 3);
    const int64_t cell_begin = c.begin_off, cell_end = n_cells - c.end_off;
    std::vector<float> mask;
    if (c.mask) {
        mask.resize((cell_end - cell_begin) * T);
        for (float& m : mask) m = uni(rng) < 0.2f ? -INFINITY : 0.0f;
    }

    auto cache_view = [&](void* data, Device dev) {
        Tensor t = Tensor::view(data, c.kv, {D, c.n_head_kv, n_cells}, dev);
        t.nb[2] = D * elt * heads_alloc;
        t.nb[3] = t.nb[2] * n_cells;
        return t;
    };
    auto inputs = [&](void* qd, void* kd, void* vd, void* qp, void* qs, void* cp, void* cs,
                      Device dev) {
        AttentionInputs in;
        in.q = Tensor::view(qd, DType::F32, {D, c.n_head, T}, dev);
        in.k = cache_view(kd, dev);
        in.v = cache_view(vd, dev);
        in.q_pos = Tensor::view(qp, DType::I32, {T}, dev);
        in.q_seq = Tensor::view(qs, DType::I32, {T}, dev);
        in.cell_pos = Tensor::view(cp, DType::I32, {n_cells}, dev);
        in.cell_seq = Tensor::view(cs, DType::I32, {n_cells}, dev);
        in.cell_begin = cell_begin;
        in.cell_end = cell_end;
        return in;
    };
    AttentionParams params;
    params.scale = 1.0f / std::sqrt(static_cast<float>(D));
    params.window = c.window;
    params.softcap = c.softcap;

    // CPU reference.
    std::vector<float> ref(q.size());
    AttentionInputs cin = inputs(q.data(), kb.data(), vb.data(), q_pos.data(), q_seq.data(),
                                 cell_pos.data(), cell_seq.data(), Device::DEVICE_CPU);
    Tensor mask_c;
    if (c.mask) {
        mask_c = Tensor::view(mask.data(), DType::F32, {cell_end - cell_begin, T});
        cin.mask = &mask_c;
    }
    test::cpu_reference().attention(cin, params,
                                    Tensor::view(ref.data(), DType::F32, {D, c.n_head, T}));

    // CUDA.
    DeviceTensor qd(DType::F32, {D, c.n_head, T}), out(DType::F32, {D, c.n_head, T});
    DeviceTensor kd(c.kv, {D, heads_alloc, n_cells}), vd(c.kv, {D, heads_alloc, n_cells});
    DeviceTensor qpd(DType::I32, {T}), qsd(DType::I32, {T});
    DeviceTensor cpd(DType::I32, {n_cells}), csd(DType::I32, {n_cells});
    qd.upload(q.data());
    kd.upload(kb.data());
    vd.upload(vb.data());
    qpd.upload(q_pos.data());
    qsd.upload(q_seq.data());
    cpd.upload(cell_pos.data());
    csd.upload(cell_seq.data());
    AttentionInputs gin = inputs(qd.t().data, kd.t().data, vd.t().data, qpd.t().data, qsd.t().data,
                                 cpd.t().data, csd.t().data, Device::DEVICE_CUDA);
    std::unique_ptr<DeviceTensor> maskd;
    if (c.mask) {
        maskd = std::make_unique<DeviceTensor>(
            DType::F32, std::initializer_list<int64_t>{cell_end - cell_begin, T});
        maskd->upload(mask.data());
        gin.mask = &maskd->t();
    }
    out.poison();
    cuda::cuda_attention(ctx, gin, params, out.t());
    SIFT_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    const std::vector<float> got = out.download<float>();
    const double err = test::max_rel_error(got, ref);
    EXPECT_LE(err, bound) << c.name;
    RecordProperty("max_rel_error", std::to_string(err));
    std::printf("  %-40s max_rel_error %.3g (bound %.0e, %s)\n", c.name, err, bound,
                uses_tensor_cores(c) ? "tensor cores" : "vec");
    if (c.lost_query) {  // the token that sees nothing gets zeros, as on the CPU
        for (int64_t i = 0; i < D * c.n_head; ++i) {
            ASSERT_EQ(got[(T / 2) * D * c.n_head + i], 0.0f);
        }
    }
}

Case make(const char* name, int64_t d, int64_t nh, int64_t nkv, int64_t t, int64_t cells,
          DType kv = DType::F16) {
    Case c;
    c.name = name;
    c.head_dim = d;
    c.n_head = nh;
    c.n_head_kv = nkv;
    c.n_tokens = t;
    c.n_cells = cells;
    c.kv = kv;
    return c;
}

template <typename F>
Case with(Case c, F f) {
    f(c);
    return c;
}

std::vector<Case> cases() {
    std::vector<Case> v;
    // Small head dims (tiny test models), both cache types, T = 1 and 37: vec kernel.
    v.push_back(make("d16_h4_kv1_T37_f16", 16, 4, 1, 37, 37));
    v.push_back(make("d16_h4_kv4_T1_f32", 16, 4, 4, 1, 50, DType::F32));
    v.push_back(make("d32_h8_kv2_T37_f32", 32, 8, 2, 37, 100, DType::F32));
    v.push_back(make("d32_h8_kv8_T5_f16", 32, 8, 8, 5, 77));
    // Causal prefill on tensor cores: GQA 1/4/8, head dims 64/128/256, T not a tile multiple.
    v.push_back(make("d64_h4_kv4_T300_f16", 64, 4, 4, 300, 300));
    v.push_back(make("d128_h8_kv2_T300_f16", 128, 8, 2, 300, 300));
    v.push_back(make("d128_h32_kv4_T1024_f16", 128, 32, 4, 1024, 1024));
    v.push_back(make("d256_h8_kv1_T130_f16", 256, 8, 1, 130, 130));
    v.push_back(make("d128_h4_kv1_T16_f16", 128, 4, 1, 16, 16));
    // Prefill continuing a cached prefix (queries are the last T of 500 cells).
    v.push_back(make("d128_h8_kv8_T77_cells500_f16", 128, 8, 8, 77, 500));
    // Same shapes on F32 caches (vec kernel at any T).
    v.push_back(make("d64_h4_kv4_T300_f32", 64, 4, 4, 300, 300, DType::F32));
    v.push_back(make("d128_h8_kv1_T37_f32", 128, 8, 1, 37, 200, DType::F32));
    v.push_back(make("d256_h4_kv2_T3_f32", 256, 4, 2, 3, 150, DType::F32));
    // Window, softcap, mask, each on both kernels.
    for (DType kv : {DType::F16, DType::F32}) {
        const bool f16 = kv == DType::F16;
        v.push_back(
            with(make(f16 ? "window100_d128_f16" : "window100_d128_f32", 128, 8, 2, 300, 300, kv),
                 [](Case& c) { c.window = 100; }));
        v.push_back(
            with(make(f16 ? "softcap_d256_f16" : "softcap_d256_f32", 256, 4, 1, 100, 120, kv),
                 [](Case& c) { c.softcap = 2.0f; }));
        v.push_back(with(make(f16 ? "mask_d64_f16" : "mask_d64_f32", 64, 8, 1, 70, 200, kv),
                         [](Case& c) { c.mask = true; }));
    }
    // Two sequences interleaved, position gaps, empty cells, a cell range, a strided cache.
    v.push_back(with(make("two_seq_gaps_empty_d128_f16", 128, 8, 2, 150, 400), [](Case& c) {
        c.n_seq = 2;
        c.gaps = true;
        c.p_empty = 0.15f;
    }));
    v.push_back(with(make("two_seq_gaps_empty_d64_T3_f16", 64, 8, 1, 3, 400), [](Case& c) {
        c.n_seq = 2;
        c.gaps = true;
        c.p_empty = 0.15f;
    }));
    v.push_back(
        with(make("two_seq_range_strided_window_d128_f16", 128, 4, 2, 64, 333), [](Case& c) {
            c.n_seq = 2;
            c.strided = true;
            c.begin_off = 5;
            c.end_off = 0;
            c.window = 64;
        }));
    v.push_back(with(make("strided_range_d64_T2_f32", 64, 4, 2, 2, 333, DType::F32), [](Case& c) {
        c.strided = true;
        c.begin_off = 10;
        c.end_off = 7;  // the last cells (the queries' own) are outside the range
    }));
    v.push_back(with(make("lost_query_d128_f16", 128, 4, 1, 40, 100), [](Case& c) {
        c.lost_query = true;
        c.n_seq = 2;
    }));
    v.push_back(with(make("lost_query_d32_f32", 32, 4, 1, 8, 100, DType::F32),
                     [](Case& c) { c.lost_query = true; }));
    v.push_back(with(make("all_masked_mask_window_mix_d64_f16", 64, 8, 8, 33, 150), [](Case& c) {
        c.mask = true;
        c.window = 8;
        c.n_seq = 2;
        c.softcap = 30.0f;
    }));
    // Long caches, few queries: split-K (with GQA 4 and 8).
    v.push_back(make("long_8k_T1_d128_kv8_h32_f16", 128, 32, 8, 1, 8192));
    v.push_back(make("long_8k_T4_d128_kv4_h32_f16", 128, 32, 4, 4, 8192));
    v.push_back(make("long_8k_T1_d64_kv1_h8_f32", 64, 8, 1, 1, 8192, DType::F32));
    v.push_back(with(make("long_8k_T1_d256_window_f16", 256, 8, 1, 1, 8192),
                     [](Case& c) { c.window = 4096; }));
    // Decode over a short cache with head_dim 80 (not a multiple of 32 lanes), and over a
    // 12K cache split into more shares than the 8K cases (the combine pass).
    v.push_back(make("short_300_T1_d80_kv2_h6_f16", 80, 6, 2, 1, 300));
    v.push_back(make("long_12k_T1_d128_kv2_h8_f16", 128, 8, 2, 1, 12000));
    // Tensor cores on a grid too small for the GPU (a short batch over a long cache): the
    // query blocks are split across the cells (split-KV) and merged.
    v.push_back(make("split_33k_T150_d128_kv1_h4_f16", 128, 4, 1, 150, 33000));
    v.push_back(
        with(make("split_20k_T100_d64_window_empty_f16", 64, 4, 2, 100, 20000), [](Case& c) {
            c.window = 5000;
            c.p_empty = 0.1f;
        }));
    return v;
}

INSTANTIATE_TEST_SUITE_P(Cases, AttentionParity, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                             return std::string(info.param.name);
                         });

}  // namespace
}  // namespace sift
