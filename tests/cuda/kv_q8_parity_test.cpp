// A Q8_0 KV cache on the GPU (cuda_kv_quant.cu, the Q8_0 path of cuda_attention_vec.cu).
//
// set_rows: the CUDA quantizer must write the CPU reference's blocks bit for bit (the same IEEE
//   F32 steps: amax / 127, 1 / d, roundf(x * id), the scale rounded to F16 to nearest even).
// Attention against the CPU with the same Q8_0 cache (which dequantizes each row to F32), error
//   bound max |got - ref| / max |ref|:
//   decode on the vec kernel reading Q8_0 directly: it unpacks the same dequantized values
//     d * q (exact in F32), then F32 throughout; only the order of the sums differs: the F32 vec
//     kernel's 1e-4. These cases also check, on a fresh context, that nothing was
//     converted (no scratch grown): decode must stay capturable in a CUDA graph.
//   converted to F16 (prefill on tensor cores; decode with F32 beside Q8_0):
//     each dequantized value is rounded to F16 once more (2^-11 relative), which moves scores by
//     as much as the F16 rounding of Q the tensor-core bound (2e-3) already covers: 4e-3 for
//     tensor cores, 2e-3 for the vec kernel over F16.
// Prefill, the probe, the block selection and block-sparse attention on a Q8_0 cache against
//   the same CUDA op on an F16 cache holding the F16 of the dequantized values (the conversion
//   the Q8_0 path performs): the same kernels on the same values, so equal (1e-6 guards only
//   against a reduction order).
// A model decoding through CUDA graphs on a Q8_0 cache against the same model running its ops
//   directly: the graphs bake in no conversion scratch, so they replay bit for bit (1e-5).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_ops.h"
#include "model/model.h"
#include "model/synthetic_writer.h"
#include "tensor/quant.h"
#include "tests/cuda/cuda_test_backend.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/test_temp.h"

namespace sift {
namespace {

using test::DeviceTensor;

// A cache [D, n_kv, n_cells] of `type` from random values, and the F16 bits of its (dequantized)
// values: what the Q8_0 path's conversion must produce.
struct HostCache {
    DType type;
    int64_t D, n_kv, n_cells;
    std::vector<uint8_t> bytes;
    std::vector<uint16_t> f16;

    HostCache(DType t, int64_t d, int64_t kv, int64_t cells, uint64_t seed, float stddev = 1.0f)
        : type(t), D(d), n_kv(kv), n_cells(cells) {
        const int64_t row = *dtype_row_bytes(t, d), rows = kv * cells;
        bytes.resize(static_cast<size_t>(row * rows));
        f16.resize(static_cast<size_t>(d * rows));
        const std::vector<float> src =
            test::random_normal(static_cast<size_t>(d * rows), seed, stddev);
        std::vector<float> values(static_cast<size_t>(d));
        for (int64_t r = 0; r < rows; ++r) {
            quantize_row(t, src.data() + r * d, bytes.data() + r * row, d);
            dequantize_row(t, bytes.data() + r * row, values.data(), d);
            for (int64_t i = 0; i < d; ++i)
                f16[static_cast<size_t>(r * d + i)] = fp32_to_fp16(values[static_cast<size_t>(i)]);
        }
    }
    Tensor host() { return Tensor::view(bytes.data(), type, {D, n_kv, n_cells}); }
};

// Device copies of a HostCache: as stored, and as the F16 of its values.
struct DeviceCache {
    DeviceTensor stored, f16;
    explicit DeviceCache(const HostCache& h)
        : stored(h.type, {h.D, h.n_kv, h.n_cells}), f16(DType::F16, {h.D, h.n_kv, h.n_cells}) {
        stored.upload(h.bytes.data());
        f16.upload(h.f16.data());
    }
};

template <typename T>
std::unique_ptr<DeviceTensor> device_copy(DType type, std::initializer_list<int64_t> ne,
                                          const std::vector<T>& host) {
    auto d = std::make_unique<DeviceTensor>(type, ne);
    d->upload(host.data());
    return d;
}

// Device copies of the query and cell inputs of an op over cells [begin, n_cells), and the
// AttentionInputs over them (k and v are the caller's).
struct DeviceInputs {
    std::unique_ptr<DeviceTensor> q, q_pos, q_seq, cell_pos, cell_seq;
    AttentionInputs in;
};
DeviceInputs device_inputs(const std::vector<float>& q, int64_t D, int64_t n_head,
                           const std::vector<int32_t>& qpos, const std::vector<int32_t>& qseq,
                           const std::vector<int32_t>& cpos, const std::vector<int32_t>& cseq,
                           int64_t begin) {
    const auto n_q = static_cast<int64_t>(qpos.size()), n_cells = static_cast<int64_t>(cpos.size());
    DeviceInputs d;
    d.q = device_copy(DType::F32, {D, n_head, n_q}, q);
    d.q_pos = device_copy(DType::I32, {n_q}, qpos);
    d.q_seq = device_copy(DType::I32, {n_q}, qseq);
    d.cell_pos = device_copy(DType::I32, {n_cells}, cpos);
    d.cell_seq = device_copy(DType::I32, {n_cells}, cseq);
    d.in.q = d.q->t();
    d.in.q_pos = d.q_pos->t();
    d.in.q_seq = d.q_seq->t();
    d.in.cell_pos = d.cell_pos->t();
    d.in.cell_seq = d.cell_seq->t();
    d.in.cell_begin = begin;
    d.in.cell_end = n_cells;
    return d;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) return INFINITY;
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
        worst = std::isnan(d) ? INFINITY : std::max(worst, d);
    }
    return worst;
}

