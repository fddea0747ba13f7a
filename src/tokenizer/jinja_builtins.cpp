// Attribute and item access and the Python methods of str, dict and list.
#include "tokenizer/jinja_builtins.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "tokenizer/jinja_eval.h"
#include "tokenizer/jinja_text.h"

namespace sift::jinja {
namespace {

// Python attributes of each type: a name in these lists resolves to a method (so `is defined`
// holds) even when sift does not implement it, in which case calling it says so.
const char* const kStrMethods[] = {
    "capitalize",   "casefold",    "center",    "count",      "encode",       "endswith",
    "expandtabs",   "find",        "format",    "format_map", "index",        "isalnum",
    "isalpha",      "isascii",     "isdecimal", "isdigit",    "isidentifier", "islower",
    "isnumeric",    "isprintable", "isspace",   "istitle",    "isupper",      "join",
    "ljust",        "lower",       "lstrip",    "maketrans",  "partition",    "removeprefix",
    "removesuffix", "replace",     "rfind",     "rindex",     "rjust",        "rpartition",
    "rsplit",       "rstrip",      "split",     "splitlines", "startswith",   "strip",
    "swapcase",     "title",       "translate", "upper",      "zfill"};
const char* const kDictMethods[] = {"clear", "copy",    "fromkeys",   "get",    "items", "keys",
                                    "pop",   "popitem", "setdefault", "update", "values"};
const char* const kListMethods[] = {"append", "clear", "copy",   "count",   "extend", "index",
                                    "insert", "pop",   "remove", "reverse", "sort"};
const char* const kTupleMethods[] = {"count", "index"};
// ImmutableSandboxedEnvironment refuses methods that mutate lists and dicts.
const char* const kUnsafeDict[] = {"clear", "pop", "popitem", "setdefault", "update"};
const char* const kUnsafeList[] = {"append", "clear",  "extend",  "insert",
                                   "pop",    "remove", "reverse", "sort"};

template <size_t N>
bool contains(const char* const (&names)[N], std::string_view name) {
    for (const char* n : names)
        if (name == n) return true;
    return false;
}

bool has_python_attribute(const Value& obj, std::string_view name) {
    switch (obj.kind()) {
        case ValueKind::VALUE_STRING:
            return contains(kStrMethods, name);
        case ValueKind::VALUE_DICT:
            return contains(kDictMethods, name);
        case ValueKind::VALUE_LIST:
            if (obj.flavor() == ListFlavor::LIST_PLAIN) return contains(kListMethods, name);
            if (obj.flavor() == ListFlavor::LIST_TUPLE) return contains(kTupleMethods, name);
            return false;
        default:
            return false;
    }
}

bool is_unsafe(const Value& obj, std::string_view name) {
    if (name.size() >= 2 && name[0] == '_' && name[1] == '_') return true;
    if (obj.is_dict()) return contains(kUnsafeDict, name);
    if (obj.is_list()) return contains(kUnsafeList, name);
    return false;
}

std::string object_type_repr(const Value& obj) {
    if (obj.is_none()) return "None";
    return py_type_name(obj) + " object";
}

Value missing_attribute(const Value& obj, std::string_view name) {
    return Value::undefined(py_repr_string(object_type_repr(obj)) + " has no attribute " +
                            py_repr_string(name));
}

Value unsafe_attribute(const Value& obj, std::string_view name) {
    return Value::undefined("access to attribute " + py_repr_string(name) + " of " +
                            py_repr_string(py_type_name(obj)) + " object is unsafe.");
}

// A method bound to its receiver: `"abc".startswith` before it is called.
class BoundMethod : public Object {
  public:
    BoundMethod(Value self, std::string name) : self_(std::move(self)), name_(std::move(name)) {}
    std::string type_name() const override { return "builtin_function_or_method"; }
    std::string repr() const override {
        return "<built-in method " + name_ + " of " + py_type_name(self_) + " object>";
    }
    bool callable() const override { return true; }
    Value call(Interpreter& interp, CallArgs& args) override {
        return call_method(interp, self_, name_, args);
    }

