// The one list of ops. Model code calls only these; each backend (cpu/, cuda/) implements all of
// them, and every CUDA op is checked against the CPU one in the op-parity harness.
//
// Conventions: tensors are views (tensor/tensor.h); ne[0] is the contiguous dimension. Activations
// are F32 [width, n_tokens]. Outputs are preallocated by the caller and never alias inputs unless
// an op says so. A batch may hold tokens of several sequences: per-token positions and sequence ids
// are I32 tensors [n_tokens] on the backend's device.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace sift {

struct RopeParams;

// The rotation frequencies of RoPE, in double (at positions of 10^5 an F32 angle would be off by
// ~0.01 rad): inv_freq[i] = freq_scale * base^(-2i/n_rot) / factors[i], i < n_rot / 2, so
// theta_i = pos * inv_freq[i]. factors: host F32 [n_rot / 2] or null (all 1).
std::vector<double> rope_inv_freq(const RopeParams& params, const float* factors);

struct RopeParams {
    int32_t n_rot = 0;        // rotated dims per head (<= head_dim); the rest pass through
    bool neox = false;        // NeoX pairs (i, i + n_rot/2) instead of adjacent pairs (2i, 2i+1)
    float freq_base = 10000;  // theta_i = pos * freq_scale * base^(-2i/n_rot) / freq_factors[i]
    float freq_scale = 1;     // linear position scaling (1 = none)
    const Tensor* freq_factors = nullptr;  // F32 [n_rot/2] (llama3-style scaling) or null
};

// Keys live in cache cells; a query token t sees cell c when
//   cell_seq[c] == q_seq[t] and cell_pos[c] <= q_pos[t]
//   and (window == 0 or q_pos[t] - cell_pos[c] < window)
//   and (mask == null or mask[t][c - cell_begin] == 0).
// Empty cells carry seq -1. Positions need not be contiguous (kept spans keep their positions).
struct AttentionParams {
    float scale = 1;     // applied to q.k (usually 1/sqrt(head_dim))
    int32_t window = 0;  // sliding window in positions; 0 = none
    float softcap = 0;   // scores = softcap * tanh(scores / softcap); 0 = off
};

// Key-block means kept across the micro-batches of one prompt (attention_block_select): a
// buffer of Backend::key_means_bytes bytes whose layout the backend owns. Its first `valid` key
// blocks hold the means an earlier call for the same layer and cells computed over whole
// blocks (all their cells then at or before that call's last position), which the op reuses;
// it writes the means of the others.
struct KeyMeansCache {
    void* data = nullptr;
    size_t bytes = 0;
    int64_t valid = 0;
};

struct AttentionInputs {
    Tensor q;                // F32 [head_dim, n_head, n_tokens]
    Tensor k;                // F32/F16/Q8_0 [head_dim, n_head_kv, n_cells] (cache view)
    Tensor v;                // F32/F16/Q8_0 [head_dim, n_head_kv, n_cells]
    Tensor q_pos;            // I32 [n_tokens]
    Tensor q_seq;            // I32 [n_tokens]
    Tensor cell_pos;         // I32 [n_cells]
    Tensor cell_seq;         // I32 [n_cells]
    int64_t cell_begin = 0;  // only cells [cell_begin, cell_end) are considered
    int64_t cell_end = 0;
    const Tensor* mask = nullptr;  // F32 [cell_end - cell_begin, n_tokens], 0 or -inf; optional
    // Block-sparse attention (below): I8 [n_kblocks, n_qblocks, n_head] from
    // attention_block_select; 0 hides key block n from query head h of query block m. Optional.
    const Tensor* block_mask = nullptr;
    int32_t mask_block = 128;  // the block size block_mask was selected with
    // A hint, results do not depend on it: block_mask's last `dense_tail` query blocks keep
    // (nearly) every key block (the prompt's last_full blocks), so their rows cost as much as
    // a dense row each; a backend may spread their keys over several workers.
    int32_t dense_tail = 0;
    // attention_block_select only, optional: the key-block means cache (a backend may ignore
    // it; the CPU does).
    const KeyMeansCache* key_means = nullptr;
};