TEST(KvQ8Parity, SetRowsBitExact) {
    SIFT_REQUIRE_CUDA();
    for (const int64_t width : {int64_t{1024}, int64_t{96}}) {
        const int64_t T = 37, n_rows = 100;
        std::vector<float> src = test::random_normal(static_cast<size_t>(width * T), 5, 2.0f);
        for (int64_t t = 0; t < T; ++t) {  // a zero block, a huge value, tiny values, halves
            float* row = src.data() + t * width;
            const int64_t b = (t % (width / 32)) * 32;
            if (t % 4 == 0) std::fill(row + b, row + b + 32, 0.0f);
            if (t % 4 == 1) row[b + 3] = -4e4f;
            if (t % 4 == 2)
                for (int j = 0; j < 32; ++j) row[b + j] *= 1e-6f;
            if (t % 4 == 3) {
                row[b] = 127.0f;
                for (int j = 1; j < 32; ++j) row[b + j] = static_cast<float>(j % 9) - 4.5f;
            }
        }
        std::vector<int32_t> idx(static_cast<size_t>(n_rows));
        for (int64_t i = 0; i < n_rows; ++i) idx[static_cast<size_t>(i)] = static_cast<int32_t>(i);
        std::shuffle(idx.begin(), idx.end(), std::mt19937(9));
        idx.resize(static_cast<size_t>(T));
        const int64_t row_bytes = *dtype_row_bytes(DType::Q8_0, width);
        std::vector<uint8_t> ref(static_cast<size_t>(row_bytes * n_rows), 0xCD);
        test::cpu_reference().set_rows(Tensor::view(src.data(), DType::F32, {width, T}),
                                       Tensor::view(idx.data(), DType::I32, {T}),
                                       Tensor::view(ref.data(), DType::Q8_0, {width, n_rows}));
        DeviceTensor dsrc(DType::F32, {width, T}), didx(DType::I32, {T}),
            ddst(DType::Q8_0, {width, n_rows});
        dsrc.upload(src.data());
        didx.upload(idx.data());
        ddst.upload(std::vector<uint8_t>(ref.size(), 0xCD).data());
        cuda::cuda_set_rows(ctx, dsrc.t(), didx.t(), ddst.t());
        const std::vector<uint8_t> got = ddst.download<uint8_t>();
        int64_t differ = 0;
        for (size_t i = 0; i < ref.size(); ++i) differ += got[i] != ref[i];
        EXPECT_EQ(differ, 0) << "width " << width << ": bytes differing from the reference";
    }
}

