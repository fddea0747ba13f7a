// A loaded model: hyperparameters, bound weights, KV cache and the forward pass.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "core/result.h"
#include "gguf/gguf.h"
#include "model/graph_cache.h"
#include "model/hparams.h"
#include "model/kv_cache.h"
#include "model/weights.h"

namespace sift {

// Tokens of one or more sequences to run together. Each token has a position, a sequence id and
// whether its logits are wanted.
struct Batch {
    std::vector<int32_t> tokens;
    std::vector<int32_t> pos;
    std::vector<int32_t> seq;
    std::vector<uint8_t> want_logits;

    void add(int32_t token, int32_t position, int32_t sequence, bool logits) {
        tokens.push_back(token);
        pos.push_back(position);
        seq.push_back(sequence);
        want_logits.push_back(logits ? 1 : 0);
    }
    size_t size() const { return tokens.size(); }
    int64_t n_outputs() const;
};

// Speculative prefill's importance probe (ALGORITHMS.md 1.2) over one decode: the attention
// probability that each listed batch token gives every cache cell, max over the probed layers and
// heads, computed layer by layer on the device (never cells x cells).
struct AttentionProbe {
    std::vector<int32_t> queries;  // batch indices of the probing tokens, increasing
    bool nope = false;             // queries and keys before RoPE (position-free scores)
    int32_t n_layers = 0;          // probe the first n layers only (0: all)
    // Early exit: with 0 < n_layers < the model's layers, the forward stops after the probed
    // layers (a fraction of the cost). Nothing later is computed: no logits may be wanted, and
    // the cache's deeper layers are not written for these tokens, so the caller must drop them
    // (KvCache::truncate) before decoding anything that attends to them.
    bool early_exit = false;
    // Output: [queries.size()][n_cells] row-major by cache cell; 0 where a query sees nothing.
    std::vector<float> probs_max;
};

// Block-sparse attention (ops.h BlockSparseParams, ALGORITHMS.md 2) for long prefills: used for
// a micro-batch of one sequence with contiguous positions whose cells hold positions 0.. in
// order (a fresh prompt), once the cells attended reach min_cells; dense otherwise.
struct BlockSparseOptions {
    bool enabled = false;
    BlockSparseParams params;
    // Dense below. Measured on an H200 (bench/cuda_block_sparse_bench, 0.6B drafter shape): at
    // 8K cells the selection costs ~5% of dense attention and keeping every block ~7%, while a
    // selective mask (36% kept) already makes attention 1.8x faster; below 8K attention is less
    // than half of the forward and the forced blocks (sink, window, last) keep most of it.
    int64_t min_cells = 8192;
};

struct ModelOptions {
    int64_t n_ctx = 0;  // KV cells; 0 = the model's training context
    // KV cache element types, each f32, f16 or q8_0 (llama.cpp's -ctk/-ctv): q8_0 takes about
    // half of f16's bytes; each value is off by at most 1/254 of its 32-value block's largest.
    DType kv_type_k = DType::F16;
    DType kv_type_v = DType::F16;
    int32_t n_ubatch = 512;   // tokens per forward chunk (bounds activation memory)
    std::string dump_layers;  // directory for per-layer hidden states ("" = off)
    // Replay decode steps (micro-batches of up to kGraphMaxTokens tokens) as captured graphs
    // where the backend has them (CUDA). The environment variable SIFT_CUDA_GRAPHS=0 also
    // turns it off.
    bool cuda_graphs = true;
};

class Model {
  public:
    static Result<std::unique_ptr<Model>> load(const std::string& path, Backend& backend,
                                               const ModelOptions& options);
    ~Model();

    const HParams& hparams() const { return hp_; }
    const gguf::File& file() const { return *file_; }
    KvCache& kv() { return *kv_; }
    const KvCache& kv() const { return *kv_; }
    Backend& backend() { return backend_; }
    int64_t n_ctx() const { return kv_->n_cells(); }

    // Runs the batch through the model in chunks of n_ubatch tokens, writing K/V into the cache.
    // Returns the logits of tokens with want_logits, [n_outputs][n_vocab] row-major on the host.
    // With a probe, also fills probe->probs_max (see AttentionProbe).
    Result<std::vector<float>> decode(const Batch& batch, AttentionProbe* probe = nullptr);
    // As decode, but returns for each token with want_logits only the index of its largest
    // logit (the lowest on ties), found on the device: greedy sampling without moving n_vocab
    // floats per row to the host.
    Result<std::vector<int32_t>> decode_argmax(const Batch& batch);

    // Runs the forward once on a prompt (a whole micro-batch on a GPU, 64 tokens on the CPU)
    // and one decode step, then clears the cache: math libraries initialise and kernels load
    // here instead of inside the first request's time to first token (cuBLAS's first GEMMs
    // cost ~70 ms on an H100). llama.cpp and vLLM warm up the same way.
    Status warmup();

    // Block-sparse attention for later decodes (off by default).
    void set_block_sparse(const BlockSparseOptions& options) { bsa_ = options; }
    const BlockSparseOptions& block_sparse() const { return bsa_; }
    // Layer attentions that ran block-sparse since load (reports whether BSA ran).
    int64_t block_sparse_calls() const { return bsa_calls_; }

    // Whether decode steps run through captured graphs, and how often they did.
    bool graphs_enabled() const { return graphs_ != nullptr; }
    GraphStats graph_stats() const { return graphs_ ? graphs_->stats() : GraphStats{}; }

  private:
    Model(Backend& backend) : backend_(backend) {}
    struct ProbeState;
    struct SparseState;
    // What a decode hands back: the logits of the wanted rows, or only their argmax.
    struct Outputs {
        std::vector<float>* logits = nullptr;
        std::vector<int32_t>* argmax = nullptr;
    };
    Status decode_into(const Batch& batch, AttentionProbe* probe, Outputs out);
    void forward_ubatch(const Batch& batch, const std::vector<int32_t>& cells, size_t first,
                        size_t count, Outputs out, ProbeState* probe, SparseState* sparse);
    bool block_sparse_applies(const Batch& batch, const std::vector<int32_t>& cells,
                              int64_t& cell_begin) const;

    Backend& backend_;
    std::unique_ptr<gguf::File> file_;
    HParams hp_;
    ModelOptions options_;
    std::unique_ptr<WeightStorage> storage_;
    ModelWeights w_;
    std::unique_ptr<KvCache> kv_;
    void* scratch_ = nullptr;
    size_t scratch_bytes_ = 0;
    void* logits_buf_ = nullptr;  // grows to the largest number of wanted rows
    size_t logits_bytes_ = 0;
    void* argmax_buf_ = nullptr;  // I32, one per wanted row; grows
    size_t argmax_bytes_ = 0;
    int64_t n_dumped_ = 0;
    BlockSparseOptions bsa_;
    int64_t bsa_calls_ = 0;
    void* bsa_mask_ = nullptr;  // I8 block mask, reused by every layer; grows
    size_t bsa_mask_bytes_ = 0;
    void* key_means_ = nullptr;  // ops.h KeyMeansCache per layer, key_means_bytes_ each
    size_t key_means_bytes_ = 0;
    std::unique_ptr<GraphCache> graphs_;  // null: graphs off or unsupported
};

}  // namespace sift