// Block-sparse attention for a long prefill (ALGORITHMS.md 2, FlashPrefill).
//
// Geometry contract: the batch holds tokens of ONE sequence with contiguous positions
// (q_pos[t] = q_pos[0] + t) and cells [cell_begin, cell_end) hold that sequence's positions
// 0, 1, ... in cell order (cell c has position c - cell_begin; cells past the batch's last
// position may be unwritten). Query block of token t: q_pos[t] / block (global); the mask's
// row m is query block q_pos[0] / block + m, so n_qblocks = q_pos[T-1] / block - q_pos[0] /
// block + 1. Key block of cell c: (c - cell_begin) / block; n_kblocks = ceil((cell_end -
// cell_begin) / block). Callers check the contract (the model does, else it runs dense).
//
// Selection, per query head h (its KV head h / group) and query block m of the batch:
//   meanK[n] = mean of the K rows of the cells of key block n with position <= q_pos[T-1]
//   s[j][n] = scale * q[j, h] . meanK[n] for the batch's tokens j of block m and n <= m
//   score[n] = sum over j of exp(s[j][n] - max over n' <= m of s[j][n'])
//   keep n <= m if score[n] >= alpha * max_n' score[n'], or n < sink, or m - n < window, or m
//   is among the last `last_full` of the prompt's n_qblocks_total query blocks; n > m: 0.
// The diagonal block is always kept (window >= 1). Attention with the mask still applies the
// visibility rule inside kept blocks, so the diagonal stays causal. softcap and the attention
// window are not part of the selection.
struct BlockSparseParams {
    int32_t block = 128;    // tokens per block (the CUDA kernels support 128 only)
    float alpha = 0.12f;    // keep threshold relative to the best block (0 keeps all)
    int32_t sink = 2;       // first blocks always kept
    int32_t window = 4;     // blocks m - window < n <= m always kept (>= 1)
    int32_t last_full = 2;  // the prompt's last query blocks attend densely
};

// How many of a batch's query blocks [qb_first, qb_last] are among the prompt's last
// `last_full` of n_qblocks_total (those attend densely): AttentionInputs::dense_tail.
inline int32_t dense_tail_blocks(int64_t qb_first, int64_t qb_last, int64_t n_qblocks_total,
                                 int32_t last_full) {
    const int64_t from = std::max(qb_first, n_qblocks_total - last_full);
    return static_cast<int32_t>(std::clamp<int64_t>(qb_last - from + 1, 0, qb_last - qb_first + 1));
}

// The activation of a gated FFN (matmul_gated): silu (SwiGLU) or gelu, tanh form (GeGLU).
enum class GatedAct { GATED_SILU, GATED_GELU };

// A recorded sequence of ops that a backend can replay with one call (a CUDA graph); opaque,
// defined by the backend that made it.
struct BackendGraph;

class Backend {
  public:
    virtual ~Backend() = default;
    virtual Device device() const = 0;
    virtual std::string name() const = 0;

    // Memory on the backend's device, zero-filled (cache cells a batch has claimed but not yet
    // written are read by attention with zero weight, which NaN garbage would poison). alloc
    // never returns null (out of memory aborts with a message); a model checks its budget first.
    virtual void* alloc(size_t bytes) = 0;
    // Bytes the device could still give (host: available RAM; GPU: free device memory).
    virtual size_t available_bytes() const = 0;
    // Measured memory bandwidth in bytes/s, the decode ceiling: CPU, a read of a buffer far
    // larger than the caches with all threads; GPU, a device-to-device copy (read + write
    // counted). Takes about a second.
    virtual double measure_bandwidth() = 0;
    virtual void free(void* ptr) = 0;
    virtual void upload(const Tensor& dst, const void* src, size_t bytes) = 0;
    virtual void download(void* dst, const Tensor& src, size_t bytes) = 0;
    virtual void synchronize() = 0;

    // Capture and replay (decode is launch-bound: one replay instead of hundreds of launches).
    // Between graph_begin_capture and graph_end_capture ops are recorded, not run; the graph
    // bakes in every pointer, shape and host-side value the ops saw, so the caller replays it
    // only while those are unchanged (inputs are refreshed by upload into the same buffers
    // before graph_launch, outside the capture: uploads must not be captured). Backends without
    // graphs (the CPU) keep these defaults and callers run the ops directly.
    // Wrappers of a Backend must forward all five.
    virtual bool graph_supported() const { return false; }
    virtual void graph_begin_capture() {}
    // Ends the capture. With `prev` (a graph of this backend), prev is rebuilt from the new
    // capture in place, cheaply when the topology is unchanged, and returned; else a new graph.
    // Null when the capture failed (nothing ran: run the ops directly); prev is then unchanged.
    virtual BackendGraph* graph_end_capture(BackendGraph* prev) {
        (void)prev;
        return nullptr;
    }
    // Queues the recorded ops. False when the graph went stale (the backend moved memory it
    // baked in): destroy it and capture again.
    virtual bool graph_launch(BackendGraph* graph) {
        (void)graph;
        return false;
    }
    virtual void graph_destroy(BackendGraph* graph) { (void)graph; }

