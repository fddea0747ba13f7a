// Jinja2 3.1 filters (jinja2/filters.py) with transformers' tojson.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <optional>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_eval.h"
#include "tokenizer/jinja_text.h"

namespace sift::jinja {
namespace {

// str(value) unless it already is a string (Markup stays Markup): Jinja2's soft_str.
std::string soft_str(const Value& v) {
    return v.is_string() ? v.as_string() : py_str(v);
}

Value text_result(const Value& input, std::string s) {
    return input.is_markup() ? Value::markup(std::move(s)) : Value(std::move(s));
}

Value ignore_case(const Value& v) {
    return v.is_string() ? Value(py_str_lower(v.as_string())) : v;
}

// make_attrgetter: "a.b.0" looks up item a, then b, then index 0 (items before attributes).
struct AttrGetter {
    std::vector<Value> parts;
    bool lower = false;
    Value fallback;  // used when the lookup gives Undefined (map's default=)

    AttrGetter(const Value& attribute, bool ignore_case_strings, Value fallback_value = Value())
        : lower(ignore_case_strings), fallback(std::move(fallback_value)) {
        if (attribute.is_undefined() || attribute.is_none()) return;
        if (!attribute.is_string()) {
            parts.push_back(attribute);
            return;
        }
        for (const std::string& p :
             py_str_split(attribute.as_string(), std::string("."), -1, false)) {
            const bool digits = !p.empty() && std::all_of(p.begin(), p.end(), [](char c) {
                return c >= '0' && c <= '9';
            });
            parts.push_back(digits ? Value(static_cast<int64_t>(std::stoll(p))) : Value(p));
        }
    }

    Value operator()(const Value& item) const {
        Value v = item;
        for (const Value& part : parts) {
            if (v.is_undefined()) fail_undefined(v);
            v = get_item(v, part);
        }
        if (v.is_undefined() && !fallback.is_undefined()) v = fallback;
        return lower ? ignore_case(v) : v;
    }
};

Value iterator(ValueList items) {
    return Value::list(std::move(items), ListFlavor::LIST_ITERATOR);
}

void sort_values(ValueList& items, const std::function<Value(const Value&)>& key, bool reverse) {
    std::vector<std::pair<Value, size_t>> keyed;
    keyed.reserve(items.size());
    for (size_t i = 0; i < items.size(); ++i) keyed.emplace_back(key(items[i]), i);
    // Python's sort is stable, also when reversed (equal keys keep their order).
    std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
        const int c = py_compare(a.first, b.first);
        return reverse ? c > 0 : c < 0;
    });
    ValueList out;
    out.reserve(items.size());
    for (const auto& [k, i] : keyed) out.push_back(items[i]);
    items = std::move(out);
}

std::optional<double> parse_py_float(std::string_view text) {
    std::string s = py_str_strip(text, std::nullopt, true, true);
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    if (s.empty()) return std::nullopt;
    errno = 0;
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size()) return std::nullopt;
    std::string lower = py_str_lower(s);
    if (!lower.empty() && (lower[0] == '+' || lower[0] == '-')) lower.erase(0, 1);
    if (lower.rfind("0x", 0) == 0)
        return std::nullopt;  // strtod takes hex, Python's float() does not
    return d;
}

std::optional<int64_t> parse_py_int(std::string_view text, int base) {
    std::string s = py_str_strip(text, std::nullopt, true, true);
    bool negative = false;
    if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
        negative = s[0] == '-';
        s.erase(0, 1);
    }
    if (s.size() > 2 && s[0] == '0') {
        const char p = static_cast<char>(s[1] | 32);
        if ((p == 'x' && base == 16) || (p == 'o' && base == 8) || (p == 'b' && base == 2))
            s.erase(0, 2);
    }
    if (s.empty() || s.front() == '_' || s.back() == '_' || s.find("__") != std::string::npos)
        return std::nullopt;
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, base);
    if (end != s.c_str() + s.size() || errno == ERANGE || s[0] == '+' || s[0] == '-')
        return std::nullopt;
    return negative ? -v : v;
}

// Jinja2's generator filters (map, select, unique, items, ...) run when their result is iterated,
// so a failure surfaces only then: `{% if x|map('upper') %}` is true even when x is a number.
template <FilterFn F>
Value lazy(Interpreter& interp, const Value& v, CallArgs& args) {
    try {
        return F(interp, v, args);
    } catch (const JinjaError& e) {
        return Value::failed_iterator(e.what());
    }
}