struct AttnCase {
    const char* name;
    int64_t D = 128, n_head = 32, n_kv = 8, T = 1, n_cells = 4099;
    DType k = DType::Q8_0, v = DType::Q8_0;
    bool prefill = false;  // T == n_cells, causal; else the last T positions of the cells
    bool mask = false;
};

std::ostream& operator<<(std::ostream& os, const AttnCase& c) {
    return os << c.name;
}

bool reads_q8_directly(const AttnCase& c) {
    const auto f16_or_q8 = [](DType t) { return t == DType::F16 || t == DType::Q8_0; };
    return c.T < 16 && f16_or_q8(c.k) && f16_or_q8(c.v);
}

class KvQ8Attention : public ::testing::TestWithParam<AttnCase> {};

TEST_P(KvQ8Attention, MatchesCpuOnTheSameCache) {
    SIFT_REQUIRE_CUDA();
    const AttnCase& c = GetParam();
    const bool direct = reads_q8_directly(c), tensor_cores = c.T >= 16;
    const double bound = direct ? 1e-4 : tensor_cores ? 4e-3 : 2e-3;
    HostCache k(c.k, c.D, c.n_kv, c.n_cells, 1), v(c.v, c.D, c.n_kv, c.n_cells, 2);
    std::vector<int32_t> cpos(static_cast<size_t>(c.n_cells)), cseq(cpos.size(), 0);
    for (int64_t i = 0; i < c.n_cells; ++i) {
        cpos[static_cast<size_t>(i)] = static_cast<int32_t>(i);
        if (!c.prefill && i % 97 == 5) cseq[static_cast<size_t>(i)] = -1;  // empty cells
    }
    std::vector<int32_t> qpos(static_cast<size_t>(c.T)), qseq(qpos.size(), 0);
    for (int64_t t = 0; t < c.T; ++t)
        qpos[static_cast<size_t>(t)] = static_cast<int32_t>(c.n_cells - c.T + t);
    const std::vector<float> q = test::random_normal(static_cast<size_t>(c.D * c.n_head * c.T), 3);
    std::vector<float> mask(static_cast<size_t>(c.n_cells * c.T), 0.0f);
    for (size_t i = 0; i < mask.size(); i += 5) mask[i] = -INFINITY;
    AttentionParams params;
    params.scale = 1.0f / std::sqrt(static_cast<float>(c.D));

    AttentionInputs hin;
    hin.q = Tensor::view(const_cast<float*>(q.data()), DType::F32, {c.D, c.n_head, c.T});
    hin.k = k.host();
    hin.v = v.host();
    hin.q_pos = Tensor::view(qpos.data(), DType::I32, {c.T});
    hin.q_seq = Tensor::view(qseq.data(), DType::I32, {c.T});
    hin.cell_pos = Tensor::view(cpos.data(), DType::I32, {c.n_cells});
    hin.cell_seq = Tensor::view(cseq.data(), DType::I32, {c.n_cells});
    hin.cell_end = c.n_cells;
    Tensor hmask = Tensor::view(mask.data(), DType::F32, {c.n_cells, c.T});
    if (c.mask) hin.mask = &hmask;
    std::vector<float> ref(q.size());
    test::cpu_reference().attention(hin, params,
                                    Tensor::view(ref.data(), DType::F32, {c.D, c.n_head, c.T}));

    DeviceCache dk(k), dv(v);
    DeviceInputs d = device_inputs(q, c.D, c.n_head, qpos, qseq, cpos, cseq, 0);
    auto dmask = device_copy(DType::F32, {c.n_cells, c.T}, mask);
    DeviceTensor out(DType::F32, {c.D, c.n_head, c.T});
    AttentionInputs din = d.in;
    din.mask = c.mask ? &dmask->t() : nullptr;
    auto run = [&](cuda::CudaContext& on, const Tensor& kt, const Tensor& vt) {
        AttentionInputs x = din;
        x.k = kt;
        x.v = vt;
        out.poison();
        cuda::cuda_attention(on, x, params, out.t());
        SIFT_CUDA_CHECK(cudaStreamSynchronize(on.stream));
        return out.download<float>();
    };

    // A fresh context: its conversion scratch shows whether the Q8_0 cache was converted.
    Result<cuda::CudaContext*> fresh = cuda::cuda_context_create(ctx.device);
    ASSERT_TRUE(fresh.ok()) << fresh.message();
    const std::vector<float> got = run(**fresh, dk.stored.t(), dv.stored.t());
    const size_t converted = (*fresh)->scratch_kv_k.capacity() + (*fresh)->scratch_kv_v.capacity();
    cuda::cuda_context_destroy(*fresh);
    if (direct) {
        EXPECT_EQ(converted, 0u) << "decode must read Q8_0 directly (nothing to grow in a graph)";
    } else {
        EXPECT_GT(converted, 0u) << "this shape runs on an F16 copy";
    }
    // Within what a model's context check counts for it (Backend::attention_scratch_bytes).
    EXPECT_LE(converted, cuda::cuda_attention_scratch_bytes(c.D * c.n_kv, c.n_cells, c.k, c.v));
    const double err = test::max_rel_error(got, ref);
    EXPECT_LE(err, bound) << c.name;
    std::printf("  %-34s max_rel_error %.3g (bound %.0e, %s)\n", c.name, err, bound,
                direct         ? "vec reads q8_0"
                : tensor_cores ? "f16 copy, tensor cores"
                               : "f16 copy, vec");
    if (!direct) {
        // The converted path is the F16 kernel on the F16 of the dequantized values.
        const Tensor kf = c.k == DType::Q8_0 ? dk.f16.t() : dk.stored.t();
        const Tensor vf = c.v == DType::Q8_0 ? dv.f16.t() : dv.stored.t();
        double max_ref = 0;
        for (float x : ref) max_ref = std::max(max_ref, static_cast<double>(std::fabs(x)));
        EXPECT_LE(max_abs_diff(got, run(ctx, kf, vf)), 1e-6 * max_ref);
    }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, KvQ8Attention,
    ::testing::Values(
        // Decode and verify on long caches (split-K), GQA 4 and 8, head_dim 64/128/256.
        AttnCase{"decode_t1_d128_h32_kv8"}, AttnCase{"verify_t4_d128_h32_kv8", 128, 32, 8, 4},
        AttnCase{"verify_t2_d64_h16_kv2", 64, 16, 2, 2},
        AttnCase{"verify_t3_d256_h8_kv1_mask", 256, 8, 1, 3, 4099, DType::Q8_0, DType::Q8_0, false,
                 true},
        AttnCase{"decode_t1_k_q8_v_f16", 128, 16, 4, 1, 4099, DType::Q8_0, DType::F16},
        AttnCase{"decode_t2_k_f16_v_q8", 128, 16, 4, 2, 4099, DType::F16, DType::Q8_0},
        // head_dim 96: rows 2 bytes past 16-byte boundaries too.
        AttnCase{"decode_t1_d96", 96, 8, 2, 1, 4099},
        // F32 beside Q8_0 is not read directly: converted.
        AttnCase{"decode_t1_k_q8_v_f32", 64, 8, 2, 1, 4099, DType::Q8_0, DType::F32},
        // Causal prefill: an F16 copy and the tensor cores.
        AttnCase{"prefill_t300_d128_h8_kv2", 128, 8, 2, 300, 300, DType::Q8_0, DType::Q8_0, true},
        AttnCase{"prefill_t300_d64_k_q8_v_f16_mask", 64, 8, 8, 300, 300, DType::Q8_0, DType::F16,
                 true, true}),
    [](const auto& info) { return std::string(info.param.name); });

