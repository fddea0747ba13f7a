// `sift inspect`: what a GGUF holds (architecture, size, quant mix, hparams, tokenizer, tensors).
#include <fmt/format.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "gguf/gguf.h"
#include "model/file_type.h"

namespace sift::cli {
namespace {

using nlohmann::json;

struct InspectOptions {
    std::string path;
    bool json = false;
    bool tensors = false;
};

constexpr size_t kArrayPreview = 6;   // items shown of a long array
constexpr size_t kJsonArrayMax = 64;  // longer arrays are summarised in --json

// Shortest text that reads back to the stored value at its own precision (1e-06, not 9.99e-07).
std::string float_text(const gguf::Value& v) {
    const double d = std::get<double>(v.data);
    return v.type == gguf::ValueType::FLOAT32 ? fmt::format("{}", static_cast<float>(d))
                                              : fmt::format("{}", d);
}

std::string value_text(const gguf::Value& v);

std::string quote(const std::string& s, size_t max = 80) {
    std::string out;
    for (char c : s.substr(0, max)) {
        if (c == '\n')
            out += "\\n";
        else if (c == '\t')
            out += "\\t";
        else
            out += c;
    }
    return "\"" + out + (s.size() > max ? "\"..." : "\"");
}

std::string value_text(const gguf::Value& v) {
    if (const std::string* s = v.as_string()) return quote(*s);
    if (const gguf::Array* a = v.as_array()) {
        std::string out =
            fmt::format("[{} x {}]", gguf::value_type_name(a->element_type), a->items.size());
        for (size_t i = 0; i < a->items.size() && i < kArrayPreview; ++i) {
            out += (i == 0 ? " " : ", ") + value_text(a->items[i]);
        }
        return out + (a->items.size() > kArrayPreview ? ", ..." : "");
    }
    if (v.type == gguf::ValueType::BOOL) return std::get<uint64_t>(v.data) ? "true" : "false";
    if (const auto* u = std::get_if<uint64_t>(&v.data)) return fmt::format("{}", *u);
    if (const auto* i = std::get_if<int64_t>(&v.data)) return fmt::format("{}", *i);
    return float_text(v);
}

json value_json(const gguf::Value& v) {
    if (const std::string* s = v.as_string()) return *s;
    if (const gguf::Array* a = v.as_array()) {
        if (a->items.size() > kJsonArrayMax) {
            return {{"array_of", gguf::value_type_name(a->element_type)},
                    {"count", a->items.size()}};
        }
        json out = json::array();
        for (const gguf::Value& item : a->items) out.push_back(value_json(item));
        return out;
    }
    if (v.type == gguf::ValueType::BOOL) return std::get<uint64_t>(v.data) != 0;
    if (const auto* u = std::get_if<uint64_t>(&v.data)) return *u;
    if (const auto* i = std::get_if<int64_t>(&v.data)) return *i;
    return std::stod(float_text(v));
}

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

struct TypeUsage {
    int tensors = 0;
    int64_t elements = 0;
    uint64_t bytes = 0;
};

struct Summary {
    std::string arch;
    std::string name;
    std::string file_type;
    int64_t n_params = 0;
    uint64_t tensor_bytes = 0;
    std::map<std::string_view, TypeUsage> mix;
};

Summary summarize(const gguf::File& file) {
    Summary s;
    s.arch = file.get_string("general.architecture").ok() ? *file.get_string("general.architecture")
                                                          : "(missing general.architecture)";
    Result<std::string> name = file.get_string("general.name");
    s.name = name ? *name : "";
    Result<uint64_t> ftype = file.get_u64("general.file_type");
    s.file_type = ftype ? file_type_label(static_cast<uint32_t>(*ftype)) : "(not set)";
    for (const gguf::TensorInfo& t : file.tensors()) {
        TypeUsage& use = s.mix[dtype_name(t.type)];
        use.tensors += 1;
        use.elements += t.n_elements();
        use.bytes += t.byte_size;
        s.n_params += t.n_elements();
        s.tensor_bytes += t.byte_size;
    }
    return s;
}

std::string shape_text(const gguf::TensorInfo& t) {
    std::string out;
    for (int d = 0; d < t.n_dims; ++d) out += fmt::format("{}{}", d ? " x " : "", t.ne[d]);
    return out.empty() ? "scalar" : out;
}

// The tokenizer's special ids, with the token text where the vocabulary has it.
std::vector<std::pair<std::string, std::string>> special_tokens(const gguf::File& file) {
    std::vector<std::pair<std::string, std::string>> out;
    Result<const gguf::Array*> tokens = file.get_array("tokenizer.ggml.tokens");
    for (const char* which :
         {"bos", "eos", "eot", "eom", "unknown", "seperator", "padding", "mask"}) {
        Result<uint64_t> id = file.get_u64(fmt::format("tokenizer.ggml.{}_token_id", which));
        if (!id) continue;
        std::string text;
        if (tokens && *id < (*tokens)->items.size()) {
            if (const std::string* s = (*tokens)->items[*id].as_string()) text = " " + quote(*s);
        }
        out.emplace_back(which, fmt::format("{}{}", *id, text));
    }
    return out;
}

void print_text(const gguf::File& file, const Summary& s, const std::string& path,
                bool with_tensors) {
    fmt::print("file:          {} ({:.2f} MB, GGUF v{}, alignment {})\n", path,
               file.file_size() / 1e6, file.version(), file.alignment());
    fmt::print("architecture:  {}\n", s.arch);
    fmt::print("name:          {}\n", s.name);
    fmt::print("file type:     {}\n", s.file_type);
    fmt::print("parameters:    {} ({:.3f} B)\n", s.n_params, s.n_params / 1e9);
    fmt::print("tensors:       {} ({:.2f} MB, {:.2f} bits/weight)\n", file.tensors().size(),
               s.tensor_bytes / 1e6,
               s.n_params
                   ? 8.0 * static_cast<double>(s.tensor_bytes) / static_cast<double>(s.n_params)
                   : 0.0);

    fmt::print("\nquant mix:\n  {:<8} {:>7} {:>15} {:>12} {:>7}\n", "type", "tensors", "params",
               "MB", "bytes%");
    for (const auto& [type, use] : s.mix) {
        fmt::print("  {:<8} {:>7} {:>15} {:>12.2f} {:>6.1f}%\n", type, use.tensors, use.elements,
                   use.bytes / 1e6,
                   s.tensor_bytes ? 100.0 * static_cast<double>(use.bytes) /
                                        static_cast<double>(s.tensor_bytes)
                                  : 0.0);
    }

    fmt::print("\nhyperparameters:\n");
    for (const gguf::KeyValue& kv : file.metadata()) {
        if (starts_with(kv.key, s.arch + "."))
            fmt::print("  {:<44} {}\n", kv.key, value_text(kv.value));
    }

    fmt::print("\ntokenizer:\n");
    bool any_tokenizer = false;
    for (const gguf::KeyValue& kv : file.metadata()) {
        if (!starts_with(kv.key, "tokenizer.") || kv.key == "tokenizer.chat_template") continue;
        if (kv.key.find("_token_id") != std::string::npos) continue;
        any_tokenizer = true;
        fmt::print("  {:<44} {}\n", kv.key, value_text(kv.value));
    }
    for (const auto& [which, text] : special_tokens(file)) {
        any_tokenizer = true;
        fmt::print("  {:<44} {}\n", which + " token", text);
    }
    if (!any_tokenizer) fmt::print("  (none)\n");
    Result<std::string> tmpl = file.get_string("tokenizer.chat_template");
    fmt::print("  {:<44} {}\n", "chat template",
               tmpl ? fmt::format("present ({} bytes)", tmpl->size()) : std::string("absent"));

    fmt::print("\nother metadata:\n");
    for (const gguf::KeyValue& kv : file.metadata()) {
        if (starts_with(kv.key, s.arch + ".") || starts_with(kv.key, "tokenizer.")) continue;
        fmt::print("  {:<44} {}\n", kv.key, value_text(kv.value));
    }

    if (with_tensors) {
        fmt::print("\ntensors:\n  {:<40} {:<8} {:<22} {:>12} {:>14}\n", "name", "type", "shape",
                   "bytes", "offset");
        for (const gguf::TensorInfo& t : file.tensors()) {
            fmt::print("  {:<40} {:<8} {:<22} {:>12} {:>14}\n", t.name, dtype_name(t.type),
                       shape_text(t), t.byte_size, file.data_offset() + t.offset);
        }
    }
}

json to_json(const gguf::File& file, const Summary& s, const std::string& path, bool with_tensors) {
    json out = {{"path", path},
                {"file_size", file.file_size()},
                {"gguf_version", file.version()},
                {"alignment", file.alignment()},
                {"architecture", s.arch},
                {"name", s.name},
                {"file_type", s.file_type},
                {"parameters", s.n_params},
                {"tensor_count", file.tensors().size()},
                {"tensor_bytes", s.tensor_bytes}};
    json mix = json::object();
    for (const auto& [type, use] : s.mix) {
        mix[std::string(type)] = {
            {"tensors", use.tensors}, {"params", use.elements}, {"bytes", use.bytes}};
    }
    out["quant_mix"] = mix;
    json metadata = json::object();
    for (const gguf::KeyValue& kv : file.metadata()) metadata[kv.key] = value_json(kv.value);
    out["metadata"] = metadata;
    out["chat_template"] = file.find("tokenizer.chat_template") != nullptr;
    if (with_tensors) {
        json tensors = json::array();
        for (const gguf::TensorInfo& t : file.tensors()) {
            json shape = json::array();
            for (int d = 0; d < t.n_dims; ++d) shape.push_back(t.ne[d]);
            tensors.push_back({{"name", t.name},
                               {"type", dtype_name(t.type)},
                               {"shape", shape},
                               {"bytes", t.byte_size},
                               {"offset", file.data_offset() + t.offset}});
        }
        out["tensors"] = tensors;
    }
    return out;
}

int run_inspect(const InspectOptions& opt) {
    Result<std::unique_ptr<gguf::File>> file = gguf::File::open(opt.path);
    if (!file) {
        fmt::print(stderr, "sift: error: {}\n", file.message());
        return 1;
    }
    const Summary s = summarize(**file);
    if (opt.json) {
        fmt::print("{}\n", to_json(**file, s, opt.path, opt.tensors)
                               .dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    } else {
        print_text(**file, s, opt.path, opt.tensors);
    }
    return 0;
}

}  // namespace

void add_inspect_command(CLI::App& app, int& exit_code) {
    auto opt = std::make_shared<InspectOptions>();
    CLI::App* sub = app.add_subcommand("inspect", "Show what a GGUF model file holds");
    sub->add_option("MODEL", opt->path, "GGUF file")->required();
    sub->add_flag("--json", opt->json, "Print one JSON object");
    sub->add_flag("--tensors", opt->tensors,
                  "List every tensor (name, type, shape, bytes, offset)");
    sub->callback([opt, &exit_code] { exit_code = run_inspect(*opt); });
}

}  // namespace sift::cli
