// Writes a synthetic model (random weights of a shape) as a complete GGUF, streaming.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/result.h"
#include "model/file_type.h"
#include "model/presets.h"

namespace sift {

struct SyntheticWriteOptions {
    uint64_t seed = 42;
    float weight_std = 0.02f;  // the usual initializer scale of these models
    // Called with the bytes written so far and the total, after each chunk.
    std::function<void(uint64_t written, uint64_t total)> progress;
};

struct SyntheticWriteResult {
    uint64_t bytes = 0;
    int64_t n_params = 0;
    size_t n_tensors = 0;
};

// Writes to `path` + ".partial" and renames when complete, so a failed write leaves no model.
Result<SyntheticWriteResult> synthetic_write(const ModelShape& shape, const FileTypeSpec& ftype,
                                             const std::string& path,
                                             const SyntheticWriteOptions& options);

}  // namespace sift
