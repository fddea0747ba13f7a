// Global functions templates can call (Jinja2's range, dict, namespace, joiner; transformers'
// raise_exception and strftime_now) and Python's printf-style `%` formatting.
#include <cmath>
#include <cstdio>
#include <ctime>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_eval.h"
#include "tokenizer/jinja_text.h"

namespace sift::jinja {
namespace {

// dict(...) and namespace(...) take a mapping or pairs, then keyword arguments.
Dict dict_from_args(const CallArgs& args, const char* what) {
    Dict d;
    if (args.positional.size() > 1)
        throw JinjaError(std::string(what) + " expected at most 1 argument");
    if (!args.positional.empty()) {
        const Value& src = args.positional[0];
        if (src.is_dict()) {
            d = src.as_dict();
        } else if (src.is_object() && src.as_object().is_namespace()) {
            d = static_cast<const Namespace&>(src.as_object()).attrs;
        } else {
            for (const Value& pair : py_iterate(src)) {
                const ValueList kv = py_iterate(pair);
                if (kv.size() != 2 || !kv[0].is_string())
                    throw JinjaError(std::string(what) + ": expected (str key, value) pairs");
                d.set(kv[0].as_string(), kv[1]);
            }
        }
    }
    for (const auto& [k, v] : args.keywords) d.set(k, v);
    return d;
}

std::tm current_local_time() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    return tm;
}

Value make_global(std::string_view name) {
    if (name == "range") {
        return native_function("range", [](Interpreter&, CallArgs& args) {
            ArgReader r(args, "range()", {"start", "stop", "step"});
            int64_t start = 0, stop = 0, step = 1;
            if (!r.has(0)) throw JinjaError("range expected at least 1 argument, got 0");
            if (r.has(1)) {
                start = arg_int(r, 0, 0);
                stop = arg_int(r, 1, 0);
                step = arg_int(r, 2, 1);
            } else {
                stop = arg_int(r, 0, 0);
            }
            if (step == 0) throw JinjaError("range() arg 3 must not be zero");
            ValueList out;
            for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
                // The sandbox's MAX_RANGE.
                if (out.size() >= 100000)
                    throw JinjaError(
                        "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
                out.emplace_back(i);
            }
            return Value::list(std::move(out), ListFlavor::LIST_RANGE);
        });
    }
    if (name == "dict") {
        return native_function("dict", [](Interpreter&, CallArgs& args) {
            return Value::dict(dict_from_args(args, "dict()"));
        });
    }
    if (name == "namespace") {
        return native_function("namespace", [](Interpreter& interp, CallArgs& args) {
            auto ns = std::make_shared<Namespace>();
            ns->attrs = dict_from_args(args, "namespace()");
            for (const auto& [k, v] : ns->attrs.items)
                if (!k.empty() && k[0] == '_')
                    throw JinjaError(
                        "Chat templates cannot store underscore-prefixed attributes on a "
                        "namespace, "
                        "but got '" +
                        k + "'. Please rename the attribute.");
            return interp.adopt(ns);
        });
    }
    if (name == "raise_exception") {
        return native_function("raise_exception", [](Interpreter&, CallArgs& args) -> Value {
            ArgReader r(args, "raise_exception()", {"message"});
            throw JinjaError(py_str(r.get(0)));
        });
    }
    if (name == "strftime_now") {
        return native_function("strftime_now", [](Interpreter& interp, CallArgs& args) {
            ArgReader r(args, "strftime_now()", {"format"});
            const std::string& format = arg_string(r, 0, "format");
            const std::tm tm = interp.options().now ? *interp.options().now : current_local_time();
            if (format.empty()) return Value("");
            std::string buf(256 + format.size() * 8, '\0');
            const size_t n = std::strftime(buf.data(), buf.size(), format.c_str(), &tm);
            buf.resize(n);
            return Value(std::move(buf));
        });
    }
    if (name == "joiner") {
        return native_function("joiner", [](Interpreter&, CallArgs& args) {
            ArgReader r(args, "joiner()", {"sep"});
            const std::string sep = r.has(0) ? py_str(r.get(0)) : ", ";
            auto used = std::make_shared<bool>(false);
            return native_function("joiner", [sep, used](Interpreter&, CallArgs&) {
                if (!*used) {
                    *used = true;
                    return Value("");
                }
                return Value(sep);
            });
        });
    }
    if (name == "cycler" || name == "lipsum") {
        const std::string n(name);
        return native_function(n, [n](Interpreter&, CallArgs&) -> Value {
            throw JinjaError("global function '" + n + "' is not supported by sift's Jinja engine");
        });
    }
    return Value();
}

}  // namespace

