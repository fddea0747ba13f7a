#include "tokenizer/jinja_eval.h"

#include <cmath>
#include <limits>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_text.h"

namespace sift::jinja {
namespace {

constexpr int kMaxCallDepth = 100;                   // macro recursion
constexpr size_t kMaxStringBytes = size_t{1} << 30;  // refuse to build strings past 1 GiB

// The `loop` variable of a for loop; its attributes follow the iteration in progress.
class LoopObject : public Object, public std::enable_shared_from_this<LoopObject> {
  public:
    explicit LoopObject(std::shared_ptr<const ValueList> items) : items_(std::move(items)) {}
    std::string type_name() const override { return "LoopContext"; }
    std::string repr() const override {
        return "<LoopContext " + std::to_string(index_ + 1) + "/" + std::to_string(items_->size()) +
               ">";
    }
    bool callable() const override { return true; }
    Value call(Interpreter&, CallArgs&) override {
        throw JinjaError(
            "recursive for loops (calling 'loop') are not supported by sift's Jinja engine");
    }
    Value get_attr(std::string_view name) const override {
        const auto n = static_cast<int64_t>(items_->size());
        const auto i = static_cast<int64_t>(index_);
        if (name == "index") return Value(i + 1);
        if (name == "index0") return Value(i);
        if (name == "revindex") return Value(n - i);
        if (name == "revindex0") return Value(n - i - 1);
        if (name == "first") return Value(i == 0);
        if (name == "last") return Value(i == n - 1);
        if (name == "length") return Value(n);
        if (name == "depth") return Value(int64_t{1});
        if (name == "depth0") return Value(int64_t{0});
        if (name == "previtem")
            return i > 0 ? (*items_)[index_ - 1] : Value::undefined("there is no previous item");
        if (name == "nextitem")
            return i + 1 < n ? (*items_)[index_ + 1] : Value::undefined("there is no next item");
        if (name == "cycle") {
            const size_t at = index_;
            return native_function("cycle", [at](Interpreter&, CallArgs& args) {
                if (args.positional.empty()) throw JinjaError("no items for cycling given");
                return args.positional[at % args.positional.size()];
            });
        }
        if (name == "changed") {
            auto self = std::const_pointer_cast<LoopObject>(shared_from_this());
            return native_function("changed", [self](Interpreter&, CallArgs& args) {
                Value current = Value::list(args.positional);
                if (self->has_last_ && py_equal(self->last_changed_, current)) return Value(false);
                self->last_changed_ = current;
                self->has_last_ = true;
                return Value(true);
            });
        }
        return Object::get_attr(name);
    }
    void advance(size_t index) { index_ = index; }

