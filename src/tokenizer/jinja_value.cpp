#include "tokenizer/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "tokenizer/jinja_text.h"

namespace sift::jinja {

const Value* Dict::find(std::string_view key) const {
    for (const auto& [k, v] : items)
        if (k == key) return &v;
    return nullptr;
}

void Dict::set(std::string key, Value value) {
    for (auto& [k, v] : items) {
        if (k == key) {
            v = std::move(value);
            return;
        }
    }
    items.emplace_back(std::move(key), std::move(value));
}

Value::Value(std::string s)
    : kind_(ValueKind::VALUE_STRING), ptr_(std::make_shared<std::string>(std::move(s))) {}

Value Value::undefined(std::string hint) {
    Value v;
    v.ptr_ = std::make_shared<std::string>(std::move(hint));
    return v;
}

Value Value::none() {
    Value v;
    v.kind_ = ValueKind::VALUE_NONE;
    return v;
}

Value Value::markup(std::string s) {
    Value v(std::move(s));
    v.flag_ = 1;
    return v;
}

Value Value::list(ValueList items, ListFlavor flavor) {
    Value v;
    v.kind_ = ValueKind::VALUE_LIST;
    v.flag_ = static_cast<uint8_t>(flavor);
    v.ptr_ = std::make_shared<ValueList>(std::move(items));
    return v;
}

Value Value::failed_iterator(std::string message) {
    return list({Value(std::move(message))}, ListFlavor::LIST_FAILED);
}

Value Value::dict(Dict d) {
    Value v;
    v.kind_ = ValueKind::VALUE_DICT;
    v.ptr_ = std::make_shared<Dict>(std::move(d));
    return v;
}

Value Value::object(std::shared_ptr<Object> o) {
    Value v;
    v.kind_ = ValueKind::VALUE_OBJECT;
    v.ptr_ = std::move(o);
    return v;
}

double Value::as_float() const {
    if (is_float()) return f_;
    return static_cast<double>(as_int());
}

const std::string& Value::as_string() const {
    return *static_cast<const std::string*>(ptr_.get());
}
const ValueList& Value::as_list() const {
    return *static_cast<const ValueList*>(ptr_.get());
}
const Dict& Value::as_dict() const {
    return *static_cast<const Dict*>(ptr_.get());
}
Object& Value::as_object() const {
    return *static_cast<Object*>(ptr_.get());
}
std::shared_ptr<Object> Value::object_ptr() const {
    return std::static_pointer_cast<Object>(ptr_);
}

const std::string& Value::undefined_hint() const {
    static const std::string kPlain = "value is undefined";
    return ptr_ ? *static_cast<const std::string*>(ptr_.get()) : kPlain;
}

Value Object::get_attr(std::string_view name) const {
    return Value::undefined("'" + type_name() + " object' has no attribute '" + std::string(name) +
                            "'");
}

Value Object::call(Interpreter&, CallArgs&) {
    throw JinjaError("'" + type_name() + "' object is not callable");
}

std::string Namespace::repr() const {
    return "<Namespace " + py_repr(Value::dict(attrs)) + ">";
}

Value Namespace::get_attr(std::string_view name) const {
    if (const Value* v = attrs.find(name)) return *v;
    return Object::get_attr(name);
}

void fail_undefined(const Value& v) {
    throw JinjaError(v.undefined_hint());
}

std::string py_type_name(const Value& v) {
    switch (v.kind()) {
        case ValueKind::VALUE_UNDEFINED:
            return "Undefined";
        case ValueKind::VALUE_NONE:
            return "NoneType";
        case ValueKind::VALUE_BOOL:
            return "bool";
        case ValueKind::VALUE_INT:
            return "int";
        case ValueKind::VALUE_FLOAT:
            return "float";
        case ValueKind::VALUE_STRING:
            return v.is_markup() ? "Markup" : "str";
        case ValueKind::VALUE_DICT:
            return "dict";
        case ValueKind::VALUE_OBJECT:
            return v.as_object().type_name();
        case ValueKind::VALUE_LIST:
            break;
    }
    switch (v.flavor()) {
        case ListFlavor::LIST_TUPLE:
            return "tuple";
        case ListFlavor::LIST_DICT_ITEMS:
            return "dict_items";
        case ListFlavor::LIST_DICT_KEYS:
            return "dict_keys";
        case ListFlavor::LIST_DICT_VALUES:
            return "dict_values";
        case ListFlavor::LIST_RANGE:
            return "range";
        case ListFlavor::LIST_ITERATOR:
        case ListFlavor::LIST_FAILED:
            return "generator";
        case ListFlavor::LIST_PLAIN:
            break;
    }
    return "list";
}

std::string py_float_repr(double d) {
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
    // Shortest round-trip digits (what Python's repr uses), then Python's layout: fixed notation
    // for exponents in [-4, 16), scientific otherwise.
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
    std::string sci(buf, res.ptr);
    const bool negative = sci[0] == '-';
    if (negative) sci.erase(0, 1);
    const size_t epos = sci.find('e');
    std::string digits = sci.substr(0, epos);
    const int exponent = std::stoi(sci.substr(epos + 1));
    digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
    std::string out = negative ? "-" : "";
    if (exponent >= -4 && exponent < 16) {
        if (exponent < 0) {
            out += "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
        } else if (static_cast<int>(digits.size()) <= exponent + 1) {
            out +=
                digits + std::string(static_cast<size_t>(exponent + 1) - digits.size(), '0') + ".0";
        } else {
            out += digits.substr(0, static_cast<size_t>(exponent + 1)) + "." +
                   digits.substr(static_cast<size_t>(exponent + 1));
        }
        return out;
    }
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char exp_buf[16];
    snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    return out + exp_buf;
}

namespace {

void repr_sequence(std::string& out, const ValueList& items, const char* open, const char* close,
                   bool tuple) {
    out += open;
    for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        out += py_repr(items[i]);
    }
    if (tuple && items.size() == 1) out += ",";
    out += close;
}

}  // namespace

