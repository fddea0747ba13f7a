// Tokenizer for Jinja2 template source with the environment transformers uses for chat templates
// (trim_blocks=True, lstrip_blocks=True, default delimiters, no line statements). Whitespace
// control (`{%-`, `-%}`, `{%+`, `+%}`) and raw blocks are resolved here, so the parser only sees
// the text that is really emitted.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sift::jinja {

enum class LexKind : uint8_t {
    LEX_TEXT,         // template data between tags
    LEX_VAR_BEGIN,    // {{
    LEX_VAR_END,      // }}
    LEX_BLOCK_BEGIN,  // {%
    LEX_BLOCK_END,    // %}
    LEX_NAME,
    LEX_STRING,  // value is the decoded literal
    LEX_INT,
    LEX_FLOAT,
    LEX_OP,  // value is the operator text: "+", "//", "(", ...
    LEX_EOF,
};

struct LexToken {
    LexKind kind;
    std::string value;
    int line = 1;
    int column = 1;
    int64_t int_value = 0;
    double float_value = 0.0;
};

// Throws JinjaError (with line and column) on malformed source.
std::vector<LexToken> jinja_lex(std::string_view source);

}  // namespace sift::jinja