// The probe reads K only; with and without the NoPE un-rotation (cell positions rebased).
TEST(KvQ8Parity, ProbeEqualsF16OfTheDequantizedKeys) {
    SIFT_REQUIRE_CUDA();
    const int64_t D = 128, n_head = 16, n_kv = 8, n_q = 8, n_cells = 3000, begin = 5;
    HostCache k(DType::Q8_0, D, n_kv, n_cells, 4);
    std::vector<int32_t> cpos(static_cast<size_t>(n_cells)), cseq(cpos.size(), 0);
    for (int64_t i = 0; i < n_cells; ++i)
        cpos[static_cast<size_t>(i)] = static_cast<int32_t>(2 * i);
    std::vector<int32_t> qpos(static_cast<size_t>(n_q)), qseq(qpos.size(), 0);
    for (int64_t t = 0; t < n_q; ++t)
        qpos[static_cast<size_t>(t)] = cpos.back() - 40 + static_cast<int32_t>(t);
    const std::vector<float> q = test::random_normal(static_cast<size_t>(D * n_head * n_q), 5);
    DeviceCache dk(k);
    DeviceInputs d = device_inputs(q, D, n_head, qpos, qseq, cpos, cseq, begin);
    AttentionInputs& in = d.in;
    AttentionParams params;
    params.scale = 1.0f / std::sqrt(static_cast<float>(D));
    RopeParams rope;
    rope.n_rot = static_cast<int32_t>(D);
    rope.neox = true;
    rope.freq_base = 1e6f;
    const std::vector<float> init(static_cast<size_t>((n_cells - begin) * n_q), 0.0f);
    DeviceTensor probs(DType::F32, {n_cells - begin, n_q});
    for (const RopeParams* unrope :
         {static_cast<const RopeParams*>(nullptr), static_cast<const RopeParams*>(&rope)}) {
        auto probe = [&](const Tensor& kt) {
            AttentionInputs x = in;
            x.k = kt;
            probs.upload(init.data());
            cuda::cuda_attention_probe(ctx, x, params, unrope, probs.t());
            return probs.download<float>();
        };
        const std::vector<float> got = probe(dk.stored.t()), want = probe(dk.f16.t());
        EXPECT_LE(max_abs_diff(got, want), 1e-6) << (unrope ? "unrope" : "plain");
        EXPECT_GT(*std::max_element(got.begin(), got.end()), 10.0f / (n_cells - begin));
    }
}