std::string py_repr(const Value& v) {
    switch (v.kind()) {
        case ValueKind::VALUE_UNDEFINED:
            return "Undefined";
        case ValueKind::VALUE_STRING:
            return v.is_markup() ? "Markup(" + py_repr_string(v.as_string()) + ")"
                                 : py_repr_string(v.as_string());
        case ValueKind::VALUE_OBJECT:
            return v.as_object().repr();
        case ValueKind::VALUE_DICT: {
            std::string out = "{";
            bool first = true;
            for (const auto& [k, item] : v.as_dict().items) {
                if (!first) out += ", ";
                first = false;
                out += py_repr_string(k) + ": " + py_repr(item);
            }
            return out + "}";
        }
        case ValueKind::VALUE_LIST: {
            std::string out;
            switch (v.flavor()) {
                case ListFlavor::LIST_PLAIN:
                    repr_sequence(out, v.as_list(), "[", "]", false);
                    break;
                case ListFlavor::LIST_TUPLE:
                    repr_sequence(out, v.as_list(), "(", ")", true);
                    break;
                case ListFlavor::LIST_DICT_ITEMS:
                case ListFlavor::LIST_DICT_KEYS:
                case ListFlavor::LIST_DICT_VALUES:
                    out = py_type_name(v);
                    repr_sequence(out, v.as_list(), "([", "])", false);
                    break;
                case ListFlavor::LIST_RANGE:
                case ListFlavor::LIST_ITERATOR:
                case ListFlavor::LIST_FAILED:
                    // Python prints the object's address here: nothing a template could rely on.
                    throw JinjaError("printing a " + py_type_name(v) +
                                     " object is not supported (convert it with '| list')");
            }
            return out;
        }
        default:
            return py_str(v);
    }
}

std::string py_str(const Value& v) {
    switch (v.kind()) {
        case ValueKind::VALUE_UNDEFINED:
            return "";
        case ValueKind::VALUE_NONE:
            return "None";
        case ValueKind::VALUE_BOOL:
            return v.as_bool() ? "True" : "False";
        case ValueKind::VALUE_INT:
            return std::to_string(v.as_int());
        case ValueKind::VALUE_FLOAT:
            return py_float_repr(v.as_float());
        case ValueKind::VALUE_STRING:
            return v.as_string();
        default:
            return py_repr(v);
    }
}

