// A Q8_0 KV cache on the CPU. set_rows into Q8_0 rows must be the reference quantizer
// (tensor/quant.h quantize_row) bit for bit. Attention, the probe and the block selection over
// Q8_0 K and/or V must equal the same ops over an F32 cache holding the dequantized values: both
// paths turn each K/V row into the same F32 values before any arithmetic (d * q is exact in F32)
// and then run the same code, so the bound is zero -- the outputs must be identical.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "tests/backend/backend_test_util.h"

namespace sift {
namespace {

// F32 rows [n_rows][width] that exercise the quantizer's corners: a zero block, a block with one
// huge value, a block of tiny values (an F16 subnormal scale), values on rounding halves.
std::vector<float> tricky_rows(int64_t width, int64_t n_rows, uint64_t seed) {
    std::vector<float> x = test::random_floats(width * n_rows, seed, 2.0f);
    for (int64_t r = 0; r < n_rows; ++r) {
        float* row = x.data() + r * width;
        const int64_t b = (r % (width / 32)) * 32;
        switch (r % 4) {
            case 0:
                std::fill(row + b, row + b + 32, 0.0f);
                break;
            case 1:
                row[b + 5] = 3e4f;
                break;
            case 2:
                for (int j = 0; j < 32; ++j) row[b + j] *= 1e-6f;
                break;
            default:
                // amax 127 gives d = 1: these land exactly on halves and must round away from 0.
                row[b] = 127.0f;
                for (int j = 1; j < 32; ++j) row[b + j] = static_cast<float>(j % 9) - 4.5f;
        }
    }
    return x;
}

TEST(KvQ8, SetRowsIsTheReferenceQuantizer) {
    const int64_t width = 256, n = 9, n_rows = 20;
    const std::vector<float> src = tricky_rows(width, n, 5);
    std::vector<int32_t> idx = {3, 0, 19, 7, 8, 12, 5, 1, 11};
    const int64_t row_bytes = *dtype_row_bytes(DType::Q8_0, width);
    std::vector<uint8_t> dst(static_cast<size_t>(row_bytes * n_rows), 0xCD);
    cpu::CpuContext ctx(2, false, cpu::CpuIsa::ISA_SCALAR);
    cpu::cpu_set_rows(ctx, Tensor::view(const_cast<float*>(src.data()), DType::F32, {width, n}),
                      Tensor::view(idx.data(), DType::I32, {n}),
                      Tensor::view(dst.data(), DType::Q8_0, {width, n_rows}));
    std::vector<uint8_t> expect(dst.size(), 0xCD);
    for (int64_t t = 0; t < n; ++t)
        quantize_row(DType::Q8_0, src.data() + t * width, expect.data() + idx[t] * row_bytes,
                     width);
    ASSERT_EQ(dst, expect);  // written rows bit for bit, the others untouched
    // The corners quantized as the reference says: halves away from zero, a zero block.
    std::vector<float> back(static_cast<size_t>(width));
    dequantize_row(DType::Q8_0, dst.data() + idx[3] * row_bytes, back.data(), width);
    const int64_t b3 = (3 % (width / 32)) * 32;
    EXPECT_EQ(back[b3 + 1], -4.0f);  // 1 % 9 - 4.5 = -3.5 -> -4
    EXPECT_EQ(back[b3 + 8], 4.0f);   // 8 - 4.5 = 3.5 -> 4
    dequantize_row(DType::Q8_0, dst.data() + idx[0] * row_bytes, back.data(), width);
    for (int j = 0; j < 32; ++j) EXPECT_EQ(back[j], 0.0f);
}

// A cache [head_dim, n_kv, n_cells] of `type` from random values, with its dequantized values
// also stored as an F32 cache.
struct HostCache {
    DType type;
    int64_t hd, n_kv, n_cells;
    std::vector<uint8_t> bytes;
    std::vector<float> values;  // F32 cache of the same shape

