// The parser's class, shared by its two halves: statements (jinja_parser.cpp) and expressions
// (jinja_parse_expr.cpp). Internal to the engine.
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_lexer.h"

namespace sift::jinja::detail {

constexpr int kMaxDepth = 200;  // nesting of expressions and blocks; keeps the C++ stack bounded

struct OpenBlock {
    std::string tag;
    int line;
    int column;
    std::vector<std::string> ends;  // tags that may close (or continue) it
};

class Parser {
  public:
    explicit Parser(std::vector<LexToken> tokens) : tokens_(std::move(tokens)) {}

    std::unique_ptr<TemplateAst> run() {
        auto ast = std::make_unique<TemplateAst>();
        ast->body = subparse({});
        check_unknown(ast->body, false);
        if (cur().kind != LexKind::LEX_EOF) {
            // subparse returned on an end tag that nothing opened.
            fail_at(cur(), "unexpected tag '" + cur().value + "' (no block is open)");
        }
        return ast;
    }

  private:
    std::vector<LexToken> tokens_;
    size_t pos_ = 0;
    int depth_ = 0;
    int loop_depth_ = 0;
    std::vector<OpenBlock> open_;

    const LexToken& cur() const { return tokens_[pos_]; }
    const LexToken& peek(size_t n = 1) const {
        return tokens_[std::min(pos_ + n, tokens_.size() - 1)];
    }
    const LexToken& next() {
        const LexToken& t = tokens_[pos_];
        if (pos_ + 1 < tokens_.size()) ++pos_;
        return t;
    }

    [[noreturn]] void fail_at(const LexToken& t, const std::string& message) const {
        throw JinjaError(message, t.line, t.column);
    }

    static std::string describe(const LexToken& t);

    bool is_op(std::string_view op) const {
        return cur().kind == LexKind::LEX_OP && cur().value == op;
    }
    bool is_name(std::string_view name) const {
        return cur().kind == LexKind::LEX_NAME && cur().value == name;
    }
    bool skip_op(std::string_view op) {
        if (!is_op(op)) return false;
        next();
        return true;
    }
    bool skip_name(std::string_view name) {
        if (!is_name(name)) return false;
        next();
        return true;
    }
    void expect_op(std::string_view op) {
        if (!skip_op(op))
            fail_at(cur(), "expected '" + std::string(op) + "', got " + describe(cur()));
    }
    const LexToken& expect_kind(LexKind kind, const char* what) {
        if (cur().kind != kind)
            fail_at(cur(), std::string("expected ") + what + ", got " + describe(cur()));
        return next();
    }
    std::string expect_name() { return expect_kind(LexKind::LEX_NAME, "a name").value; }
    void expect_block_end() { expect_kind(LexKind::LEX_BLOCK_END, "end of statement block '%}'"); }

    ExprPtr make(ExprKind kind, const LexToken& at) {
        auto e = std::make_unique<Expr>();
        e->kind = kind;
        e->line = at.line;
        e->column = at.column;
        return e;
    }

    struct DepthGuard {
        Parser& p;
        DepthGuard(Parser& parser, const LexToken& at) : p(parser) {
            if (++p.depth_ > kMaxDepth) p.fail_at(at, "template nested too deeply");
        }
        ~DepthGuard() { --p.depth_; }
    };

    // ---- statements ----

    StmtPtr make_stmt(StmtKind kind, const LexToken& at) {
        auto s = std::make_unique<Stmt>();
        s->kind = kind;
        s->line = at.line;
        s->column = at.column;
        return s;
    }

    // Parses until a block tag whose name is in `ends`; leaves the stream at that name.
    StmtList subparse(const std::vector<std::string>& ends);

    // Parses a block body: `{% tag ... %}` has been read up to its `%}`.
    StmtList parse_body(const LexToken& tag, std::vector<std::string> ends);

    // The end tag's name (current token) is consumed and its `%}` expected.
    std::string finish_end_tag();

    StmtPtr parse_statement();

    StmtPtr parse_for();

    StmtPtr parse_if();

    StmtPtr parse_set();

    void parse_signature(Stmt& s);

    StmtPtr parse_macro();

    StmtPtr parse_call_block();

    StmtPtr parse_filter_block();

    StmtPtr parse_with();

    // `name`, `a, b`, `(a, b)`, or `ns.attr` when allowed.
    Target parse_target(bool with_namespace, const std::vector<std::string>& end_names);

    // Macros accept extra arguments only when their body reads caller/varargs/kwargs.
    // Jinja2's compile-time check: unknown filters and tests fail unless they sit in a "soft"
    // frame (an if block or an inline if-expression), where they fail when evaluated.
    void check_unknown(const Expr* e, bool soft) const;
    void check_unknown(const StmtList& body, bool soft) const;
    static void scan_names(const Expr* e, Stmt& m);
    static void scan_body(const StmtList& body, Stmt& m);
    static void mark_special_names(Stmt& m) { scan_body(m.body, m); }

    // ---- expressions (jinja2/parser.py precedence) ----

    bool is_tuple_end(const std::vector<std::string>& extra_end) const;

    ExprPtr parse_tuple(bool with_condexpr, const std::vector<std::string>& extra_end,
                        bool explicit_parentheses) {
        const LexToken& start = cur();
        std::vector<ExprPtr> items;
        bool is_tuple = false;
        while (true) {
            if (!items.empty()) expect_op(",");
            if (is_tuple_end(extra_end)) break;
            items.push_back(parse_expression(with_condexpr));
            if (is_op(",")) {
                is_tuple = true;
            } else {
                break;
            }
        }
        if (!is_tuple) {
            if (!items.empty()) return std::move(items[0]);
            if (!explicit_parentheses)
                fail_at(cur(), "expected an expression, got " + describe(cur()));
        }
        auto e = make(ExprKind::EXPR_TUPLE, start);
        e->args = std::move(items);
        return e;
    }

    ExprPtr parse_expression(bool with_condexpr);

    ExprPtr parse_condexpr();

    ExprPtr parse_or();

    ExprPtr parse_and();

    ExprPtr parse_not();

    ExprPtr parse_compare();

    ExprPtr binary(BinaryOp op, const LexToken& at, ExprPtr left, ExprPtr right);

    ExprPtr parse_math1();

    ExprPtr parse_concat();

    ExprPtr parse_math2();

    ExprPtr parse_pow();

    ExprPtr parse_unary(bool with_filter);

    ExprPtr parse_primary();

    ExprPtr parse_list();

    ExprPtr parse_dict();

    ExprPtr parse_postfix(ExprPtr node);

    ExprPtr parse_filter_expr(ExprPtr node);

    ExprPtr parse_subscript(ExprPtr node);

    ExprPtr parse_subscribed();

    void parse_call_args(Expr& e);

    ExprPtr parse_call(ExprPtr callee);

    // `| name(args)` chains; `input` is null in filter blocks and block sets.
    ExprPtr parse_filter(ExprPtr input, bool start_inline);

    ExprPtr parse_test(ExprPtr subject);
};

}  // namespace sift::jinja::detail