// Block selection and block-sparse attention on a prefill whose cells start at 64.
TEST(KvQ8Parity, BlockSparseEqualsF16OfTheDequantizedCache) {
    SIFT_REQUIRE_CUDA();
    const int64_t D = 128, n_head = 8, n_kv = 2, T = 1024, begin = 64, n_cells = begin + T;
    const int64_t n_b = T / 128;
    HostCache k(DType::Q8_0, D, n_kv, n_cells, 6), v(DType::Q8_0, D, n_kv, n_cells, 7);
    std::vector<int32_t> cpos(static_cast<size_t>(n_cells), 0), cseq(cpos.size(), -1);
    for (int64_t i = begin; i < n_cells; ++i) {
        cpos[static_cast<size_t>(i)] = static_cast<int32_t>(i - begin);
        cseq[static_cast<size_t>(i)] = 0;
    }
    std::vector<int32_t> qpos(static_cast<size_t>(T)), qseq(qpos.size(), 0);
    for (int64_t t = 0; t < T; ++t) qpos[static_cast<size_t>(t)] = static_cast<int32_t>(t);
    const std::vector<float> q = test::random_normal(static_cast<size_t>(D * n_head * T), 8);
    DeviceCache dk(k), dv(v);
    DeviceInputs d = device_inputs(q, D, n_head, qpos, qseq, cpos, cseq, begin);
    AttentionInputs& in = d.in;
    AttentionParams params;
    params.scale = 1.0f / std::sqrt(static_cast<float>(D));
    BlockSparseParams bs;
    bs.alpha = 1.0f;  // the best block and the forced ones: a selection that drops blocks
    bs.sink = 1;
    bs.window = 1;
    bs.last_full = 0;
    DeviceTensor mask(DType::I8, {n_b, n_b, n_head});
    auto select = [&](const Tensor& kt) {
        AttentionInputs x = in;
        x.k = kt;
        mask.poison();
        cuda::cuda_attention_block_select(ctx, x, params, bs, n_b, mask.t());
        return mask.download<int8_t>();
    };
    const std::vector<int8_t> selected = select(dk.stored.t());
    ASSERT_EQ(selected, select(dk.f16.t()));
    int64_t kept = 0;
    for (int8_t b : selected) kept += b;
    std::printf("  block-sparse: %lld of %lld causal blocks kept\n", static_cast<long long>(kept),
                static_cast<long long>(n_head * n_b * (n_b + 1) / 2));

    DeviceTensor out(DType::F32, {D, n_head, T});
    auto attend = [&](const Tensor& kt, const Tensor& vt) {
        AttentionInputs x = in;
        x.k = kt;
        x.v = vt;
        x.block_mask = &mask.t();
        x.mask_block = 128;
        out.poison();
        cuda::cuda_attention(ctx, x, params, out.t());
        return out.download<float>();
    };
    const std::vector<float> got = attend(dk.stored.t(), dv.stored.t());
    EXPECT_LE(max_abs_diff(got, attend(dk.f16.t(), dv.f16.t())), 1e-6);
}

