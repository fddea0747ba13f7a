// Model weights bound by name from a GGUF, with shapes checked against the hyperparameters.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "core/result.h"
#include "gguf/gguf.h"
#include "model/hparams.h"

namespace sift {

struct LayerWeights {
    Tensor attn_norm;             // [n_embd]
    Tensor wq, wk, wv, wo;        // [n_embd, q_dim], [n_embd, kv_dim] x2, [q_dim, n_embd]
    Tensor bq, bk, bv;            // qwen2 biases [q_dim], [kv_dim] (data null when absent)
    Tensor q_norm, k_norm;        // qwen3/gemma3 [head_dim]
    Tensor post_attn_norm;        // gemma3 [n_embd]
    Tensor ffn_norm;              // [n_embd]
    Tensor w_gate, w_up, w_down;  // [n_embd, n_ff] x2, [n_ff, n_embd]
    Tensor post_ffn_norm;         // gemma3 [n_embd]
};

struct ModelWeights {
    Tensor tok_embd;     // [n_embd, n_vocab]
    Tensor output_norm;  // [n_embd]
    Tensor output;       // [n_embd, n_vocab] (tok_embd when tied)
    Tensor rope_freqs;   // [n_rot / 2] or data null
    std::vector<LayerWeights> layers;
};

inline bool has(const Tensor& t) {
    return t.data != nullptr;
}

// Binds every tensor the architecture needs: errors name a missing tensor, a wrong shape or a
// type the backend cannot compute. Data stays where it is (mmap) on the CPU backend, or is
// uploaded once to device memory owned by `storage`.
class WeightStorage;
Result<ModelWeights> weights_bind(const gguf::File& file, const HParams& hp, Backend& backend,
                                  std::unique_ptr<WeightStorage>& storage);

class WeightStorage {
  public:
    explicit WeightStorage(Backend& backend) : backend_(backend) {}
    ~WeightStorage();
    void* hold(size_t bytes);  // device memory freed with the storage
    uint64_t bytes() const { return bytes_; }

  private:
    Backend& backend_;
    std::vector<void*> blocks_;
    uint64_t bytes_ = 0;
};

}  // namespace sift