Value builtin_global(std::string_view name) {
    static const char* const kNames[] = {"range",        "dict",   "namespace", "raise_exception",
                                         "strftime_now", "joiner", "cycler",    "lipsum"};
    static const std::vector<Value> kGlobals = [] {
        std::vector<Value> g;
        for (const char* n : kNames) g.push_back(make_global(n));
        return g;
    }();
    for (size_t i = 0; i < std::size(kNames); ++i)
        if (name == kNames[i]) return kGlobals[i];
    return Value();
}

std::string printf_format(const std::string& fmt, const Value& args) {
    ValueList values;
    const Dict* mapping = nullptr;
    // Python does not complain about unused arguments when the single argument supports
    // indexing (a list, dict or Jinja's Undefined): 'abc' % [] is 'abc', 'abc' % 1 is an error.
    bool indexable = false;
    if (args.is_list() && args.flavor() == ListFlavor::LIST_TUPLE) {
        values = args.as_list();
    } else {
        values.push_back(args);
        if (args.is_dict()) mapping = &args.as_dict();
        indexable = args.is_dict() || args.is_undefined() ||
                    (args.is_list() && (args.flavor() == ListFlavor::LIST_PLAIN ||
                                        args.flavor() == ListFlavor::LIST_RANGE));
    }
    std::string out;
    size_t next = 0;
    for (size_t i = 0; i < fmt.size(); ++i) {
        if (fmt[i] != '%') {
            out.push_back(fmt[i]);
            continue;
        }
        if (++i >= fmt.size()) throw JinjaError("incomplete format");
        const Value* v = nullptr;
        if (fmt[i] == '(') {
            const size_t close = fmt.find(')', i);
            if (close == std::string::npos) throw JinjaError("incomplete format key");
            if (args.is_undefined()) fail_undefined(args);
            if (!mapping) throw JinjaError("format requires a mapping");
            v = mapping->find(fmt.substr(i + 1, close - i - 1));
            if (!v) throw JinjaError("KeyError: '" + fmt.substr(i + 1, close - i - 1) + "'");
            i = close + 1;
        }
        std::string flags;
        while (i < fmt.size() && std::string_view("-+ 0#").find(fmt[i]) != std::string_view::npos)
            flags += fmt[i++];
        std::string width;
        while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') width += fmt[i++];
        std::string precision;
        if (i < fmt.size() && fmt[i] == '.') {
            precision = ".";
            ++i;
            while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') precision += fmt[i++];
        }
        if (i >= fmt.size()) throw JinjaError("incomplete format");
        const char conv = fmt[i];
        if (conv == '%') {
            out.push_back('%');
            continue;
        }
        if (!v) {
            if (next >= values.size()) throw JinjaError("not enough arguments for format string");
            v = &values[next++];
        }
        std::string piece;
        char buf[512];
        const std::string spec = "%" + flags + width + precision;
        switch (conv) {
            case 's':
                piece = py_str(*v);
                break;
            case 'r':
                piece = py_repr(*v);
                break;
            case 'd':
            case 'i':
            case 'x':
            case 'X':
            case 'o':
                if (!v->is_number())
                    throw JinjaError(std::string("%") + conv +
                                     " format: a real number is required, not " + py_type_name(*v));
                snprintf(buf, sizeof(buf), (spec + "ll" + (conv == 'i' ? 'd' : conv)).c_str(),
                         static_cast<long long>(v->is_float() ? std::trunc(v->as_float())
                                                              : v->as_int()));
                out += buf;
                continue;
            case 'f':
            case 'F':
            case 'e':
            case 'E':
            case 'g':
            case 'G':
                if (!v->is_number())
                    throw JinjaError(std::string("%") + conv +
                                     " format: a real number is required, not " + py_type_name(*v));
                snprintf(buf, sizeof(buf), (spec + conv).c_str(), v->as_float());
                out += buf;
                continue;
            default:
                throw JinjaError(std::string("unsupported format character '") + conv + "'");
        }
        if (!width.empty() || precision.size() > 1) {
            if (precision.size() > 1)
                piece = utf8_encode(utf8_decode(piece).substr(0, std::stoul(precision.substr(1))));
            const int64_t w = width.empty() ? 0 : std::stoll(width);
            piece = pad_text(piece, w, " ", flags.find('-') != std::string::npos ? -1 : 1);
        }
        out += piece;
    }
    if (!indexable && next < values.size())
        throw JinjaError("not all arguments converted during string formatting");
    return out;
}

}  // namespace sift::jinja