// ---- filters ----

Value f_abs(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader(args, "filter 'abs'", {});
    if (v.is_undefined()) fail_undefined(v);
    if (v.is_float()) return Value(std::fabs(v.as_float()));
    if (v.is_int() || v.is_bool()) {
        if (v.as_int() == INT64_MIN) throw JinjaError("integer overflow");
        return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
    }
    throw JinjaError("bad operand type for abs(): '" + py_type_name(v) + "'");
}

Value f_attr(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader r(args, "filter 'attr'", {"name"});
    const std::string name = py_str(r.get(0));
    if (v.is_undefined()) fail_undefined(v);
    if (v.is_dict()) {
        // Only Python attributes (the dict methods), never items.
        if (name == "get" || name == "items" || name == "keys" || name == "values" ||
            name == "copy")
            return get_attribute(v, name);
        return Value::undefined("'dict object' has no attribute " + py_repr(Value(name)));
    }
    return get_attribute(v, name);
}

Value f_batch(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader r(args, "filter 'batch'", {"linecount", "fill_with"});
    const int64_t n = arg_int(r, 0, 0);
    if (n <= 0) throw JinjaError("filter 'batch': linecount must be positive");
    ValueList out, tmp;
    for (const Value& item : py_iterate(v)) {
        if (static_cast<int64_t>(tmp.size()) == n) {
            out.push_back(Value::list(std::move(tmp)));
            tmp.clear();
        }
        tmp.push_back(item);
    }
    if (!tmp.empty()) {
        if (r.has(1) && !r.get(1).is_none())
            while (static_cast<int64_t>(tmp.size()) < n) tmp.push_back(r.get(1));
        out.push_back(Value::list(std::move(tmp)));
    }
    return iterator(std::move(out));
}

Value f_capitalize(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader(args, "filter 'capitalize'", {});
    return text_result(v, py_str_capitalize(soft_str(v)));
}

Value f_center(Interpreter& interp, const Value& v, CallArgs& args) {
    ArgReader r(args, "filter 'center'", {"width"});
    CallArgs inner;
    inner.positional.push_back(Value(arg_int(r, 0, 80)));
    return call_method(interp, Value(soft_str(v)), "center", inner);
}

Value f_default(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader r(args, "filter 'default'", {"default_value", "boolean"});
    if (v.is_undefined() || (arg_bool(r, 1, false) && !py_truthy(v))) return r.get_or(0, Value(""));
    return v;
}

Value f_dictsort(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader r(args, "filter 'dictsort'", {"case_sensitive", "by", "reverse"});
    if (!v.is_dict())
        throw JinjaError("filter 'dictsort' needs a mapping, got '" + py_type_name(v) + "'");
    const bool case_sensitive = arg_bool(r, 0, false);
    const std::string by = r.has(1) ? py_str(r.get(1)) : "key";
    if (by != "key" && by != "value")
        throw JinjaError("You can only sort by either \"key\" or \"value\"");
    const size_t pos = by == "key" ? 0 : 1;
    ValueList items;
    for (const auto& [k, item] : v.as_dict().items)
        items.push_back(Value::list({Value(k), item}, ListFlavor::LIST_TUPLE));
    sort_values(
        items,
        [&](const Value& pair) {
            const Value& x = pair.as_list()[pos];
            return case_sensitive ? x : ignore_case(x);
        },
        arg_bool(r, 2, false));
    return Value::list(std::move(items));
}

Value f_escape(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader(args, "filter 'escape'", {});
    if (v.is_markup()) return v;
    return Value::markup(html_escape(py_str(v)));
}

Value f_forceescape(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader(args, "filter 'forceescape'", {});
    return Value::markup(html_escape(py_str(v)));
}

Value f_first(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader(args, "filter 'first'", {});
    if (v.is_string()) {
        if (v.as_string().empty()) return Value::undefined("No first item, sequence was empty.");
        return get_item(v, Value(int64_t{0}));
    }
    if (v.is_list() && !v.is_generator()) {
        if (v.as_list().empty()) return Value::undefined("No first item, sequence was empty.");
        return v.as_list().front();
    }
    ValueList items = py_iterate(v);
    if (items.empty()) return Value::undefined("No first item, sequence was empty.");
    return items.front();
}

