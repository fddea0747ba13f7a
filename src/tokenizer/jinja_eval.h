// Tree-walking interpreter of a parsed template, with Jinja2's scoping: a `for` body gets a fresh
// scope per iteration, macros see the scope they were defined in, `if` blocks share their scope.
#pragma once

#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_value.h"

namespace sift::jinja {

struct Scope {
    std::shared_ptr<Scope> parent;
    std::vector<std::pair<std::string, Value>> vars;

    const Value* find(std::string_view name) const;  // this scope or its parents
    void set(std::string_view name, Value value);    // this scope
};
using ScopePtr = std::shared_ptr<Scope>;

struct RenderOptions {
    // The clock strftime_now() reads; unset: the current local time.
    std::optional<std::tm> now;
};

// A macro (or the body of a call block, bound as `caller`) with the scope it closes over.
class Macro : public Object {
  public:
    Macro(const Stmt* definition, std::string macro_name, ScopePtr scope)
        : def(definition), name(std::move(macro_name)), closure(std::move(scope)) {}
    std::string type_name() const override { return "Macro"; }
    std::string repr() const override { return "<Macro '" + name + "'>"; }
    bool callable() const override { return true; }
    Value call(Interpreter& interp, CallArgs& args) override;
    void release() override { closure.reset(); }

    const Stmt* def;
    std::string name;
    ScopePtr closure;
};

class Interpreter {
  public:
    Interpreter(const TemplateAst& ast, ScopePtr root, const RenderOptions& options)
        : ast_(ast), root_(std::move(root)), options_(options) {}
    ~Interpreter();
    Interpreter(const Interpreter&) = delete;
    Interpreter& operator=(const Interpreter&) = delete;

    // Throws JinjaError with the position of the failing node.
    std::string render();

    Value eval(const Expr& e, const ScopePtr& scope);
    Value call_value(const Value& callee, CallArgs& args);
    Value call_macro(const Macro& macro, CallArgs& args);
    // Filters and tests by name, for map('upper'), select('odd') and friends.
    Value call_filter(std::string_view name, const Value& input, CallArgs& args);
    bool call_test(std::string_view name, const Value& input, CallArgs& args);
    const RenderOptions& options() const { return options_; }
    // Objects that may sit in reference cycles (macros, namespaces); released with the render.
    Value adopt(std::shared_ptr<Object> object);

  private:
    enum class Flow { FLOW_NORMAL, FLOW_BREAK, FLOW_CONTINUE };

    Flow exec(const StmtList& body, const ScopePtr& scope, std::string& out);
    Flow exec_stmt(const Stmt& s, const ScopePtr& scope, std::string& out);
    Flow exec_for(const Stmt& s, const ScopePtr& scope, std::string& out);
    void assign(const Target& target, const Value& value, const ScopePtr& scope);
    Value eval_inner(const Expr& e, const ScopePtr& scope);
    Value eval_filter(const Expr& e, const Value& input, const ScopePtr& scope);
    void eval_call_args(const Expr& e, size_t first, const ScopePtr& scope, CallArgs& args);

    const TemplateAst& ast_;
    ScopePtr root_;
    const RenderOptions& options_;
    int call_depth_ = 0;
    std::vector<std::shared_ptr<Object>> adopted_;
};

// Python operators as Jinja2 applies them.
Value binary_op(BinaryOp op, const Value& a, const Value& b);
bool value_in(const Value& item, const Value& container);

}  // namespace sift::jinja
