#include "model/kv_cache.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace sift {
namespace {

// Elements [first, end) of a 1-D tensor.
Tensor tail(const Tensor& t, int64_t first) {
    Tensor out = t;
    out.data = static_cast<uint8_t*>(t.data) + first * t.nb[0];
    out.ne[0] = t.ne[0] - first;
    return out;
}

}  // namespace

std::string KvCache::type_error(const HParams& hp, DType type) {
    if (type != DType::F16 && type != DType::F32 && type != DType::Q8_0)
        return fmt::format("KV cache type {} is not supported (f32, f16, q8_0)", dtype_name(type));
    const int64_t block = dtype_traits(type).block_size;
    if (hp.head_dim % block != 0) {
        return fmt::format("KV cache type {} needs head_dim a multiple of {}; this model's is {}",
                           dtype_name(type), block, hp.head_dim);
    }
    return "";
}

uint64_t KvCache::bytes_per_cell(const HParams& hp, DType type_k, DType type_v) {
    const auto rows = static_cast<uint64_t>(*dtype_row_bytes(type_k, hp.kv_dim()) +
                                            *dtype_row_bytes(type_v, hp.kv_dim()));
    return static_cast<uint64_t>(hp.n_layer) * rows + 4 * sizeof(int32_t);
}

Result<std::unique_ptr<KvCache>> KvCache::create(const HParams& hp, Backend& backend,
                                                 int64_t n_cells, DType type_k, DType type_v) {
    for (DType type : {type_k, type_v}) {
        const std::string error = type_error(hp, type);
        if (!error.empty()) return make_error("{}", error);
    }
    if (n_cells <= 0) return make_error("KV cache needs at least one cell, got {}", n_cells);
    std::unique_ptr<KvCache> c(new KvCache(backend));
    c->n_cells_ = n_cells;
    c->type_k_ = type_k;
    c->type_v_ = type_v;
    c->cell_pos_.assign(static_cast<size_t>(n_cells), -1);
    c->cell_seq_.assign(static_cast<size_t>(n_cells), -1);
    for (int32_t il = 0; il < hp.n_layer; ++il) {
        for (std::vector<Tensor>* list : {&c->k_, &c->v_}) {
            const DType type = list == &c->k_ ? type_k : type_v;
            const size_t layer_bytes =
                static_cast<size_t>(*dtype_row_bytes(type, hp.kv_dim()) * n_cells);
            void* p = backend.alloc(layer_bytes);
            c->blocks_.push_back(p);
            c->bytes_ += layer_bytes;
            list->push_back(
                Tensor::view(p, type, {hp.head_dim, hp.n_head_kv, n_cells}, backend.device()));
        }
    }
    for (Tensor* t : {&c->cell_pos_dev_, &c->cell_seq_dev_}) {
        void* p = backend.alloc(static_cast<size_t>(n_cells) * sizeof(int32_t));
        c->blocks_.push_back(p);
        *t = Tensor::view(p, DType::I32, {n_cells}, backend.device());
    }
    c->sync_metadata(0, n_cells);
    return c;
}

KvCache::~KvCache() {
    for (void* p : blocks_) backend_.free(p);
}

void KvCache::sync_metadata(int64_t lo, int64_t hi) {
    n_used_ = 0;
    for (const auto& [seq, positions] : seq_positions_) {
        n_used_ += static_cast<int64_t>(positions.size());
    }
    used_end_ = std::max(used_end_, hi);
    while (used_end_ > 0 && cell_seq_[static_cast<size_t>(used_end_ - 1)] < 0) --used_end_;
    if (hi <= lo) return;
    const size_t bytes = static_cast<size_t>(hi - lo) * sizeof(int32_t);
    backend_.upload(tail(cell_pos_dev_, lo), cell_pos_.data() + lo, bytes);
    backend_.upload(tail(cell_seq_dev_, lo), cell_seq_.data() + lo, bytes);
}

bool KvCache::holds(int32_t seq, int32_t pos) const {
    auto it = seq_positions_.find(seq);
    return it != seq_positions_.end() && it->second.count(pos) != 0;
}

