// The llama family: pre-norm blocks, RoPE, GQA attention, SwiGLU.
//   llama (Llama 3.x, SmolLM2): RoPE on adjacent pairs (llama.cpp permutes Q/K rows for it);
//   qwen2 (Qwen2.5): NeoX RoPE, biases on Q, K and V;
//   qwen3: NeoX RoPE, RMSNorm on each query and key head before RoPE (QK-norm), no biases.
// The weights binder loads the biases and head norms each architecture has; this pass follows them.
#include "model/forward.h"

namespace sift {

void forward_llama(ForwardContext& c) {
    const HParams& hp = c.hp;
    const AttentionOptions opt = {.qk_norm = hp.arch == Arch::ARCH_QWEN3,
                                  .rope_base = hp.rope_base,
                                  .rope_scale = hp.rope_scale};
    Tensor x = c.act(hp.n_embd);
    c.be.get_rows(c.w.tok_embd, c.ids, x);
    // h: the normed input of the next block, written by the fused residual add + norm (the
    // buffer outlives each layer's scratch).
    Tensor h = block_input(c);
    const int n_layers = c.n_layers_run();
    if (n_layers > 0) c.be.rms_norm(x, &c.w.layers[0].attn_norm, hp.norm_eps, h);
    for (int il = 0; il < n_layers; ++il) {
        const LayerWeights& l = c.w.layers[static_cast<size_t>(il)];
        const size_t layer_scratch = c.arena.used();  // freed at the end of the layer
        Tensor attn = block_attention(c, il, h, opt);
        c.be.add_rms_norm(x, attn, &l.ffn_norm, hp.norm_eps, x, h);
        Tensor ffn = block_ffn(c, il, h, FfnActivation::FFN_SILU);
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