// Greedy decode through graphs on a Q8_0 cache equals the same model running its ops directly.
TEST(KvQ8Parity, GraphDecodeMatchesDirectOps) {
    std::string why;
    Backend* gpu = test::cuda_test_backend(&why);
    if (gpu == nullptr) GTEST_SKIP() << "no CUDA GPU: " << why;
    ModelShape shape = *model_preset_find("qwen3", "0.6b");
    shape.n_layer = 2;
    const std::string path = test_temp_path("q8kv.gguf");
    SyntheticWriteOptions w;
    w.weight_std = 0.05f;
    ASSERT_TRUE(synthetic_write(shape, *file_type_find("q4_k_m"), path, w).ok());
    auto load = [&](bool graphs) {
        ModelOptions o;
        o.n_ctx = 1000;
        o.cuda_graphs = graphs;
        o.kv_type_k = o.kv_type_v = DType::Q8_0;
        Result<std::unique_ptr<Model>> m = Model::load(path, *gpu, o);
        EXPECT_TRUE(m.ok()) << m.message();
        return m.ok() ? std::move(*m) : nullptr;
    };
    std::unique_ptr<Model> direct = load(false), graphed = load(true);
    std::remove(path.c_str());
    ASSERT_TRUE(direct && graphed && graphed->graphs_enabled());
    const size_t n_vocab = static_cast<size_t>(direct->hparams().n_vocab);
    constexpr int kPrompt = 40, kSteps = 300;  // cells 41..340: buckets 256 and 512
    std::mt19937 rng(11);
    Batch prompt;
    for (int i = 0; i < kPrompt; ++i)
        prompt.add(static_cast<int32_t>(rng() % n_vocab), i, 0, i + 1 == kPrompt);
    Result<std::vector<float>> a = direct->decode(prompt), b = graphed->decode(prompt);
    ASSERT_TRUE(a.ok() && b.ok());
    double worst = 0;
    for (int step = 0; step < kSteps; ++step) {
        double scale = 0, err = 0;
        for (size_t i = 0; i < n_vocab; ++i) {
            scale = std::max(scale, static_cast<double>(std::fabs((*a)[i])));
            err = std::max(err, static_cast<double>(std::fabs((*a)[i] - (*b)[i])));
        }
        worst = std::max(worst, std::isfinite(err) ? err / scale : INFINITY);
        ASSERT_LE(err, 1e-5 * scale) << "step " << step;
        const auto next = static_cast<int32_t>(std::max_element(a->begin(), a->end()) - a->begin());
        Batch one;
        one.add(next, kPrompt + step, 0, true);
        a = direct->decode(one);
        b = graphed->decode(one);
        ASSERT_TRUE(a.ok() && b.ok());
    }
    const GraphStats s = graphed->graph_stats();
    std::printf(
        "  q8_0 cache: %d steps, max rel diff %.3g, captures %lld, launches %lld, "
        "fallbacks %lld\n",
        kSteps, worst, static_cast<long long>(s.captures), static_cast<long long>(s.launches),
        static_cast<long long>(s.fallbacks));
    EXPECT_EQ(s.launches + s.fallbacks, kSteps);
    EXPECT_LE(s.fallbacks, 2);  // only where a capture saw the split-K scratch grow
}

}  // namespace
}  // namespace sift
