// Conversion between JSON documents (nlohmann) and Jinja values, for feeding chat templates.
// JSON stays in the cli/server layers; the tokenizer layer only sees jinja::Value.
#pragma once

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "tokenizer/jinja_value.h"

namespace sift::cli {

// Objects keep their key order (ordered_json), as Python's json.load does. Integers beyond int64
// are refused (the engine's integers are 64-bit).
Result<jinja::Value> json_to_jinja(const nlohmann::ordered_json& json);
// Parses JSON text and converts it; errors start with `what` (a file name or an option).
Result<jinja::Value> json_text_to_jinja(const std::string& text, const std::string& what);
// Lists, tuples and dicts become arrays and objects; Undefined and native objects are refused.
Result<nlohmann::ordered_json> jinja_to_json(const jinja::Value& value);

}  // namespace sift::cli
