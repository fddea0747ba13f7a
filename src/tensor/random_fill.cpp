#include "tensor/random_fill.h"

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "tensor/quant.h"

namespace sift {
namespace {
constexpr int64_t kPoolElements = 1 << 20;  // 4 MB of f32 samples: large enough to look random
constexpr int64_t kRunBlocks = 16;          // copied together; keeps the copy loop memcpy-bound
}  // namespace

RandomBlockSource::RandomBlockSource(DType type, float stddev, uint64_t seed)
    : type_(type), rng_(seed) {
    const DTypeTraits& traits = dtype_traits(type);
    SIFT_CHECK(traits.computable, "no quantizer for {}", traits.name);
    block_size_ = traits.block_size;
    block_bytes_ = traits.block_bytes;
    pool_blocks_ = kPoolElements / block_size_;
    std::vector<float> samples(static_cast<size_t>(kPoolElements));
    std::normal_distribution<float> normal(0.0f, stddev);
    for (float& x : samples) x = normal(rng_);
    pool_.resize(static_cast<size_t>(pool_blocks_ * block_bytes_));
    quantize_row(type, samples.data(), pool_.data(), kPoolElements);
}

void RandomBlockSource::fill(void* dst, int64_t n_elements) {
    SIFT_CHECK(n_elements % block_size_ == 0, "{} elements is not a whole number of blocks",
               n_elements);
    auto* out = static_cast<uint8_t*>(dst);
    int64_t blocks = n_elements / block_size_;
    std::uniform_int_distribution<int64_t> start(0, pool_blocks_ - kRunBlocks);
    while (blocks > 0) {
        const int64_t run = std::min(blocks, kRunBlocks);
        const int64_t bytes = run * block_bytes_;
        std::memcpy(out, pool_.data() + start(rng_) * block_bytes_, static_cast<size_t>(bytes));
        out += bytes;
        blocks -= run;
    }
}

}  // namespace sift