bool py_truthy(const Value& v) {
    switch (v.kind()) {
        case ValueKind::VALUE_UNDEFINED:
        case ValueKind::VALUE_NONE:
            return false;
        case ValueKind::VALUE_BOOL:
            return v.as_bool();
        case ValueKind::VALUE_INT:
            return v.as_int() != 0;
        case ValueKind::VALUE_FLOAT:
            return v.as_float() != 0.0;
        case ValueKind::VALUE_STRING:
            return !v.as_string().empty();
        case ValueKind::VALUE_LIST:
            // Generators are always true in Python, even when they would yield nothing.
            return v.is_generator() || !v.as_list().empty();
        case ValueKind::VALUE_DICT:
            return !v.as_dict().items.empty();
        case ValueKind::VALUE_OBJECT:
            return true;
    }
    return false;
}

bool py_equal(const Value& a, const Value& b) {
    if (a.is_number() && b.is_number()) {
        if (a.is_float() || b.is_float()) return a.as_float() == b.as_float();
        return a.as_int() == b.as_int();
    }
    if (a.kind() != b.kind()) return false;
    switch (a.kind()) {
        case ValueKind::VALUE_UNDEFINED:
        case ValueKind::VALUE_NONE:
            return true;
        case ValueKind::VALUE_STRING:
            return a.as_string() == b.as_string();
        case ValueKind::VALUE_LIST: {
            // Lists equal lists, tuples tuples; generators and dict.values() compare by identity;
            // dict.keys()/items() compare as sets.
            if (a.flavor() != b.flavor()) return false;
            if (a.is_generator() || a.flavor() == ListFlavor::LIST_DICT_VALUES)
                return a.identity() == b.identity();
            const ValueList& x = a.as_list();
            const ValueList& y = b.as_list();
            if (x.size() != y.size()) return false;
            if (a.flavor() == ListFlavor::LIST_DICT_KEYS ||
                a.flavor() == ListFlavor::LIST_DICT_ITEMS) {
                for (const Value& item : x)
                    if (std::none_of(y.begin(), y.end(),
                                     [&](const Value& o) { return py_equal(item, o); }))
                        return false;
                return true;
            }
            for (size_t i = 0; i < x.size(); ++i)
                if (!py_equal(x[i], y[i])) return false;
            return true;
        }
        case ValueKind::VALUE_DICT: {
            const Dict& x = a.as_dict();
            const Dict& y = b.as_dict();
            if (x.items.size() != y.items.size()) return false;
            for (const auto& [k, item] : x.items) {
                const Value* other = y.find(k);
                if (!other || !py_equal(item, *other)) return false;
            }
            return true;
        }
        case ValueKind::VALUE_OBJECT:
            return a.identity() == b.identity();
        default:
            return false;
    }
}

int py_compare(const Value& a, const Value& b) {
    if (a.is_number() && b.is_number()) {
        if (a.is_float() || b.is_float()) {
            const double x = a.as_float(), y = b.as_float();
            return x < y ? -1 : (x > y ? 1 : 0);
        }
        const int64_t x = a.as_int(), y = b.as_int();
        return x < y ? -1 : (x > y ? 1 : 0);
    }
    if (a.is_undefined()) fail_undefined(a);
    if (b.is_undefined()) fail_undefined(b);
    if (a.is_string() && b.is_string()) {
        // UTF-8 byte order is code point order, which is how Python compares str.
        const int c = a.as_string().compare(b.as_string());
        return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    if (a.is_list() && b.is_list() && a.flavor() == b.flavor() &&
        (a.flavor() == ListFlavor::LIST_PLAIN || a.flavor() == ListFlavor::LIST_TUPLE)) {
        const ValueList& x = a.as_list();
        const ValueList& y = b.as_list();
        for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
            if (py_equal(x[i], y[i])) continue;
            return py_compare(x[i], y[i]);
        }
        return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
    }
    throw JinjaError("'<' not supported between instances of '" + py_type_name(a) + "' and '" +
                     py_type_name(b) + "'");
}