Value f_last(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader(args, "filter 'last'", {});
    if (v.is_generator()) throw JinjaError("'generator' object is not reversible");
    ValueList items = py_iterate(v);
    if (items.empty()) return Value::undefined("No last item, sequence was empty.");
    return items.back();
}

Value f_float(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader r(args, "filter 'float'", {"default"});
    if (v.is_undefined()) fail_undefined(v);
    if (v.is_number()) return Value(v.as_float());
    if (v.is_string())
        if (auto d = parse_py_float(v.as_string())) return Value(*d);
    return r.get_or(0, Value(0.0));
}

Value f_format(Interpreter&, const Value& v, CallArgs& args) {
    if (!args.positional.empty() && !args.keywords.empty())
        throw JinjaError("can't handle positional and keyword arguments at the same time");
    Value params;
    if (!args.keywords.empty()) {
        Dict d;
        for (const auto& [k, x] : args.keywords) d.set(k, x);
        params = Value::dict(std::move(d));
    } else {
        params = Value::list(args.positional, ListFlavor::LIST_TUPLE);
    }
    return Value(printf_format(soft_str(v), params));
}

Value f_indent(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader r(args, "filter 'indent'", {"width", "first", "blank"});
    if (v.is_undefined()) fail_undefined(v);
    if (!v.is_string())
        throw JinjaError("filter 'indent' needs a string, got '" + py_type_name(v) + "'");
    std::string indention;
    if (r.has(0) && r.get(0).is_string()) {
        indention = r.get(0).as_string();
    } else {
        indention.assign(static_cast<size_t>(std::max<int64_t>(0, arg_int(r, 0, 4))), ' ');
    }
    const std::vector<std::string> lines = py_str_splitlines(v.as_string() + "\n", false);
    std::string rv;
    if (arg_bool(r, 2, false)) {
        for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + indention : "") + lines[i];
    } else {
        rv = lines.empty() ? "" : lines[0];
        for (size_t i = 1; i < lines.size(); ++i)
            rv += "\n" + (lines[i].empty() ? "" : indention + lines[i]);
    }
    if (arg_bool(r, 1, false)) rv = indention + rv;
    return text_result(v, std::move(rv));
}

Value f_int(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader r(args, "filter 'int'", {"default", "base"});
    if (v.is_undefined()) fail_undefined(v);
    if (v.is_int() || v.is_bool()) return Value(v.as_int());
    if (v.is_float()) {
        const double d = v.as_float();
        if (std::isfinite(d) && std::fabs(d) < 9.2e18)
            return Value(static_cast<int64_t>(std::trunc(d)));
        return r.get_or(0, Value(int64_t{0}));
    }
    if (v.is_string()) {
        if (auto i = parse_py_int(v.as_string(), static_cast<int>(arg_int(r, 1, 10))))
            return Value(*i);
        if (auto d = parse_py_float(v.as_string()))
            if (std::isfinite(*d) && std::fabs(*d) < 9.2e18)
                return Value(static_cast<int64_t>(std::trunc(*d)));
    }
    return r.get_or(0, Value(int64_t{0}));
}

Value f_items(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader(args, "filter 'items'", {});
    if (v.is_undefined()) return iterator({});
    if (!v.is_dict()) throw JinjaError("Can only get item pairs from a mapping.");
    ValueList out;
    for (const auto& [k, item] : v.as_dict().items)
        out.push_back(Value::list({Value(k), item}, ListFlavor::LIST_TUPLE));
    return iterator(std::move(out));
}

Value f_join(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader r(args, "filter 'join'", {"d", "attribute"});
    const std::string sep = r.has(0) ? py_str(r.get(0)) : "";
    const AttrGetter getter(r.get(1), false);
    std::string out;
    bool first = true;
    for (const Value& item : py_iterate(v)) {
        if (!first) out += sep;
        first = false;
        const Value x = r.has(1) ? getter(item) : item;
        out += x.is_string() ? x.as_string() : py_str(x);
    }
    return Value(std::move(out));
}

Value f_length(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader(args, "filter 'length'", {});
    return Value(py_len(v));
}

Value f_list(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader(args, "filter 'list'", {});
    return Value::list(py_iterate(v));
}

