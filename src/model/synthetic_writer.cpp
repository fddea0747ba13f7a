#include "model/synthetic_writer.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "gguf/gguf.h"
#include "model/synthetic.h"
#include "tensor/random_fill.h"

namespace sift {
namespace {

constexpr int64_t kChunkBytes = 64 << 20;  // bounded memory however large the model

// Norm weights sit near 1, as trained models' do.
std::vector<uint8_t> norm_values(int64_t n, std::mt19937_64& rng) {
    std::vector<uint8_t> bytes(static_cast<size_t>(n) * sizeof(float));
    std::normal_distribution<float> normal(1.0f, 0.05f);
    for (int64_t i = 0; i < n; ++i) {
        const float v = normal(rng);
        std::memcpy(bytes.data() + i * sizeof(float), &v, sizeof(float));
    }
    return bytes;
}

}  // namespace

Result<SyntheticWriteResult> synthetic_write(const ModelShape& shape, const FileTypeSpec& ftype,
                                             const std::string& path,
                                             const SyntheticWriteOptions& options) {
    const std::vector<TensorPlan> plan = synthetic_tensor_plan(shape, ftype);
    gguf::Writer writer;
    for (MetadataEntry& entry : synthetic_metadata(shape, ftype)) {
        writer.set(std::move(entry.key), std::move(entry.value));
    }
    SyntheticWriteResult result;
    result.n_tensors = plan.size();
    for (const TensorPlan& t : plan) {
        SIFT_TRY(
            writer.add_tensor(t.name, std::span<const int64_t>(t.ne.data(), t.n_dims), t.type));
        result.n_params += t.ne[0] * t.ne[1];
    }
    const std::string partial = path + ".partial";
    SIFT_TRY(writer.open(partial));
    result.bytes = writer.total_bytes();

    uint64_t written = 0;
    auto advance = [&](uint64_t bytes) {
        written += bytes;
        if (options.progress) options.progress(written, result.bytes);
    };
    std::map<DType, std::unique_ptr<RandomBlockSource>> sources;
    std::mt19937_64 rng(options.seed);
    std::vector<uint8_t> buffer;
    for (const TensorPlan& t : plan) {
        if (t.role == TensorRole::TENSOR_NORM) {
            const std::vector<uint8_t> bytes = norm_values(t.ne[0], rng);
            SIFT_TRY(writer.write(bytes));
            advance(bytes.size());
            continue;
        }
        std::unique_ptr<RandomBlockSource>& source = sources[t.type];
        if (!source) {
            source = std::make_unique<RandomBlockSource>(
                t.type, options.weight_std, options.seed + static_cast<uint64_t>(t.type));
        }
        const int64_t row_bytes = *dtype_row_bytes(t.type, t.ne[0]);
        const int64_t rows_per_chunk = std::max<int64_t>(1, kChunkBytes / row_bytes);
        for (int64_t row = 0; row < t.ne[1]; row += rows_per_chunk) {
            const int64_t rows = std::min(rows_per_chunk, t.ne[1] - row);
            const size_t bytes = static_cast<size_t>(rows * row_bytes);
            if (buffer.size() < bytes) buffer.resize(bytes);
            source->fill(buffer.data(), rows * t.ne[0]);
            SIFT_TRY(writer.write({buffer.data(), bytes}));
            advance(bytes);
        }
    }
    SIFT_TRY(writer.finish());
    std::error_code ec;
    std::filesystem::rename(partial, path, ec);
    if (ec) return make_error("{}: cannot rename to {}: {}", partial, path, ec.message());
    return result;
}

}  // namespace sift
