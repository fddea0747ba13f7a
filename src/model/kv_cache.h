// KV cache addressed by (sequence, position): cells hold one token's K and V for every layer.
// Positions need not be contiguous, several sequences may share the cache, and a sequence can be
// truncated (rollback) or copied (prefix reuse). Metadata changes go through place/truncate/
// copy_seq/clear, which keep the device copies of cell positions and sequences in sync.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "core/result.h"
#include "model/hparams.h"

namespace sift {

class KvCache {
  public:
    // K and V types each F32, F16 or Q8_0 (Q8_0 needs head_dim a multiple of 32).
    static Result<std::unique_ptr<KvCache>> create(const HParams& hp, Backend& backend,
                                                   int64_t n_cells, DType type_k, DType type_v);
    // Why a K/V type cannot hold this model's heads ("" when it can).
    static std::string type_error(const HParams& hp, DType type);
    // Bytes one cell takes: its K and V rows in every layer, and its position and sequence
    // (on the device and in the host copy). Types as create's.
    static uint64_t bytes_per_cell(const HParams& hp, DType type_k, DType type_v);
    ~KvCache();
    KvCache(const KvCache&) = delete;
    KvCache& operator=(const KvCache&) = delete;

    // Claims a free cell for each token (seq[i], pos[i]); errors when the cache is full or a
    // (seq, pos) is already present. Returns the cell index of each token.
    Result<std::vector<int32_t>> place(std::span<const int32_t> seq, std::span<const int32_t> pos);
    // Frees the cells of `seq` with position >= from_pos (-1 seq: every sequence).
    void truncate(int32_t seq, int32_t from_pos);
    // Copies the cells of `src` with position < up_to_pos into `dst` (data and metadata).
    Status copy_seq(int32_t src, int32_t dst, int32_t up_to_pos);
    void clear();

    int32_t seq_pos_max(int32_t seq) const;  // -1 when the sequence is empty
    int64_t n_cells() const { return n_cells_; }
    int64_t n_used() const { return n_used_; }
    int64_t used_end() const { return used_end_; }  // one past the highest used cell
    DType type_k() const { return type_k_; }
    DType type_v() const { return type_v_; }
    uint64_t bytes() const { return bytes_; }

    Tensor k(int32_t layer) const {
        return k_[static_cast<size_t>(layer)];
    }  // [head_dim, n_kv, n_cells]
    Tensor v(int32_t layer) const { return v_[static_cast<size_t>(layer)]; }
    Tensor cell_pos() const { return cell_pos_dev_; }  // I32 [n_cells]
    // Host copies of the metadata (seq -1: empty cell).
    std::span<const int32_t> host_cell_pos() const { return cell_pos_; }
    std::span<const int32_t> host_cell_seq() const { return cell_seq_; }
    Tensor cell_seq() const { return cell_seq_dev_; }  // I32 [n_cells]

  private:
    KvCache(Backend& backend) : backend_(backend) {}
    // Recounts usage and uploads metadata of cells [lo, hi) to the device.
    void sync_metadata(int64_t lo, int64_t hi);
    bool holds(int32_t seq, int32_t pos) const;

    Backend& backend_;
    int64_t n_cells_ = 0;
    int64_t n_used_ = 0;
    int64_t used_end_ = 0;
    DType type_k_ = DType::F16, type_v_ = DType::F16;
    uint64_t bytes_ = 0;
    std::vector<int32_t> cell_pos_;  // host copies
    std::vector<int32_t> cell_seq_;
    std::map<int32_t, std::set<int32_t>> seq_positions_;  // positions held per sequence
    std::vector<Tensor> k_, v_;
    std::vector<void*> blocks_;
    Tensor cell_pos_dev_, cell_seq_dev_;
};

}  // namespace sift