Value f_lower(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader(args, "filter 'lower'", {});
    return text_result(v, py_str_lower(soft_str(v)));
}

Value f_upper(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader(args, "filter 'upper'", {});
    return text_result(v, py_str_upper(soft_str(v)));
}

Value f_map(Interpreter& interp, const Value& v, CallArgs& args) {
    if (!py_truthy(v)) return iterator({});  // Jinja2 maps nothing over a falsy value, even 0
    ValueList out;
    const ValueList items = py_iterate(v);
    if (args.positional.empty()) {
        Value attribute, fallback;
        for (const auto& [k, x] : args.keywords) {
            if (k == "attribute")
                attribute = x;
            else if (k == "default")
                fallback = x;
            else
                throw JinjaError("filter 'map': unexpected keyword argument '" + k + "'");
        }
        if (attribute.is_undefined())
            throw JinjaError("filter 'map' needs a filter name or attribute=");
        const AttrGetter getter(attribute, false, fallback);
        for (const Value& item : items) out.push_back(getter(item));
        return iterator(std::move(out));
    }
    const std::string name = py_str(args.positional[0]);
    for (const Value& item : items) {
        CallArgs inner;
        inner.positional.assign(args.positional.begin() + 1, args.positional.end());
        inner.keywords = args.keywords;
        out.push_back(interp.call_filter(name, item, inner));
    }
    return iterator(std::move(out));
}

Value select_or_reject(Interpreter& interp, const Value& v, CallArgs& args, bool by_attr,
                       bool select) {
    if (!py_truthy(v)) return iterator({});  // as in Jinja2: falsy input, empty result, no error
    size_t off = 0;
    std::optional<AttrGetter> getter;
    if (by_attr) {
        if (args.positional.empty()) throw JinjaError("Missing parameter for attribute name");
        getter.emplace(args.positional[0], false);
        off = 1;
    }
    std::string test;
    const bool has_test = args.positional.size() > off;
    if (has_test) test = py_str(args.positional[off]);
    ValueList out;
    for (const Value& item : py_iterate(v)) {
        const Value subject = getter ? (*getter)(item) : item;
        bool ok;
        if (has_test) {
            CallArgs inner;
            inner.positional.assign(args.positional.begin() + static_cast<long>(off) + 1,
                                    args.positional.end());
            inner.keywords = args.keywords;
            ok = interp.call_test(test, subject, inner);
        } else {
            ok = py_truthy(subject);
        }
        if (ok == select) out.push_back(item);
    }
    return iterator(std::move(out));
}

Value f_select(Interpreter& i, const Value& v, CallArgs& a) {
    return select_or_reject(i, v, a, false, true);
}
Value f_reject(Interpreter& i, const Value& v, CallArgs& a) {
    return select_or_reject(i, v, a, false, false);
}
Value f_selectattr(Interpreter& i, const Value& v, CallArgs& a) {
    return select_or_reject(i, v, a, true, true);
}
Value f_rejectattr(Interpreter& i, const Value& v, CallArgs& a) {
    return select_or_reject(i, v, a, true, false);
}

Value min_or_max(const Value& v, CallArgs& args, bool want_max, const char* what) {
    ArgReader r(args, what, {"case_sensitive", "attribute"});
    const AttrGetter getter(r.get(1), !arg_bool(r, 0, false));
    const ValueList items = py_iterate(v);
    if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
    size_t best = 0;
    Value best_key = getter(items[0]);
    for (size_t i = 1; i < items.size(); ++i) {
        Value key = getter(items[i]);
        const int c = py_compare(key, best_key);
        if (want_max ? c > 0 : c < 0) {
            best = i;
            best_key = std::move(key);
        }
    }
    return items[best];
}

Value f_max(Interpreter&, const Value& v, CallArgs& a) {
    return min_or_max(v, a, true, "filter 'max'");
}
Value f_min(Interpreter&, const Value& v, CallArgs& a) {
    return min_or_max(v, a, false, "filter 'min'");
}

Value f_replace(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader r(args, "filter 'replace'", {"old", "new", "count"});
    return Value(py_str_replace(py_str(v), py_str(r.get(0)), py_str(r.get(1)), arg_int(r, 2, -1)));
}

