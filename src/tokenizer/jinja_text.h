// Python str semantics on UTF-8 bytes: templates index, slice, strip and case-map by code point,
// so these helpers decode where Python's behaviour depends on characters, not bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sift::jinja {

// Invalid UTF-8 bytes decode to U+DC80..U+DCFF (Python's surrogateescape) so that encoding gives
// the original bytes back.
std::u32string utf8_decode(std::string_view s);
std::string utf8_encode(std::u32string_view s);
void utf8_append(std::string& out, char32_t c);
size_t utf8_length(std::string_view s);  // code points
bool is_ascii(std::string_view s);

bool py_isspace(char32_t c);      // str.isspace / str.split() / str.strip() whitespace
bool py_isprintable(char32_t c);  // str.isprintable, for repr()
bool py_is_cased(char32_t c);
char32_t py_upper(char32_t c);
char32_t py_lower(char32_t c);
bool py_isalnum(char32_t c);  // \w without the underscore

std::string py_str_upper(std::string_view s);
std::string py_str_lower(std::string_view s);
std::string py_str_title(std::string_view s);       // str.title()
std::string py_str_capitalize(std::string_view s);  // str.capitalize()
// str.strip/lstrip/rstrip; `chars` absent: whitespace.
std::string py_str_strip(std::string_view s, const std::optional<std::string>& chars, bool left,
                         bool right);
// str.split / str.rsplit; `sep` absent: runs of whitespace.
std::vector<std::string> py_str_split(std::string_view s, const std::optional<std::string>& sep,
                                      int64_t maxsplit, bool from_right);
std::vector<std::string> py_str_splitlines(std::string_view s, bool keepends);
std::string py_str_replace(std::string_view s, std::string_view old, std::string_view replacement,
                           int64_t count);
int64_t py_str_count(std::string_view s, std::string_view sub);
// str.find / str.rfind in code points (-1 when absent).
int64_t py_str_find(std::string_view s, std::string_view sub, bool from_right);

std::string py_repr_string(std::string_view s);  // repr(str) with Python's quote choice
std::string html_escape(std::string_view s);     // markupsafe.escape
void json_escape_string(std::string& out, std::string_view s, bool ensure_ascii);

}  // namespace sift::jinja
