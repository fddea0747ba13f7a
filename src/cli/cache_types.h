// The KV cache element types of a command that loads a model: --cache-type sets K and V, and
// --cache-type-k / --cache-type-v (llama.cpp's -ctk / -ctv; CLI11 2.1 takes one letter after a
// single dash, so only the long forms exist) override each.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "core/result.h"
#include "model/model.h"

namespace sift::cli {

struct CacheTypeOptions {
    std::string both = "f16";
    std::string k;  // "": --cache-type's
    std::string v;
};

void add_cache_type_options(CLI::App& sub, CacheTypeOptions& o);

// Sets options.kv_type_k and kv_type_v; an error names the flag and the accepted values.
Status apply_cache_types(const CacheTypeOptions& o, ModelOptions& options);

}  // namespace sift::cli
