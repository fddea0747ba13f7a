#include "cli/json_jinja.h"

#include <limits>

namespace sift::cli {
namespace {

using nlohmann::ordered_json;

constexpr int kMaxDepth = 512;  // deeper documents are refused instead of exhausting the stack

Result<jinja::Value> to_value(const ordered_json& j, int depth) {
    if (depth > kMaxDepth) return make_error("JSON nested deeper than {} levels", kMaxDepth);
    switch (j.type()) {
        case ordered_json::value_t::null:
            return jinja::Value::none();
        case ordered_json::value_t::boolean:
            return jinja::Value(j.get<bool>());
        case ordered_json::value_t::number_integer:
            return jinja::Value(j.get<int64_t>());
        case ordered_json::value_t::number_unsigned: {
            const auto u = j.get<uint64_t>();
            if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                return make_error("JSON integer {} does not fit in 64 bits", u);
            return jinja::Value(static_cast<int64_t>(u));
        }
        case ordered_json::value_t::number_float:
            return jinja::Value(j.get<double>());
        case ordered_json::value_t::string:
            return jinja::Value(j.get<std::string>());
        case ordered_json::value_t::array: {
            jinja::ValueList items;
            items.reserve(j.size());
            for (const ordered_json& item : j) {
                Result<jinja::Value> v = to_value(item, depth + 1);
                if (!v) return v.error();
                items.push_back(std::move(*v));
            }
            return jinja::Value::list(std::move(items));
        }
        case ordered_json::value_t::object: {
            jinja::Dict d;
            d.items.reserve(j.size());
            for (auto it = j.begin(); it != j.end(); ++it) {
                Result<jinja::Value> v = to_value(it.value(), depth + 1);
                if (!v) return v.error();
                d.set(it.key(), std::move(*v));
            }
            return jinja::Value::dict(std::move(d));
        }
        default:
            return make_error("unsupported JSON value (binary or discarded)");
    }
}

Result<ordered_json> to_json(const jinja::Value& v, int depth) {
    if (depth > kMaxDepth) return make_error("value nested deeper than {} levels", kMaxDepth);
    switch (v.kind()) {
        case jinja::ValueKind::VALUE_NONE:
            return ordered_json(nullptr);
        case jinja::ValueKind::VALUE_BOOL:
            return ordered_json(v.as_bool());
        case jinja::ValueKind::VALUE_INT:
            return ordered_json(v.as_int());
        case jinja::ValueKind::VALUE_FLOAT:
            return ordered_json(v.as_float());
        case jinja::ValueKind::VALUE_STRING:
            return ordered_json(v.as_string());
        case jinja::ValueKind::VALUE_LIST: {
            ordered_json out = ordered_json::array();
            for (const jinja::Value& item : v.as_list()) {
                Result<ordered_json> j = to_json(item, depth + 1);
                if (!j) return j.error();
                out.push_back(std::move(*j));
            }
            return out;
        }
        case jinja::ValueKind::VALUE_DICT: {
            ordered_json out = ordered_json::object();
            for (const auto& [key, item] : v.as_dict().items) {
                Result<ordered_json> j = to_json(item, depth + 1);
                if (!j) return j.error();
                out[key] = std::move(*j);
            }
            return out;
        }
        default:
            return make_error("a {} value has no JSON form", jinja::py_type_name(v));
    }
}

}  // namespace

Result<jinja::Value> json_to_jinja(const ordered_json& json) {
    return to_value(json, 0);
}

Result<ordered_json> jinja_to_json(const jinja::Value& value) {
    return to_json(value, 0);
}

Result<jinja::Value> json_text_to_jinja(const std::string& text, const std::string& what) {
    ordered_json j;
    try {
        j = ordered_json::parse(text);
    } catch (const ordered_json::parse_error& e) {
        return make_error("{}: invalid JSON: {}", what, e.what());
    }
    Result<jinja::Value> v = json_to_jinja(j);
    if (!v) return make_error("{}: {}", what, v.message());
    return v;
}

}  // namespace sift::cli
