// Fast random tensor data of any computable type, for synthetic benchmark models.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "tensor/dtype.h"

namespace sift {

// Quantizes a pool of Gaussian samples once (so every block is valid, with finite scales), then
// fills buffers by copying runs of pool blocks from random starts: memcpy speed for tens of GB.
class RandomBlockSource {
  public:
    RandomBlockSource(DType type, float stddev, uint64_t seed);

    // Fills n_elements (a multiple of the block size) at dst.
    void fill(void* dst, int64_t n_elements);

  private:
    DType type_;
    int64_t block_size_;
    int64_t block_bytes_;
    int64_t pool_blocks_;
    std::vector<uint8_t> pool_;
    std::mt19937_64 rng_;
};

}  // namespace sift
