// Synthetic models: the tensor list, per-tensor types and metadata of a real model's shape, so
// `sift mkmodel` can write a complete GGUF with random weights for benchmarks.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "gguf/value.h"
#include "model/file_type.h"
#include "model/presets.h"
#include "tensor/dtype.h"

namespace sift {

enum class TensorRole { TENSOR_WEIGHT, TENSOR_NORM, TENSOR_BIAS };

struct TensorPlan {
    std::string name;
    std::array<int64_t, 2> ne;  // ne[0] is the row length
    int n_dims;
    DType type;
    TensorRole role;
};

// Tensors of the model in GGUF (llama.cpp) naming, with types chosen like llama.cpp's quantizer.
std::vector<TensorPlan> synthetic_tensor_plan(const ModelShape& shape, const FileTypeSpec& ftype);

struct MetadataEntry {
    std::string key;
    gguf::Value value;
};

// Architecture hyperparameters, general.* keys and a complete synthetic tokenizer (byte-level BPE
// for qwen/llama shapes, SentencePiece-style for gemma3) with n_vocab tokens.
std::vector<MetadataEntry> synthetic_metadata(const ModelShape& shape, const FileTypeSpec& ftype);

}  // namespace sift
