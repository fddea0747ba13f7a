// Syntax tree of a parsed template: expressions and statements, each with its source position so
// that runtime errors can name the line and column.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace sift::jinja {

using FilterFn = Value (*)(Interpreter& interp, const Value& input, CallArgs& args);
using TestFn = bool (*)(Interpreter& interp, const Value& input, CallArgs& args);

enum class ExprKind : uint8_t {
    EXPR_CONST,    // value
    EXPR_NAME,     // name
    EXPR_LIST,     // args: items
    EXPR_TUPLE,    // args: items
    EXPR_DICT,     // args: key0, value0, key1, value1, ...
    EXPR_GETATTR,  // args[0].name
    EXPR_GETITEM,  // args[0][args[1]]
    EXPR_SLICE,    // args[0]:args[1]:args[2], each may be null
    EXPR_CALL,     // args[0](args[1..], keywords)
    EXPR_FILTER,   // args[0] | name(args[1..], keywords); args[0] null in filter blocks
    EXPR_TEST,     // args[0] is name(args[1..], keywords)
    EXPR_NEG,      // -args[0]
    EXPR_POS,      // +args[0]
    EXPR_NOT,      // not args[0]
    EXPR_BINARY,   // args[0] op args[1]
    EXPR_AND,      // args[0] and args[1]
    EXPR_OR,       // args[0] or args[1]
    EXPR_COMPARE,  // args[0] cmp[0] args[1] cmp[1] args[2] ...
    EXPR_CONCAT,   // args[0] ~ args[1] ~ ...
    EXPR_COND,     // args[0] if args[1] else args[2] (args[2] may be null)
};

enum class BinaryOp : uint8_t { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW };
enum class CompareOp : uint8_t {
    CMP_EQ,
    CMP_NE,
    CMP_LT,
    CMP_LE,
    CMP_GT,
    CMP_GE,
    CMP_IN,
    CMP_NOTIN
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
    ExprKind kind;
    int line = 0;
    int column = 0;
    Value value;
    std::string name;
    std::vector<ExprPtr> args;
    std::vector<std::pair<std::string, ExprPtr>> keywords;
    ExprPtr dyn_args;    // f(*x)
    ExprPtr dyn_kwargs;  // f(**x)
    BinaryOp op = BinaryOp::OP_ADD;
    std::vector<CompareOp> compare_ops;
    FilterFn filter = nullptr;  // EXPR_FILTER, resolved at parse time (null: known but unsupported)
    TestFn test = nullptr;      // EXPR_TEST, likewise
    // False when Jinja2 has no filter/test of that name. Like Jinja2, that is a parse error except
    // inside `if` blocks and inline if-expressions, where it fails only when evaluated.
    bool known = true;
};

// Assignment target: `x`, `a, b` (tuple unpacking) or `ns.attr` (namespace attribute).
struct Target {
    std::vector<std::string> names;
    bool is_tuple = false;
    std::string ns_attr;  // non-empty: names[0].ns_attr
};

enum class StmtKind : uint8_t {
    STMT_TEXT,          // text
    STMT_OUTPUT,        // {{ expr }}
    STMT_IF,            // branches, else_body
    STMT_FOR,           // target in expr [if cond]: body [else else_body]
    STMT_SET,           // target = expr
    STMT_SET_BLOCK,     // {% set target [| filter] %}body{% endset %}; expr: filter chain or null
    STMT_MACRO,         // name(params=defaults): body
    STMT_CALL_BLOCK,    // {% call(params) expr %}body{% endcall %}
    STMT_FILTER_BLOCK,  // {% filter expr %}body{% endfilter %}
    STMT_WITH,          // {% with assigns %}body{% endwith %}
    STMT_BREAK,
    STMT_CONTINUE,
    STMT_BODY,  // a body rendered as is ({% generation %} of transformers' AssistantTracker)
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using StmtList = std::vector<StmtPtr>;

struct Stmt {
    StmtKind kind;
    int line = 0;
    int column = 0;
    std::string text;
    ExprPtr expr;
    ExprPtr cond;
    Target target;
    std::vector<std::pair<ExprPtr, StmtList>> branches;
    StmtList body;
    StmtList else_body;
    // Macros and call blocks.
    std::string name;
    std::vector<std::string> params;
    std::vector<ExprPtr> defaults;  // for the last defaults.size() params
    bool uses_caller = false;
    bool uses_varargs = false;
    bool uses_kwargs = false;
    std::vector<std::pair<Target, ExprPtr>> assigns;  // STMT_WITH
    bool recursive = false;                           // STMT_FOR with `recursive`
};

struct TemplateAst {
    StmtList body;
};

}  // namespace sift::jinja
