#include <algorithm>
#include <initializer_list>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_parser.h"
#include "tokenizer/jinja_parser_impl.h"

namespace sift::jinja {
namespace detail {

std::string Parser::describe(const LexToken& t) {
    switch (t.kind) {
        case LexKind::LEX_TEXT:
            return "template text";
        case LexKind::LEX_VAR_BEGIN:
            return "'{{'";
        case LexKind::LEX_VAR_END:
            return "end of print statement '}}'";
        case LexKind::LEX_BLOCK_BEGIN:
            return "'{%'";
        case LexKind::LEX_BLOCK_END:
            return "end of statement block '%}'";
        case LexKind::LEX_NAME:
            return "'" + t.value + "'";
        case LexKind::LEX_STRING:
            return "string literal";
        case LexKind::LEX_INT:
        case LexKind::LEX_FLOAT:
            return "number '" + t.value + "'";
        case LexKind::LEX_OP:
            return "'" + t.value + "'";
        case LexKind::LEX_EOF:
            return "end of template";
    }
    return "token";
}

StmtList Parser::subparse(const std::vector<std::string>& ends) {
    StmtList body;
    while (true) {
        const LexToken& t = cur();
        switch (t.kind) {
            case LexKind::LEX_EOF:
                if (!open_.empty()) {
                    const OpenBlock& b = open_.back();
                    std::string expected;
                    for (const std::string& e : b.ends)
                        expected += (expected.empty() ? "'" : " or '") + e + "'";
                    fail_at(t, "unexpected end of template: the '" + b.tag +
                                   "' block opened at line " + std::to_string(b.line) +
                                   ", column " + std::to_string(b.column) +
                                   " is not closed (expected " + expected + ")");
                }
                return body;
            case LexKind::LEX_TEXT: {
                auto s = make_stmt(StmtKind::STMT_TEXT, t);
                s->text = t.value;
                next();
                body.push_back(std::move(s));
                break;
            }
            case LexKind::LEX_VAR_BEGIN: {
                next();
                auto s = make_stmt(StmtKind::STMT_OUTPUT, t);
                s->expr = parse_tuple(true, {}, false);
                expect_kind(LexKind::LEX_VAR_END, "end of print statement '}}'");
                body.push_back(std::move(s));
                break;
            }
            case LexKind::LEX_BLOCK_BEGIN: {
                const LexToken& tag = peek();
                if (tag.kind == LexKind::LEX_NAME &&
                    std::find(ends.begin(), ends.end(), tag.value) != ends.end()) {
                    next();
                    return body;
                }
                next();
                if (StmtPtr s = parse_statement()) body.push_back(std::move(s));
                break;
            }
            default:
                fail_at(t, "unexpected " + describe(t));
        }
    }
}

StmtList Parser::parse_body(const LexToken& tag, std::vector<std::string> ends) {
    DepthGuard guard(*this, tag);
    expect_block_end();
    open_.push_back(OpenBlock{tag.value, tag.line, tag.column, ends});
    StmtList body = subparse(ends);
    open_.pop_back();
    return body;
}

std::string Parser::finish_end_tag() {
    std::string name = next().value;
    if (name.rfind("end", 0) == 0) expect_block_end();
    return name;
}

StmtPtr Parser::parse_statement() {
    const LexToken& tag = cur();
    if (tag.kind != LexKind::LEX_NAME) fail_at(tag, "tag name expected, got " + describe(tag));
    const std::string& name = tag.value;
    if (name == "for") return parse_for();
    if (name == "if") return parse_if();
    if (name == "set") return parse_set();
    if (name == "macro") return parse_macro();
    if (name == "call") return parse_call_block();
    if (name == "filter") return parse_filter_block();
    if (name == "with") return parse_with();
    if (name == "print") {
        auto s = make_stmt(StmtKind::STMT_OUTPUT, next());
        s->expr = parse_tuple(true, {}, false);
        expect_block_end();
        return s;
    }
    if (name == "break" || name == "continue") {
        if (loop_depth_ == 0) fail_at(tag, "'" + name + "' outside of a for loop");
        auto s =
            make_stmt(name == "break" ? StmtKind::STMT_BREAK : StmtKind::STMT_CONTINUE, next());
        expect_block_end();
        return s;
    }
    if (name == "generation") {
        // transformers' AssistantTracker tag: renders its body unchanged.
        auto s = make_stmt(StmtKind::STMT_BODY, next());
        s->body = parse_body(tag, {"endgeneration"});
        finish_end_tag();
        return s;
    }
    static const char* const kUnsupported[] = {"block",  "extends", "include",
                                               "import", "from",    "autoescape"};
    for (const char* u : kUnsupported)
        if (name == u) fail_at(tag, "tag '" + name + "' is not supported by sift's Jinja engine");
    if (!open_.empty()) {
        const OpenBlock& b = open_.back();
        std::string expected;
        for (const std::string& e : b.ends)
            expected += (expected.empty() ? "'" : " or '") + e + "'";
        fail_at(tag, "unknown tag '" + name + "' (the innermost open block is '" + b.tag +
                         "' from line " + std::to_string(b.line) + ", expecting " + expected + ")");
    }
    fail_at(tag, "unknown tag '" + name + "'");
}

StmtPtr Parser::parse_for() {
    const LexToken& tag = next();
    auto s = make_stmt(StmtKind::STMT_FOR, tag);
    s->target = parse_target(false, {"in"});
    if (!skip_name("in")) fail_at(cur(), "expected 'in' in for loop, got " + describe(cur()));
    s->expr = parse_tuple(false, {"recursive"}, false);
    if (skip_name("if")) s->cond = parse_expression(true);
    s->recursive = skip_name("recursive");
    ++loop_depth_;
    s->body = parse_body(tag, {"endfor", "else"});
    --loop_depth_;
    if (finish_end_tag() == "else") {
        s->else_body = parse_body(tag, {"endfor"});
        finish_end_tag();
    }
    return s;
}

StmtPtr Parser::parse_if() {
    const LexToken& tag = next();
    auto s = make_stmt(StmtKind::STMT_IF, tag);
    while (true) {
        ExprPtr test = parse_tuple(false, {}, false);
        StmtList body = parse_body(tag, {"elif", "else", "endif"});
        s->branches.emplace_back(std::move(test), std::move(body));
        const std::string end = finish_end_tag();
        if (end == "elif") continue;
        if (end == "else") {
            s->else_body = parse_body(tag, {"endif"});
            finish_end_tag();
        }
        return s;
    }
}

StmtPtr Parser::parse_set() {
    const LexToken& tag = next();
    Target target = parse_target(true, {});
    if (skip_op("=")) {
        auto s = make_stmt(StmtKind::STMT_SET, tag);
        s->target = std::move(target);
        s->expr = parse_tuple(true, {}, false);
        expect_block_end();
        return s;
    }
    auto s = make_stmt(StmtKind::STMT_SET_BLOCK, tag);
    s->target = std::move(target);
    if (is_op("|")) s->expr = parse_filter(nullptr, false);
    s->body = parse_body(tag, {"endset"});
    finish_end_tag();
    return s;
}

void Parser::parse_signature(Stmt& s) {
    expect_op("(");
    while (!is_op(")")) {
        if (!s.params.empty()) expect_op(",");
        const LexToken& at = cur();
        s.params.push_back(expect_name());
        if (skip_op("=")) {
            s.defaults.push_back(parse_expression(true));
        } else if (!s.defaults.empty()) {
            fail_at(at, "non-default argument follows default argument");
        }
    }
    expect_op(")");
}

StmtPtr Parser::parse_macro() {
    const LexToken& tag = next();
    auto s = make_stmt(StmtKind::STMT_MACRO, tag);
    s->name = expect_name();
    parse_signature(*s);
    const int saved_loops = loop_depth_;
    loop_depth_ = 0;  // break/continue cannot cross a macro boundary
    s->body = parse_body(tag, {"endmacro"});
    loop_depth_ = saved_loops;
    finish_end_tag();
    mark_special_names(*s);
    return s;
}

StmtPtr Parser::parse_call_block() {
    const LexToken& tag = next();
    auto s = make_stmt(StmtKind::STMT_CALL_BLOCK, tag);
    if (is_op("(")) parse_signature(*s);
    s->expr = parse_expression(true);
    if (s->expr->kind != ExprKind::EXPR_CALL) fail_at(tag, "expected a call in the call block");
    s->body = parse_body(tag, {"endcall"});
    finish_end_tag();
    mark_special_names(*s);
    return s;
}

StmtPtr Parser::parse_filter_block() {
    const LexToken& tag = next();
    auto s = make_stmt(StmtKind::STMT_FILTER_BLOCK, tag);
    s->expr = parse_filter(nullptr, true);
    s->body = parse_body(tag, {"endfilter"});
    finish_end_tag();
    return s;
}

StmtPtr Parser::parse_with() {
    const LexToken& tag = next();
    auto s = make_stmt(StmtKind::STMT_WITH, tag);
    while (cur().kind != LexKind::LEX_BLOCK_END) {
        if (!s->assigns.empty()) expect_op(",");
        Target t = parse_target(false, {});
        expect_op("=");
        s->assigns.emplace_back(std::move(t), parse_expression(true));
    }
    s->body = parse_body(tag, {"endwith"});
    finish_end_tag();
    return s;
}

Target Parser::parse_target(bool with_namespace, const std::vector<std::string>& end_names) {
    Target t;
    if (with_namespace && cur().kind == LexKind::LEX_NAME && peek().kind == LexKind::LEX_OP &&
        peek().value == ".") {
        t.names.push_back(next().value);
        next();
        t.ns_attr = expect_name();
        return t;
    }
    const bool parenthesized = skip_op("(");
    while (true) {
        const LexToken& at = cur();
        const std::string name = expect_name();
        if (name == "true" || name == "false" || name == "none" || name == "True" ||
            name == "False" || name == "None")
            fail_at(at, "cannot assign to '" + name + "'");
        t.names.push_back(name);
        if (!is_op(",")) break;
        next();
        t.is_tuple = true;
        if (cur().kind != LexKind::LEX_NAME) break;
        if (std::find(end_names.begin(), end_names.end(), cur().value) != end_names.end()) break;
    }
    if (parenthesized) expect_op(")");
    return t;
}

void Parser::scan_names(const Expr* e, Stmt& m) {
    if (!e) return;
    if (e->kind == ExprKind::EXPR_NAME) {
        if (e->name == "caller") m.uses_caller = true;
        if (e->name == "varargs") m.uses_varargs = true;
        if (e->name == "kwargs") m.uses_kwargs = true;
    }
    for (const ExprPtr& a : e->args) scan_names(a.get(), m);
    for (const auto& kw : e->keywords) scan_names(kw.second.get(), m);
    scan_names(e->dyn_args.get(), m);
    scan_names(e->dyn_kwargs.get(), m);
}

void Parser::scan_body(const StmtList& body, Stmt& m) {
    for (const StmtPtr& s : body) {
        scan_names(s->expr.get(), m);
        scan_names(s->cond.get(), m);
        for (const auto& [test, branch] : s->branches) {
            scan_names(test.get(), m);
            scan_body(branch, m);
        }
        for (const ExprPtr& d : s->defaults) scan_names(d.get(), m);
        for (const auto& a : s->assigns) scan_names(a.second.get(), m);
        scan_body(s->body, m);
        scan_body(s->else_body, m);
    }
}

void Parser::check_unknown(const Expr* e, bool soft) const {
    if (!e) return;
    if (!e->known && !soft) {
        throw JinjaError(
            std::string(e->kind == ExprKind::EXPR_FILTER ? "unknown filter '" : "unknown test '") +
                e->name + "'",
            e->line, e->column);
    }
    const bool inner_soft = soft || e->kind == ExprKind::EXPR_COND;
    for (const ExprPtr& a : e->args) check_unknown(a.get(), inner_soft);
    for (const auto& kw : e->keywords) check_unknown(kw.second.get(), inner_soft);
    check_unknown(e->dyn_args.get(), inner_soft);
    check_unknown(e->dyn_kwargs.get(), inner_soft);
}

void Parser::check_unknown(const StmtList& body, bool soft) const {
    for (const StmtPtr& s : body) {
        switch (s->kind) {
            case StmtKind::STMT_IF:
                for (const auto& [test, branch] : s->branches) {
                    check_unknown(test.get(), true);
                    check_unknown(branch, true);
                }
                check_unknown(s->else_body, true);
                break;
            case StmtKind::STMT_FOR:
                check_unknown(s->expr.get(), soft);
                check_unknown(s->cond.get(), false);
                check_unknown(s->body, false);
                check_unknown(s->else_body, false);
                break;
            case StmtKind::STMT_MACRO:
                for (const ExprPtr& d : s->defaults) check_unknown(d.get(), false);
                check_unknown(s->body, false);
                break;
            default:
                // Expressions of the statement sit in the current frame; nested bodies (set
                // blocks, call/filter/with blocks) get their own.
                check_unknown(s->expr.get(), soft);
                for (const ExprPtr& d : s->defaults) check_unknown(d.get(), soft);
                for (const auto& a : s->assigns) check_unknown(a.second.get(), soft);
                check_unknown(s->body, false);
                break;
        }
    }
}

}  // namespace detail

std::unique_ptr<TemplateAst> jinja_parse(std::string_view source) {
    return detail::Parser(jinja_lex(source)).run();
}

}  // namespace sift::jinja
