// GGUF general.file_type: llama.cpp's LLAMA_FTYPE_* ids, and the mixes sift can write.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "tensor/dtype.h"

namespace sift {

// A file type sift can write: a single type ("q8_0", "f16") or a llama.cpp mix ("q4_k_m").
struct FileTypeSpec {
    std::string_view name;
    uint32_t llama_ftype;  // GGUF general.file_type
    DType base;            // type of most 2-D weights
    DType embd;            // token embedding when an output matrix exists
    DType output;          // output matrix (or token embedding when tied)
    bool more_bits;        // Q6_K for attn_v and ffn_down on llama.cpp's "use_more_bits" layers
};

Result<FileTypeSpec> file_type_find(std::string_view name);
std::vector<std::string_view> file_type_names();

// Name of any general.file_type id llama.cpp defines ("Q4_K_M"), or "unknown (N)".
std::string file_type_label(uint32_t llama_ftype);

}  // namespace sift
