// Expressions, with Jinja2's precedence (jinja2/parser.py): condexpr < or < and < not < compare
// < + - < ~ < * / // % < ** < unary - + < postfix (. [] ()) < filters and tests.
#include <algorithm>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_parser_impl.h"

namespace sift::jinja::detail {

bool Parser::is_tuple_end(const std::vector<std::string>& extra_end) const {
    const LexToken& t = cur();
    if (t.kind == LexKind::LEX_VAR_END || t.kind == LexKind::LEX_BLOCK_END ||
        (t.kind == LexKind::LEX_OP && t.value == ")"))
        return true;
    return t.kind == LexKind::LEX_NAME &&
           std::find(extra_end.begin(), extra_end.end(), t.value) != extra_end.end();
}

ExprPtr Parser::parse_expression(bool with_condexpr) {
    return with_condexpr ? parse_condexpr() : parse_or();
}

ExprPtr Parser::parse_condexpr() {
    DepthGuard guard(*this, cur());
    ExprPtr expr = parse_or();
    while (is_name("if")) {
        const LexToken& at = next();
        auto e = make(ExprKind::EXPR_COND, at);
        e->args.push_back(std::move(expr));
        e->args.push_back(parse_or());
        e->args.push_back(skip_name("else") ? parse_condexpr() : nullptr);
        expr = std::move(e);
    }
    return expr;
}

ExprPtr Parser::parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
        auto e = make(ExprKind::EXPR_OR, next());
        e->args.push_back(std::move(left));
        e->args.push_back(parse_and());
        left = std::move(e);
    }
    return left;
}

ExprPtr Parser::parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
        auto e = make(ExprKind::EXPR_AND, next());
        e->args.push_back(std::move(left));
        e->args.push_back(parse_not());
        left = std::move(e);
    }
    return left;
}

ExprPtr Parser::parse_not() {
    if (is_name("not")) {
        DepthGuard guard(*this, cur());
        auto e = make(ExprKind::EXPR_NOT, next());
        e->args.push_back(parse_not());
        return e;
    }
    return parse_compare();
}

ExprPtr Parser::parse_compare() {
    const LexToken& start = cur();
    ExprPtr first = parse_math1();
    std::vector<ExprPtr> operands;
    std::vector<CompareOp> ops;
    while (true) {
        if (cur().kind == LexKind::LEX_OP) {
            const std::string& v = cur().value;
            CompareOp op;
            if (v == "==")
                op = CompareOp::CMP_EQ;
            else if (v == "!=")
                op = CompareOp::CMP_NE;
            else if (v == "<")
                op = CompareOp::CMP_LT;
            else if (v == "<=")
                op = CompareOp::CMP_LE;
            else if (v == ">")
                op = CompareOp::CMP_GT;
            else if (v == ">=")
                op = CompareOp::CMP_GE;
            else
                break;
            next();
            ops.push_back(op);
        } else if (is_name("in")) {
            next();
            ops.push_back(CompareOp::CMP_IN);
        } else if (is_name("not") && peek().kind == LexKind::LEX_NAME && peek().value == "in") {
            next();
            next();
            ops.push_back(CompareOp::CMP_NOTIN);
        } else {
            break;
        }
        operands.push_back(parse_math1());
    }
    if (ops.empty()) return first;
    auto e = make(ExprKind::EXPR_COMPARE, start);
    e->args.push_back(std::move(first));
    for (ExprPtr& o : operands) e->args.push_back(std::move(o));
    e->compare_ops = std::move(ops);
    return e;
}

ExprPtr Parser::binary(BinaryOp op, const LexToken& at, ExprPtr left, ExprPtr right) {
    auto e = make(ExprKind::EXPR_BINARY, at);
    e->op = op;
    e->args.push_back(std::move(left));
    e->args.push_back(std::move(right));
    return e;
}

ExprPtr Parser::parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
        const LexToken& at = next();
        left = binary(at.value == "+" ? BinaryOp::OP_ADD : BinaryOp::OP_SUB, at, std::move(left),
                      parse_concat());
    }
    return left;
}

ExprPtr Parser::parse_concat() {
    const LexToken& start = cur();
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    auto e = make(ExprKind::EXPR_CONCAT, start);
    e->args.push_back(std::move(first));
    while (skip_op("~")) e->args.push_back(parse_math2());
    return e;
}