    // out[:, t] = table[:, ids[t]] as F32. table any type [width, n_rows]; ids I32 [n].
    virtual void get_rows(const Tensor& table, const Tensor& ids, Tensor out) = 0;
    // The type in which to hand w a matmul input of n_tokens columns: BF16 where the backend's
    // product would round F32 activations to BF16 anyway (CUDA's GEMMs), so the op producing
    // them writes BF16 once at half the bytes (rms_norm, add_rms_norm, swiglu, geglu may);
    // else F32, the type every backend accepts. Wrappers of a Backend must forward it.
    virtual DType matmul_input_type(const Tensor& w, int64_t n_tokens) const {
        (void)w;
        (void)n_tokens;
        return DType::F32;
    }
    // out[:, t] = W x[:, t]: w any type [k, n] (n rows of k), x F32 [k, T] (or the
    // matmul_input_type, contiguous), out F32 [n, T].
    virtual void matmul(const Tensor& w, const Tensor& x, Tensor out) = 0;
    // outs[i] = ws[i] x, i < n, for weights that share one input (q/k/v, gate/up), each pair as in
    // matmul: a backend may convert x once for all of them. outs must not alias x.
    virtual void matmul_shared(const Tensor* ws, size_t n, const Tensor& x, Tensor* outs) {
        for (size_t i = 0; i < n; ++i) matmul(ws[i], x, outs[i]);
    }
    // Elementwise on F32 [n, T]; b is [n, T] or [n] (broadcast over tokens). out may alias a.
    virtual void add(const Tensor& a, const Tensor& b, Tensor out) = 0;
    virtual void mul(const Tensor& a, const Tensor& b, Tensor out) = 0;
    virtual void scale(const Tensor& x, float s, Tensor out) = 0;  // out may alias x
    // out = x / rms(x) * w per column of x F32 [n, T]; w F32 [n] or null. out may alias x.
    // out F32, or a BF16 matmul_input_type (then not aliasing x).
    virtual void rms_norm(const Tensor& x, const Tensor* w, float eps, Tensor out) = 0;
    // Rotates x F32 [head_dim, n_head, T] by positions pos I32 [T]. out may alias x.
    virtual void rope(const Tensor& x, const Tensor& pos, const RopeParams& params, Tensor out) = 0;
    // Fused forms (each one pass over memory; the defaults compose the ops above, and a backend
    // overriding them computes the same arithmetic in the same order):
    // sum = a + b, then out = rms_norm(sum, w, eps): the residual add and the next block's norm.
    // a, b, sum F32 [n, T], out as rms_norm's; sum may alias a (or b); out must not alias a, b
    // or sum.
    virtual void add_rms_norm(const Tensor& a, const Tensor& b, const Tensor* w, float eps,
                              Tensor sum, Tensor out) {
        add(a, b, sum);
        rms_norm(sum, w, eps, out);
    }
    // out = rope(rms_norm of each head of x by w [head_dim] (or none)): QK-norm and RoPE of
    // x F32 [head_dim, n_head, T] in one pass. out may alias x.
    virtual void rms_norm_rope(const Tensor& x, const Tensor* w, float eps, const Tensor& pos,
                               const RopeParams& params, Tensor out) {
        rms_norm(x, w, eps, out);
        rope(out, pos, params, out);
    }
    // A batch's attention inputs in one pass, the fused form of
    //   q = rope(rms_norm of each head of q by q_norm) (just rope(q) when !qk_norm), k likewise
    //   with k_norm, then set_rows(k, cells, cache_k) and set_rows(v, cells, cache_v):
    // q F32 [head_dim, n_head, T] and k F32 [head_dim, n_head_kv, T] are rewritten in place, v
    // F32 [head_dim, n_head_kv, T] is read; cells I32 [T]; cache_k/cache_v as set_rows's dst
    // ([head_dim * n_head_kv, n_cells]); q_norm/k_norm [head_dim] or null (unweighted).
    virtual void attention_prep(Tensor q, Tensor k, const Tensor& v, bool qk_norm,
                                const Tensor* q_norm, const Tensor* k_norm, float eps,
                                const Tensor& pos, const RopeParams& rope, const Tensor& cells,
                                Tensor cache_k, Tensor cache_v) {
        if (qk_norm) {
            rms_norm_rope(q, q_norm, eps, pos, rope, q);
            rms_norm_rope(k, k_norm, eps, pos, rope, k);
        } else {
            this->rope(q, pos, rope, q);
            this->rope(k, pos, rope, k);
        }
        const auto rows = [](const Tensor& t) {
            return Tensor::view(t.data, t.type, {t.ne[0] * t.ne[1], t.ne[2]}, t.device);
        };
        set_rows(rows(k), cells, cache_k);
        set_rows(rows(v), cells, cache_v);
    }
    // out = silu(gate) * up and out = gelu_tanh(gate) * up, F32 [n, T] (out may alias gate),
    // or out a BF16 matmul_input_type (a separate buffer).
    virtual void swiglu(const Tensor& gate, const Tensor& up, Tensor out) = 0;
    virtual void geglu(const Tensor& gate, const Tensor& up, Tensor out) = 0;
    // out = act(w_gate x) * (w_up x), act silu (SwiGLU) or gelu_tanh (GeGLU): the gated FFN's
    // first half, the fused form of matmul_shared over {w_gate, w_up} and swiglu/geglu. w_gate,
    // w_up [k, n_ff], x as matmul's; gate, up F32 [n_ff, T] contiguous are scratch the op may
    // overwrite (a backend may keep the products there in a narrower type, or never write
    // them); out as swiglu's and may alias gate. The arithmetic may differ from the composed
    // ops by the rounding of the two products (the CUDA GEMM path keeps them in BF16).
    virtual void matmul_gated(const Tensor& w_gate, const Tensor& w_up, const Tensor& x,
                              GatedAct act, Tensor gate, Tensor up, Tensor out) {
        const Tensor ws[] = {w_gate, w_up};
        Tensor outs[] = {gate, up};
        matmul_shared(ws, 2, x, outs);
        if (act == GatedAct::GATED_SILU) {
            swiglu(gate, up, out);
        } else {
            geglu(gate, up, out);
        }
    }
    // dst[:, idx[t]] = convert(src[:, t]): src F32 [w, T], dst F32/F16/Q8_0 [w, n_rows], idx
    // I32 [T]; Q8_0 rows are bit for bit the reference quantize_row (tensor/quant.h).
    virtual void set_rows(const Tensor& src, const Tensor& idx, Tensor dst) = 0;
    // Softmax attention with GQA (n_head a multiple of n_head_kv); out F32 [head_dim, n_head, T].
    virtual void attention(const AttentionInputs& in, const AttentionParams& params,
                           Tensor out) = 0;
    // Speculative prefill's importance probe (ALGORITHMS.md 1.2): the attention probabilities of
    // a few query tokens over the cache, reduced by max over heads into a running maximum:
    //   p[t][h][c] = softmax over the cells c visible to t of softcap(scale * q[t,h].k[c,h/group])
    //   probs_max[c - cell_begin, t] = max(probs_max[c - cell_begin, t], max over h of p[t][h][c])
    // probs_max F32 [cell_end - cell_begin, n_q] (rows may be strided); entries of cells a query
    // cannot see are left as they are. Visibility, GQA and q/k/cell inputs as in attention (v is
    // not read). unrope: when set, each key row is first rotated back by -cell_pos, so with
    // queries taken before RoPE the scores are position-free (the NoPE variant).
    virtual void attention_probe(const AttentionInputs& in, const AttentionParams& params,
                                 const RopeParams* unrope, Tensor probs_max) = 0;
    // Block-sparse selection (BlockSparseParams above): writes block_mask I8 [n_kblocks,
    // n_qblocks, n_head] (contiguous, 0 or 1) for the batch of `in` (q, k, q_pos, q_seq, cell
    // range; v and mask are not read). n_qblocks_total: the prompt's query blocks (for last_full).
    virtual void attention_block_select(const AttentionInputs& in, const AttentionParams& params,
                                        const BlockSparseParams& bs, int64_t n_qblocks_total,
                                        Tensor block_mask) = 0;
    // Bytes of a KeyMeansCache for n_kblocks key blocks; 0: the backend keeps no means across
    // calls (AttentionInputs::key_means is then ignored). Wrappers of a Backend must forward it.
    virtual size_t key_means_bytes(int64_t head_dim, int64_t n_head_kv, int64_t n_kblocks) const {
        (void)head_dim;
        (void)n_head_kv;
        (void)n_kblocks;
        return 0;
    }
    // Bytes the backend's attention may take beside a cache of n_cells cells of kv_dim values a
    // side in these types, at most, for any call (CUDA: F16 copies of a q8_0 side's attended
    // cells for the prefill kernels); a model counts them when it checks a context fits.
    // Wrappers of a Backend must forward it.
    virtual size_t attention_scratch_bytes(int64_t kv_dim, int64_t n_cells, DType type_k,
                                           DType type_v) const {
        (void)kv_dim;
        (void)n_cells;
        (void)type_k;
        (void)type_v;
        return 0;
    }
    // out[t] = argmax over x[:, t]: x F32 [n, T], out I32 [T] (lowest index wins ties).
    virtual void argmax(const Tensor& x, Tensor out) = 0;
};

struct CpuBackendOptions {
    int n_threads = 0;  // <= 0: all cores
    // Exact: matmuls dequantize weights to F32 and accumulate in F32 (what transformers computes
    // from the same GGUF). Otherwise activations are quantized to 8 bits and dotted with integer
    // SIMD against the quantized weights, as llama.cpp does: several times faster, ~1e-3 relative
    // error per matmul.
    bool exact = false;
};

std::unique_ptr<Backend> backend_cpu_create(const CpuBackendOptions& options);

}  // namespace sift