    HostCache(DType t, int64_t d, int64_t kv, int64_t cells, uint64_t seed)
        : type(t), hd(d), n_kv(kv), n_cells(cells) {
        const int64_t row = *dtype_row_bytes(t, d);
        bytes.resize(static_cast<size_t>(row * kv * cells));
        values.resize(static_cast<size_t>(d * kv * cells));
        const std::vector<float> src = test::random_floats(d * kv * cells, seed);
        for (int64_t r = 0; r < kv * cells; ++r) {
            quantize_row(t, src.data() + r * d, bytes.data() + r * row, d);
            dequantize_row(t, bytes.data() + r * row, values.data() + r * d, d);
        }
    }
    Tensor tensor() { return Tensor::view(bytes.data(), type, {hd, n_kv, n_cells}); }
    Tensor f32() { return Tensor::view(values.data(), DType::F32, {hd, n_kv, n_cells}); }
};

struct AttnCase {
    std::string name;
    int64_t hd = 64, n_head = 8, n_kv = 2, n_tokens = 1, n_cells = 700, cell_begin = 0;
    DType k = DType::Q8_0, v = DType::Q8_0;
    bool mask = false;
    int32_t window = 0;
};

class KvQ8Attention : public ::testing::TestWithParam<std::pair<AttnCase, cpu::CpuIsa>> {};

// One sequence; the batch's tokens are the last cells' positions (decode, verify) or, for a
// prefill, the cells themselves (causal).
TEST_P(KvQ8Attention, EqualsAttentionOverTheDequantizedCache) {
    const AttnCase& c = GetParam().first;
    HostCache k(c.k, c.hd, c.n_kv, c.n_cells, 1), v(c.v, c.hd, c.n_kv, c.n_cells, 2);
    std::vector<int32_t> cpos(static_cast<size_t>(c.n_cells)), cseq(cpos.size(), 0);
    for (int64_t i = 0; i < c.n_cells; ++i) cpos[static_cast<size_t>(i)] = static_cast<int32_t>(i);
    cseq[10] = -1;  // an empty cell
    std::vector<int32_t> qpos(static_cast<size_t>(c.n_tokens)), qseq(qpos.size(), 0);
    for (int64_t t = 0; t < c.n_tokens; ++t)
        qpos[static_cast<size_t>(t)] = static_cast<int32_t>(c.n_cells - c.n_tokens + t);
    std::vector<float> q = test::random_floats(c.hd * c.n_head * c.n_tokens, 3);
    const int64_t n_range = c.n_cells - c.cell_begin;
    std::vector<float> mask(static_cast<size_t>(n_range * c.n_tokens), 0.0f);
    for (size_t i = 0; i < mask.size(); i += 7) mask[i] = -INFINITY;
    Tensor mask_t = Tensor::view(mask.data(), DType::F32, {n_range, c.n_tokens});

    AttentionInputs in;
    in.q = Tensor::view(q.data(), DType::F32, {c.hd, c.n_head, c.n_tokens});
    in.q_pos = Tensor::view(qpos.data(), DType::I32, {c.n_tokens});
    in.q_seq = Tensor::view(qseq.data(), DType::I32, {c.n_tokens});
    in.cell_pos = Tensor::view(cpos.data(), DType::I32, {c.n_cells});
    in.cell_seq = Tensor::view(cseq.data(), DType::I32, {c.n_cells});
    in.cell_begin = c.cell_begin;
    in.cell_end = c.n_cells;
    in.mask = c.mask ? &mask_t : nullptr;
    AttentionParams params;
    params.scale = 1.0f / std::sqrt(static_cast<float>(c.hd));
    params.window = c.window;

    cpu::CpuContext ctx(2, false, GetParam().second);
    auto run = [&](Tensor kt, Tensor vt) {
        AttentionInputs x = in;
        x.k = kt;
        x.v = vt;
        std::vector<float> out(q.size(), 777.0f);
        cpu::cpu_attention(ctx, x, params,
                           Tensor::view(out.data(), DType::F32, {c.hd, c.n_head, c.n_tokens}));
        return out;
    };
    const std::vector<float> got = run(k.tensor(), v.tensor());
    const std::vector<float> want = run(k.f32(), v.f32());
    float max_abs = 0;
    for (float x : want) max_abs = std::max(max_abs, std::fabs(x));
    EXPECT_GT(max_abs, 0.01f) << "the case must attend to something";
    ASSERT_EQ(got, want);
}

std::vector<std::pair<AttnCase, cpu::CpuIsa>> attn_params() {
    const DType q8 = DType::Q8_0;
    const std::vector<AttnCase> cases = {
        {.name = "decode_d64_kv2_split"},
        {.name = "verify_t4_d128_h12_kv4", .hd = 128, .n_head = 12, .n_kv = 4, .n_tokens = 4},
        {.name = "prefill_t96_causal_mask", .n_tokens = 96, .n_cells = 96, .mask = true},
        {.name = "decode_window_range",
         .n_tokens = 2,
         .n_cells = 300,
         .cell_begin = 37,
         .window = 100},
        {.name = "k_q8_v_f16", .n_tokens = 3, .k = q8, .v = DType::F16},
        {.name = "k_f32_v_q8_d32", .hd = 32, .n_head = 4, .n_kv = 4, .k = DType::F32, .v = q8},
    };
    std::vector<std::pair<AttnCase, cpu::CpuIsa>> out;
    for (const AttnCase& c : cases)
        for (cpu::CpuIsa isa : test::available_isas()) out.push_back({c, isa});
    return out;
}

INSTANTIATE_TEST_SUITE_P(
    Cpu, KvQ8Attention, ::testing::ValuesIn(attn_params()),
    [](const ::testing::TestParamInfo<std::pair<AttnCase, cpu::CpuIsa>>& info) {
        return info.param.first.name + "_" + test::isa_tag(info.param.second);
    });

// The probe (with and without unrope) and the block selection read K only.
TEST(KvQ8, ProbeAndBlockSelectEqualTheDequantizedCache) {
    const int64_t hd = 64, n_head = 4, n_kv = 2, n_cells = 300, block = 32;
    HostCache k(DType::Q8_0, hd, n_kv, n_cells, 7);
    std::vector<int32_t> cpos(static_cast<size_t>(n_cells)), cseq(cpos.size(), 0);
    for (int64_t i = 0; i < n_cells; ++i) cpos[static_cast<size_t>(i)] = static_cast<int32_t>(i);
    cpu::CpuContext ctx(2, false, cpu::CpuIsa::ISA_SCALAR);
    AttentionParams params;
    params.scale = 1.0f / std::sqrt(static_cast<float>(hd));

    // Probe: 5 queries at the last positions.
    const int64_t n_q = 5;
    std::vector<float> q = test::random_floats(hd * n_head * n_q, 8);
    std::vector<int32_t> qpos(n_q), qseq(n_q, 0);
    for (int64_t t = 0; t < n_q; ++t) qpos[static_cast<size_t>(t)] = 295 + static_cast<int32_t>(t);
    AttentionInputs in;
    in.q = Tensor::view(q.data(), DType::F32, {hd, n_head, n_q});
    in.q_pos = Tensor::view(qpos.data(), DType::I32, {n_q});
    in.q_seq = Tensor::view(qseq.data(), DType::I32, {n_q});
    in.cell_pos = Tensor::view(cpos.data(), DType::I32, {n_cells});
    in.cell_seq = Tensor::view(cseq.data(), DType::I32, {n_cells});
    in.cell_begin = 3;
    in.cell_end = n_cells;
    RopeParams rope;
    rope.n_rot = hd;
    rope.neox = true;
    for (const RopeParams* unrope :
         {static_cast<const RopeParams*>(nullptr), static_cast<const RopeParams*>(&rope)}) {
        auto probe = [&](Tensor kt) {
            AttentionInputs x = in;
            x.k = kt;
            std::vector<float> probs(static_cast<size_t>((n_cells - 3) * n_q), 0.0f);
            cpu::cpu_attention_probe(ctx, x, params, unrope,
                                     Tensor::view(probs.data(), DType::F32, {n_cells - 3, n_q}));
            return probs;
        };
        ASSERT_EQ(probe(k.tensor()), probe(k.f32())) << (unrope ? "unrope" : "plain");
    }

    // Block selection: a prefill of the whole cache (positions 0..299), blocks of 32.
    std::vector<float> qp = test::random_floats(hd * n_head * n_cells, 9);
    std::vector<int32_t> ppos(cpos), pseq(cseq);
    in.q = Tensor::view(qp.data(), DType::F32, {hd, n_head, n_cells});
    in.q_pos = Tensor::view(ppos.data(), DType::I32, {n_cells});
    in.q_seq = Tensor::view(pseq.data(), DType::I32, {n_cells});
    in.cell_begin = 0;
    BlockSparseParams bs;
    bs.block = block;
    bs.alpha = 1.0f;  // the best block and the forced ones: a selection that drops blocks
    bs.sink = 1;
    bs.window = 1;
    bs.last_full = 0;
    const int64_t n_b = (n_cells + block - 1) / block;
    auto select = [&](Tensor kt) {
        AttentionInputs x = in;
        x.k = kt;
        std::vector<int8_t> m(static_cast<size_t>(n_b * n_b * n_head), 7);
        cpu::cpu_attention_block_select(ctx, x, params, bs, n_b,
                                        Tensor::view(m.data(), DType::I8, {n_b, n_b, n_head}));
        return m;
    };
    const std::vector<int8_t> got = select(k.tensor());
    ASSERT_EQ(got, select(k.f32()));
    int64_t kept = 0;
    for (int8_t b : got) kept += b;
    EXPECT_LT(kept, n_head * n_b * (n_b + 1) / 2) << "the selection must drop some blocks";
}

}  // namespace
}  // namespace sift