Value f_reverse(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader(args, "filter 'reverse'", {});
    if (v.is_string()) return get_slice(v, Value::none(), Value::none(), Value(int64_t{-1}));
    if (v.is_undefined()) return iterator({});  // reversed(Undefined) is an (empty) iterator
    ValueList items = py_iterate(v);
    std::reverse(items.begin(), items.end());
    // reversed() of a list is an iterator; a generator gets copied into a list first.
    const bool was_generator = v.is_generator();
    return was_generator || v.is_undefined() ? Value::list(std::move(items))
                                             : iterator(std::move(items));
}

Value f_round(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader r(args, "filter 'round'", {"precision", "method"});
    const int64_t precision = arg_int(r, 0, 0);
    const std::string method = r.has(1) ? py_str(r.get(1)) : "common";
    if (method != "common" && method != "ceil" && method != "floor")
        throw JinjaError("method must be common, ceil or floor");
    if (v.is_undefined()) fail_undefined(v);
    if (!v.is_number())
        throw JinjaError("type " + py_type_name(v) + " doesn't define __round__ method");
    const double scale = std::pow(10.0, static_cast<double>(precision));
    if (method != "common") {
        const double x =
            method == "ceil" ? std::ceil(v.as_float() * scale) : std::floor(v.as_float() * scale);
        return Value(x / scale);
    }
    if (!v.is_float()) {
        if (precision >= 0) return Value(v.as_int());
        return Value(static_cast<int64_t>(std::nearbyint(v.as_float() * scale) / scale));
    }
    const double d = v.as_float();
    if (!std::isfinite(d) || precision > 300) return Value(d);
    if (precision < 0) return Value(std::nearbyint(d * scale) / scale);
    // printf rounds the exact binary value half-to-even, as Python's round() does.
    char buf[512];
    snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(precision), d);
    return Value(std::strtod(buf, nullptr));
}

Value f_safe(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader(args, "filter 'safe'", {});
    return Value::markup(soft_str(v));
}

Value f_sort(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader r(args, "filter 'sort'", {"reverse", "case_sensitive", "attribute"});
    ValueList items = py_iterate(v);
    const bool lower = !arg_bool(r, 1, false);
    std::vector<AttrGetter> getters;
    if (r.has(2) && r.get(2).is_string()) {
        for (const std::string& a : py_str_split(r.get(2).as_string(), std::string(","), -1, false))
            getters.emplace_back(Value(a), lower);
    } else {
        getters.emplace_back(r.get(2), lower);
    }
    sort_values(
        items,
        [&](const Value& item) {
            if (getters.size() == 1) return getters[0](item);
            ValueList keys;
            for (const AttrGetter& g : getters) keys.push_back(g(item));
            return Value::list(std::move(keys));
        },
        arg_bool(r, 0, false));
    return Value::list(std::move(items));
}

Value f_string(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader(args, "filter 'string'", {});
    return v.is_string() ? v : Value(py_str(v));
}

Value f_sum(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader r(args, "filter 'sum'", {"attribute", "start"});
    const AttrGetter getter(r.get(0), false);
    Value total = r.get_or(1, Value(int64_t{0}));
    for (const Value& item : py_iterate(v))
        total = binary_op(BinaryOp::OP_ADD, total, getter(item));
    return total;
}

Value f_title(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader(args, "filter 'title'", {});
    // Words start after '-', whitespace or an opening bracket; each word is capitalized.
    std::string out;
    bool word_start = true;
    for (char32_t c : utf8_decode(soft_str(v))) {
        const bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || py_isspace(c);
        if (sep) {
            utf8_append(out, c);
            word_start = true;
            continue;
        }
        out += word_start ? py_str_upper(utf8_encode(std::u32string(1, c)))
                          : py_str_lower(utf8_encode(std::u32string(1, c)));
        word_start = false;
    }
    return text_result(v, std::move(out));
}

