// Jinja2 3.1 tests (jinja2/tests.py): `x is defined`, `x is mapping`, `x is divisibleby 3`...
#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_eval.h"

namespace sift::jinja {
namespace {

bool t_defined(Interpreter&, const Value& v, CallArgs& a) {
    ArgReader(a, "test 'defined'", {});
    return !v.is_undefined();
}
bool t_undefined(Interpreter&, const Value& v, CallArgs& a) {
    ArgReader(a, "test 'undefined'", {});
    return v.is_undefined();
}
bool t_none(Interpreter&, const Value& v, CallArgs& a) {
    ArgReader(a, "test 'none'", {});
    return v.is_none();
}
bool t_boolean(Interpreter&, const Value& v, CallArgs& a) {
    ArgReader(a, "test 'boolean'", {});
    return v.is_bool();
}
bool t_true(Interpreter&, const Value& v, CallArgs& a) {
    ArgReader(a, "test 'true'", {});
    return v.is_bool() && v.as_bool();
}
bool t_false(Interpreter&, const Value& v, CallArgs& a) {
    ArgReader(a, "test 'false'", {});
    return v.is_bool() && !v.as_bool();
}
bool t_integer(Interpreter&, const Value& v, CallArgs& a) {
    ArgReader(a, "test 'integer'", {});
    return v.is_int();
}
bool t_float(Interpreter&, const Value& v, CallArgs& a) {
    ArgReader(a, "test 'float'", {});
    return v.is_float();
}
bool t_number(Interpreter&, const Value& v, CallArgs& a) {
    ArgReader(a, "test 'number'", {});
    return v.is_number();
}
bool t_string(Interpreter&, const Value& v, CallArgs& a) {
    ArgReader(a, "test 'string'", {});
    return v.is_string();
}
bool t_mapping(Interpreter&, const Value& v, CallArgs& a) {
    ArgReader(a, "test 'mapping'", {});
    return v.is_dict();
}
bool t_escaped(Interpreter&, const Value& v, CallArgs& a) {
    ArgReader(a, "test 'escaped'", {});
    return v.is_markup();
}

bool t_iterable(Interpreter&, const Value& v, CallArgs& a) {
    ArgReader(a, "test 'iterable'", {});
    return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict() ||
           (v.is_object() && v.as_object().type_name() == "LoopContext");
}

bool t_sequence(Interpreter&, const Value& v, CallArgs& a) {
    ArgReader(a, "test 'sequence'", {});
    if (v.is_list())
        return v.flavor() == ListFlavor::LIST_PLAIN || v.flavor() == ListFlavor::LIST_TUPLE ||
               v.flavor() == ListFlavor::LIST_RANGE;
    return v.is_undefined() || v.is_string() || v.is_dict();
}

bool t_callable(Interpreter&, const Value& v, CallArgs& a) {
    ArgReader(a, "test 'callable'", {});
    return v.is_undefined() || (v.is_object() && v.as_object().callable());
}

bool t_lower(Interpreter& i, const Value& v, CallArgs& a) {
    ArgReader(a, "test 'lower'", {});
    CallArgs none;
    return py_truthy(call_method(i, Value(py_str(v)), "islower", none));
}

bool t_upper(Interpreter& i, const Value& v, CallArgs& a) {
    ArgReader(a, "test 'upper'", {});
    CallArgs none;
    return py_truthy(call_method(i, Value(py_str(v)), "isupper", none));
}

Value mod2(const Value& v) {
    return binary_op(BinaryOp::OP_MOD, v, Value(int64_t{2}));
}
bool t_odd(Interpreter&, const Value& v, CallArgs& a) {
    ArgReader(a, "test 'odd'", {});
    return py_equal(mod2(v), Value(int64_t{1}));
}
bool t_even(Interpreter&, const Value& v, CallArgs& a) {
    ArgReader(a, "test 'even'", {});
    return py_equal(mod2(v), Value(int64_t{0}));
}

bool t_divisibleby(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader r(args, "test 'divisibleby'", {"num"});
    return py_equal(binary_op(BinaryOp::OP_MOD, v, r.get(0)), Value(int64_t{0}));
}

const Value& other_arg(CallArgs& args, const char* what) {
    ArgReader r(args, what, {"other"});
    if (!r.has(0)) throw JinjaError(std::string(what) + " needs an argument");
    return args.positional.empty() ? args.keywords[0].second : args.positional[0];
}

bool t_eq(Interpreter&, const Value& v, CallArgs& a) {
    return py_equal(v, other_arg(a, "test 'eq'"));
}
bool t_ne(Interpreter&, const Value& v, CallArgs& a) {
    return !py_equal(v, other_arg(a, "test 'ne'"));
}
bool t_lt(Interpreter&, const Value& v, CallArgs& a) {
    return py_compare(v, other_arg(a, "test 'lt'")) < 0;
}
bool t_le(Interpreter&, const Value& v, CallArgs& a) {
    return py_compare(v, other_arg(a, "test 'le'")) <= 0;
}
bool t_gt(Interpreter&, const Value& v, CallArgs& a) {
    return py_compare(v, other_arg(a, "test 'gt'")) > 0;
}
bool t_ge(Interpreter&, const Value& v, CallArgs& a) {
    return py_compare(v, other_arg(a, "test 'ge'")) >= 0;
}

bool t_in(Interpreter&, const Value& v, CallArgs& args) {
    ArgReader r(args, "test 'in'", {"seq"});
    return value_in(v, r.get(0));
}

bool t_sameas(Interpreter&, const Value& v, CallArgs& args) {
    const Value& other = other_arg(args, "test 'sameas'");
    if (v.kind() != other.kind()) return false;
    switch (v.kind()) {
        case ValueKind::VALUE_NONE:
            return true;
        case ValueKind::VALUE_BOOL:
            return v.as_bool() == other.as_bool();
        case ValueKind::VALUE_INT:
            return v.as_int() == other.as_int() && v.as_int() >= -5 && v.as_int() <= 256;
        default:
            return v.identity() != nullptr && v.identity() == other.identity();
    }
}

bool t_filter(Interpreter&, const Value& v, CallArgs& a) {
    ArgReader(a, "test 'filter'", {});
    bool known = false;
    if (v.is_string()) lookup_filter(v.as_string(), known);
    return known;
}

bool t_test(Interpreter&, const Value& v, CallArgs& a) {
    ArgReader(a, "test 'test'", {});
    bool known = false;
    if (v.is_string()) lookup_test(v.as_string(), known);
    return known;
}

struct TestEntry {
    const char* name;
    TestFn fn;
};

const TestEntry kTests[] = {
    {"boolean", t_boolean},
    {"callable", t_callable},
    {"defined", t_defined},
    {"divisibleby", t_divisibleby},
    {"eq", t_eq},
    {"equalto", t_eq},
    {"==", t_eq},
    {"escaped", t_escaped},
    {"even", t_even},
    {"false", t_false},
    {"filter", t_filter},
    {"float", t_float},
    {"ge", t_ge},
    {">=", t_ge},
    {"gt", t_gt},
    {"greaterthan", t_gt},
    {">", t_gt},
    {"in", t_in},
    {"integer", t_integer},
    {"iterable", t_iterable},
    {"le", t_le},
    {"<=", t_le},
    {"lower", t_lower},
    {"lt", t_lt},
    {"lessthan", t_lt},
    {"<", t_lt},
    {"mapping", t_mapping},
    {"ne", t_ne},
    {"!=", t_ne},
    {"none", t_none},
    {"number", t_number},
    {"odd", t_odd},
    {"sameas", t_sameas},
    {"sequence", t_sequence},
    {"string", t_string},
    {"test", t_test},
    {"true", t_true},
    {"undefined", t_undefined},
    {"upper", t_upper},
};

}  // namespace

TestFn lookup_test(std::string_view name, bool& known) {
    for (const TestEntry& t : kTests) {
        if (name == t.name) {
            known = true;
            return t.fn;
        }
    }
    known = false;
    return nullptr;
}

}  // namespace sift::jinja
