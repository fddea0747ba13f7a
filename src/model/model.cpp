#include "model/model.h"


#include <algorithm>
#include <filesystem>

#include "core/log.h"
#include "model/forward.h"

namespace sift {
namespace {

// Scratch bytes for one micro-batch of n tokens: the token metadata, the residual stream, the
// largest layer's intermediates (freed per layer) and the gathered output rows.
size_t scratch_bytes(const HParams& hp, int64_t n) {
    const int64_t per_layer =
        4 * int64_t{hp.n_embd} + 2 * hp.q_dim() + 2 * hp.kv_dim() + 2 * int64_t{hp.n_ff};
    const int64_t floats = n * (2 * int64_t{hp.n_embd} + per_layer);
    const int64_t ints = 5 * n;
    return static_cast<size_t>((floats + ints) * 4 + 64 * 64);
}

}  // namespace

int64_t Batch::n_outputs() const {
    return std::count(want_logits.begin(), want_logits.end(), uint8_t{1});
}

Model::~Model() {
    kv_.reset();
    if (scratch_ != nullptr) backend_.free(scratch_);
    if (logits_buf_ != nullptr) backend_.free(logits_buf_);
}

Result<std::unique_ptr<Model>> Model::load(const std::string& path, Backend& backend,
                                           const ModelOptions& options) {
    std::unique_ptr<Model> m(new Model(backend));
    m->options_ = options;
    Result<std::unique_ptr<gguf::File>> file = gguf::File::open(path);
    if (!file) return file.error();
    m->file_ = std::move(*file);
    Result<HParams> hp = hparams_from_gguf(*m->file_);
    if (!hp) return make_error("{}: {}", path, hp.message());
    m->hp_ = *hp;
    Result<ModelWeights> w = weights_bind(*m->file_, m->hp_, backend, m->storage_);
    if (!w) return make_error("{}: {}", path, w.message());
    m->w_ = std::move(*w);
    if (options.n_ubatch <= 0) return make_error("n_ubatch must be > 0, got {}", options.n_ubatch);

    const DTypeTraits& kv_traits = dtype_traits(options.kv_type);
    const uint64_t kv_bytes_per_cell =
        2ull * static_cast<uint64_t>(m->hp_.n_layer) * static_cast<uint64_t>(m->hp_.kv_dim()) *
        static_cast<uint64_t>(kv_traits.block_bytes) / static_cast<uint64_t>(kv_traits.block_size);
    int64_t n_ctx = options.n_ctx > 0 ? options.n_ctx : m->hp_.n_ctx_train;
    if (options.n_ctx <= 0) {
        // The training context, capped so the cache takes at most half the memory left after
        // the weights (the rest: activations, a second resident model, the OS).
        const int64_t fits = static_cast<int64_t>(backend.available_bytes() / 2 / kv_bytes_per_cell);
        if (fits < n_ctx) {
            SIFT_LOG_INFO("context capped at {} tokens by memory (model trained on {})", fits,
                          n_ctx);
            n_ctx = std::max<int64_t>(fits, 256);
        }
    }
    Result<std::unique_ptr<KvCache>> kv = KvCache::create(m->hp_, backend, n_ctx, options.kv_type);
    if (!kv) return kv.error();
    m->kv_ = std::move(*kv);
    m->scratch_bytes_ = scratch_bytes(m->hp_, options.n_ubatch);
    m->scratch_ = backend.alloc(m->scratch_bytes_);
    if (!options.dump_layers.empty()) std::filesystem::create_directories(options.dump_layers);
    return m;
}

Result<std::vector<float>> Model::decode(const Batch& batch) {
    const size_t n = batch.size();
    if (n == 0) return make_error("empty batch");
    if (batch.pos.size() != n || batch.seq.size() != n || batch.want_logits.size() != n) {
        return make_error("batch arrays differ in length");
    }
    for (size_t i = 0; i < n; ++i) {
        if (batch.tokens[i] < 0 || batch.tokens[i] >= hp_.n_vocab) {
            return make_error("token {} at index {} is outside the vocabulary of {}",
                              batch.tokens[i], i, hp_.n_vocab);
        }
    }
    // Claim every cell first so a full cache fails before anything runs.
    Result<std::vector<int32_t>> cells = kv_->place(batch.seq, batch.pos);
    if (!cells) {
        return make_error("{} (context is {} tokens; start with a larger -c)", cells.message(),
                          kv_->n_cells());
    }
    std::vector<float> logits;
    logits.reserve(static_cast<size_t>(batch.n_outputs() * hp_.n_vocab));
    for (size_t first = 0; first < n; first += static_cast<size_t>(options_.n_ubatch)) {
        const size_t count = std::min(n - first, static_cast<size_t>(options_.n_ubatch));
        forward_ubatch(batch, *cells, first, count, logits);
    }
    return logits;
}

void Model::forward_ubatch(const Batch& batch, const std::vector<int32_t>& cells, size_t first,
                           size_t count, std::vector<float>& logits) {
    const int64_t t = static_cast<int64_t>(count);
    Arena arena(scratch_, scratch_bytes_, backend_.device());
    auto upload_i32 = [&](const int32_t* src, int64_t n) {
        Tensor tensor = arena.alloc(DType::I32, n, 1);
        tensor = Tensor::view(tensor.data, DType::I32, {n}, backend_.device());
        backend_.upload(tensor, src, static_cast<size_t>(n) * sizeof(int32_t));
        return tensor;
    };
    std::vector<int32_t> out_rows;
    for (size_t i = 0; i < count; ++i) {
        if (batch.want_logits[first + i]) out_rows.push_back(static_cast<int32_t>(i));
    }
    ForwardContext c{backend_, hp_, w_, *kv_, arena, t};
    c.ids = upload_i32(batch.tokens.data() + first, t);
    c.pos = upload_i32(batch.pos.data() + first, t);
    c.seq = upload_i32(batch.seq.data() + first, t);
    c.cells = upload_i32(cells.data() + first, t);
    c.dump_dir = options_.dump_layers;
    c.dump_index = n_dumped_;
    const int64_t n_out = static_cast<int64_t>(out_rows.size());
    if (n_out > 0) {
        c.out_rows = upload_i32(out_rows.data(), n_out);
        const size_t bytes = static_cast<size_t>(n_out * hp_.n_vocab) * sizeof(float);
        if (bytes > logits_bytes_) {
            if (logits_buf_ != nullptr) backend_.free(logits_buf_);
            logits_buf_ = backend_.alloc(bytes);
            logits_bytes_ = bytes;
        }
        c.logits = Tensor::view(logits_buf_, DType::F32, {hp_.n_vocab, n_out}, backend_.device());
    } else {
        c.out_rows = Tensor::view(nullptr, DType::I32, {0}, backend_.device());
    }
    switch (hp_.arch) {
        case Arch::ARCH_LLAMA:
        case Arch::ARCH_QWEN2:
        case Arch::ARCH_QWEN3:
            forward_llama(c);
            break;
        case Arch::ARCH_GEMMA3:
            forward_gemma3(c);
            break;
    }
    n_dumped_ = c.dump_index;
    if (n_out > 0) {
        const size_t old = logits.size();
        logits.resize(old + static_cast<size_t>(n_out * hp_.n_vocab));
        backend_.download(logits.data() + old, c.logits,
                          static_cast<size_t>(n_out * hp_.n_vocab) * sizeof(float));
    }
}

}  // namespace sift