Value f_tojson(Interpreter&, const Value& v, CallArgs& args) {
    // transformers: json.dumps(x, ensure_ascii=False, indent=None, separators=None,
    // sort_keys=False)
    ArgReader r(args, "filter 'tojson'", {"ensure_ascii", "indent", "separators", "sort_keys"});
    JsonOptions opt;
    opt.ensure_ascii = arg_bool(r, 0, false);
    opt.sort_keys = arg_bool(r, 3, false);
    const Value& indent = r.get(1);
    if (!indent.is_undefined() && !indent.is_none()) {
        opt.has_indent = true;
        if (indent.is_string()) {
            opt.indent = indent.as_string();
        } else if (indent.is_int() || indent.is_bool()) {
            opt.indent.assign(static_cast<size_t>(std::max<int64_t>(0, indent.as_int())), ' ');
        } else {
            throw JinjaError("filter 'tojson': indent must be an integer or a string");
        }
        opt.item_separator = ",";
    }
    const Value& separators = r.get(2);
    if (!separators.is_undefined() && !separators.is_none()) {
        const ValueList seps = py_iterate(separators);
        if (seps.size() != 2 || !seps[0].is_string() || !seps[1].is_string())
            throw JinjaError("filter 'tojson': separators must be a pair of strings");
        opt.item_separator = seps[0].as_string();
        opt.key_separator = seps[1].as_string();
    }
    return Value(py_json_dumps(v, opt));
}

Value f_trim(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader r(args, "filter 'trim'", {"chars"});
    std::optional<std::string> chars;
    if (r.has(0) && !r.get(0).is_none()) chars = py_str(r.get(0));
    return text_result(v, py_str_strip(soft_str(v), chars, true, true));
}

Value f_unique(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader r(args, "filter 'unique'", {"case_sensitive", "attribute"});
    const AttrGetter getter(r.get(1), !arg_bool(r, 0, false));
    ValueList out, seen;
    for (const Value& item : py_iterate(v)) {
        Value key = getter(item);
        if (key.is_list() && key.flavor() != ListFlavor::LIST_TUPLE)
            throw JinjaError("unhashable type: 'list'");
        if (key.is_dict()) throw JinjaError("unhashable type: 'dict'");
        if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return py_equal(s, key); }))
            continue;
        seen.push_back(std::move(key));
        out.push_back(item);
    }
    return iterator(std::move(out));
}

Value f_wordcount(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader(args, "filter 'wordcount'", {});
    int64_t words = 0;
    bool in_word = false;
    for (char32_t c : utf8_decode(soft_str(v))) {
        const bool w = c == '_' || py_isalnum(c);
        if (w && !in_word) ++words;
        in_word = w;
    }
    return Value(words);
}

struct FilterEntry {
    const char* name;
    FilterFn fn;  // null: Jinja2 has it, sift does not
};

const FilterEntry kFilters[] = {
    {"abs", f_abs},
    {"attr", f_attr},
    {"batch", lazy<f_batch>},
    {"capitalize", f_capitalize},
    {"center", f_center},
    {"count", f_length},
    {"d", f_default},
    {"default", f_default},
    {"dictsort", f_dictsort},
    {"e", f_escape},
    {"escape", f_escape},
    {"filesizeformat", nullptr},
    {"first", f_first},
    {"float", f_float},
    {"forceescape", f_forceescape},
    {"format", f_format},
    {"groupby", nullptr},
    {"indent", f_indent},
    {"int", f_int},
    {"items", lazy<f_items>},
    {"join", f_join},
    {"last", f_last},
    {"length", f_length},
    {"list", f_list},
    {"lower", f_lower},
    {"map", lazy<f_map>},
    {"max", f_max},
    {"min", f_min},
    {"pprint", nullptr},
    {"random", nullptr},
    {"reject", lazy<f_reject>},
    {"rejectattr", lazy<f_rejectattr>},
    {"replace", f_replace},
    {"reverse", f_reverse},
    {"round", f_round},
    {"safe", f_safe},
    {"select", lazy<f_select>},
    {"selectattr", lazy<f_selectattr>},
    {"slice", nullptr},
    {"sort", f_sort},
    {"string", f_string},
    {"striptags", nullptr},
    {"sum", f_sum},
    {"title", f_title},
    {"tojson", f_tojson},
    {"trim", f_trim},
    {"truncate", nullptr},
    {"unique", lazy<f_unique>},
    {"upper", f_upper},
    {"urlencode", nullptr},
    {"urlize", nullptr},
    {"wordcount", f_wordcount},
    {"wordwrap", nullptr},
    {"xmlattr", nullptr},
};

}  // namespace

FilterFn lookup_filter(std::string_view name, bool& known) {
    for (const FilterEntry& f : kFilters) {
        if (name == f.name) {
            known = true;
            return f.fn;
        }
    }
    known = false;
    return nullptr;
}

}  // namespace sift::jinja
