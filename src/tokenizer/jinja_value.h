// Values of the Jinja subset engine: the Python objects chat templates see (None, bool, int, float,
// str, list/tuple, dict, Jinja's Undefined) plus native objects (macros, functions, bound methods,
// the loop object, namespaces). Operations follow Python/Jinja2 semantics so that rendering is
// byte-identical to transformers' apply_chat_template.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sift::jinja {

// Thrown inside the engine; the public API turns it into Result (Template::render). Line 0 means
// "position not known yet": the evaluator fills in the node being evaluated.
class JinjaError : public std::runtime_error {
  public:
    explicit JinjaError(const std::string& message, int at_line = 0, int at_column = 0)
        : std::runtime_error(message), line(at_line), column(at_column) {}
    int line;
    int column;
};

enum class ValueKind : uint8_t {
    VALUE_UNDEFINED,
    VALUE_NONE,
    VALUE_BOOL,
    VALUE_INT,
    VALUE_FLOAT,
    VALUE_STRING,
    VALUE_LIST,
    VALUE_DICT,
    VALUE_OBJECT,
};

// Python has several list-like types that print and behave differently; templates mostly see
// lists, but filters return generators and dict methods return views.
enum class ListFlavor : uint8_t {
    LIST_PLAIN,        // list: [1, 2]
    LIST_TUPLE,        // tuple: (1, 2)
    LIST_DICT_ITEMS,   // dict.items(): dict_items([('a', 1)])
    LIST_DICT_KEYS,    // dict.keys()
    LIST_DICT_VALUES,  // dict.values()
    LIST_RANGE,        // range(): printing it is refused (its repr needs the bounds)
    LIST_ITERATOR,     // generator/iterator from a filter: no len(), no indexing, no printing
    LIST_FAILED,  // a generator whose computation failed: raises when iterated (Python is lazy)
};

class Value;
class Object;
class Interpreter;

using ValueList = std::vector<Value>;

// Insertion-ordered dict with string keys (JSON objects and template dict literals).
struct Dict {
    std::vector<std::pair<std::string, Value>> items;

    const Value* find(std::string_view key) const;
    void set(std::string key, Value value);  // replaces in place or appends
};

class Value {
  public:
    Value() = default;  // undefined
    Value(bool b) : kind_(ValueKind::VALUE_BOOL) { b_ = b; }
    Value(int i) : Value(static_cast<int64_t>(i)) {}
    Value(int64_t i) : kind_(ValueKind::VALUE_INT) { i_ = i; }
    Value(double f) : kind_(ValueKind::VALUE_FLOAT) { f_ = f; }
    Value(std::string s);
    Value(std::string_view s) : Value(std::string(s)) {}
    Value(const char* s) : Value(std::string(s)) {}

    // Undefined with the message Jinja2 would raise when it is used (e.g. "'x' is undefined").
    static Value undefined(std::string hint);
    static Value none();
    static Value markup(std::string s);  // a string marked safe (`| safe`), Markup in Jinja2
    static Value list(ValueList items, ListFlavor flavor = ListFlavor::LIST_PLAIN);
    static Value dict(Dict d);
    static Value object(std::shared_ptr<Object> o);
    // A generator that raises `message` when iterated, as Jinja2's lazy filters do.
    static Value failed_iterator(std::string message);

    ValueKind kind() const { return kind_; }
    bool is_undefined() const { return kind_ == ValueKind::VALUE_UNDEFINED; }
    bool is_none() const { return kind_ == ValueKind::VALUE_NONE; }
    bool is_bool() const { return kind_ == ValueKind::VALUE_BOOL; }
    bool is_int() const { return kind_ == ValueKind::VALUE_INT; }
    bool is_float() const { return kind_ == ValueKind::VALUE_FLOAT; }
    bool is_number() const { return is_int() || is_float() || is_bool(); }  // bool is an int
    bool is_string() const { return kind_ == ValueKind::VALUE_STRING; }
    bool is_list() const { return kind_ == ValueKind::VALUE_LIST; }
    bool is_dict() const { return kind_ == ValueKind::VALUE_DICT; }
    bool is_object() const { return kind_ == ValueKind::VALUE_OBJECT; }
    bool is_markup() const { return is_string() && flag_ != 0; }
    ListFlavor flavor() const { return static_cast<ListFlavor>(flag_); }
    bool is_generator() const {
        return is_list() &&
               (flavor() == ListFlavor::LIST_ITERATOR || flavor() == ListFlavor::LIST_FAILED);
    }

