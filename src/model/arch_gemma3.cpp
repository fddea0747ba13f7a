// Gemma 3: embeddings scaled by sqrt(n_embd); QK-norm; norms before and after both attention and
// FFN; GeGLU (tanh GELU); five sliding-window layers (local RoPE base) then one global layer.
#include "model/forward.h"

namespace sift {

void forward_gemma3(ForwardContext& c) {
    const HParams& hp = c.hp;
    Tensor x = c.act(hp.n_embd);
    c.be.get_rows(c.w.tok_embd, c.ids, x);
    c.be.scale(x, hp.embd_scale, x);
    // h: the normed input of the next block, written by the fused residual add + norm (the
    // buffer outlives each layer's scratch).
    Tensor h = block_input(c);
    const int n_layers = c.n_layers_run();
    if (n_layers > 0) c.be.rms_norm(x, &c.w.layers[0].attn_norm, hp.norm_eps, h);
    for (int il = 0; il < n_layers; ++il) {
        const LayerWeights& l = c.w.layers[static_cast<size_t>(il)];
        const size_t layer_scratch = c.arena.used();  // freed at the end of the layer
        const bool sliding = hp.layer_is_sliding(il);
        // Linear RoPE scaling applies to the global layers only (local layers see short spans).
        const AttentionOptions opt = {.qk_norm = true,
                                      .sliding = sliding,
                                      .rope_base = sliding ? hp.rope_base_local : hp.rope_base,
                                      .rope_scale = sliding ? 1.0f : hp.rope_scale};
        Tensor attn = block_attention(c, il, h, opt);
        c.be.rms_norm(attn, &l.post_attn_norm, hp.norm_eps, attn);
        c.be.add_rms_norm(x, attn, &l.ffn_norm, hp.norm_eps, x, h);
        Tensor ffn = block_ffn(c, il, h, FfnActivation::FFN_GELU_TANH);
        c.be.rms_norm(ffn, &l.post_ffn_norm, hp.norm_eps, ffn);
        if (il + 1 < n_layers) {
            const LayerWeights& next = c.w.layers[static_cast<size_t>(il + 1)];
            c.be.add_rms_norm(x, ffn, &next.attn_norm, hp.norm_eps, x, h);
        } else {
            c.be.add(x, ffn, x);
        }
        c.dump("l_out", il, x);
        c.arena.reset(layer_scratch);
    }
    block_logits(c, x);
}

}  // namespace sift
