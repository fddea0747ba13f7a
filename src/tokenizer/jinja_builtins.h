// Built-in filters, tests, global functions and Python methods of the Jinja subset engine: the
// ones Jinja2 3.1 provides plus transformers' chat-template additions (raise_exception,
// strftime_now, its tojson). Names Jinja2 knows but sift does not implement are reported as
// unsupported when reached; names Jinja2 does not know are parse errors, as in Jinja2 (inside if
// blocks, errors when reached). Implemented in jinja_builtins.cpp (attributes, methods),
// jinja_filters.cpp, jinja_tests.cpp and jinja_globals.cpp.
#pragma once

#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_value.h"

namespace sift::jinja {

// A callable implemented in C++ (globals, loop.cycle, bound methods of native objects).
class NativeFunction : public Object {
  public:
    using Fn = std::function<Value(Interpreter&, CallArgs&)>;
    NativeFunction(std::string name, Fn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
    std::string type_name() const override { return "builtin_function_or_method"; }
    std::string repr() const override { return "<built-in function " + name_ + ">"; }
    bool callable() const override { return true; }
    Value call(Interpreter& interp, CallArgs& args) override { return fn_(interp, args); }

  private:
    std::string name_;
    Fn fn_;
};

Value native_function(std::string name, NativeFunction::Fn fn);

// Null when not implemented; `known` tells whether Jinja2 has a filter/test of that name.
FilterFn lookup_filter(std::string_view name, bool& known);
TestFn lookup_test(std::string_view name, bool& known);

// range, dict, namespace, joiner, cycler, lipsum, raise_exception, strftime_now; Undefined if none.
Value builtin_global(std::string_view name);

// Jinja2's getattr (`x.name`): Python attributes first (so `d.items` is the dict method), then
// items. Unsafe attributes (the sandbox's mutating methods) give an Undefined that fails on use.
Value get_attribute(const Value& obj, std::string_view name);
// Jinja2's getitem (`x[key]`): items first, then attributes for string keys.
Value get_item(const Value& obj, const Value& key);
// obj[start:stop:step] with None for absent bounds.
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// Calls a bound method (e.g. str.startswith) of a value. Throws for unknown methods.
Value call_method(Interpreter& interp, const Value& self, std::string_view name, CallArgs& args);

// Reads Python-style arguments: positional by index or keyword by name, with defaults.
class ArgReader {
  public:
    // `what` names the callee in messages ("filter 'join'"); `names` are the parameter names in
    // order. Throws on unknown keywords or too many positional arguments.
    ArgReader(const CallArgs& args, std::string what, std::initializer_list<const char*> names);
    bool has(size_t index) const;
    const Value& get(size_t index) const;  // Undefined if absent
    Value get_or(size_t index, Value fallback) const;
    const std::string& what() const { return what_; }

  private:
    const CallArgs& args_;
    std::string what_;
    std::vector<const char*> names_;
    std::vector<const Value*> slots_;
};

// Python's `fmt % args` (printf-style: %s %r %d %i %f %x %%, with flags and width).
std::string printf_format(const std::string& fmt, const Value& args);

int64_t arg_int(const ArgReader& r, size_t index, int64_t fallback);
// A required str argument; errors name the parameter.
const std::string& arg_string(const ArgReader& r, size_t index, const char* param);
// Pads to `width` code points: where < 0 left-justifies, > 0 right-justifies, 0 centers (with
// Python's placement of the odd fill character).
std::string pad_text(const std::string& s, int64_t width, const std::string& fill, int where);
bool arg_bool(const ArgReader& r, size_t index, bool fallback);

}  // namespace sift::jinja
