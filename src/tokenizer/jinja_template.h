// Public API of sift's Jinja2 subset engine: parse a template once, render it many times.
//
// Rendering matches Python jinja2 3.1 in the environment transformers builds for chat templates
// (sandboxed, trim_blocks, lstrip_blocks, loopcontrols, tojson without HTML escaping,
// raise_exception, strftime_now). Constructs sift does not implement are errors naming the
// construct and its line and column, never approximated output.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"
#include "tokenizer/jinja_eval.h"
#include "tokenizer/jinja_value.h"

namespace sift::jinja {

class Template {
  public:
    // Errors: "line L, column C: message".
    static Result<Template> parse(std::string_view source);

    // `variables` is the template context (messages, tools, add_generation_prompt, ...).
    Result<std::string> render(const Dict& variables, const RenderOptions& options = {}) const;

  private:
    std::shared_ptr<const TemplateAst> ast_;
};

}  // namespace sift::jinja