ExprPtr Parser::parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
        const LexToken& at = next();
        const BinaryOp op = at.value == "*"    ? BinaryOp::OP_MUL
                            : at.value == "/"  ? BinaryOp::OP_DIV
                            : at.value == "//" ? BinaryOp::OP_FLOORDIV
                                               : BinaryOp::OP_MOD;
        left = binary(op, at, std::move(left), parse_pow());
    }
    return left;
}

ExprPtr Parser::parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
        const LexToken& at = next();
        left = binary(BinaryOp::OP_POW, at, std::move(left), parse_unary(true));
    }
    return left;
}

ExprPtr Parser::parse_unary(bool with_filter) {
    DepthGuard guard(*this, cur());
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
        const LexToken& at = next();
        node = make(at.value == "-" ? ExprKind::EXPR_NEG : ExprKind::EXPR_POS, at);
        node->args.push_back(parse_unary(false));
    } else {
        node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
}

ExprPtr Parser::parse_primary() {
    const LexToken& t = cur();
    switch (t.kind) {
        case LexKind::LEX_NAME: {
            next();
            auto e = make(ExprKind::EXPR_CONST, t);
            if (t.value == "true" || t.value == "True") {
                e->value = Value(true);
            } else if (t.value == "false" || t.value == "False") {
                e->value = Value(false);
            } else if (t.value == "none" || t.value == "None") {
                e->value = Value::none();
            } else {
                e->kind = ExprKind::EXPR_NAME;
                e->name = t.value;
            }
            return e;
        }
        case LexKind::LEX_STRING: {
            auto e = make(ExprKind::EXPR_CONST, t);
            std::string s;
            while (cur().kind == LexKind::LEX_STRING) s += next().value;  // "a" "b" joins
            e->value = Value(std::move(s));
            return e;
        }
        case LexKind::LEX_INT: {
            auto e = make(ExprKind::EXPR_CONST, next());
            e->value = Value(t.int_value);
            return e;
        }
        case LexKind::LEX_FLOAT: {
            auto e = make(ExprKind::EXPR_CONST, next());
            e->value = Value(t.float_value);
            return e;
        }
        case LexKind::LEX_OP:
            if (t.value == "(") {
                next();
                ExprPtr e = parse_tuple(true, {}, true);
                expect_op(")");
                return e;
            }
            if (t.value == "[") return parse_list();
            if (t.value == "{") return parse_dict();
            break;
        default:
            break;
    }
    fail_at(t, "unexpected " + describe(t));
}

ExprPtr Parser::parse_list() {
    auto e = make(ExprKind::EXPR_LIST, next());
    while (!is_op("]")) {
        if (!e->args.empty()) expect_op(",");
        if (is_op("]")) break;
        e->args.push_back(parse_expression(true));
    }
    expect_op("]");
    return e;
}

ExprPtr Parser::parse_dict() {
    auto e = make(ExprKind::EXPR_DICT, next());
    while (!is_op("}")) {
        if (!e->args.empty()) expect_op(",");
        if (is_op("}")) break;
        e->args.push_back(parse_expression(true));
        expect_op(":");
        e->args.push_back(parse_expression(true));
    }
    expect_op("}");
    return e;
}

ExprPtr Parser::parse_postfix(ExprPtr node) {
    while (true) {
        if (is_op(".") || is_op("[")) {
            node = parse_subscript(std::move(node));
        } else if (is_op("(")) {
            node = parse_call(std::move(node));
        } else {
            return node;
        }
    }
}

ExprPtr Parser::parse_filter_expr(ExprPtr node) {
    while (true) {
        if (is_op("|")) {
            node = parse_filter(std::move(node), false);
        } else if (is_name("is")) {
            node = parse_test(std::move(node));
        } else if (is_op("(")) {
            node = parse_call(std::move(node));
        } else {
            return node;
        }
    }
}

ExprPtr Parser::parse_subscript(ExprPtr node) {
    const LexToken& at = next();
    if (at.value == ".") {
        const LexToken& attr = cur();
        if (attr.kind == LexKind::LEX_NAME) {
            next();
            auto e = make(ExprKind::EXPR_GETATTR, at);
            e->args.push_back(std::move(node));
            e->name = attr.value;
            return e;
        }
        if (attr.kind != LexKind::LEX_INT) fail_at(attr, "expected name or number after '.'");
        next();
        auto index = make(ExprKind::EXPR_CONST, attr);
        index->value = Value(attr.int_value);
        auto e = make(ExprKind::EXPR_GETITEM, at);
        e->args.push_back(std::move(node));
        e->args.push_back(std::move(index));
        return e;
    }
    std::vector<ExprPtr> args;
    while (!is_op("]")) {
        if (!args.empty()) expect_op(",");
        args.push_back(parse_subscribed());
    }
    expect_op("]");
    auto e = make(ExprKind::EXPR_GETITEM, at);
    e->args.push_back(std::move(node));
    if (args.size() == 1) {
        e->args.push_back(std::move(args[0]));
    } else {
        auto tuple = make(ExprKind::EXPR_TUPLE, at);
        tuple->args = std::move(args);
        e->args.push_back(std::move(tuple));
    }
    return e;
}

