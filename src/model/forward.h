// Shared blocks of the forward pass (norm, attention, feed-forward, logits) that each
// architecture's forward composes. Intermediates are named so --dump-layers can write them.
#pragma once

#include <cstdint>
#include <string>

#include "backend/ops.h"
#include "model/hparams.h"
#include "model/kv_cache.h"
#include "model/weights.h"

namespace sift {

// Bump allocator over the model's scratch memory, reset per micro-batch.
class Arena {
  public:
    Arena(void* base, size_t bytes, Device device)
        : base_(static_cast<uint8_t*>(base)), bytes_(bytes), device_(device) {}
    Tensor alloc(DType type, int64_t width, int64_t n);
    size_t used() const { return used_; }
    void reset(size_t used) { used_ = used; }  // frees everything allocated after `used`

  private:
    uint8_t* base_;
    size_t bytes_;
    size_t used_ = 0;
    Device device_;
};

// An attention probe's inputs for one micro-batch (Model::decode's AttentionProbe).
struct ProbeInputs {
    Tensor rows{};  // I32 [n]: micro-batch indices of the probing tokens
    Tensor pos{};   // I32 [n]
    Tensor seq{};   // I32 [n]
    Tensor max{};   // F32 [used cells, n] (strided rows): the running maximum
    bool nope = false;
    int32_t n_layers = 0;  // layers [0, n_layers) are probed
};

// Block-sparse attention for one micro-batch (ops.h contract checked by Model::decode): the
// sequence's cells, the prompt's query-block count and the mask buffer the layers reuse.
struct BlockSparseInputs {
    BlockSparseParams params;
    int64_t cell_begin = 0, cell_end = 0;  // cell_begin holds position 0
    int64_t n_qblocks_total = 0;           // query blocks of the prompt (for last_full)
    int32_t dense_tail = 0;                // AttentionInputs::dense_tail of this micro-batch
    // The key-means caches (ops.h KeyMeansCache), layer il's at key_means + il * bytes (null:
    // none), and the leading key blocks they hold whole-block means of.
    uint8_t* key_means = nullptr;
    size_t key_means_bytes = 0;
    int64_t key_means_valid = 0;
    Tensor mask{};      // I8 [n_kblocks, n_qblocks, n_head]
    int64_t calls = 0;  // layers that ran block-sparse
};

struct ForwardContext {
    Backend& be;
    const HParams& hp;
    const ModelWeights& w;
    KvCache& kv;
    Arena& arena;
    int64_t n_tokens;
    Tensor ids{};                        // I32 [T]
    Tensor pos{};                        // I32 [T]
    Tensor seq{};                        // I32 [T]
    Tensor cells{};                      // I32 [T]: cache cell of each token
    Tensor out_rows{};                   // I32 [n_out]: tokens whose logits are wanted
    Tensor logits{};                     // F32 [n_vocab, n_out]
    int64_t cell_end = 0;                // attention reads cells [0, cell_end) (>= used_end)
    int32_t layer_end = 0;               // layers [0, layer_end) run (0: all; early exit)
    const ProbeInputs* probe = nullptr;  // attention probe of this micro-batch, if any
    BlockSparseInputs* bsa = nullptr;    // block-sparse attention for this micro-batch, if any
    std::string dump_dir{};              // per-layer dumps when not empty
    int64_t dump_index = 0;

    Tensor act(int64_t width) { return arena.alloc(DType::F32, width, n_tokens); }
    // The type of an activation that only feeds matmuls by weight w: what the backend wants
    // there (BF16 for CUDA's GEMMs), F32 while dumping (which reads F32).
    DType matmul_input_type(const Tensor& w) const {
        return dump_dir.empty() ? be.matmul_input_type(w, n_tokens) : DType::F32;
    }
    Tensor matmul_input(const Tensor& w, int64_t width) {
        return arena.alloc(matmul_input_type(w), width, n_tokens);
    }
    int32_t n_layers_run() const { return layer_end > 0 ? layer_end : hp.n_layer; }
    // Writes t to dump_dir as float32 when dumping is on.
    void dump(const std::string& name, int il, const Tensor& t);
};

// The buffer of a block's normed input h [n_embd, T], which feeds only q/k/v and gate/up: in
// their matmul input type when they agree (BF16 for CUDA's GEMMs), else F32.
Tensor block_input(ForwardContext& c);

struct AttentionOptions {
    bool qk_norm = false;  // RMS-normalise q and k per head (qwen3, gemma3)
    bool sliding = false;  // layer uses the sliding window
    float rope_base = 10000;
    float rope_scale = 1;
};
// Self-attention of layer il on normalised input h [n_embd, T]; returns wo * attention [n_embd, T].
Tensor block_attention(ForwardContext& c, int il, const Tensor& h, const AttentionOptions& opt);

enum class FfnActivation { FFN_SILU, FFN_GELU_TANH };
Tensor block_ffn(ForwardContext& c, int il, const Tensor& h, FfnActivation act);

// Final norm and output projection of the wanted rows of x into c.logits.
void block_logits(ForwardContext& c, const Tensor& x);

// One forward per architecture family (model/arch_*.cpp): llama, qwen2 and qwen3 share one.
void forward_llama(ForwardContext& c);
void forward_gemma3(ForwardContext& c);

}  // namespace sift
