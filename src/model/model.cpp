#include "model/model.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <span>

#include "core/log.h"
#include "model/context_budget.h"
#include "model/forward.h"

namespace sift {
namespace {

// Scratch bytes for one micro-batch of n tokens: the token metadata, the residual stream, the
// largest layer's intermediates (freed per layer) and the gathered output rows.
size_t scratch_bytes(const HParams& hp, int64_t n) {
    // + q_dim: the gathered queries of an attention probe; + n_ff: the FFN activation in the
    // down matmul's input type when that is not F32 (BF16: half of it).
    const int64_t per_layer =
        4 * int64_t{hp.n_embd} + 3 * hp.q_dim() + 2 * hp.kv_dim() + 3 * int64_t{hp.n_ff};
    const int64_t floats = n * (2 * int64_t{hp.n_embd} + per_layer);
    const int64_t ints = 8 * n;
    return static_cast<size_t>((floats + ints) * 4 + 64 * 64);
}

}  // namespace

int64_t Batch::n_outputs() const {
    return std::count(want_logits.begin(), want_logits.end(), uint8_t{1});
}

Model::~Model() {
    graphs_.reset();  // graphs bake in the buffers freed below
    kv_.reset();
    if (scratch_ != nullptr) backend_.free(scratch_);
    if (logits_buf_ != nullptr) backend_.free(logits_buf_);
    if (argmax_buf_ != nullptr) backend_.free(argmax_buf_);
    if (bsa_mask_ != nullptr) backend_.free(bsa_mask_);
    if (key_means_ != nullptr) backend_.free(key_means_);
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

    for (DType type : {options.kv_type_k, options.kv_type_v}) {
        const std::string error = KvCache::type_error(m->hp_, type);
        if (!error.empty()) return make_error("{}: {}", path, error);
    }
    const uint64_t kv_bytes_per_cell =
        KvCache::bytes_per_cell(m->hp_, options.kv_type_k, options.kv_type_v);
    int64_t n_ctx = options.n_ctx > 0 ? options.n_ctx : m->hp_.n_ctx_train;
    if (options.n_ctx <= 0) {
        // The training context, capped so the cache takes at most half the memory left after
        // the weights (the rest: activations, a second resident model, the OS).
        const int64_t fits =
            static_cast<int64_t>(backend.available_bytes() / 2 / kv_bytes_per_cell);
        if (fits < n_ctx) {
            SIFT_LOG_INFO("context capped at {} tokens by memory (model trained on {})", fits,
                          n_ctx);
            n_ctx = std::max<int64_t>(fits, 256);
        }
        n_ctx = std::min(n_ctx, kMaxContextTokens);
    } else {
        // An explicit context must fit beside the weights (the default one is capped above):
        // the cache, one micro-batch's activations, the attention's scratch for a cache this
        // size, and the key-block means a block-sparse decode keeps (allocated on its first
        // call).
        const int64_t block = BlockSparseParams{}.block;
        const uint64_t growing = backend.attention_scratch_bytes(
                                     m->hp_.kv_dim(), n_ctx, options.kv_type_k, options.kv_type_v) +
                                 static_cast<uint64_t>(m->hp_.n_layer) *
                                     backend.key_means_bytes(m->hp_.head_dim, m->hp_.n_head_kv,
                                                             (n_ctx + block - 1) / block);
        const ContextCost cost{
            kv_bytes_per_cell, growing,
            scratch_bytes(m->hp_, std::min<int64_t>(options.n_ubatch, n_ctx)),
            options.kv_type_k == DType::Q8_0 && options.kv_type_v == DType::Q8_0};
        const std::string fit =
            context_fit_error(n_ctx, cost, backend.available_bytes(), backend.name());
        if (!fit.empty()) return make_error("{}: {}", path, fit);
    }
    Result<std::unique_ptr<KvCache>> kv =
        KvCache::create(m->hp_, backend, n_ctx, options.kv_type_k, options.kv_type_v);
    if (!kv) return kv.error();
    m->kv_ = std::move(*kv);
    // A micro-batch never holds more tokens than the cache has cells: no scratch beyond that
    // (a 4K drafter with the GPU's 16384-token micro-batch would allocate ~4x what it can use).
    m->options_.n_ubatch =
        static_cast<int32_t>(std::min<int64_t>(options.n_ubatch, m->kv_->n_cells()));
    m->scratch_bytes_ = scratch_bytes(m->hp_, m->options_.n_ubatch);
    m->scratch_ = backend.alloc(m->scratch_bytes_);
    if (!options.dump_layers.empty()) std::filesystem::create_directories(options.dump_layers);
    const char* env = std::getenv("SIFT_CUDA_GRAPHS");
    const bool env_off = env != nullptr && std::strcmp(env, "0") == 0;
    if (options.cuda_graphs && !env_off && backend.graph_supported())
        m->graphs_ = std::make_unique<GraphCache>(backend);
    return m;
}

// The probe's device buffer [n_probe][n_cells] and where each ubatch's probing rows start.
struct Model::ProbeState {
    AttentionProbe* request = nullptr;
    void* buffer = nullptr;  // F32 [n_cells, n_probe]
    size_t next = 0;         // index into request->queries of the first not yet run
};

// A decode that may run block-sparse: where its sequence's position 0 sits, and the prompt's
// query blocks.
struct Model::SparseState {
    int64_t cell_begin = 0;
    int64_t n_qblocks_total = 0;
    int64_t means_valid = 0;  // leading key blocks whose means the caches hold (whole blocks)
};

// The ops.h block-sparse contract, on the host copies: one sequence, contiguous positions, and
// its cells from position 0 to the batch's last in cell order.
bool Model::block_sparse_applies(const Batch& batch, const std::vector<int32_t>& cells,
                                 int64_t& cell_begin) const {
    const size_t n = batch.size();
    const int32_t seq = batch.seq[0], p0 = batch.pos[0];
    for (size_t i = 0; i < n; ++i) {
        if (batch.seq[i] != seq || batch.pos[i] != p0 + static_cast<int32_t>(i)) return false;
    }
    cell_begin = static_cast<int64_t>(cells[0]) - p0;
    if (cell_begin < 0) return false;
    const std::span<const int32_t> cell_pos = kv_->host_cell_pos(), cell_seq = kv_->host_cell_seq();
    for (int64_t c = cell_begin; c <= cells[n - 1]; ++c) {
        const auto i = static_cast<size_t>(c);
        if (cell_seq[i] != seq || cell_pos[i] != c - cell_begin) return false;
    }
    return true;
}

Result<std::vector<float>> Model::decode(const Batch& batch, AttentionProbe* probe) {
    std::vector<float> logits;
    SIFT_TRY(decode_into(batch, probe, {.logits = &logits}));
    return logits;
}

Result<std::vector<int32_t>> Model::decode_argmax(const Batch& batch) {
    std::vector<int32_t> ids;
    SIFT_TRY(decode_into(batch, nullptr, {.argmax = &ids}));
    return ids;
}

Status Model::warmup() {
    // A whole micro-batch on a GPU: GEMM libraries pick (and lazily load) kernels by shape, and
    // the first prompt runs whole micro-batches; on the CPU 64 tokens (above the matrix-vector
    // widths) initialise everything there is at a fraction of a micro-batch's cost.
    const int64_t want = backend_.device() == Device::DEVICE_CPU ? 64 : options_.n_ubatch;
    const int64_t n = std::min<int64_t>(want, kv_->n_cells() - 1);
    if (n < 1) return {};
    Batch prompt;
    for (int64_t i = 0; i < n; ++i)
        prompt.add(static_cast<int32_t>(i % hp_.n_vocab), static_cast<int32_t>(i), 0, i + 1 == n);
    SIFT_TRY(decode_argmax(prompt));
    Batch step;
    step.add(0, static_cast<int32_t>(n), 0, true);
    SIFT_TRY(decode_argmax(step));
    backend_.synchronize();
    kv_->clear();
    return {};
}

Status Model::decode_into(const Batch& batch, AttentionProbe* probe, Outputs out) {
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
    if (probe != nullptr && probe->early_exit && probe->n_layers > 0 &&
        probe->n_layers < hp_.n_layer && batch.n_outputs() > 0)
        return make_error("an early-exit probe stops after layer {} of {}: no logits can be wanted",
                          probe->n_layers, hp_.n_layer);
    if (probe != nullptr) {
        for (size_t i = 0; i < probe->queries.size(); ++i) {
            const int32_t q = probe->queries[i];
            if (q < 0 || static_cast<size_t>(q) >= n || (i > 0 && q <= probe->queries[i - 1]))
                return make_error("probe query {} is not an increasing batch index below {}", q, n);
        }
    }
    // Claim every cell first so a full cache fails before anything runs.
    Result<std::vector<int32_t>> cells = kv_->place(batch.seq, batch.pos);
    if (!cells) {
        return make_error("{} (context is {} tokens; start with a larger -c)", cells.message(),
                          kv_->n_cells());
    }
    if (out.logits != nullptr) {
        out.logits->clear();
        out.logits->reserve(static_cast<size_t>(batch.n_outputs() * hp_.n_vocab));
    }
    if (out.argmax != nullptr) {
        out.argmax->clear();
        out.argmax->reserve(static_cast<size_t>(batch.n_outputs()));
    }
    ProbeState state;
    if (probe != nullptr && !probe->queries.empty()) {
        state.request = probe;
        const size_t bytes = probe->queries.size() * static_cast<size_t>(kv_->n_cells()) * 4;
        state.buffer = backend_.alloc(bytes);
        const std::vector<float> zeros(bytes / 4, 0.0f);
        backend_.upload(Tensor::view(state.buffer, DType::F32,
                                     {kv_->n_cells(), static_cast<int64_t>(probe->queries.size())},
                                     backend_.device()),
                        zeros.data(), bytes);
    }
    SparseState sparse;
    const bool use_sparse = bsa_.enabled && bsa_.params.block > 0 &&
                            block_sparse_applies(batch, *cells, sparse.cell_begin);
    if (use_sparse) sparse.n_qblocks_total = batch.pos.back() / bsa_.params.block + 1;
    for (size_t first = 0; first < n; first += static_cast<size_t>(options_.n_ubatch)) {
        const size_t count = std::min(n - first, static_cast<size_t>(options_.n_ubatch));
        forward_ubatch(batch, *cells, first, count, out, state.request ? &state : nullptr,
                       use_sparse ? &sparse : nullptr);
    }
    if (state.request != nullptr) {
        probe->probs_max.resize(probe->queries.size() * static_cast<size_t>(kv_->n_cells()));
        backend_.download(
            probe->probs_max.data(),
            Tensor::view(state.buffer, DType::F32,
                         {kv_->n_cells(), static_cast<int64_t>(probe->queries.size())},
                         backend_.device()),
            probe->probs_max.size() * 4);
        backend_.free(state.buffer);
    }
    return {};
}

void Model::forward_ubatch(const Batch& batch, const std::vector<int32_t>& cells, size_t first,
                           size_t count, Outputs outputs, ProbeState* probe, SparseState* sparse) {
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
    const int64_t n_out = static_cast<int64_t>(out_rows.size());
    // The token inputs in one upload (a decode step is latency-bound; each copy costs several
    // microseconds): ids, pos, seq, cells, output rows, each part 64-byte aligned.
    const int64_t stride = (t + 15) / 16 * 16;
    std::vector<int32_t> inputs(static_cast<size_t>(4 * stride + n_out));
    const int32_t* parts[] = {batch.tokens.data(), batch.pos.data(), batch.seq.data(),
                              cells.data()};
    for (size_t p = 0; p < 4; ++p) {
        std::copy_n(parts[p] + first, count, inputs.begin() + static_cast<ptrdiff_t>(p) * stride);
    }
    std::copy(out_rows.begin(), out_rows.end(), inputs.begin() + 4 * stride);
    const Tensor input_block = upload_i32(inputs.data(), static_cast<int64_t>(inputs.size()));
    auto input_part = [&](int64_t offset, int64_t n) {
        return Tensor::view(input_block.ptr<int32_t>() + offset, DType::I32, {n},
                            backend_.device());
    };
    ForwardContext c{backend_, hp_, w_, *kv_, arena, t};
    c.ids = input_part(0, t);
    c.pos = input_part(stride, t);
    c.seq = input_part(2 * stride, t);
    c.cells = input_part(3 * stride, t);
    ProbeInputs probe_in;
    if (probe != nullptr) {
        // This ubatch's probing tokens: local indices, their positions and sequences, and the rows
        // of the probe buffer they own.
        const std::vector<int32_t>& q = probe->request->queries;
        const size_t r0 = probe->next;
        std::vector<int32_t> rows, pos, seq;
        while (probe->next < q.size() && static_cast<size_t>(q[probe->next]) < first + count) {
            const size_t b = static_cast<size_t>(q[probe->next]);
            rows.push_back(static_cast<int32_t>(b - first));
            pos.push_back(batch.pos[b]);
            seq.push_back(batch.seq[b]);
            ++probe->next;
        }
        if (!rows.empty()) {
            const auto n_rows = static_cast<int64_t>(rows.size());
            probe_in.rows = upload_i32(rows.data(), n_rows);
            probe_in.pos = upload_i32(pos.data(), n_rows);
            probe_in.seq = upload_i32(seq.data(), n_rows);
            Tensor max = Tensor::view(static_cast<float*>(probe->buffer) + r0 * kv_->n_cells(),
                                      DType::F32, {kv_->used_end(), n_rows}, backend_.device());
            max.nb[1] = kv_->n_cells() * 4;
            max.nb[2] = max.nb[3] = max.nb[1] * n_rows;
            probe_in.max = max;
            probe_in.nope = probe->request->nope;
            probe_in.n_layers =
                probe->request->n_layers > 0 ? probe->request->n_layers : hp_.n_layer;
            c.probe = &probe_in;
        }
    }
    BlockSparseInputs bsa;
    if (sparse != nullptr && cells[first + count - 1] + 1 - sparse->cell_begin >= bsa_.min_cells) {
        const int64_t block = bsa_.params.block;
        bsa.params = bsa_.params;
        bsa.cell_begin = sparse->cell_begin;
        bsa.cell_end = cells[first + count - 1] + 1;
        bsa.n_qblocks_total = sparse->n_qblocks_total;
        const int64_t n_kb = (bsa.cell_end - bsa.cell_begin + block - 1) / block;
        const int64_t qb_first = batch.pos[first] / block;
        const int64_t qb_last = batch.pos[first + count - 1] / block;
        const int64_t n_qb = qb_last - qb_first + 1;
        bsa.dense_tail =
            dense_tail_blocks(qb_first, qb_last, bsa.n_qblocks_total, bsa.params.last_full);
        const auto bytes = static_cast<size_t>(n_kb * n_qb * hp_.n_head);
        if (bytes > bsa_mask_bytes_) {
            if (bsa_mask_ != nullptr) backend_.free(bsa_mask_);
            bsa_mask_ = backend_.alloc(bytes);
            bsa_mask_bytes_ = bytes;
        }
        bsa.mask = Tensor::view(bsa_mask_, DType::I8, {n_kb, n_qb, hp_.n_head}, backend_.device());
        // Key-block means kept across the decode's micro-batches, one cache per layer, sized
        // for the whole cache (allocated once, where the backend keeps them).
        const size_t means_bytes = backend_.key_means_bytes(hp_.head_dim, hp_.n_head_kv,
                                                            (kv_->n_cells() + block - 1) / block);
        if (means_bytes > 0) {
            if (key_means_ == nullptr) {
                key_means_ = backend_.alloc(means_bytes * static_cast<size_t>(hp_.n_layer));
                key_means_bytes_ = means_bytes;
            }
            bsa.key_means = static_cast<uint8_t*>(key_means_);
            bsa.key_means_bytes = key_means_bytes_;
            bsa.key_means_valid = sparse->means_valid;
        }
        c.bsa = &bsa;
    }
    c.dump_dir = options_.dump_layers;
    c.dump_index = n_dumped_;
    // An early-exit probe: only the probed layers run (for every micro-batch of the decode).
    if (probe != nullptr && probe->request->early_exit && probe->request->n_layers > 0 &&
        probe->request->n_layers < hp_.n_layer)
        c.layer_end = probe->request->n_layers;
    // Decode-sized micro-batches on a backend with graphs attend over a rounded cell range (the
    // same result: the extra cells are empty), graphs on or off, so both give the same bits.
    // Early exits are never captured (a graph would replay the short forward).
    const bool graph_shape = backend_.graph_supported() && t <= kGraphMaxTokens &&
                             c.layer_end == 0 && c.probe == nullptr && c.bsa == nullptr;
    c.cell_end = graph_shape ? graph_cell_end(kv_->used_end(), kv_->n_cells()) : kv_->used_end();
    Tensor argmax;  // I32 [n_out] on the device when only the argmax of each row leaves it
    if (n_out > 0) {
        c.out_rows = input_part(4 * stride, n_out);
        const size_t bytes = static_cast<size_t>(n_out * hp_.n_vocab) * sizeof(float);
        if (bytes > logits_bytes_) {
            if (logits_buf_ != nullptr) backend_.free(logits_buf_);
            logits_buf_ = backend_.alloc(bytes);
            logits_bytes_ = bytes;
        }
        c.logits = Tensor::view(logits_buf_, DType::F32, {hp_.n_vocab, n_out}, backend_.device());
        if (outputs.argmax != nullptr) {
            const auto ids_bytes = static_cast<size_t>(n_out) * sizeof(int32_t);
            if (ids_bytes > argmax_bytes_) {
                if (argmax_buf_ != nullptr) backend_.free(argmax_buf_);
                argmax_buf_ = backend_.alloc(ids_bytes);
                argmax_bytes_ = ids_bytes;
            }
            argmax = Tensor::view(argmax_buf_, DType::I32, {n_out}, backend_.device());
        }
    } else {
        c.out_rows = Tensor::view(nullptr, DType::I32, {0}, backend_.device());
    }
    // The inputs are on the device; from here on only ops run (a graph may record them).
    const size_t inputs_end = arena.used();
    auto compute = [&] {
        arena.reset(inputs_end);  // a failed capture runs this again from the same state
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
        if (argmax.data != nullptr) backend_.argmax(c.logits, argmax);
    };
    if (graphs_ != nullptr && graph_shape && c.dump_dir.empty()) {
        graphs_->run(GraphKey{t, n_out, c.cell_end, logits_buf_, argmax.data}, compute);
    } else {
        compute();
    }
    n_dumped_ = c.dump_index;
    bsa_calls_ += bsa.calls;
    // Blocks whose 128 positions this micro-batch covered up to its last are whole now.
    if (bsa.calls > 0 && bsa.key_means != nullptr)
        sparse->means_valid = (batch.pos[first + count - 1] + 1) / bsa_.params.block;
    if (n_out > 0 && outputs.argmax != nullptr) {
        std::vector<int32_t>& ids = *outputs.argmax;
        const size_t old = ids.size();
        ids.resize(old + static_cast<size_t>(n_out));
        backend_.download(ids.data() + old, argmax, static_cast<size_t>(n_out) * sizeof(int32_t));
    } else if (n_out > 0 && outputs.logits != nullptr) {
        std::vector<float>& logits = *outputs.logits;
        const size_t old = logits.size();
        logits.resize(old + static_cast<size_t>(n_out * hp_.n_vocab));
        backend_.download(logits.data() + old, c.logits,
                          static_cast<size_t>(n_out * hp_.n_vocab) * sizeof(float));
    }
}

}  // namespace sift
