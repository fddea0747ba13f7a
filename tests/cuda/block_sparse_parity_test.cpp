// Op parity for block-sparse attention (ops.h attention_block_select, block_mask), CUDA against
// the exact CPU backend, on prefills under the ops.h contract: cells from cell_begin hold
// positions 0.. of one sequence, the batch is positions [pos_first, pos_first + T) (a later
// micro-batch when pos_first > 0, not always block-aligned), and placed-but-future cells hold
// stale keys that must not reach the block means.
//
// Selection: keys carry a per-(block, KV head) offset so block scores spread (random keys alone
// score every block alike). The masks must agree exactly except where the CPU's score ratio
// score[n] / max score is within 2% of alpha: the GPU rounds Q and the means to F16 (2^-11
// relative each), which moves a score q.meanK * scale of magnitude <= ~8 by ~1e-2 and its
// exp by as much.
// Attention: CUDA with a block mask against the CPU with the same mask (itself checked against
// dense attention under the equivalent cell mask in tests/backend/attention_block_test.cpp);
// bounds as attention_parity_test (tensor cores 2e-3, vec kernel 1e-4). Every case passes the
// dense_tail hint as the model does (the batch's blocks among the prompt's last_full), so
// batches ending the prompt over 16K+ cells run those rows split across the cells (split-KV);
// under a random mask the hinted rows are not dense, and the result must not change.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

#include "backend/cuda/cuda_ops.h"
#include "tensor/quant.h"
#include "tests/cuda/cuda_test_util.h"

