#include "model/weights.h"

#include <fmt/format.h>

namespace sift {
namespace {

class Binder {
  public:
    Binder(const gguf::File& file, Backend& backend, WeightStorage& storage)
        : file_(file), backend_(backend), storage_(storage) {}

    // Binds `name` with dims `ne` (trailing dims 1). Optional tensors may be absent.
    Result<Tensor> bind(const std::string& name, std::initializer_list<int64_t> ne,
                        bool optional = false) {
        const gguf::TensorInfo* info = file_.tensor(name);
        if (info == nullptr) {
            if (optional) return Tensor{};
            return make_error("missing tensor {}", name);
        }
        int i = 0;
        for (int64_t n : ne) {
            if (info->ne[i] != n) {
                return make_error("tensor {} has shape [{}], expected [{}]", name,
                                  fmt::join(std::vector<int64_t>(info->ne.begin(),
                                                                 info->ne.begin() + info->n_dims),
                                            ", "),
                                  fmt::join(std::vector<int64_t>(ne), ", "));
            }
            ++i;
        }
        for (; i < 4; ++i) {
            if (info->ne[i] != 1) return make_error("tensor {} has more dims than expected", name);
        }
        if (!dtype_traits(info->type).computable) {
            return make_error("tensor {} has type {}, which sift cannot compute yet", name,
                              dtype_name(info->type));
        }
        const std::array<int64_t, 4>& d = info->ne;
        if (backend_.device() == Device::DEVICE_CPU) {
            return Tensor::view(const_cast<uint8_t*>(info->data), info->type,
                                {d[0], d[1], d[2], d[3]});
        }
        void* dst = storage_.hold(info->byte_size);
        Tensor t = Tensor::view(dst, info->type, {d[0], d[1], d[2], d[3]}, backend_.device());
        backend_.upload(t, info->data, info->byte_size);
        return t;
    }

  private:
    const gguf::File& file_;
    Backend& backend_;
    WeightStorage& storage_;
};

}  // namespace

WeightStorage::~WeightStorage() {
    for (void* p : blocks_) backend_.free(p);
}

void* WeightStorage::hold(size_t bytes) {
    void* p = backend_.alloc(bytes);
    blocks_.push_back(p);
    bytes_ += bytes;
    return p;
}

Result<ModelWeights> weights_bind(const gguf::File& file, const HParams& hp, Backend& backend,
                                  std::unique_ptr<WeightStorage>& storage) {
    storage = std::make_unique<WeightStorage>(backend);
    Binder b(file, backend, *storage);
    ModelWeights w;
    const int64_t e = hp.n_embd, q = hp.q_dim(), kv = hp.kv_dim(), ff = hp.n_ff, hd = hp.head_dim;
    const bool qwen2 = hp.arch == Arch::ARCH_QWEN2;
    const bool qk_norm = hp.arch == Arch::ARCH_QWEN3 || hp.arch == Arch::ARCH_GEMMA3;
    const bool gemma = hp.arch == Arch::ARCH_GEMMA3;

#define SIFT_BIND(field, ...)                    \
    do {                                         \
        Result<Tensor> t_ = b.bind(__VA_ARGS__); \
        if (!t_) return t_.error();              \
        field = *t_;                             \
    } while (0)

    SIFT_BIND(w.tok_embd, "token_embd.weight", {e, hp.n_vocab});
    SIFT_BIND(w.output_norm, "output_norm.weight", {e});
    SIFT_BIND(w.output, "output.weight", {e, hp.n_vocab}, true);
    if (!has(w.output)) w.output = w.tok_embd;  // tied embeddings
    SIFT_BIND(w.rope_freqs, "rope_freqs.weight", {hp.n_rot / 2}, true);
    w.layers.resize(static_cast<size_t>(hp.n_layer));
    for (int il = 0; il < hp.n_layer; ++il) {
        LayerWeights& l = w.layers[static_cast<size_t>(il)];
        const std::string p = fmt::format("blk.{}.", il);
        SIFT_BIND(l.attn_norm, p + "attn_norm.weight", {e});
        SIFT_BIND(l.wq, p + "attn_q.weight", {e, q});
        SIFT_BIND(l.wk, p + "attn_k.weight", {e, kv});
        SIFT_BIND(l.wv, p + "attn_v.weight", {e, kv});
        SIFT_BIND(l.wo, p + "attn_output.weight", {q, e});
        if (qwen2) {
            SIFT_BIND(l.bq, p + "attn_q.bias", {q});
            SIFT_BIND(l.bk, p + "attn_k.bias", {kv});
            SIFT_BIND(l.bv, p + "attn_v.bias", {kv});
        }
        if (qk_norm) {
            SIFT_BIND(l.q_norm, p + "attn_q_norm.weight", {hd});
            SIFT_BIND(l.k_norm, p + "attn_k_norm.weight", {hd});
        }
        if (gemma) {
            SIFT_BIND(l.post_attn_norm, p + "post_attention_norm.weight", {e});
            SIFT_BIND(l.post_ffn_norm, p + "post_ffw_norm.weight", {e});
        }
        SIFT_BIND(l.ffn_norm, p + "ffn_norm.weight", {e});
        SIFT_BIND(l.w_gate, p + "ffn_gate.weight", {e, ff});
        SIFT_BIND(l.w_up, p + "ffn_up.weight", {e, ff});
        SIFT_BIND(l.w_down, p + "ffn_down.weight", {ff, e});
    }
#undef SIFT_BIND
    return w;
}

}  // namespace sift
