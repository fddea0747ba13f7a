// Parser of the Jinja2 subset: template source to a syntax tree, following Jinja2's grammar and
// operator precedence (jinja2/parser.py). Unknown tags, filters and tests are errors that name
// the construct, its line and column; as in Jinja2, unknown filters and tests inside if blocks
// and inline if-expressions fail only when evaluated.
#pragma once

#include <memory>
#include <string_view>

#include "tokenizer/jinja_ast.h"

namespace sift::jinja {

// Throws JinjaError with the position of the offending token.
std::unique_ptr<TemplateAst> jinja_parse(std::string_view source);

}  // namespace sift::jinja
