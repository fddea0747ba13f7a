// sift's Jinja engine: features checked against Python jinja2 (goldens from
// scripts/gen_template_golden.py), plus the errors, undefined semantics and limits of the engine.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tokenizer/jinja_template.h"
#include "tokenizer/jinja_text.h"
#include "tokenizer/jinja_value.h"

namespace sift::jinja {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

const fs::path kTemplates = fs::path(SIFT_TEST_DATA) / "templates";

std::string slurp(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

Value to_value(const ordered_json& j) {
    switch (j.type()) {
        case ordered_json::value_t::null:
            return Value::none();
        case ordered_json::value_t::boolean:
            return Value(j.get<bool>());
        case ordered_json::value_t::number_integer:
        case ordered_json::value_t::number_unsigned:
            return Value(j.get<int64_t>());
        case ordered_json::value_t::number_float:
            return Value(j.get<double>());
        case ordered_json::value_t::string:
            return Value(j.get<std::string>());
        case ordered_json::value_t::array: {
            ValueList items;
            for (const auto& item : j) items.push_back(to_value(item));
            return Value::list(std::move(items));
        }
        case ordered_json::value_t::object: {
            Dict d;
            for (auto it = j.begin(); it != j.end(); ++it) d.set(it.key(), to_value(it.value()));
            return Value::dict(std::move(d));
        }
        default:
            return Value();
    }
}

RenderOptions fixed_clock() {
    RenderOptions opt;
    std::tm tm{};
    tm.tm_year = 2025 - 1900;
    tm.tm_mon = 2;
    tm.tm_mday = 14;
    tm.tm_hour = 9;
    tm.tm_min = 26;
    tm.tm_sec = 53;
    tm.tm_wday = 5;
    tm.tm_yday = 72;
    opt.now = tm;
    return opt;
}

Result<std::string> render(std::string_view source, const Dict& vars = {}) {
    Result<Template> t = Template::parse(source);
    if (!t) return t.error();
    return t->render(vars, fixed_clock());
}

std::string render_ok(std::string_view source, const Dict& vars = {}) {
    Result<std::string> out = render(source, vars);
    EXPECT_TRUE(out.ok()) << source << ": " << out.message();
    return out.ok() ? *out : "";
}

std::string render_error(std::string_view source, const Dict& vars = {}) {
    Result<std::string> out = render(source, vars);
    EXPECT_FALSE(out.ok()) << source << " rendered " << (out.ok() ? *out : "");
    return out.ok() ? "" : out.message();
}

std::string parse_error(std::string_view source) {
    Result<Template> t = Template::parse(source);
    EXPECT_FALSE(t.ok()) << source << " parsed";
    return t.ok() ? "" : t.message();
}

#define EXPECT_CONTAINS(haystack, needle)                 \
    EXPECT_NE((haystack).find(needle), std::string::npos) \
        << "'" << (haystack) << "' lacks '" << (needle) << "'"

TEST(JinjaFeatures, EveryFeatureMatchesJinja2) {
    const ordered_json features = ordered_json::parse(slurp(kTemplates / "jinja_features.json"));
    const ordered_json golden =
        ordered_json::parse(slurp(kTemplates / "jinja_features.golden.json"));
    ASSERT_EQ(features["cases"].size(), golden["cases"].size())
        << "stale goldens: run /tmp/ovenv/bin/python scripts/gen_template_golden.py";
    int matched = 0, total = 0;
    for (size_t i = 0; i < features["cases"].size(); ++i) {
        const ordered_json& f = features["cases"][i];
        const ordered_json& g = golden["cases"][i];
        const std::string name = f["name"].get<std::string>();
        ASSERT_EQ(name, g["name"].get<std::string>());
        const Value context = to_value(f["context"]);
        Result<std::string> out = render(f["template"].get<std::string>(), context.as_dict());
        bool ok;
        if (g.contains("output")) {
            ok = out.ok() && *out == g["output"].get<std::string>();
            EXPECT_TRUE(ok) << name << ": " << (out.ok() ? "got '" + *out + "'" : out.message())
                            << "\nexpected '" << g["output"].get<std::string>() << "'";
        } else {
            // Python's message, unless the case names sift's own wording (Python's names
            // internals).
            const std::string expected = f.contains("sift_error")
                                             ? f["sift_error"].get<std::string>()
                                             : g["error"].get<std::string>();
            ok = !out.ok() && out.message().find(expected) != std::string::npos;
            EXPECT_TRUE(ok) << name << ": "
                            << (out.ok() ? "rendered '" + *out + "'" : out.message())
                            << "\nPython raised '" << expected << "'";
        }
        ++total;
        matched += ok;
    }
    std::printf("  jinja feature goldens: %d/%d match\n", matched, total);
}

TEST(JinjaErrors, UnknownFilterNamesFilterAndPosition) {
    const std::string e = parse_error("line one\n{{ name | frobnicate }}");
    EXPECT_CONTAINS(e, "line 2, column 11: unknown filter 'frobnicate'");
}

TEST(JinjaErrors, UnknownTestNamesTestAndPosition) {
    EXPECT_CONTAINS(parse_error("{{ x is startingwith('a') }}"),
                    "line 1, column 9: unknown test 'startingwith'");
    // Inside if blocks Jinja2 reports unknown filters and tests only when they are evaluated.
    EXPECT_EQ(render_ok("{% if false and x is startingwith('a') %}{{ x|nope }}{% endif %}ok"),
              "ok");
    EXPECT_CONTAINS(render_error("{% if x is startingwith('a') %}{% endif %}"),
                    "line 1, column 12: No test named 'startingwith' found.");
    EXPECT_CONTAINS(render_error("{% if true %}\n {{ x | nope }}{% endif %}"),
                    "line 2, column 9: No filter named 'nope' found.");
}

TEST(JinjaErrors, UnknownTagNamesTagAndInnermostBlock) {
    EXPECT_CONTAINS(parse_error("{% frobnicate %}"), "line 1, column 4: unknown tag 'frobnicate'");
    const std::string e = parse_error("{% for x in y %}\n  {% do x %}\n{% endfor %}");
    EXPECT_CONTAINS(e, "line 2, column 6: unknown tag 'do'");
    EXPECT_CONTAINS(e, "innermost open block is 'for' from line 1");
    EXPECT_CONTAINS(parse_error("{% if x %}{% endfor %}"), "unknown tag 'endfor'");
    EXPECT_CONTAINS(parse_error("{% endif %}"), "unknown tag 'endif'");
}

TEST(JinjaErrors, UnclosedBlocksAndTags) {
    EXPECT_CONTAINS(parse_error("{% if x %}\nyes\n"),
                    "the 'if' block opened at line 1, column 4 is not closed (expected 'elif' or "
                    "'else' or 'endif')");
    EXPECT_CONTAINS(parse_error("{% for m in messages %}{% if m %}{% endfor %}"),
                    "unknown tag 'endfor' (the innermost open block is 'if'");
    EXPECT_CONTAINS(parse_error("{% macro m() %}x"), "'macro' block opened at line 1");
    EXPECT_CONTAINS(parse_error("text {{ x "),
                    "line 1, column 6: unexpected end of template: tag '{{' is not closed");
    EXPECT_CONTAINS(parse_error("{# never closed"), "line 1, column 1: missing end of comment tag");
    EXPECT_CONTAINS(parse_error("{% raw %}x"), "missing end of raw directive");
    EXPECT_CONTAINS(parse_error("{{ (1 + 2 }}"), "unexpected '}', expected ')'");
}

TEST(JinjaErrors, BadSyntax) {
    EXPECT_CONTAINS(parse_error("{{ 1 + }}"),
                    "line 1, column 8: unexpected end of print statement");
    EXPECT_CONTAINS(parse_error("{% for in x %}{% endfor %}"),
                    "expected 'in' in for loop, got 'x'");
    EXPECT_CONTAINS(parse_error("{% set = 1 %}"), "expected a name, got '='");
    EXPECT_CONTAINS(parse_error("{{ 'unterminated }}"), "unterminated string literal");
    EXPECT_CONTAINS(parse_error("{{ a $ b }}"), "line 1, column 6: unexpected character '$'");
    EXPECT_CONTAINS(parse_error("{% if x %}{% else %}{% elif y %}{% endif %}"),
                    "unknown tag 'elif'");
    EXPECT_CONTAINS(parse_error("{% break %}"), "'break' outside of a for loop");
    EXPECT_CONTAINS(parse_error("{{ x is not is y }}"), "unknown test 'is'");
    EXPECT_CONTAINS(parse_error("{{ '\\x4' }}"), "truncated \\x escape");
}

TEST(JinjaErrors, UnsupportedConstructsFailOnlyWhenReached) {
    // Jinja2 has these; sift refuses them by name instead of guessing their output.
    EXPECT_CONTAINS(render_error("\n  {{ 'abc' | truncate(2) }}"),
                    "line 2, column 14: filter 'truncate' is not supported by sift's Jinja engine");
    EXPECT_EQ(render_ok("{% if false %}{{ x | truncate }}{% endif %}ok"), "ok");
    EXPECT_CONTAINS(render_error("{{ 'abc'.casefold() }}"),
                    "string method 'casefold' is not supported by sift's Jinja engine");
    EXPECT_CONTAINS(render_error("{{ lipsum() }}"), "global function 'lipsum' is not supported");
    EXPECT_CONTAINS(parse_error("{% include 'other.jinja' %}"),
                    "line 1, column 4: tag 'include' is not supported by sift's Jinja engine");
    EXPECT_CONTAINS(parse_error("{% extends 'base' %}"), "tag 'extends' is not supported");
    EXPECT_CONTAINS(render_error("{{ range(3) }}"), "printing a range object is not supported");
    EXPECT_CONTAINS(render_error("{{ [1] | map('upper') }}"),
                    "printing a generator object is not supported");
    EXPECT_CONTAINS(render_error("{% for x in [1] recursive %}{% endfor %}"),
                    "recursive for loops");
    EXPECT_CONTAINS(render_error("{{ {1: 'a'} }}"),
                    "dict keys other than strings are not supported");
    EXPECT_CONTAINS(render_error("{{ 9223372036854775807 + 1 }}"), "integer overflow");
    EXPECT_CONTAINS(render_error("{{ (-8) ** 0.5 }}"), "complex result");
}

TEST(JinjaErrors, RuntimeErrorsCarryPosition) {
    EXPECT_EQ(render_error("a\nb {{ raise_exception('boom') }}"), "line 2, column 6: boom");
    Dict vars;
    vars.set("m", Value::dict({}));
    EXPECT_EQ(render_error("{% for i in [1] %}\n  {{ m.content.strip() }}\n{% endfor %}", vars),
              "line 2, column 15: 'dict object' has no attribute 'content'");
}

TEST(JinjaUndefined, PrintsEmptyAndTestsUndefined) {
    EXPECT_EQ(render_ok("[{{ missing }}]"), "[]");
    EXPECT_EQ(render_ok("{{ missing is defined }} {{ missing is undefined }}"), "False True");
    EXPECT_EQ(render_ok("{% if missing %}yes{% else %}no{% endif %}"), "no");
    EXPECT_EQ(render_ok("{% for x in missing %}x{% else %}empty{% endfor %}"), "empty");
    EXPECT_EQ(render_ok("{{ missing | default('d') }} {{ missing | length }} [{{ missing ~ '' }}]"),
              "d 0 []");
    EXPECT_EQ(render_ok("{{ missing == missing }} {{ missing is none }} {{ 'a' in missing }}"),
              "True False False");
}

TEST(JinjaUndefined, MissingKeyIsUndefinedButUsingItFails) {
    Dict m;
    m.set("role", Value("user"));
    Dict vars;
    vars.set("message", Value::dict(m));
    EXPECT_EQ(render_ok("[{{ message.content }}] {{ message.content is defined }}", vars),
              "[] False");
    // Like Jinja2's default Undefined: attributes, calls and arithmetic on it raise.
    EXPECT_EQ(render_error("{{ message.content.text }}", vars),
              "line 1, column 19: 'dict object' has no attribute 'content'");
    EXPECT_CONTAINS(render_error("{{ missing.attr }}"), "'missing' is undefined");
    EXPECT_CONTAINS(render_error("{{ missing + 1 }}"), "'missing' is undefined");
    EXPECT_CONTAINS(render_error("{{ missing() }}"), "'missing' is undefined");
    EXPECT_CONTAINS(render_error("{{ missing | tojson }}"),
                    "Object of type Undefined is not JSON serializable");
    EXPECT_EQ(render_ok("{% for i in [1, 2] %}{{ loop.previtem is defined }}{% endfor %}"),
              "FalseTrue");
}

TEST(JinjaValue, PythonFloatRepr) {
    EXPECT_EQ(py_float_repr(1.0), "1.0");
    EXPECT_EQ(py_float_repr(0.1), "0.1");
    EXPECT_EQ(py_float_repr(1e16), "1e+16");
    EXPECT_EQ(py_float_repr(1e15), "1000000000000000.0");
    EXPECT_EQ(py_float_repr(1.5e-5), "1.5e-05");
    EXPECT_EQ(py_float_repr(0.0001), "0.0001");
    EXPECT_EQ(py_float_repr(-0.0), "-0.0");
    EXPECT_EQ(py_float_repr(123.456), "123.456");
    EXPECT_EQ(py_float_repr(1.0 / 3.0), "0.3333333333333333");
}

TEST(JinjaValue, PythonStrReprAndJson) {
    EXPECT_EQ(py_repr_string("it's"), "\"it's\"");
    EXPECT_EQ(py_repr_string("a'b\"c"), "'a\\'b\"c'");
    EXPECT_EQ(py_repr_string("\n\x01\u00e9"), "'\\n\\x01\u00e9'");
    ValueList items = {Value(1), Value("a"), Value::none(), Value(true)};
    Dict d;
    d.set("k", Value::list(items));
    EXPECT_EQ(py_str(Value::dict(d)), "{'k': [1, 'a', None, True]}");
    EXPECT_EQ(py_json_dumps(Value::dict(d), JsonOptions{}), "{\"k\": [1, \"a\", null, true]}");
    JsonOptions ascii;
    ascii.ensure_ascii = true;
    EXPECT_EQ(py_json_dumps(Value("\u00e9\U0001F600"), ascii), "\"\\u00e9\\ud83d\\ude00\"");
}

TEST(JinjaLimits, DeepNestingAndRecursionAreErrorsNotCrashes) {
    const std::string deep = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
    EXPECT_CONTAINS(parse_error(deep), "nested too deeply");
    EXPECT_CONTAINS(render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
                    "nested too deeply");
    EXPECT_CONTAINS(render_error("{{ range(200000) | length }}"), "Range too big");
    EXPECT_CONTAINS(render_error("{{ 'x' * 2000000000 }}"), "too large");
}

TEST(JinjaTemplate, ParseOnceRenderMany) {
    Result<Template> t = Template::parse("{% for x in xs %}{{ x }},{% endfor %}");
    ASSERT_TRUE(t.ok());
    for (int n = 0; n < 3; ++n) {
        ValueList xs;
        for (int i = 0; i < n; ++i) xs.emplace_back(i);
        Dict vars;
        vars.set("xs", Value::list(xs));
        Result<std::string> out = t->render(vars);
        ASSERT_TRUE(out.ok()) << out.message();
        EXPECT_EQ(*out, n == 0 ? "" : n == 1 ? "0," : "0,1,");
    }
}

TEST(JinjaText, Utf8RoundTripsInvalidBytes) {
    const std::string bytes = "a\xff\xc3\xa9\xe2\x82";
    EXPECT_EQ(utf8_encode(utf8_decode(bytes)), bytes);
    EXPECT_EQ(utf8_length("h\xc3\xa9llo"), 5u);
}

}  // namespace
}  // namespace sift::jinja
