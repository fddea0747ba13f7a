#include "model/forward.h"

#include <fmt/format.h>

#include <cstdio>
#include <vector>

namespace sift {

Tensor Arena::alloc(DType type, int64_t width, int64_t n) {
    const size_t bytes = static_cast<size_t>(*dtype_row_bytes(type, width) * n);
    const size_t aligned = (used_ + 63) & ~size_t{63};  // SIMD loads want aligned rows
    SIFT_CHECK(aligned + bytes <= bytes_, "scratch arena overflow: {} + {} > {}", aligned, bytes,
               bytes_);
    used_ = aligned + bytes;
    return Tensor::view(base_ + aligned, type, {width, n}, device_);
}

void ForwardContext::dump(const std::string& name, int il, const Tensor& t) {
    if (dump_dir.empty()) return;
    std::vector<float> host(static_cast<size_t>(t.n_elements()));
    be.download(host.data(), t, host.size() * sizeof(float));
    const std::string path =
        il >= 0 ? fmt::format("{}/{:03d}-{}.{}.f32", dump_dir, dump_index, name, il)
                : fmt::format("{}/{:03d}-{}.f32", dump_dir, dump_index, name);
    ++dump_index;
    if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
        std::fwrite(host.data(), sizeof(float), host.size(), f);
        std::fclose(f);
    }
}

Tensor block_input(ForwardContext& c) {
    const LayerWeights& l = c.w.layers[0];
    const bool agree = c.matmul_input_type(l.wq) == c.matmul_input_type(l.w_gate);
    return agree ? c.matmul_input(l.wq, c.hp.n_embd) : c.act(c.hp.n_embd);
}

// Views a [heads * head_dim, T] activation as [head_dim, heads, T].
static Tensor heads_view(const Tensor& t, int64_t head_dim) {
    return Tensor::view(t.data, t.type, {head_dim, t.ne[0] / head_dim, t.ne[1]}, t.device);
}