  private:
    std::shared_ptr<const ValueList> items_;
    size_t index_ = 0;
    Value last_changed_;
    bool has_last_ = false;
};

[[noreturn]] void type_error(const char* op, const Value& a, const Value& b) {
    throw JinjaError(std::string("unsupported operand type(s) for ") + op + ": '" +
                     py_type_name(a) + "' and '" + py_type_name(b) + "'");
}

[[noreturn]] void overflow_error() {
    throw JinjaError("integer overflow (sift's Jinja engine uses 64-bit integers)");
}

// a op b on int64, refusing to wrap (Python integers never do).
template <typename Op>
Value checked(Op op, int64_t a, int64_t b) {
    int64_t r = 0;
    if (op(a, b, &r)) overflow_error();
    return Value(r);
}

bool add_overflow(int64_t a, int64_t b, int64_t* r) {
    return __builtin_add_overflow(a, b, r);
}
bool sub_overflow(int64_t a, int64_t b, int64_t* r) {
    return __builtin_sub_overflow(a, b, r);
}
bool mul_overflow(int64_t a, int64_t b, int64_t* r) {
    return __builtin_mul_overflow(a, b, r);
}

Value repeat(const Value& seq, int64_t times) {
    if (times <= 0) return seq.is_string() ? Value(std::string()) : Value::list({}, seq.flavor());
    if (seq.is_string()) {
        const std::string& s = seq.as_string();
        if (s.size() * static_cast<size_t>(times) > kMaxStringBytes)
            throw JinjaError("string repetition result too large");
        std::string out;
        out.reserve(s.size() * static_cast<size_t>(times));
        for (int64_t i = 0; i < times; ++i) out += s;
        return seq.is_markup() ? Value::markup(std::move(out)) : Value(std::move(out));
    }
    const ValueList& items = seq.as_list();
    if (items.size() * static_cast<size_t>(times) > (size_t{1} << 24))
        throw JinjaError("list repetition result too large");
    ValueList out;
    for (int64_t i = 0; i < times; ++i) out.insert(out.end(), items.begin(), items.end());
    return Value::list(std::move(out), seq.flavor());
}

// CPython's float_divmod: floor division and modulo that agree with each other and with the
// signs Python prints (e.g. 2.5 // 0.1 is 24.0, not floor(2.5 / 0.1) = 25.0).
std::pair<double, double> float_divmod(double vx, double wx) {
    double mod = std::fmod(vx, wx);
    double div = (vx - mod) / wx;
    if (mod != 0.0) {
        if ((wx < 0) != (mod < 0)) {
            mod += wx;
            div -= 1.0;
        }
    } else {
        mod = std::copysign(0.0, wx);
    }
    double floordiv;
    if (div != 0.0) {
        floordiv = std::floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
    } else {
        floordiv = std::copysign(0.0, vx / wx);
    }
    return {floordiv, mod};
}

bool is_sequence_for_repeat(const Value& v) {
    return v.is_string() || (v.is_list() && (v.flavor() == ListFlavor::LIST_PLAIN ||
                                             v.flavor() == ListFlavor::LIST_TUPLE));
}

}  // namespace

Value binary_op(BinaryOp op, const Value& a, const Value& b) {
    if (a.is_undefined()) fail_undefined(a);
    // str % x reads x only for the conversions it makes (an unused Undefined is fine).
    if (op == BinaryOp::OP_MOD && a.is_string()) return Value(printf_format(a.as_string(), b));
    if (b.is_undefined()) fail_undefined(b);
    const bool both_int = (a.is_int() || a.is_bool()) && (b.is_int() || b.is_bool());
    const bool both_num = a.is_number() && b.is_number();
    switch (op) {
        case BinaryOp::OP_ADD:
            if (both_int) return checked(add_overflow, a.as_int(), b.as_int());
            if (both_num) return Value(a.as_float() + b.as_float());
            if (a.is_string() && b.is_string()) {
                if (a.as_string().size() + b.as_string().size() > kMaxStringBytes)
                    throw JinjaError("string concatenation result too large");
                // Markup + str escapes the plain side (markupsafe), as Jinja2 does.
                if (a.is_markup() || b.is_markup()) {
                    const std::string left =
                        a.is_markup() ? a.as_string() : html_escape(a.as_string());
                    const std::string right =
                        b.is_markup() ? b.as_string() : html_escape(b.as_string());
                    return Value::markup(left + right);
                }
                return Value(a.as_string() + b.as_string());
            }
            if (a.is_list() && b.is_list() && a.flavor() == b.flavor() &&
                (a.flavor() == ListFlavor::LIST_PLAIN || a.flavor() == ListFlavor::LIST_TUPLE)) {
                ValueList out = a.as_list();
                out.insert(out.end(), b.as_list().begin(), b.as_list().end());
                return Value::list(std::move(out), a.flavor());
            }
            if (a.is_string() || (a.is_list() && (a.flavor() == ListFlavor::LIST_PLAIN ||
                                                  a.flavor() == ListFlavor::LIST_TUPLE))) {
                // Python's wording for str + x and list + x.
                const std::string t = a.is_string() ? "str" : py_type_name(a);
                throw JinjaError("can only concatenate " + t + " (not \"" + py_type_name(b) +
                                 "\") to " + t);
            }
            type_error("+", a, b);
        case BinaryOp::OP_SUB:
            if (both_int) return checked(sub_overflow, a.as_int(), b.as_int());
            if (both_num) return Value(a.as_float() - b.as_float());
            type_error("-", a, b);
        case BinaryOp::OP_MUL:
            if (both_int) return checked(mul_overflow, a.as_int(), b.as_int());
            if (both_num) return Value(a.as_float() * b.as_float());
            if (is_sequence_for_repeat(a) && (b.is_int() || b.is_bool()))
                return repeat(a, b.as_int());
            if (is_sequence_for_repeat(b) && (a.is_int() || a.is_bool()))
                return repeat(b, a.as_int());
            type_error("*", a, b);
        case BinaryOp::OP_DIV:
            if (!both_num) type_error("/", a, b);
            if (b.as_float() == 0.0) throw JinjaError("division by zero");
            return Value(a.as_float() / b.as_float());
        case BinaryOp::OP_FLOORDIV:
            if (!both_num) type_error("//", a, b);
            if (both_int) {
                if (b.as_int() == 0) throw JinjaError("integer division or modulo by zero");
                if (a.as_int() == std::numeric_limits<int64_t>::min() && b.as_int() == -1)
                    overflow_error();
                int64_t q = a.as_int() / b.as_int();
                if ((a.as_int() % b.as_int() != 0) && ((a.as_int() < 0) != (b.as_int() < 0))) --q;
                return Value(q);
            }
            if (b.as_float() == 0.0) throw JinjaError("float floor division by zero");
            return Value(float_divmod(a.as_float(), b.as_float()).first);
        case BinaryOp::OP_MOD:
            if (a.is_string()) return Value(printf_format(a.as_string(), b));
            if (!both_num) type_error("%", a, b);
            if (both_int) {
                if (b.as_int() == 0) throw JinjaError("integer division or modulo by zero");
                if (b.as_int() == -1) return Value(int64_t{0});
                int64_t m = a.as_int() % b.as_int();
                if (m != 0 && ((m < 0) != (b.as_int() < 0))) m += b.as_int();
                return Value(m);
            }
            if (b.as_float() == 0.0) throw JinjaError("float modulo");
            return Value(float_divmod(a.as_float(), b.as_float()).second);
        case BinaryOp::OP_POW:
            if (!both_num) type_error("** or pow()", a, b);
            if (both_int && b.as_int() >= 0) {
                int64_t base = a.as_int(), result = 1;
                for (int64_t e = b.as_int(); e > 0; e >>= 1) {
                    if ((e & 1) && __builtin_mul_overflow(result, base, &result)) overflow_error();
                    if (e > 1 && __builtin_mul_overflow(base, base, &base)) overflow_error();
                }
                return Value(result);
            }
            if (a.as_float() == 0.0 && b.as_float() < 0)
                throw JinjaError("0.0 cannot be raised to a negative power");
            // Python answers with a complex number here; sift has none.
            if (a.as_float() < 0 && std::isfinite(b.as_float()) &&
                b.as_float() != std::floor(b.as_float()))
                throw JinjaError(
                    "negative number raised to a fractional power (a complex result) "
                    "is not supported by sift's Jinja engine");
            return Value(std::pow(a.as_float(), b.as_float()));
    }
    throw JinjaError("bad operator");
}

bool value_in(const Value& item, const Value& container) {
    switch (container.kind()) {
        case ValueKind::VALUE_UNDEFINED:
            return false;
        case ValueKind::VALUE_STRING:
            if (!item.is_string())
                throw JinjaError("'in <string>' requires string as left operand, not " +
                                 py_type_name(item));
            return container.as_string().find(item.as_string()) != std::string::npos;
        case ValueKind::VALUE_LIST:
            if (container.flavor() == ListFlavor::LIST_DICT_KEYS && !item.is_string()) return false;
            for (const Value& v : py_iterate(container))
                if (py_equal(v, item)) return true;
            return false;
        case ValueKind::VALUE_DICT:
            if ((item.is_list() && item.flavor() == ListFlavor::LIST_PLAIN) || item.is_dict())
                throw JinjaError("unhashable type: '" + py_type_name(item) + "'");
            return item.is_string() && container.as_dict().find(item.as_string()) != nullptr;
        default:
            throw JinjaError("argument of type '" + py_type_name(container) + "' is not iterable");
    }
}

const Value* Scope::find(std::string_view name) const {
    for (const Scope* s = this; s; s = s->parent.get())
        for (const auto& [k, v] : s->vars)
            if (k == name) return &v;
    return nullptr;
}

void Scope::set(std::string_view name, Value value) {
    for (auto& [k, v] : vars) {
        if (k == name) {
            v = std::move(value);
            return;
        }
    }
    vars.emplace_back(std::string(name), std::move(value));
}

Value Macro::call(Interpreter& interp, CallArgs& args) {
    return interp.call_macro(*this, args);
}

Interpreter::~Interpreter() {
    for (const auto& o : adopted_) o->release();
}

Value Interpreter::adopt(std::shared_ptr<Object> object) {
    adopted_.push_back(object);
    return Value::object(std::move(object));
}

std::string Interpreter::render() {
    std::string out;
    exec(ast_.body, root_, out);
    return out;
}

Interpreter::Flow Interpreter::exec(const StmtList& body, const ScopePtr& scope, std::string& out) {
    for (const StmtPtr& s : body) {
        Flow f;
        try {
            f = exec_stmt(*s, scope, out);
        } catch (JinjaError& e) {
            if (e.line == 0) {
                e.line = s->line;
                e.column = s->column;
            }
            throw;
        }
        if (f != Flow::FLOW_NORMAL) return f;
        if (out.size() > kMaxStringBytes) throw JinjaError("rendered output too large");
    }
    return Flow::FLOW_NORMAL;
}

Interpreter::Flow Interpreter::exec_stmt(const Stmt& s, const ScopePtr& scope, std::string& out) {
    switch (s.kind) {
        case StmtKind::STMT_TEXT:
            out += s.text;
            return Flow::FLOW_NORMAL;
        case StmtKind::STMT_OUTPUT: {
            const Value v = eval(*s.expr, scope);
            if (v.is_string()) {
                out += v.as_string();
            } else {
                out += py_str(v);
            }
            return Flow::FLOW_NORMAL;
        }
        case StmtKind::STMT_IF:
            for (const auto& [test, body] : s.branches)
                if (py_truthy(eval(*test, scope))) return exec(body, scope, out);
            return exec(s.else_body, scope, out);
        case StmtKind::STMT_FOR:
            return exec_for(s, scope, out);
        case StmtKind::STMT_SET:
            assign(s.target, eval(*s.expr, scope), scope);
            return Flow::FLOW_NORMAL;
        case StmtKind::STMT_SET_BLOCK: {
            std::string captured;
            exec(s.body, scope, captured);
            Value v(std::move(captured));
            if (s.expr) v = eval_filter(*s.expr, v, scope);
            assign(s.target, v, scope);
            return Flow::FLOW_NORMAL;
        }
        case StmtKind::STMT_MACRO:
            scope->set(s.name, adopt(std::make_shared<Macro>(&s, s.name, scope)));
            return Flow::FLOW_NORMAL;
        case StmtKind::STMT_CALL_BLOCK: {
            const Expr& call = *s.expr;
            const Value callee = eval(*call.args[0], scope);
            CallArgs args;
            eval_call_args(call, 1, scope, args);
            args.keywords.emplace_back("caller",
                                       adopt(std::make_shared<Macro>(&s, "caller", scope)));
            out += py_str(call_value(callee, args));
            return Flow::FLOW_NORMAL;
        }
        case StmtKind::STMT_FILTER_BLOCK: {
            std::string captured;
            exec(s.body, scope, captured);
            out += py_str(eval_filter(*s.expr, Value(std::move(captured)), scope));
            return Flow::FLOW_NORMAL;
        }
        case StmtKind::STMT_WITH: {
            auto inner = std::make_shared<Scope>();
            inner->parent = scope;
            for (const auto& [target, value] : s.assigns)
                assign(target, eval(*value, scope), inner);
            return exec(s.body, inner, out);
        }
        case StmtKind::STMT_BREAK:
            return Flow::FLOW_BREAK;
        case StmtKind::STMT_CONTINUE:
            return Flow::FLOW_CONTINUE;
        case StmtKind::STMT_BODY:
            return exec(s.body, scope, out);
    }
    return Flow::FLOW_NORMAL;
}

Interpreter::Flow Interpreter::exec_for(const Stmt& s, const ScopePtr& scope, std::string& out) {
    if (s.recursive)
        throw JinjaError("recursive for loops are not supported by sift's Jinja engine");
    const Value iterable = eval(*s.expr, scope);
    ValueList items = py_iterate(iterable);
    if (s.cond) {
        // The loop filter sees the loop target but not `loop`, and decides what `loop` counts.
        ValueList kept;
        for (Value& item : items) {
            auto probe = std::make_shared<Scope>();
            probe->parent = scope;
            assign(s.target, item, probe);
            if (py_truthy(eval(*s.cond, probe))) kept.push_back(std::move(item));
        }
        items = std::move(kept);
    }
    if (items.empty()) return exec(s.else_body, scope, out);
    auto shared_items = std::make_shared<const ValueList>(std::move(items));
    auto loop = std::make_shared<LoopObject>(shared_items);
    const Value loop_value = Value::object(loop);
    for (size_t i = 0; i < shared_items->size(); ++i) {
        loop->advance(i);
        auto iteration = std::make_shared<Scope>();
        iteration->parent = scope;
        iteration->vars.reserve(4);
        assign(s.target, (*shared_items)[i], iteration);
        iteration->set("loop", loop_value);
        if (exec(s.body, iteration, out) == Flow::FLOW_BREAK) break;
    }
    return Flow::FLOW_NORMAL;
}

void Interpreter::assign(const Target& target, const Value& value, const ScopePtr& scope) {
    if (!target.ns_attr.empty()) {
        const Value* ns = scope->find(target.names[0]);
        if (!ns || !ns->is_object() || !ns->as_object().is_namespace())
            throw JinjaError("cannot assign attribute on non-namespace object '" + target.names[0] +
                             "'");
        if (!target.ns_attr.empty() && target.ns_attr[0] == '_')
            throw JinjaError(
                "Chat templates cannot store underscore-prefixed attributes on a namespace, but "
                "got '" +
                target.ns_attr + "'. Please rename the attribute.");
        static_cast<Namespace&>(ns->as_object()).attrs.set(target.ns_attr, value);
        return;
    }
    if (!target.is_tuple) {
        scope->set(target.names[0], value);
        return;
    }
    if (!(value.is_undefined() || value.is_string() || value.is_list() || value.is_dict()))
        throw JinjaError("cannot unpack non-iterable " + py_type_name(value) + " object");
    const ValueList parts = py_iterate(value);
    if (parts.size() != target.names.size())
        throw JinjaError(
            parts.size() > target.names.size()
                ? "too many values to unpack (expected " + std::to_string(target.names.size()) + ")"
                : "not enough values to unpack (expected " + std::to_string(target.names.size()) +
                      ", got " + std::to_string(parts.size()) + ")");
    for (size_t i = 0; i < parts.size(); ++i) scope->set(target.names[i], parts[i]);
}

Value Interpreter::call_macro(const Macro& macro, CallArgs& args) {
    const Stmt& def = *macro.def;
    if (call_depth_ >= kMaxCallDepth)
        throw JinjaError("macro calls nested too deeply (recursion?)");
    auto scope = std::make_shared<Scope>();
    scope->parent = macro.closure;
    const size_t n_params = def.params.size();
    const size_t first_default = n_params - def.defaults.size();
    std::vector<bool> bound(n_params, false);
    for (size_t i = 0; i < args.positional.size() && i < n_params; ++i) {
        scope->set(def.params[i], args.positional[i]);
        bound[i] = true;
    }
    if (args.positional.size() > n_params && !def.uses_varargs)
        throw JinjaError("macro '" + macro.name + "' takes not more than " +
                         std::to_string(n_params) + " argument(s)");
    Dict extra_kwargs;
    Value caller;
    for (auto& [key, value] : args.keywords) {
        size_t i = 0;
        while (i < n_params && def.params[i] != key) ++i;
        if (i < n_params) {
            if (bound[i])
                throw JinjaError("macro '" + macro.name + "' got multiple values for argument '" +
                                 key + "'");
            scope->set(key, value);
            bound[i] = true;
        } else if (key == "caller" && def.uses_caller) {
            caller = value;
        } else if (def.uses_kwargs) {
            extra_kwargs.set(key, value);
        } else {
            throw JinjaError("macro '" + macro.name + "' takes no keyword argument '" + key + "'");
        }
    }
    ++call_depth_;
    struct DepthRestore {
        int& d;
        ~DepthRestore() { --d; }
    } restore{call_depth_};
    for (size_t i = 0; i < n_params; ++i) {
        if (bound[i]) continue;
        if (i >= first_default) {
            scope->set(def.params[i], eval(*def.defaults[i - first_default], scope));
        } else {
            scope->set(def.params[i],
                       Value::undefined("parameter '" + def.params[i] + "' was not provided"));
        }
    }
    if (def.uses_varargs) {
        ValueList rest;
        for (size_t i = n_params; i < args.positional.size(); ++i)
            rest.push_back(args.positional[i]);
        scope->set("varargs", Value::list(std::move(rest), ListFlavor::LIST_TUPLE));
    }
    if (def.uses_kwargs) scope->set("kwargs", Value::dict(std::move(extra_kwargs)));
    if (def.uses_caller)
        scope->set("caller",
                   caller.is_undefined() ? Value::undefined("No caller defined") : caller);
    std::string out;
    exec(def.body, scope, out);
    return Value(std::move(out));
}

Value Interpreter::call_value(const Value& callee, CallArgs& args) {
    if (callee.is_undefined()) fail_undefined(callee);
    if (!callee.is_object() || !callee.as_object().callable())
        throw JinjaError("'" + py_type_name(callee) + "' object is not callable");
    if (call_depth_ >= kMaxCallDepth) throw JinjaError("calls nested too deeply");
    return callee.as_object().call(*this, args);
}

Value Interpreter::call_filter(std::string_view name, const Value& input, CallArgs& args) {
    bool known = false;
    FilterFn fn = lookup_filter(name, known);
    if (!known) throw JinjaError("no filter named '" + std::string(name) + "'");
    if (!fn)
        throw JinjaError("filter '" + std::string(name) +
                         "' is not supported by sift's Jinja engine");
    return fn(*this, input, args);
}

bool Interpreter::call_test(std::string_view name, const Value& input, CallArgs& args) {
    bool known = false;
    TestFn fn = lookup_test(name, known);
    if (!known) throw JinjaError("no test named '" + std::string(name) + "'");
    if (!fn)
        throw JinjaError("test '" + std::string(name) +
                         "' is not supported by sift's Jinja engine");
    return fn(*this, input, args);
}

void Interpreter::eval_call_args(const Expr& e, size_t first, const ScopePtr& scope,
                                 CallArgs& args) {
    args.positional.reserve(e.args.size() - first);
    for (size_t i = first; i < e.args.size(); ++i)
        args.positional.push_back(eval(*e.args[i], scope));
    for (const auto& [key, value] : e.keywords)
        args.keywords.emplace_back(key, eval(*value, scope));
    if (e.dyn_args) {
        for (Value& v : py_iterate(eval(*e.dyn_args, scope)))
            args.positional.push_back(std::move(v));
    }
    if (e.dyn_kwargs) {
        const Value d = eval(*e.dyn_kwargs, scope);
        if (!d.is_dict())
            throw JinjaError("argument after ** must be a mapping, not " + py_type_name(d));
        for (const auto& [k, v] : d.as_dict().items) args.keywords.emplace_back(k, v);
    }
}

Value Interpreter::eval_filter(const Expr& e, const Value& input, const ScopePtr& scope) {
    // A filter chain built by the parser: the innermost filter has a null input expression.
    const Value in = e.args[0] ? (e.args[0]->kind == ExprKind::EXPR_FILTER
                                      ? eval_filter(*e.args[0], input, scope)
                                      : eval(*e.args[0], scope))
                               : input;
    // Jinja2's wording for an unknown filter reached at runtime (inside an if block).
    if (!e.known) throw JinjaError("No filter named '" + e.name + "' found.", e.line, e.column);
    if (!e.filter)
        throw JinjaError("filter '" + e.name + "' is not supported by sift's Jinja engine");
    CallArgs args;
    eval_call_args(e, 1, scope, args);
    try {
        return e.filter(*this, in, args);
    } catch (JinjaError& err) {
        if (err.line == 0) {
            err.line = e.line;
            err.column = e.column;
        }
        throw;
    }
}

Value Interpreter::eval(const Expr& e, const ScopePtr& scope) {
    try {
        return eval_inner(e, scope);
    } catch (JinjaError& err) {
        if (err.line == 0) {
            err.line = e.line;
            err.column = e.column;
        }
        throw;
    }
}

Value Interpreter::eval_inner(const Expr& e, const ScopePtr& scope) {
    switch (e.kind) {
        case ExprKind::EXPR_CONST:
            return e.value;
        case ExprKind::EXPR_NAME: {
            if (const Value* v = scope->find(e.name)) return *v;
            Value g = builtin_global(e.name);
            if (!g.is_undefined()) return g;
            return Value::undefined(py_repr_string(e.name) + " is undefined");
        }
        case ExprKind::EXPR_LIST:
        case ExprKind::EXPR_TUPLE: {
            ValueList items;
            items.reserve(e.args.size());
            for (const ExprPtr& a : e.args) items.push_back(eval(*a, scope));
            return Value::list(std::move(items), e.kind == ExprKind::EXPR_TUPLE
                                                     ? ListFlavor::LIST_TUPLE
                                                     : ListFlavor::LIST_PLAIN);
        }
        case ExprKind::EXPR_DICT: {
            Dict d;
            for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
                const Value key = eval(*e.args[i], scope);
                if (!key.is_string())
                    throw JinjaError(
                        "dict keys other than strings are not supported by sift's Jinja engine");
                d.set(key.as_string(), eval(*e.args[i + 1], scope));
            }
            return Value::dict(std::move(d));
        }
        case ExprKind::EXPR_GETATTR: {
            const Value obj = eval(*e.args[0], scope);
            if (obj.is_undefined()) fail_undefined(obj);
            return get_attribute(obj, e.name);
        }
        case ExprKind::EXPR_GETITEM: {
            const Value obj = eval(*e.args[0], scope);
            if (obj.is_undefined()) fail_undefined(obj);
            const Expr& index = *e.args[1];
            if (index.kind == ExprKind::EXPR_SLICE) {
                auto part = [&](size_t i) {
                    return index.args[i] ? eval(*index.args[i], scope) : Value::none();
                };
                return get_slice(obj, part(0), part(1), part(2));
            }
            return get_item(obj, eval(index, scope));
        }
        case ExprKind::EXPR_SLICE:
            throw JinjaError("slice outside of a subscript");
        case ExprKind::EXPR_CALL: {
            const Value callee = eval(*e.args[0], scope);
            CallArgs args;
            eval_call_args(e, 1, scope, args);
            return call_value(callee, args);
        }
        case ExprKind::EXPR_FILTER:
            return eval_filter(e, Value(), scope);
        case ExprKind::EXPR_TEST: {
            const Value subject = eval(*e.args[0], scope);
            if (!e.known) throw JinjaError("No test named '" + e.name + "' found.");
            if (!e.test)
                throw JinjaError("test '" + e.name + "' is not supported by sift's Jinja engine");
            CallArgs args;
            eval_call_args(e, 1, scope, args);
            return Value(e.test(*this, subject, args));
        }
        case ExprKind::EXPR_NEG:
        case ExprKind::EXPR_POS: {
            const Value v = eval(*e.args[0], scope);
            if (v.is_undefined()) fail_undefined(v);
            if (!v.is_number())
                throw JinjaError(std::string("bad operand type for unary ") +
                                 (e.kind == ExprKind::EXPR_NEG ? "-" : "+") + ": '" +
                                 py_type_name(v) + "'");
            if (e.kind == ExprKind::EXPR_POS) return v.is_bool() ? Value(v.as_int()) : v;
            if (v.is_float()) return Value(-v.as_float());
            if (v.as_int() == std::numeric_limits<int64_t>::min()) overflow_error();
            return Value(-v.as_int());
        }
        case ExprKind::EXPR_NOT:
            return Value(!py_truthy(eval(*e.args[0], scope)));
        case ExprKind::EXPR_BINARY: {
            const Value a = eval(*e.args[0], scope);
            const Value b = eval(*e.args[1], scope);
            return binary_op(e.op, a, b);
        }
        case ExprKind::EXPR_AND: {
            Value a = eval(*e.args[0], scope);
            return py_truthy(a) ? eval(*e.args[1], scope) : a;
        }
        case ExprKind::EXPR_OR: {
            Value a = eval(*e.args[0], scope);
            return py_truthy(a) ? a : eval(*e.args[1], scope);
        }
        case ExprKind::EXPR_COMPARE: {
            Value left = eval(*e.args[0], scope);
            for (size_t i = 0; i < e.compare_ops.size(); ++i) {
                Value right = eval(*e.args[i + 1], scope);
                bool ok = false;
                switch (e.compare_ops[i]) {
                    case CompareOp::CMP_EQ:
                        ok = py_equal(left, right);
                        break;
                    case CompareOp::CMP_NE:
                        ok = !py_equal(left, right);
                        break;
                    case CompareOp::CMP_LT:
                        ok = py_compare(left, right) < 0;
                        break;
                    case CompareOp::CMP_LE:
                        ok = py_compare(left, right) <= 0;
                        break;
                    case CompareOp::CMP_GT:
                        ok = py_compare(left, right) > 0;
                        break;
                    case CompareOp::CMP_GE:
                        ok = py_compare(left, right) >= 0;
                        break;
                    case CompareOp::CMP_IN:
                        ok = value_in(left, right);
                        break;
                    case CompareOp::CMP_NOTIN:
                        ok = !value_in(left, right);
                        break;
                }
                if (!ok) return Value(false);
                left = std::move(right);
            }
            return Value(true);
        }
        case ExprKind::EXPR_CONCAT: {
            std::string out;
            for (const ExprPtr& a : e.args) {
                const Value v = eval(*a, scope);
                out += v.is_string() ? v.as_string() : py_str(v);
            }
            return Value(std::move(out));
        }
        case ExprKind::EXPR_COND:
            if (py_truthy(eval(*e.args[1], scope))) return eval(*e.args[0], scope);
            if (e.args[2]) return eval(*e.args[2], scope);
            return Value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                                    " evaluated to false and no else section was defined.");
    }
    throw JinjaError("bad expression");
}

}  // namespace sift::jinja