ExprPtr Parser::parse_subscribed() {
    const LexToken& start = cur();
    ExprPtr first;
    if (!is_op(":")) {
        first = parse_expression(true);
        if (!is_op(":")) return first;
    }
    next();  // the ':'
    auto slice = make(ExprKind::EXPR_SLICE, start);
    slice->args.push_back(std::move(first));
    if (is_op(":") || is_op("]") || is_op(",")) {
        slice->args.push_back(nullptr);
    } else {
        slice->args.push_back(parse_expression(true));
    }
    if (skip_op(":") && !is_op("]") && !is_op(",")) {
        slice->args.push_back(parse_expression(true));
    } else {
        slice->args.push_back(nullptr);
    }
    return slice;
}

void Parser::parse_call_args(Expr& e) {
    const LexToken& open = cur();
    expect_op("(");
    bool require_comma = false;
    while (!is_op(")")) {
        if (require_comma) {
            expect_op(",");
            if (is_op(")")) break;  // trailing comma
        }
        if (is_op("*")) {
            if (e.dyn_args || e.dyn_kwargs) fail_at(open, "invalid syntax for function call");
            next();
            e.dyn_args = parse_expression(true);
        } else if (is_op("**")) {
            if (e.dyn_kwargs) fail_at(open, "invalid syntax for function call");
            next();
            e.dyn_kwargs = parse_expression(true);
        } else if (cur().kind == LexKind::LEX_NAME && peek().kind == LexKind::LEX_OP &&
                   peek().value == "=") {
            if (e.dyn_kwargs) fail_at(open, "invalid syntax for function call");
            std::string key = next().value;
            next();
            e.keywords.emplace_back(std::move(key), parse_expression(true));
        } else {
            if (e.dyn_args || e.dyn_kwargs || !e.keywords.empty())
                fail_at(cur(), "positional argument follows keyword argument");
            e.args.push_back(parse_expression(true));
        }
        require_comma = true;
    }
    expect_op(")");
}

ExprPtr Parser::parse_call(ExprPtr callee) {
    auto e = make(ExprKind::EXPR_CALL, cur());
    e->line = callee->line;  // errors point at what is called, not at its '('
    e->column = callee->column;
    e->args.push_back(std::move(callee));
    parse_call_args(*e);
    return e;
}

ExprPtr Parser::parse_filter(ExprPtr input, bool start_inline) {
    while (is_op("|") || start_inline) {
        if (!start_inline) next();
        start_inline = false;
        const LexToken& at = cur();
        std::string name = expect_name();
        while (skip_op(".")) name += "." + expect_name();
        auto e = make(ExprKind::EXPR_FILTER, at);
        e->name = name;
        e->filter = lookup_filter(name, e->known);
        e->args.push_back(std::move(input));
        if (is_op("(")) parse_call_args(*e);
        input = std::move(e);
    }
    return input;
}

ExprPtr Parser::parse_test(ExprPtr subject) {
    const LexToken& is_tok = next();
    const bool negated = skip_name("not");
    const LexToken& at = cur();
    std::string name = expect_name();
    while (skip_op(".")) name += "." + expect_name();
    auto e = make(ExprKind::EXPR_TEST, at);
    e->name = name;
    e->test = lookup_test(name, e->known);
    e->args.push_back(std::move(subject));
    const LexToken& t = cur();
    if (is_op("(")) {
        parse_call_args(*e);
    } else if ((t.kind == LexKind::LEX_NAME || t.kind == LexKind::LEX_STRING ||
                t.kind == LexKind::LEX_INT || t.kind == LexKind::LEX_FLOAT || is_op("[") ||
                is_op("{")) &&
               !(is_name("else") || is_name("or") || is_name("and"))) {
        if (is_name("is")) fail_at(t, "you cannot chain multiple tests with 'is'");
        e->args.push_back(parse_postfix(parse_primary()));
    }
    if (!negated) return e;
    auto n = make(ExprKind::EXPR_NOT, is_tok);
    n->args.push_back(std::move(e));
    return n;
}

}  // namespace sift::jinja::detail