  private:
    Value self_;
    std::string name_;
};

Value python_attribute(const Value& obj, std::string_view name) {
    if (is_unsafe(obj, name)) return unsafe_attribute(obj, name);
    return Value::object(std::make_shared<BoundMethod>(obj, std::string(name)));
}

// Python's slice.indices(): clamps bounds for a sequence of `len` items.
void slice_indices(int64_t len, const Value& start_v, const Value& stop_v, const Value& step_v,
                   int64_t& start, int64_t& stop, int64_t& step) {
    auto as_index = [](const Value& v) -> std::optional<int64_t> {
        if (v.is_none()) return std::nullopt;
        if (v.is_undefined()) fail_undefined(v);
        if (!v.is_int() && !v.is_bool()) throw JinjaError("slice indices must be integers or None");
        return v.as_int();
    };
    step = as_index(step_v).value_or(1);
    if (step == 0) throw JinjaError("slice step cannot be zero");
    const int64_t lower = step < 0 ? -1 : 0;
    const int64_t upper = step < 0 ? len - 1 : len;
    auto clamp = [&](std::optional<int64_t> v, int64_t fallback) {
        if (!v) return fallback;
        int64_t x = *v;
        if (x < 0) {
            x += len;
            if (x < lower) x = lower;
        } else if (x > upper) {
            x = upper;
        }
        return x;
    };
    start = clamp(as_index(start_v), step < 0 ? upper : lower);
    stop = clamp(as_index(stop_v), step < 0 ? lower : upper);
}

template <typename T>
std::vector<T> slice_vector(const std::vector<T>& v, int64_t start, int64_t stop, int64_t step) {
    std::vector<T> out;
    if (step > 0) {
        for (int64_t i = start; i < stop; i += step) out.push_back(v[static_cast<size_t>(i)]);
    } else {
        for (int64_t i = start; i > stop; i += step) out.push_back(v[static_cast<size_t>(i)]);
    }
    return out;
}

}  // namespace

Value native_function(std::string name, NativeFunction::Fn fn) {
    return Value::object(std::make_shared<NativeFunction>(std::move(name), std::move(fn)));
}

ArgReader::ArgReader(const CallArgs& args, std::string what,
                     std::initializer_list<const char*> names)
    : args_(args), what_(std::move(what)), names_(names), slots_(names.size(), nullptr) {
    if (args.positional.size() > names_.size())
        throw JinjaError(what_ + " takes at most " + std::to_string(names_.size()) +
                         " argument(s) (" + std::to_string(args.positional.size()) + " given)");
    for (size_t i = 0; i < args.positional.size(); ++i) slots_[i] = &args.positional[i];
    for (const auto& [key, value] : args.keywords) {
        size_t i = 0;
        while (i < names_.size() && key != names_[i]) ++i;
        if (i == names_.size())
            throw JinjaError(what_ + " got an unexpected keyword argument '" + key + "'");
        if (slots_[i]) throw JinjaError(what_ + " got multiple values for argument '" + key + "'");
        slots_[i] = &value;
    }
}

bool ArgReader::has(size_t index) const {
    return index < slots_.size() && slots_[index] != nullptr;
}

const Value& ArgReader::get(size_t index) const {
    static const Value kAbsent;
    return has(index) ? *slots_[index] : kAbsent;
}

Value ArgReader::get_or(size_t index, Value fallback) const {
    return has(index) ? *slots_[index] : std::move(fallback);
}

int64_t arg_int(const ArgReader& r, size_t index, int64_t fallback) {
    if (!r.has(index) || r.get(index).is_none()) return fallback;
    const Value& v = r.get(index);
    if (v.is_int() || v.is_bool()) return v.as_int();
    if (v.is_undefined()) fail_undefined(v);
    throw JinjaError(r.what() + ": expected an integer argument, got '" + py_type_name(v) + "'");
}

bool arg_bool(const ArgReader& r, size_t index, bool fallback) {
    return r.has(index) ? py_truthy(r.get(index)) : fallback;
}

const std::string& arg_string(const ArgReader& r, size_t index, const char* param) {
    const Value& v = r.get(index);
    if (v.is_undefined()) {
        if (!r.has(index))
            throw JinjaError(r.what() + " missing required argument '" + param + "'");
        fail_undefined(v);
    }
    if (!v.is_string())
        throw JinjaError(r.what() + ": argument '" + param + "' must be str, not " +
                         py_type_name(v));
    return v.as_string();
}

std::string pad_text(const std::string& s, int64_t width, const std::string& fill, int where) {
    const auto len = static_cast<int64_t>(utf8_length(s));
    if (width <= len) return s;
    const int64_t total = width - len;
    // Python's center puts the extra character on the left when the string length is odd.
    int64_t left = where < 0 ? 0 : where > 0 ? total : total / 2 + (total & width & 1);
    std::string out;
    for (int64_t i = 0; i < left; ++i) out += fill;
    out += s;
    for (int64_t i = 0; i < total - left; ++i) out += fill;
    return out;
}

Value get_attribute(const Value& obj, std::string_view name) {
    switch (obj.kind()) {
        case ValueKind::VALUE_OBJECT:
            return obj.as_object().get_attr(name);
        case ValueKind::VALUE_DICT:
            if (has_python_attribute(obj, name) || (name.size() >= 2 && name.substr(0, 2) == "__"))
                return python_attribute(obj, name);
            if (const Value* v = obj.as_dict().find(name)) return *v;
            return missing_attribute(obj, name);
        default:
            if (has_python_attribute(obj, name)) return python_attribute(obj, name);
            return missing_attribute(obj, name);
    }
}

Value get_item(const Value& obj, const Value& key) {
    switch (obj.kind()) {
        case ValueKind::VALUE_DICT:
            if (key.is_string()) {
                if (const Value* v = obj.as_dict().find(key.as_string())) return *v;
                return get_attribute(obj, key.as_string());
            }
            break;
        case ValueKind::VALUE_LIST:
        case ValueKind::VALUE_STRING: {
            if (key.is_string()) return get_attribute(obj, key.as_string());
            const bool indexable =
                obj.is_string() ||
                (!obj.is_generator() && obj.flavor() != ListFlavor::LIST_DICT_KEYS &&
                 obj.flavor() != ListFlavor::LIST_DICT_VALUES &&
                 obj.flavor() != ListFlavor::LIST_DICT_ITEMS);
            if (!indexable || !(key.is_int() || key.is_bool())) break;
            int64_t i = key.as_int();
            if (obj.is_string()) {
                const std::u32string u = utf8_decode(obj.as_string());
                const auto n = static_cast<int64_t>(u.size());
                if (i < 0) i += n;
                if (i < 0 || i >= n) break;
                return Value(utf8_encode(std::u32string(1, u[static_cast<size_t>(i)])));
            }
            const ValueList& items = obj.as_list();
            const auto n = static_cast<int64_t>(items.size());
            if (i < 0) i += n;
            if (i < 0 || i >= n) break;
            return items[static_cast<size_t>(i)];
        }
        case ValueKind::VALUE_OBJECT:
            if (key.is_string()) return obj.as_object().get_attr(key.as_string());
            break;
        default:
            if (key.is_string()) return get_attribute(obj, key.as_string());
            break;
    }
    if (key.is_string()) return missing_attribute(obj, key.as_string());
    return Value::undefined(object_type_repr(obj) + " has no element " + py_repr(key));
}

Value get_slice(const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
    int64_t start, stop, step;
    if (obj.is_string()) {
        const std::u32string u = utf8_decode(obj.as_string());
        slice_indices(static_cast<int64_t>(u.size()), start_v, stop_v, step_v, start, stop, step);
        std::u32string out;
        if (step > 0) {
            for (int64_t i = start; i < stop; i += step) out.push_back(u[static_cast<size_t>(i)]);
        } else {
            for (int64_t i = start; i > stop; i += step) out.push_back(u[static_cast<size_t>(i)]);
        }
        return Value(utf8_encode(out));
    }
    if (obj.is_list() &&
        (obj.flavor() == ListFlavor::LIST_PLAIN || obj.flavor() == ListFlavor::LIST_TUPLE ||
         obj.flavor() == ListFlavor::LIST_RANGE)) {
        const ValueList& items = obj.as_list();
        slice_indices(static_cast<int64_t>(items.size()), start_v, stop_v, step_v, start, stop,
                      step);
        return Value::list(slice_vector(items, start, stop, step), obj.flavor());
    }
    // Jinja2 compiles slices to plain Python subscription, so other types raise.
    if (obj.is_dict()) throw JinjaError("unhashable type: 'slice'");
    throw JinjaError("'" + py_type_name(obj) + "' object is not subscriptable");
}

namespace {

std::optional<std::string> optional_string(const ArgReader& r, size_t index, const char* param) {
    if (!r.has(index) || r.get(index).is_none()) return std::nullopt;
    return arg_string(r, index, param);
}

// start/end arguments of find/count/startswith: applied by slicing the code points.
std::string sub_range(const std::string& s, const ArgReader& r, size_t start_index) {
    if (!r.has(start_index) && !r.has(start_index + 1)) return s;
    const Value sliced = get_slice(Value(s), r.get_or(start_index, Value::none()),
                                   r.get_or(start_index + 1, Value::none()), Value::none());
    return sliced.as_string();
}

bool affix_match(const std::string& s, const Value& affix, bool prefix, const std::string& what) {
    auto one = [&](const Value& a) {
        if (!a.is_string())
            throw JinjaError(what + " first arg must be str or a tuple of str, not " +
                             py_type_name(a));
        const std::string& x = a.as_string();
        if (x.size() > s.size()) return false;
        return prefix ? s.compare(0, x.size(), x) == 0
                      : s.compare(s.size() - x.size(), x.size(), x) == 0;
    };
    if (affix.is_list() && affix.flavor() == ListFlavor::LIST_TUPLE) {
        for (const Value& a : affix.as_list())
            if (one(a)) return true;
        return false;
    }
    return one(affix);
}

Value string_list(std::vector<std::string> parts) {
    ValueList out;
    out.reserve(parts.size());
    for (std::string& p : parts) out.emplace_back(std::move(p));
    return Value::list(std::move(out));
}

void no_args(const CallArgs& args, const std::string& what) {
    if (!args.positional.empty() || !args.keywords.empty())
        throw JinjaError(what + " takes no arguments");
}

bool all_chars(const std::string& s, bool (*pred)(char32_t)) {
    if (s.empty()) return false;
    for (char32_t c : utf8_decode(s))
        if (!pred(c)) return false;
    return true;
}

Value call_str_method(const std::string& s, std::string_view name, CallArgs& args) {
    const std::string what = "str." + std::string(name) + "()";
    if (name == "startswith" || name == "endswith") {
        ArgReader r(args, what, {"prefix", "start", "end"});
        if (!r.has(0)) throw JinjaError(what + " takes at least 1 argument");
        return Value(affix_match(sub_range(s, r, 1), r.get(0), name == "startswith", what));
    }
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
        ArgReader r(args, what, {"chars"});
        return Value(
            py_str_strip(s, optional_string(r, 0, "chars"), name != "rstrip", name != "lstrip"));
    }
    if (name == "split" || name == "rsplit") {
        ArgReader r(args, what, {"sep", "maxsplit"});
        auto sep = optional_string(r, 0, "sep");
        if (sep && sep->empty()) throw JinjaError("empty separator");
        return string_list(py_str_split(s, sep, arg_int(r, 1, -1), name == "rsplit"));
    }
    if (name == "splitlines") {
        ArgReader r(args, what, {"keepends"});
        return string_list(py_str_splitlines(s, arg_bool(r, 0, false)));
    }
    if (name == "replace") {
        ArgReader r(args, what, {"old", "new", "count"});
        return Value(
            py_str_replace(s, arg_string(r, 0, "old"), arg_string(r, 1, "new"), arg_int(r, 2, -1)));
    }
    if (name == "upper") {
        no_args(args, what);
        return Value(py_str_upper(s));
    }
    if (name == "lower") {
        no_args(args, what);
        return Value(py_str_lower(s));
    }
    if (name == "title") {
        no_args(args, what);
        return Value(py_str_title(s));
    }
    if (name == "capitalize") {
        no_args(args, what);
        return Value(py_str_capitalize(s));
    }
    if (name == "swapcase") {
        no_args(args, what);
        std::string out;
        for (char32_t c : utf8_decode(s))
            utf8_append(out, py_upper(c) != c ? py_upper(c) : py_lower(c));
        return Value(std::move(out));
    }
    if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
        ArgReader r(args, what, {"sub", "start", "end"});
        const std::string& sub = arg_string(r, 0, "sub");
        const bool right = name[0] == 'r';
        int64_t offset = 0;
        if (r.has(1) && !r.get(1).is_none()) {
            int64_t start = arg_int(r, 1, 0);
            const auto n = static_cast<int64_t>(utf8_length(s));
            if (start < 0) start = std::max<int64_t>(0, start + n);
            offset = std::min(start, n);
        }
        int64_t at = py_str_find(sub_range(s, r, 1), sub, right);
        if (at >= 0) at += offset;
        if (at < 0 && (name == "index" || name == "rindex"))
            throw JinjaError("substring not found");
        return Value(at);
    }
    if (name == "count") {
        ArgReader r(args, what, {"sub", "start", "end"});
        return Value(py_str_count(sub_range(s, r, 1), arg_string(r, 0, "sub")));
    }
    if (name == "join") {
        ArgReader r(args, what, {"iterable"});
        std::string out;
        bool first = true;
        for (const Value& v : py_iterate(r.get(0))) {
            if (!v.is_string())
                throw JinjaError("sequence item: expected str instance, " + py_type_name(v) +
                                 " found");
            if (!first) out += s;
            first = false;
            out += v.as_string();
        }
        return Value(std::move(out));
    }
    if (name == "center" || name == "ljust" || name == "rjust") {
        ArgReader r(args, what, {"width", "fillchar"});
        const std::string fill = r.has(1) ? arg_string(r, 1, "fillchar") : " ";
        if (utf8_length(fill) != 1)
            throw JinjaError("The fill character must be exactly one character long");
        return Value(pad_text(s, arg_int(r, 0, 0), fill,
                              name == "center"  ? 0
                              : name == "ljust" ? -1
                                                : 1));
    }
    if (name == "zfill") {
        ArgReader r(args, what, {"width"});
        const int64_t width = arg_int(r, 0, 0);
        const auto len = static_cast<int64_t>(utf8_length(s));
        if (width <= len) return Value(s);
        const bool sign = !s.empty() && (s[0] == '+' || s[0] == '-');
        std::string out = sign ? s.substr(0, 1) : "";
        out += std::string(static_cast<size_t>(width - len), '0');
        out += sign ? s.substr(1) : s;
        return Value(std::move(out));
    }
    if (name == "partition" || name == "rpartition") {
        ArgReader r(args, what, {"sep"});
        const std::string& sep = arg_string(r, 0, "sep");
        if (sep.empty()) throw JinjaError("empty separator");
        const size_t at = name == "partition" ? s.find(sep) : s.rfind(sep);
        ValueList parts;
        if (at == std::string::npos) {
            parts = name == "partition" ? ValueList{Value(s), Value(""), Value("")}
                                        : ValueList{Value(""), Value(""), Value(s)};
        } else {
            parts = {Value(s.substr(0, at)), Value(sep), Value(s.substr(at + sep.size()))};
        }
        return Value::list(std::move(parts), ListFlavor::LIST_TUPLE);
    }
    if (name == "removeprefix" || name == "removesuffix") {
        ArgReader r(args, what, {"affix"});
        const std::string& a = arg_string(r, 0, "affix");
        if (name == "removeprefix" && s.compare(0, a.size(), a) == 0)
            return Value(s.substr(a.size()));
        if (name == "removesuffix" && s.size() >= a.size() &&
            s.compare(s.size() - a.size(), a.size(), a) == 0)
            return Value(s.substr(0, s.size() - a.size()));
        return Value(s);
    }
    if (name == "isspace") {
        no_args(args, what);
        return Value(all_chars(s, py_isspace));
    }
    if (name == "isalnum") {
        no_args(args, what);
        return Value(all_chars(s, py_isalnum));
    }
    if (name == "isdigit" || name == "isdecimal" || name == "isnumeric") {
        no_args(args, what);
        if (s.empty()) return Value(false);
        for (char32_t c : utf8_decode(s)) {
            if (c >= '0' && c <= '9') continue;
            // Letters, spaces and ASCII are certainly not digits; other non-ASCII characters
            // (Arabic-Indic digits, superscripts, ...) need Unicode tables sift does not carry.
            if (c < 0x80 || py_isspace(c) || (py_isalnum(c) && py_is_cased(c))) return Value(false);
            throw JinjaError(what + " on '" + utf8_encode(std::u32string(1, c)) +
                             "' is not supported by sift's Jinja engine");
        }
        return Value(true);
    }
    if (name == "isalpha") {
        no_args(args, what);
        return Value(
            all_chars(s, [](char32_t c) { return py_isalnum(c) && !(c >= '0' && c <= '9'); }));
    }
    if (name == "isascii") {
        no_args(args, what);
        return Value(is_ascii(s));
    }
    if (name == "islower" || name == "isupper") {
        no_args(args, what);
        bool any_cased = false;
        for (char32_t c : utf8_decode(s)) {
            if (!py_is_cased(c)) continue;
            any_cased = true;
            if (name == "islower" ? py_lower(c) != c : py_upper(c) != c) return Value(false);
        }
        return Value(any_cased);
    }
    if (name == "format") {
        // Positional {} / {0} and named {name} fields without format specs.
        std::string out;
        size_t auto_index = 0;
        for (size_t i = 0; i < s.size(); ++i) {
            const char c = s[i];
            if (c == '{' && i + 1 < s.size() && s[i + 1] == '{') {
                out += '{';
                ++i;
                continue;
            }
            if (c == '}' && i + 1 < s.size() && s[i + 1] == '}') {
                out += '}';
                ++i;
                continue;
            }
            if (c != '{') {
                out += c;
                continue;
            }
            const size_t close = s.find('}', i);
            if (close == std::string::npos)
                throw JinjaError("Single '{' encountered in format string");
            const std::string field = s.substr(i + 1, close - i - 1);
            if (field.find_first_of(":!.[") != std::string::npos)
                throw JinjaError("str.format() field '{" + field +
                                 "}' is not supported by sift's Jinja engine");
            const Value* v = nullptr;
            if (field.empty() || std::all_of(field.begin(), field.end(),
                                             [](char d) { return d >= '0' && d <= '9'; })) {
                const size_t index = field.empty() ? auto_index++ : std::stoul(field);
                if (index >= args.positional.size())
                    throw JinjaError("Replacement index " + std::to_string(index) +
                                     " out of range");
                v = &args.positional[index];
            } else {
                for (const auto& [k, kv] : args.keywords)
                    if (k == field) v = &kv;
                if (!v) throw JinjaError("KeyError: '" + field + "'");
            }
            out += py_str(*v);
            i = close;
        }
        return Value(std::move(out));
    }
    throw JinjaError("string method '" + std::string(name) +
                     "' is not supported by sift's Jinja engine");
}