    bool as_bool() const { return b_; }
    int64_t as_int() const { return is_bool() ? (b_ ? 1 : 0) : i_; }  // bool or int
    double as_float() const;                                          // any number
    const std::string& as_string() const;
    const ValueList& as_list() const;
    const Dict& as_dict() const;
    Object& as_object() const;
    std::shared_ptr<Object> object_ptr() const;
    const std::string& undefined_hint() const;
    const void* identity() const { return ptr_.get(); }  // for the `sameas` test on containers

  private:
    ValueKind kind_ = ValueKind::VALUE_UNDEFINED;
    uint8_t flag_ = 0;  // STRING: markup; LIST: ListFlavor
    union {
        bool b_;
        int64_t i_ = 0;
        double f_;
    };
    // STRING: std::string, LIST: ValueList, DICT: Dict, OBJECT: Object, UNDEFINED: hint string.
    std::shared_ptr<void> ptr_;
};

// Positional and keyword arguments of a call, filter, test or method.
struct CallArgs {
    ValueList positional;
    std::vector<std::pair<std::string, Value>> keywords;
};

// Native objects: everything that is neither data nor Undefined.
class Object {
  public:
    virtual ~Object() = default;
    virtual std::string type_name() const = 0;  // Python type name for messages ("namespace")
    virtual std::string repr() const { return "<" + type_name() + " object>"; }
    // Attribute access; default: Undefined naming the attribute.
    virtual Value get_attr(std::string_view name) const;
    virtual bool callable() const { return false; }
    virtual Value call(Interpreter& interp, CallArgs& args);
    virtual bool is_namespace() const { return false; }
    // Drops references to scopes and values when a render ends: macros close over the scope that
    // holds them, so without this the shared_ptr cycle would outlive the render.
    virtual void release() {}
};

// A Jinja2 namespace(): the only mutable object templates can write to (`set ns.x = ...`).
class Namespace : public Object {
  public:
    Dict attrs;
    std::string type_name() const override { return "Namespace"; }
    std::string repr() const override;
    Value get_attr(std::string_view name) const override;
    bool is_namespace() const override { return true; }
    void release() override { attrs.items.clear(); }
};

// Python semantics shared by the evaluator and the filters.
std::string py_type_name(const Value& v);  // "dict", "list", "str", "NoneType", ...
std::string py_str(const Value& v);        // str(v): what {{ v }} prints
std::string py_repr(const Value& v);       // repr(v): how v prints inside a list or dict
bool py_truthy(const Value& v);
bool py_equal(const Value& a, const Value& b);
int py_compare(const Value& a, const Value& b);  // <0, 0, >0; throws when unorderable
std::string py_float_repr(double d);
// Raises the error Jinja2 raises when an Undefined is used (attribute access, arithmetic, ...).
[[noreturn]] void fail_undefined(const Value& v);
// The items a `for` loop visits: list items, dict keys, string characters; Undefined is empty.
ValueList py_iterate(const Value& v);
// len(v); throws for values without a length.
int64_t py_len(const Value& v);

// json.dumps as transformers' tojson calls it (ensure_ascii=False by default).
struct JsonOptions {
    bool ensure_ascii = false;
    bool sort_keys = false;
    bool has_indent = false;
    std::string indent;  // used when has_indent
    std::string item_separator = ", ";
    std::string key_separator = ": ";
};
std::string py_json_dumps(const Value& v, const JsonOptions& options);

}  // namespace sift::jinja
