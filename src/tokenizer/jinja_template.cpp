#include "tokenizer/jinja_template.h"

#include <fmt/format.h>

#include "tokenizer/jinja_parser.h"

namespace sift::jinja {
namespace {

Error to_error(const JinjaError& e) {
    if (e.line > 0) return make_error("line {}, column {}: {}", e.line, e.column, e.what());
    return make_error("{}", e.what());
}

}  // namespace

Result<Template> Template::parse(std::string_view source) {
    try {
        Template t;
        t.ast_ = jinja_parse(source);
        return t;
    } catch (const JinjaError& e) {
        return to_error(e);
    }
}

Result<std::string> Template::render(const Dict& variables, const RenderOptions& options) const {
    if (!ast_) return make_error("template was not parsed");
    auto root = std::make_shared<Scope>();
    root->vars = variables.items;
    try {
        Interpreter interp(*ast_, root, options);
        return interp.render();
    } catch (const JinjaError& e) {
        return to_error(e);
    }
}

}  // namespace sift::jinja