namespace sift {
namespace {

using test::DeviceTensor;

struct Case {
    const char* name;
    int64_t head_dim = 128, n_head = 4, n_head_kv = 2;
    int64_t cell_begin = 0, n_pos = 512, n_future = 0;
    int64_t pos_first = 0, n_tokens = 512;
    DType kv = DType::F16;
    float alpha = 0.12f;
    bool random_mask = false;  // attention under a random mask instead of the selected one
};

std::ostream& operator<<(std::ostream& os, const Case& c) {
    return os << c.name;
}

constexpr int64_t kB = 128;

struct Data {
    int64_t n_cells = 0;
    std::vector<float> q;
    std::vector<uint8_t> k, v;  // F16 or F32 bytes
    std::vector<float> kf;      // K as stored, F32
    std::vector<int32_t> q_pos, q_seq, cell_pos, cell_seq;
};

Data make_data(const Case& c) {
    Data d;
    const int64_t D = c.head_dim, nkv = c.n_head_kv;
    d.n_cells = c.cell_begin + c.n_pos + c.n_future;
    const int64_t elems = D * nkv * d.n_cells;
    std::vector<float> k = test::random_normal(elems, 1, 0.5f), v = test::random_normal(elems, 2);
    const int64_t n_blocks = (d.n_cells + kB - 1) / kB;
    const std::vector<float> offset = test::random_normal(n_blocks * nkv * D, 3);
    for (int64_t cell = 0; cell < d.n_cells; ++cell) {
        const int64_t rel = cell - c.cell_begin;
        for (int64_t i = 0; i < nkv * D; ++i) {
            float& x = k[cell * nkv * D + i];
            if (rel >= c.n_pos) {
                x = 300;  // stale
            } else if (rel >= 0) {
                x += offset[rel / kB * nkv * D + i];
            }
        }
    }
    const int64_t elt = c.kv == DType::F16 ? 2 : 4;
    d.k.resize(elems * elt);
    d.v.resize(elems * elt);
    d.kf.resize(elems);
    for (int64_t i = 0; i < elems; ++i) {
        if (c.kv == DType::F16) {
            reinterpret_cast<uint16_t*>(d.k.data())[i] = fp32_to_fp16(k[i]);
            reinterpret_cast<uint16_t*>(d.v.data())[i] = fp32_to_fp16(v[i]);
            d.kf[i] = fp16_to_fp32(fp32_to_fp16(k[i]));
        } else {
            reinterpret_cast<float*>(d.k.data())[i] = k[i];
            reinterpret_cast<float*>(d.v.data())[i] = v[i];
            d.kf[i] = k[i];
        }
    }
    d.q = test::random_normal(D * c.n_head * c.n_tokens, 4);
    d.cell_pos.assign(d.n_cells, 0);
    d.cell_seq.assign(d.n_cells, -1);
    for (int64_t cell = c.cell_begin; cell < d.n_cells; ++cell) {
        d.cell_pos[cell] = static_cast<int32_t>(cell - c.cell_begin);
        d.cell_seq[cell] = 0;
    }
    for (int64_t t = 0; t < c.n_tokens; ++t) {
        d.q_pos.push_back(static_cast<int32_t>(c.pos_first + t));
        d.q_seq.push_back(0);
    }
    return d;
}

// Selection scores of (head h, global query block mg) in double, as ops.h defines them.
std::vector<double> ref_scores(const Case& c, const Data& d, int64_t h, int64_t mg) {
    const int64_t D = c.head_dim, nkv = c.n_head_kv, g = h / (c.n_head / nkv);
    const int64_t p_last = c.pos_first + c.n_tokens - 1;
    std::vector<double> mean((mg + 1) * D, 0.0);
    for (int64_t n = 0; n <= mg; ++n) {
        int64_t count = 0;
        for (int64_t pos = n * kB; pos < (n + 1) * kB && pos <= p_last; ++pos, ++count) {
            for (int64_t i = 0; i < D; ++i)
                mean[n * D + i] += d.kf[((c.cell_begin + pos) * nkv + g) * D + i];
        }
        for (int64_t i = 0; i < D; ++i) mean[n * D + i] /= static_cast<double>(count);
    }
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    std::vector<double> score(mg + 1, 0.0), s(mg + 1);
    for (int64_t t = 0; t < c.n_tokens; ++t) {
        if ((c.pos_first + t) / kB != mg) continue;
        double mx = -INFINITY;
        for (int64_t n = 0; n <= mg; ++n) {
            double dot = 0;
            for (int64_t i = 0; i < D; ++i)
                dot += static_cast<double>(d.q[(t * c.n_head + h) * D + i]) * mean[n * D + i];
            s[n] = dot * scale;
            mx = std::max(mx, s[n]);
        }
        for (int64_t n = 0; n <= mg; ++n) score[n] += std::exp(s[n] - mx);
    }
    return score;
}

class BlockSparseParity : public ::testing::TestWithParam<Case> {};

TEST_P(BlockSparseParity, MatchesCpu) {
    SIFT_REQUIRE_CUDA();
    const Case& c = GetParam();
    const Data d = make_data(c);
    const int64_t D = c.head_dim, T = c.n_tokens, nc = d.n_cells;
    const int64_t n_kb = (nc - c.cell_begin + kB - 1) / kB;
    const int64_t n_qb = (c.pos_first + T - 1) / kB - c.pos_first / kB + 1;
    const int64_t total = (c.n_pos + kB - 1) / kB;  // the prompt is the n_pos cached positions
    const int64_t m0 = c.pos_first / kB;
    BlockSparseParams bs;
    bs.alpha = c.alpha;
    AttentionParams params;
    params.scale = 1.0f / std::sqrt(static_cast<float>(D));

    auto inputs = [&](const void* q, const void* k, const void* v, const void* qp, const void* qs,
                      const void* cp, const void* cs, Device dev) {
        AttentionInputs in;
        in.q = Tensor::view(const_cast<void*>(q), DType::F32, {D, c.n_head, T}, dev);
        in.k = Tensor::view(const_cast<void*>(k), c.kv, {D, c.n_head_kv, nc}, dev);
        in.v = Tensor::view(const_cast<void*>(v), c.kv, {D, c.n_head_kv, nc}, dev);
        in.q_pos = Tensor::view(const_cast<void*>(qp), DType::I32, {T}, dev);
        in.q_seq = Tensor::view(const_cast<void*>(qs), DType::I32, {T}, dev);
        in.cell_pos = Tensor::view(const_cast<void*>(cp), DType::I32, {nc}, dev);
        in.cell_seq = Tensor::view(const_cast<void*>(cs), DType::I32, {nc}, dev);
        in.cell_begin = c.cell_begin;
        in.cell_end = nc;
        return in;
    };
    AttentionInputs cin = inputs(d.q.data(), d.k.data(), d.v.data(), d.q_pos.data(), d.q_seq.data(),
                                 d.cell_pos.data(), d.cell_seq.data(), Device::DEVICE_CPU);
    DeviceTensor qd(DType::F32, {D, c.n_head, T}), out(DType::F32, {D, c.n_head, T});
    DeviceTensor kd(c.kv, {D, c.n_head_kv, nc}), vd(c.kv, {D, c.n_head_kv, nc});
    DeviceTensor qpd(DType::I32, {T}), qsd(DType::I32, {T});
    DeviceTensor cpd(DType::I32, {nc}), csd(DType::I32, {nc});
    DeviceTensor maskd(DType::I8, {n_kb, n_qb, c.n_head});
    qd.upload(d.q.data());
    kd.upload(d.k.data());
    vd.upload(d.v.data());
    qpd.upload(d.q_pos.data());
    qsd.upload(d.q_seq.data());
    cpd.upload(d.cell_pos.data());
    csd.upload(d.cell_seq.data());
    AttentionInputs gin = inputs(qd.t().data, kd.t().data, vd.t().data, qpd.t().data, qsd.t().data,
                                 cpd.t().data, csd.t().data, Device::DEVICE_CUDA);

    // Selection.
    std::vector<int8_t> ref_mask(n_kb * n_qb * c.n_head, 7);
    test::cpu_reference().attention_block_select(
        cin, params, bs, total, Tensor::view(ref_mask.data(), DType::I8, {n_kb, n_qb, c.n_head}));
    maskd.poison();
    cuda::cuda_attention_block_select(ctx, gin, params, bs, total, maskd.t());
    std::vector<int8_t> mask = maskd.download<int8_t>();
    int64_t kept = 0, causal = 0, near = 0;
    for (int64_t h = 0; h < c.n_head; ++h) {
        for (int64_t mi = 0; mi < n_qb; ++mi) {
            std::vector<double> score;
            for (int64_t n = 0; n < n_kb; ++n) {
                const int64_t i = (h * n_qb + mi) * n_kb + n;
                causal += n <= m0 + mi;
                kept += mask[i] != 0;
                if (mask[i] == ref_mask[i]) continue;
                if (score.empty()) score = ref_scores(c, d, h, m0 + mi);
                const double best = *std::max_element(score.begin(), score.end());
                const double r = n < static_cast<int64_t>(score.size()) ? score[n] / best : -1;
                ++near;
                EXPECT_NEAR(r, c.alpha, 0.02 * c.alpha + 1e-6)
                    << c.name << ": h " << h << " m " << m0 + mi << " n " << n << " gpu "
                    << int(mask[i]) << " cpu " << int(ref_mask[i]);
            }
        }
    }
    std::printf("  %-34s select: kept %.3f of causal blocks, %lld near-threshold flips\n", c.name,
                static_cast<double>(kept) / static_cast<double>(causal),
                static_cast<long long>(near));

    // The key-means cache (ops.h KeyMeansCache): filled by a previous micro-batch of the same
    // prompt (positions up to pos_first - 1, its own queries), then reused for the blocks that
    // micro-batch saw whole; the mask must be the one computed from scratch, bit for bit. A
    // cache with more capacity than needed checks the per-head stride.
    if (c.kv == DType::F16 || c.kv == DType::F32) {
        const size_t cap_bytes = cuda::cuda_key_means_bytes(D, c.n_head_kv, n_kb + 3);
        DeviceTensor means(DType::I8, {static_cast<int64_t>(cap_bytes)});
        means.poison();
        KeyMeansCache cache{means.t().data, cap_bytes, 0};
        if (c.pos_first > 0) {
            const int64_t tp = std::min<int64_t>(c.pos_first, 300), p0 = c.pos_first - tp;
            const std::vector<float> qp = test::random_normal(D * c.n_head * tp, 5);
            std::vector<int32_t> pp(static_cast<size_t>(tp)), sp(static_cast<size_t>(tp), 0);
            for (int64_t t = 0; t < tp; ++t) pp[t] = static_cast<int32_t>(p0 + t);
            DeviceTensor qpd2(DType::F32, {D, c.n_head, tp}), ppd(DType::I32, {tp}),
                spd(DType::I32, {tp});
            qpd2.upload(qp.data());
            ppd.upload(pp.data());
            spd.upload(sp.data());
            AttentionInputs prev = gin;
            prev.q =
                Tensor::view(qpd2.t().data, DType::F32, {D, c.n_head, tp}, Device::DEVICE_CUDA);
            prev.q_pos = ppd.t();
            prev.q_seq = spd.t();
            prev.cell_end = c.cell_begin + c.pos_first;
            prev.key_means = &cache;
            const int64_t kb_prev = (c.pos_first + kB - 1) / kB;
            const int64_t qb_prev = (c.pos_first - 1) / kB - p0 / kB + 1;
            DeviceTensor mask_prev(DType::I8, {kb_prev, qb_prev, c.n_head});
            cuda::cuda_attention_block_select(ctx, prev, params, bs, total, mask_prev.t());
            cache.valid = c.pos_first / kB;
        }
        AttentionInputs cached = gin;
        cached.key_means = &cache;
        DeviceTensor mask2(DType::I8, {n_kb, n_qb, c.n_head});
        cuda::cuda_attention_block_select(ctx, cached, params, bs, total, mask2.t());
        EXPECT_EQ(mask2.download<int8_t>(), mask)
            << c.name << ": cached means, valid " << cache.valid;
    }

    // Attention under a mask both sides share.
    if (c.random_mask) {
        std::mt19937 rng(9);
        for (int64_t h = 0; h < c.n_head; ++h)
            for (int64_t mi = 0; mi < n_qb; ++mi)
                for (int64_t n = 0; n < n_kb; ++n)
                    mask[(h * n_qb + mi) * n_kb + n] = n == m0 + mi || rng() % 3 == 0;
        maskd.upload(mask.data());
    }
    Tensor cm = Tensor::view(mask.data(), DType::I8, {n_kb, n_qb, c.n_head});
    cin.block_mask = &cm;
    std::vector<float> ref(D * c.n_head * T);
    test::cpu_reference().attention(cin, params,
                                    Tensor::view(ref.data(), DType::F32, {D, c.n_head, T}));
    gin.block_mask = &maskd.t();
    gin.dense_tail = dense_tail_blocks(m0, (c.pos_first + T - 1) / kB, total, bs.last_full);
    out.poison();
    cuda::cuda_attention(ctx, gin, params, out.t());
    SIFT_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    const std::vector<float> got = out.download<float>();
    const bool tensor_cores = c.kv == DType::F16 && T >= 16;
    const double bound = tensor_cores ? 2e-3 : 1e-4;
    const double err = test::max_rel_error(got, ref);
    EXPECT_LE(err, bound) << c.name;
    std::printf("  %-34s attention max_rel_error %.3g (bound %.0e, %s, dense tail %d)\n", c.name,
                err, bound, tensor_cores ? "tensor cores" : "vec", gin.dense_tail);
}

Case make(const char* name, int64_t d, int64_t nh, int64_t nkv, int64_t cell_begin, int64_t n_pos,
          int64_t pos_first, int64_t t) {
    Case c;
    c.name = name;
    c.head_dim = d;
    c.n_head = nh;
    c.n_head_kv = nkv;
    c.cell_begin = cell_begin;
    c.n_pos = n_pos;
    c.pos_first = pos_first;
    c.n_tokens = t;
    return c;
}

template <typename F>
Case with(Case c, F f) {
    f(c);
    return c;
}

std::vector<Case> cases() {
    std::vector<Case> v;
    v.push_back(make("d128_g2_t128", 128, 4, 2, 0, 128, 0, 128));
    v.push_back(make("d128_g2_t1000_first", 128, 4, 2, 0, 1000, 0, 1000));
    v.push_back(make("d64_g1_t512_begin7", 64, 4, 4, 7, 1536, 1024, 512));
    v.push_back(with(make("d128_g4_t700_unaligned", 128, 8, 2, 3, 2000, 1300, 700),
                     [](Case& c) { c.n_future = 300; }));
    v.push_back(with(make("d64_g2_t4096_16k_a085", 64, 4, 2, 0, 16384, 12288, 4096),
                     [](Case& c) { c.alpha = 0.85f; }));
    v.push_back(make("d128_g2_t4096_16k", 128, 16, 8, 0, 16384, 12288, 4096));
    // The prompt's last blocks over 33K cells, the batch not block-aligned: 4 splits.
    v.push_back(make("d128_g2_t1000_33k_tail_split", 128, 4, 2, 0, 33050, 32050, 1000));
    v.push_back(with(make("d64_g2_t600_25k_tail_random", 64, 4, 2, 3, 25000, 24400, 600),
                     [](Case& c) { c.random_mask = true; }));
    v.push_back(with(make("d256_g2_t300", 256, 4, 2, 5, 1300, 1000, 300),
                     [](Case& c) { c.random_mask = true; }));
    v.push_back(with(make("d128_g4_t2000_random", 128, 8, 2, 0, 6000, 4000, 2000),
                     [](Case& c) { c.random_mask = true; }));
    v.push_back(with(make("d128_g2_t1000_alpha0", 128, 4, 2, 0, 3000, 2000, 1000),
                     [](Case& c) { c.alpha = 0; }));
    // The vec kernel: few tokens, or F32 K/V.
    v.push_back(with(make("vec_d128_g4_t8", 128, 8, 2, 0, 3000, 2992, 8),
                     [](Case& c) { c.random_mask = true; }));
    v.push_back(with(make("vec_f32_d64_g2_t200", 64, 4, 2, 2, 900, 700, 200), [](Case& c) {
        c.kv = DType::F32;
        c.random_mask = true;
    }));
    return v;
}

INSTANTIATE_TEST_SUITE_P(Cuda, BlockSparseParity, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace sift