Tensor block_attention(ForwardContext& c, int il, const Tensor& h, const AttentionOptions& opt) {
    const HParams& hp = c.hp;
    const LayerWeights& l = c.w.layers[static_cast<size_t>(il)];
    Tensor q = c.act(hp.q_dim()), k = c.act(hp.kv_dim()), v = c.act(hp.kv_dim());
    {
        const Tensor ws[] = {l.wq, l.wk, l.wv};
        Tensor outs[] = {q, k, v};
        c.be.matmul_shared(ws, 3, h, outs);
    }
    if (has(l.bq)) c.be.add(q, l.bq, q);
    if (has(l.bk)) c.be.add(k, l.bk, k);
    if (has(l.bv)) c.be.add(v, l.bv, v);
    Tensor qh = heads_view(q, hp.head_dim), kh = heads_view(k, hp.head_dim);
    // An attention probe gathers its queries before RoPE for position-free scores, else after.
    const bool probing = c.probe != nullptr && il < c.probe->n_layers;
    const bool nope_probe = probing && c.probe->nope;
    Tensor probe_q;
    if (probing) probe_q = c.arena.alloc(DType::F32, hp.q_dim(), c.probe->rows.ne[0]);
    RopeParams rope;
    rope.n_rot = hp.n_rot;
    rope.neox = hp.rope_neox;
    rope.freq_base = opt.rope_base;
    rope.freq_scale = opt.rope_scale;
    rope.freq_factors = has(c.w.rope_freqs) ? &c.w.rope_freqs : nullptr;
    const Tensor cache_k = c.kv.k(il), cache_v = c.kv.v(il);
    const Tensor cache_k_rows =
        Tensor::view(cache_k.data, cache_k.type, {hp.kv_dim(), cache_k.ne[2]}, cache_k.device);
    const Tensor cache_v_rows =
        Tensor::view(cache_v.data, cache_v.type, {hp.kv_dim(), cache_v.ne[2]}, cache_v.device);
    if (!nope_probe) {
        // QK-norm, RoPE and the K/V cache stores in one pass.
        c.be.attention_prep(qh, kh, heads_view(v, hp.head_dim), opt.qk_norm,
                            opt.qk_norm ? &l.q_norm : nullptr, opt.qk_norm ? &l.k_norm : nullptr,
                            hp.norm_eps, c.pos, rope, c.cells, cache_k_rows, cache_v_rows);
    } else {
        if (opt.qk_norm) {
            c.be.rms_norm(qh, &l.q_norm, hp.norm_eps, qh);
            c.be.rms_norm(kh, &l.k_norm, hp.norm_eps, kh);
        }
        c.be.get_rows(q, c.probe->rows, probe_q);
        c.be.rope(qh, c.pos, rope, qh);
        c.be.rope(kh, c.pos, rope, kh);
        c.be.set_rows(k, c.cells, cache_k_rows);
        c.be.set_rows(v, c.cells, cache_v_rows);
    }
    c.dump("q", il, q);
    c.dump("k", il, k);

    AttentionParams params;
    params.scale = hp.attn_scale;
    params.window = opt.sliding ? hp.sliding_window : 0;
    params.softcap = hp.attn_softcap;
    if (probing) {
        if (!nope_probe) c.be.get_rows(q, c.probe->rows, probe_q);
        AttentionInputs pin;
        pin.q = heads_view(probe_q, hp.head_dim);
        pin.k = cache_k;
        pin.v = cache_v;
        pin.q_pos = c.probe->pos;
        pin.q_seq = c.probe->seq;
        pin.cell_pos = c.kv.cell_pos();
        pin.cell_seq = c.kv.cell_seq();
        pin.cell_end = c.probe->max.ne[0];
        c.be.attention_probe(pin, params, c.probe->nope ? &rope : nullptr, c.probe->max);
    }

    AttentionInputs in;
    in.q = qh;
    in.k = cache_k;
    in.v = cache_v;
    in.q_pos = c.pos;
    in.q_seq = c.seq;
    in.cell_pos = c.kv.cell_pos();
    in.cell_seq = c.kv.cell_seq();
    in.cell_begin = 0;
    in.cell_end = c.cell_end;
    // Block-sparse on global-attention layers: the selection's geometry needs the sequence's
    // own cell range (cells outside it are invisible to these tokens, so the result is the same).
    KeyMeansCache key_means;
    if (c.bsa != nullptr && params.window == 0) {
        if (c.bsa->key_means != nullptr) {
            key_means.data = c.bsa->key_means + static_cast<size_t>(il) * c.bsa->key_means_bytes;
            key_means.bytes = c.bsa->key_means_bytes;
            key_means.valid = c.bsa->key_means_valid;
            in.key_means = &key_means;
        }
        in.cell_begin = c.bsa->cell_begin;
        in.cell_end = c.bsa->cell_end;
        c.be.attention_block_select(in, params, c.bsa->params, c.bsa->n_qblocks_total, c.bsa->mask);
        in.block_mask = &c.bsa->mask;
        in.mask_block = c.bsa->params.block;
        in.dense_tail = c.bsa->dense_tail;
        ++c.bsa->calls;
    }
    Tensor attn = c.act(hp.q_dim());
    c.be.attention(in, params, heads_view(attn, hp.head_dim));
    c.dump("attn", il, attn);
    Tensor out = c.act(hp.n_embd);
    c.be.matmul(l.wo, attn, out);
    return out;
}

Tensor block_ffn(ForwardContext& c, int il, const Tensor& h, FfnActivation act) {
    const LayerWeights& l = c.w.layers[static_cast<size_t>(il)];
    Tensor gate = c.act(c.hp.n_ff), up = c.act(c.hp.n_ff);
    // The activation goes to w_down in its input type (in place over gate when that is F32).
    Tensor hidden = gate;
    if (c.matmul_input_type(l.w_down) != DType::F32) hidden = c.matmul_input(l.w_down, c.hp.n_ff);
    c.be.matmul_gated(l.w_gate, l.w_up, h,
                      act == FfnActivation::FFN_SILU ? GatedAct::GATED_SILU : GatedAct::GATED_GELU,
                      gate, up, hidden);
    Tensor out = c.act(c.hp.n_embd);
    c.be.matmul(l.w_down, hidden, out);
    return out;
}

void block_logits(ForwardContext& c, const Tensor& x) {
    const int64_t n_out = c.out_rows.ne[0];
    if (n_out == 0) return;  // no token of this chunk wants logits
    Tensor rows = c.arena.alloc(DType::F32, c.hp.n_embd, n_out);
    c.be.get_rows(x, c.out_rows, rows);
    c.be.rms_norm(rows, &c.w.output_norm, c.hp.norm_eps, rows);
    c.dump("result_norm", -1, rows);
    c.be.matmul(c.w.output, rows, c.logits);
}

}  // namespace sift
