#include "cli/cache_types.h"

namespace sift::cli {
namespace {

Result<DType> parse_cache_type(const std::string& name, const char* flag) {
    for (DType t : {DType::F32, DType::F16, DType::Q8_0}) {
        if (name == dtype_name(t)) return t;
    }
    return make_error("unknown {} '{}' (accepted: f32, f16, q8_0)", flag, name);
}

}  // namespace

void add_cache_type_options(CLI::App& sub, CacheTypeOptions& o) {
    sub.add_option("--cache-type", o.both, "KV cache type of K and V: f32, f16 or q8_0")
        ->capture_default_str();
    sub.add_option("--cache-type-k", o.k, "KV cache type of K (default: --cache-type)");
    sub.add_option("--cache-type-v", o.v, "KV cache type of V (default: --cache-type)");
}

Status apply_cache_types(const CacheTypeOptions& o, ModelOptions& options) {
    Result<DType> both = parse_cache_type(o.both, "--cache-type");
    if (!both) return both.error();
    options.kv_type_k = options.kv_type_v = *both;
    if (!o.k.empty()) {
        Result<DType> k = parse_cache_type(o.k, "--cache-type-k");
        if (!k) return k.error();
        options.kv_type_k = *k;
    }
    if (!o.v.empty()) {
        Result<DType> v = parse_cache_type(o.v, "--cache-type-v");
        if (!v) return v.error();
        options.kv_type_v = *v;
    }
    return {};
}

}  // namespace sift::cli
