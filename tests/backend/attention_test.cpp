// CPU attention against a plain double-precision softmax(q k / sqrt(d)) v written from the
// visibility rule in ops.h, over GQA ratios, windows, masks, softcap, several sequences in one
// batch, gapped positions, empty cells, strided F16/F32 caches and both ISAs.
//
// Bound: the kernel's F32 score for (t, c) is off by at most ds = hd u sum_d |q_d k_d| scale
// (dot product summation; the pre-scaling of q adds one more u); exp adds a relative 2e-7 (AVX2
// polynomial) or 1 ulp (libm). Each weight p_c is then off by a relative 2 ds + 4e-7, the sum
// over n cells by n u more, and the output -- a convex combination of v -- by at most
// (4 ds + 1e-6 + 2 n u) max|v|, plus n u max|v| for the F32 accumulation of p v.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "tests/backend/backend_test_util.h"

namespace sift {
namespace {

using test::kF32Eps;

struct AttnCase {
    std::string name;
    int64_t head_dim = 64, n_head = 4, n_head_kv = 2;
    int64_t n_tokens = 5, n_cells = 5;
    int64_t cell_begin = 0, cell_end = -1;  // -1: n_cells
    int32_t window = 0;
    float softcap = 0;
    bool mask = false;
    bool f16 = true;
    bool strided = false;  // K/V heads and cells with padding between them
    int n_seq = 1;         // tokens and cells alternate between sequences
    int pos_gap = 1;       // positions advance by this (kept spans keep their positions)
    int empty_every = 0;   // every nth cell is empty (seq -1)
    bool decode = false;   // tokens are the last n_tokens cells' positions (past fully cached)
    float q_scale = 1;     // larger scores for softcap
};

std::vector<AttnCase> attn_cases() {
    std::vector<AttnCase> cases;
    cases.push_back({.name = "prefill_t5_h4_kv2"});
    cases.push_back({.name = "prefill_t200_h6_kv2_d128",
                     .head_dim = 128,
                     .n_head = 6,
                     .n_tokens = 200,
                     .n_cells = 200});
    cases.push_back({.name = "decode_c300_h8_kv1_f32",
                     .n_head = 8,
                     .n_head_kv = 1,
                     .n_tokens = 1,
                     .n_cells = 300,
                     .f16 = false,
                     .decode = true});
    cases.push_back({.name = "decode_c1000_h4_kv1_splits",
                     .n_head_kv = 1,
                     .n_tokens = 1,
                     .n_cells = 1000,
                     .decode = true});
    cases.push_back({.name = "verify_t7_c150_h12_kv2_d80",
                     .head_dim = 80,
                     .n_head = 12,
                     .n_tokens = 7,
                     .n_cells = 150,
                     .decode = true});
    cases.push_back({.name = "window7_t90", .n_tokens = 90, .n_cells = 90, .window = 7});
    cases.push_back({.name = "window64_decode_c500",
                     .n_tokens = 1,
                     .n_cells = 500,
                     .window = 64,
                     .decode = true});
    cases.push_back({.name = "mask_t40", .n_tokens = 40, .n_cells = 40, .mask = true});
    cases.push_back(
        {.name = "softcap30_t33", .n_tokens = 33, .n_cells = 33, .softcap = 30, .q_scale = 8});
    cases.push_back({.name = "two_seqs_t50_empty_cells",
                     .n_tokens = 50,
                     .n_cells = 120,
                     .n_seq = 2,
                     .empty_every = 7,
                     .decode = true});
    cases.push_back({.name = "three_seqs_gapped_pos_t70",
                     .n_tokens = 70,
                     .n_cells = 70,
                     .n_seq = 3,
                     .pos_gap = 5});
    cases.push_back({.name = "cell_range_80_230_strided",
                     .n_tokens = 6,
                     .n_cells = 300,
                     .cell_begin = 80,
                     .cell_end = 230,
                     .strided = true,
                     .decode = true});
    cases.push_back({.name = "strided_f32_d20_tail",
                     .head_dim = 20,
                     .n_tokens = 9,
                     .n_cells = 70,
                     .f16 = false,
                     .strided = true});
    cases.push_back({.name = "d72_h3_kv1_t66",
                     .head_dim = 72,
                     .n_head = 3,
                     .n_head_kv = 1,
                     .n_tokens = 66,
                     .n_cells = 66});
    return cases;
}

struct AttnParam {
    AttnCase c;
    cpu::CpuIsa isa;
};

class AttentionTest : public ::testing::TestWithParam<AttnParam> {};

TEST_P(AttentionTest, MatchesDoubleReference) {
    const AttnCase& c = GetParam().c;
    const int64_t hd = c.head_dim, nh = c.n_head, nkv = c.n_head_kv, nt = c.n_tokens,
                  nc = c.n_cells;
    const int64_t cell_end = c.cell_end < 0 ? nc : c.cell_end;
    const int64_t group = nh / nkv;

    // Cache with optional padding: head stride hd + 8 elements, cell stride one extra head.
    const int64_t head_stride = c.strided ? hd + 8 : hd;
    const int64_t cell_stride = head_stride * (nkv + (c.strided ? 1 : 0));
    const int64_t esize = c.f16 ? 2 : 4;
    std::vector<uint8_t> kbuf(static_cast<size_t>(cell_stride * nc * esize)), vbuf(kbuf.size());
    std::vector<double> kval(static_cast<size_t>(nc * nkv * hd)), vval(kval.size());
    const std::vector<float> kr = test::random_floats(nc * nkv * hd, 1),
                             vr = test::random_floats(nc * nkv * hd, 2);
    for (int64_t cell = 0; cell < nc; ++cell) {
        for (int64_t g = 0; g < nkv; ++g) {
            for (int64_t d = 0; d < hd; ++d) {
                const size_t src = static_cast<size_t>((cell * nkv + g) * hd + d);
                const size_t off =
                    static_cast<size_t>((cell * cell_stride + g * head_stride + d) * esize);
                if (c.f16) {
                    const uint16_t kh = fp32_to_fp16(kr[src]), vh = fp32_to_fp16(vr[src]);
                    std::memcpy(&kbuf[off], &kh, 2);
                    std::memcpy(&vbuf[off], &vh, 2);
                    kval[src] = fp16_to_fp32(kh);
                    vval[src] = fp16_to_fp32(vh);
                } else {
                    std::memcpy(&kbuf[off], &kr[src], 4);
                    std::memcpy(&vbuf[off], &vr[src], 4);
                    kval[src] = kr[src];
                    vval[src] = vr[src];
                }
            }
        }
    }
    // Cells: sequences alternate, positions count per sequence (times pos_gap).
    std::vector<int32_t> cpos(static_cast<size_t>(nc)), cseq(static_cast<size_t>(nc));
    std::vector<int32_t> next_pos(static_cast<size_t>(c.n_seq), 0);
    for (int64_t cell = 0; cell < nc; ++cell) {
        const int s = static_cast<int>(cell % c.n_seq);
        cseq[cell] = s;
        cpos[cell] = next_pos[s];
        next_pos[s] += c.pos_gap;
        if (c.empty_every > 0 && cell % c.empty_every == 3) cseq[cell] = -1;
    }
    // Tokens: prefill tokens are the cells themselves; decode tokens are the last cells' positions.
    std::vector<int32_t> qpos(static_cast<size_t>(nt)), qseq(static_cast<size_t>(nt));
    for (int64_t t = 0; t < nt; ++t) {
        const int64_t cell = c.decode ? cell_end - nt + t : c.cell_begin + t;
        qseq[t] = static_cast<int32_t>(cell % c.n_seq);
        qpos[t] = cpos[cell];
    }
    std::vector<float> q = test::random_floats(nt * nh * hd, 3, c.q_scale);
    std::vector<float> mask;
    if (c.mask) {
        mask.assign(static_cast<size_t>((cell_end - c.cell_begin) * nt), 0.0f);
        for (size_t i = 0; i < mask.size(); ++i) {
            if ((i * 2654435761u) % 5 == 0) mask[i] = -INFINITY;
        }
    }

    AttentionInputs in;
    in.q = Tensor::view(q.data(), DType::F32, {hd, nh, nt});
    for (auto [t, buf] : {std::pair{&in.k, &kbuf}, std::pair{&in.v, &vbuf}}) {
        *t = Tensor::view(buf->data(), c.f16 ? DType::F16 : DType::F32, {hd, nkv, nc});
        t->nb[1] = head_stride * esize;
        t->nb[2] = cell_stride * esize;
        t->nb[3] = t->nb[2] * nc;
    }
    in.q_pos = Tensor::view(qpos.data(), DType::I32, {nt});
    in.q_seq = Tensor::view(qseq.data(), DType::I32, {nt});
    in.cell_pos = Tensor::view(cpos.data(), DType::I32, {nc});
    in.cell_seq = Tensor::view(cseq.data(), DType::I32, {nc});
    in.cell_begin = c.cell_begin;
    in.cell_end = cell_end;
    Tensor mask_t;
    if (c.mask) {
        mask_t = Tensor::view(mask.data(), DType::F32, {cell_end - c.cell_begin, nt});
        in.mask = &mask_t;
    }
    AttentionParams params;
    params.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    params.window = c.window;
    params.softcap = c.softcap;

    std::vector<float> out(static_cast<size_t>(nt * nh * hd), 777.0f);
    cpu::CpuContext ctx(2, false, GetParam().isa);
    cpu::cpu_attention(ctx, in, params, Tensor::view(out.data(), DType::F32, {hd, nh, nt}));

    int64_t rows_with_keys = 0;
    for (int64_t t = 0; t < nt; ++t) {
        for (int64_t h = 0; h < nh; ++h) {
            const int64_t g = h / group;
            const float* qv = q.data() + (t * nh + h) * hd;
            std::vector<double> score;
            std::vector<int64_t> cells;
            double ds = 0, vmax = 0;
            for (int64_t cell = c.cell_begin; cell < cell_end; ++cell) {
                const bool visible =
                    cseq[cell] >= 0 && cseq[cell] == qseq[t] && cpos[cell] <= qpos[t] &&
                    (c.window == 0 || qpos[t] - cpos[cell] < c.window) &&
                    (!c.mask || mask[(t * (cell_end - c.cell_begin)) + cell - c.cell_begin] == 0);
                if (!visible) continue;
                double s = 0, sabs = 0;
                for (int64_t d = 0; d < hd; ++d) {
                    const double p = qv[d] * kval[(cell * nkv + g) * hd + d];
                    s += p;
                    sabs += std::fabs(p);
                }
                s *= params.scale;
                if (c.softcap > 0) s = c.softcap * std::tanh(s / c.softcap);
                ds = std::max(ds, (hd + 2) * kF32Eps * sabs * params.scale);
                score.push_back(s);
                cells.push_back(cell);
                for (int64_t d = 0; d < hd; ++d)
                    vmax = std::max(vmax, std::fabs(vval[(cell * nkv + g) * hd + d]));
            }
            const float* got = out.data() + (t * nh + h) * hd;
            if (cells.empty()) {  // no visible key: zeros by definition
                for (int64_t d = 0; d < hd; ++d) ASSERT_EQ(got[d], 0.0f) << "t " << t << " h " << h;
                continue;
            }
            ++rows_with_keys;
            double mx = -INFINITY, l = 0;
            for (double s : score) mx = std::max(mx, s);
            for (double& s : score) l += (s = std::exp(s - mx));
            const auto n = static_cast<double>(cells.size());
            const double bound = (4 * ds + 1e-6 + 3 * n * kF32Eps) * vmax;
            for (int64_t d = 0; d < hd; ++d) {
                double ref = 0;
                for (size_t j = 0; j < cells.size(); ++j)
                    ref += score[j] * vval[(cells[j] * nkv + g) * hd + d];
                ref /= l;
                ASSERT_NEAR(got[d], ref, bound) << "t " << t << " h " << h << " d " << d;
            }
        }
    }
    EXPECT_GT(rows_with_keys, 0) << "the case must exercise something";
}

std::vector<AttnParam> attn_params() {
    std::vector<AttnParam> params;
    for (const AttnCase& c : attn_cases()) {
        for (cpu::CpuIsa isa : test::available_isas()) params.push_back({c, isa});
    }
    return params;
}

INSTANTIATE_TEST_SUITE_P(Cpu, AttentionTest, ::testing::ValuesIn(attn_params()),
                         [](const ::testing::TestParamInfo<AttnParam>& info) {
                             return info.param.c.name + "_" + test::isa_tag(info.param.isa);
                         });

}  // namespace
}  // namespace sift