Result<std::vector<int32_t>> KvCache::place(std::span<const int32_t> seq,
                                            std::span<const int32_t> pos) {
    if (n_used_ + static_cast<int64_t>(seq.size()) > n_cells_) {
        return make_error("KV cache full: {} of {} cells used, {} more needed", n_used_, n_cells_,
                          seq.size());
    }
    std::set<std::pair<int32_t, int32_t>> in_batch;
    for (size_t t = 0; t < seq.size(); ++t) {
        if (seq[t] < 0 || pos[t] < 0) {
            return make_error("token {} has sequence {} and position {}: both must be >= 0", t,
                              seq[t], pos[t]);
        }
        if (holds(seq[t], pos[t])) {
            return make_error("sequence {} already holds position {}", seq[t], pos[t]);
        }
        if (!in_batch.emplace(seq[t], pos[t]).second) {
            return make_error("batch repeats sequence {} position {}", seq[t], pos[t]);
        }
    }
    std::vector<int32_t> cells;
    cells.reserve(seq.size());
    int64_t next = 0, lo = n_cells_, hi = 0;
    for (size_t t = 0; t < seq.size(); ++t) {
        // Lowest free cells first keeps [0, used_end) compact for attention.
        while (cell_seq_[static_cast<size_t>(next)] >= 0) ++next;
        cells.push_back(static_cast<int32_t>(next));
        cell_seq_[static_cast<size_t>(next)] = seq[t];
        cell_pos_[static_cast<size_t>(next)] = pos[t];
        seq_positions_[seq[t]].insert(pos[t]);
        lo = std::min(lo, next);
        hi = std::max(hi, next + 1);
        ++next;
    }
    sync_metadata(lo, hi);
    return cells;
}

void KvCache::truncate(int32_t seq, int32_t from_pos) {
    int64_t lo = n_cells_, hi = 0;
    for (int64_t i = 0; i < used_end_; ++i) {
        const size_t c = static_cast<size_t>(i);
        if (cell_seq_[c] >= 0 && (seq < 0 || cell_seq_[c] == seq) && cell_pos_[c] >= from_pos) {
            seq_positions_[cell_seq_[c]].erase(cell_pos_[c]);
            cell_seq_[c] = -1;
            cell_pos_[c] = -1;
            lo = std::min(lo, i);
            hi = std::max(hi, i + 1);
        }
    }
    std::erase_if(seq_positions_, [](const auto& entry) { return entry.second.empty(); });
    sync_metadata(lo, hi);
}

void KvCache::clear() {
    truncate(-1, 0);
}

Status KvCache::copy_seq(int32_t src, int32_t dst, int32_t up_to_pos) {
    std::vector<int32_t> from, positions;
    for (int64_t i = 0; i < used_end_; ++i) {
        const size_t c = static_cast<size_t>(i);
        if (cell_seq_[c] == src && cell_pos_[c] < up_to_pos) {
            from.push_back(static_cast<int32_t>(i));
            positions.push_back(cell_pos_[c]);
        }
    }
    const std::vector<int32_t> seqs(from.size(), dst);
    Result<std::vector<int32_t>> to = place(seqs, positions);
    if (!to) return to.error();
    // Cell copies go through the host to stay backend-agnostic; prefix reuse does this once.
    for (size_t l = 0; l < k_.size(); ++l) {
        for (const Tensor* t : {&k_[l], &v_[l]}) {
            const size_t cell_bytes = static_cast<size_t>(t->nb[2]);
            std::vector<uint8_t> buffer(cell_bytes);
            for (size_t i = 0; i < from.size(); ++i) {
                Tensor src_cell = *t, dst_cell = *t;
                src_cell.data = static_cast<uint8_t*>(t->data) + from[i] * t->nb[2];
                dst_cell.data = static_cast<uint8_t*>(t->data) + (*to)[i] * t->nb[2];
                backend_.download(buffer.data(), src_cell, cell_bytes);
                backend_.upload(dst_cell, buffer.data(), cell_bytes);
            }
        }
    }
    return {};
}

int32_t KvCache::seq_pos_max(int32_t seq) const {
    auto it = seq_positions_.find(seq);
    return it == seq_positions_.end() || it->second.empty() ? -1 : *it->second.rbegin();
}

}  // namespace sift