ValueList py_iterate(const Value& v) {
    switch (v.kind()) {
        case ValueKind::VALUE_UNDEFINED:
            return {};
        case ValueKind::VALUE_LIST:
            if (v.flavor() == ListFlavor::LIST_FAILED) throw JinjaError(v.as_list()[0].as_string());
            return v.as_list();
        case ValueKind::VALUE_DICT: {
            ValueList keys;
            keys.reserve(v.as_dict().items.size());
            for (const auto& [k, item] : v.as_dict().items) keys.emplace_back(k);
            return keys;
        }
        case ValueKind::VALUE_STRING: {
            ValueList chars;
            const std::u32string u = utf8_decode(v.as_string());
            chars.reserve(u.size());
            for (char32_t c : u) chars.emplace_back(utf8_encode(std::u32string(1, c)));
            return chars;
        }
        default:
            throw JinjaError("'" + py_type_name(v) + "' object is not iterable");
    }
}

int64_t py_len(const Value& v) {
    switch (v.kind()) {
        case ValueKind::VALUE_UNDEFINED:
            return 0;
        case ValueKind::VALUE_STRING:
            return static_cast<int64_t>(utf8_length(v.as_string()));
        case ValueKind::VALUE_DICT:
            return static_cast<int64_t>(v.as_dict().items.size());
        case ValueKind::VALUE_LIST:
            if (!v.is_generator()) return static_cast<int64_t>(v.as_list().size());
            break;
        default:
            break;
    }
    throw JinjaError("object of type '" + py_type_name(v) + "' has no len()");
}

namespace {

void json_dump(std::string& out, const Value& v, const JsonOptions& opt, int depth) {
    if (depth > 512) throw JinjaError("tojson: value nested too deeply");
    auto newline_indent = [&](int level) {
        out.push_back('\n');
        for (int i = 0; i < level; ++i) out += opt.indent;
    };
    switch (v.kind()) {
        case ValueKind::VALUE_NONE:
            out += "null";
            return;
        case ValueKind::VALUE_BOOL:
            out += v.as_bool() ? "true" : "false";
            return;
        case ValueKind::VALUE_INT:
            out += std::to_string(v.as_int());
            return;
        case ValueKind::VALUE_FLOAT: {
            const double d = v.as_float();
            if (std::isnan(d)) {
                out += "NaN";
            } else if (std::isinf(d)) {
                out += d > 0 ? "Infinity" : "-Infinity";
            } else {
                out += py_float_repr(d);
            }
            return;
        }
        case ValueKind::VALUE_STRING:
            json_escape_string(out, v.as_string(), opt.ensure_ascii);
            return;
        case ValueKind::VALUE_LIST: {
            if (v.flavor() != ListFlavor::LIST_PLAIN && v.flavor() != ListFlavor::LIST_TUPLE)
                break;  // json.dumps refuses views and generators
            const ValueList& items = v.as_list();
            if (items.empty()) {
                out += "[]";
                return;
            }
            out.push_back('[');
            for (size_t i = 0; i < items.size(); ++i) {
                if (i) out += opt.item_separator;
                if (opt.has_indent) newline_indent(depth + 1);
                json_dump(out, items[i], opt, depth + 1);
            }
            if (opt.has_indent) newline_indent(depth);
            out.push_back(']');
            return;
        }
        case ValueKind::VALUE_DICT: {
            const auto& items = v.as_dict().items;
            if (items.empty()) {
                out += "{}";
                return;
            }
            std::vector<const std::pair<std::string, Value>*> order;
            order.reserve(items.size());
            for (const auto& item : items) order.push_back(&item);
            if (opt.sort_keys)
                std::stable_sort(order.begin(), order.end(),
                                 [](auto* a, auto* b) { return a->first < b->first; });
            out.push_back('{');
            for (size_t i = 0; i < order.size(); ++i) {
                if (i) out += opt.item_separator;
                if (opt.has_indent) newline_indent(depth + 1);
                json_escape_string(out, order[i]->first, opt.ensure_ascii);
                out += opt.key_separator;
                json_dump(out, order[i]->second, opt, depth + 1);
            }
            if (opt.has_indent) newline_indent(depth);
            out.push_back('}');
            return;
        }
        default:
            break;
    }
    throw JinjaError("Object of type " + py_type_name(v) + " is not JSON serializable");
}

}  // namespace

std::string py_json_dumps(const Value& v, const JsonOptions& options) {
    std::string out;
    json_dump(out, v, options, 0);
    return out;
}

}  // namespace sift::jinja