Value call_dict_method(const Value& self, std::string_view name, CallArgs& args) {
    const std::string what = "dict." + std::string(name) + "()";
    const Dict& d = self.as_dict();
    if (name == "get") {
        ArgReader r(args, what, {"key", "default"});
        if (!r.has(0)) throw JinjaError(what + " expected at least 1 argument");
        const Value& key = r.get(0);
        if (key.is_string())
            if (const Value* v = d.find(key.as_string())) return *v;
        return r.get_or(1, Value::none());
    }
    no_args(args, what);
    if (name == "items" || name == "keys" || name == "values") {
        ValueList out;
        out.reserve(d.items.size());
        for (const auto& [k, v] : d.items) {
            if (name == "items") {
                out.push_back(Value::list({Value(k), v}, ListFlavor::LIST_TUPLE));
            } else if (name == "keys") {
                out.emplace_back(k);
            } else {
                out.push_back(v);
            }
        }
        return Value::list(std::move(out), name == "items"  ? ListFlavor::LIST_DICT_ITEMS
                                           : name == "keys" ? ListFlavor::LIST_DICT_KEYS
                                                            : ListFlavor::LIST_DICT_VALUES);
    }
    if (name == "copy") return Value::dict(d);
    throw JinjaError("dict method '" + std::string(name) +
                     "' is not supported by sift's Jinja engine");
}

Value call_list_method(const Value& self, std::string_view name, CallArgs& args) {
    const std::string what = py_type_name(self) + "." + std::string(name) + "()";
    const ValueList& items = self.as_list();
    if (name == "count") {
        ArgReader r(args, what, {"value"});
        return Value(static_cast<int64_t>(std::count_if(
            items.begin(), items.end(), [&](const Value& v) { return py_equal(v, r.get(0)); })));
    }
    if (name == "index") {
        ArgReader r(args, what, {"value"});
        for (size_t i = 0; i < items.size(); ++i)
            if (py_equal(items[i], r.get(0))) return Value(static_cast<int64_t>(i));
        throw JinjaError(py_repr(r.get(0)) + " is not in list");
    }
    if (name == "copy") {
        no_args(args, what);
        return Value::list(items);
    }
    throw JinjaError("list method '" + std::string(name) +
                     "' is not supported by sift's Jinja engine");
}

}  // namespace

Value call_method(Interpreter&, const Value& self, std::string_view name, CallArgs& args) {
    switch (self.kind()) {
        case ValueKind::VALUE_STRING:
            return call_str_method(self.as_string(), name, args);
        case ValueKind::VALUE_DICT:
            return call_dict_method(self, name, args);
        case ValueKind::VALUE_LIST:
            return call_list_method(self, name, args);
        default:
            break;
    }
    throw JinjaError("'" + py_type_name(self) + "' object has no method '" + std::string(name) +
                     "'");
}

}  // namespace sift::jinja
