#include "tokenizer/jinja_text.h"

#include <locale.h>
#include <wctype.h>

#include <algorithm>

namespace sift::jinja {
namespace {

// glibc's C.UTF-8 tables give Unicode simple case mappings, which match Python's except for the
// few characters whose full mapping expands (handled in py_str_upper/lower).
locale_t utf8_locale() {
    static locale_t loc = [] {
        locale_t l = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
        if (l == static_cast<locale_t>(nullptr))
            l = newlocale(LC_CTYPE_MASK, "C.utf8", static_cast<locale_t>(nullptr));
        return l;
    }();
    return loc;
}

bool is_surrogate_escape(char32_t c) {
    return c >= 0xDC80 && c <= 0xDCFF;
}

// Decodes one UTF-8 sequence at s[i]; advances i. Invalid bytes become surrogate escapes.
char32_t decode_one(std::string_view s, size_t& i) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
        ++i;
        return b0;
    }
    int len = 0;
    char32_t c = 0;
    if ((b0 & 0xE0) == 0xC0) {
        len = 2;
        c = b0 & 0x1F;
    } else if ((b0 & 0xF0) == 0xE0) {
        len = 3;
        c = b0 & 0x0F;
    } else if ((b0 & 0xF8) == 0xF0) {
        len = 4;
        c = b0 & 0x07;
    }
    if (len == 0 || i + len > s.size()) {
        ++i;
        return 0xDC00 + b0;
    }
    for (int k = 1; k < len; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0) != 0x80) {
            ++i;
            return 0xDC00 + b0;
        }
        c = (c << 6) | (b & 0x3F);
    }
    // Overlong forms, surrogates and out-of-range values are invalid UTF-8 too.
    static constexpr char32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < kMin[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
        ++i;
        return 0xDC00 + b0;
    }
    i += len;
    return c;
}

bool in_chars(char32_t c, const std::u32string& chars) {
    return chars.find(c) != std::u32string::npos;
}

}  // namespace

std::u32string utf8_decode(std::string_view s) {
    std::u32string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) out.push_back(decode_one(s, i));
    return out;
}

void utf8_append(std::string& out, char32_t c) {
    if (is_surrogate_escape(c)) {
        out.push_back(static_cast<char>(c - 0xDC00));
    } else if (c < 0x80) {
        out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (c >> 6)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (c >> 12)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (c >> 18)));
        out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
}

std::string utf8_encode(std::u32string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char32_t c : s) utf8_append(out, c);
    return out;
}

size_t utf8_length(std::string_view s) {
    if (is_ascii(s)) return s.size();
    size_t n = 0;
    for (size_t i = 0; i < s.size(); ++n) decode_one(s, i);
    return n;
}

bool is_ascii(std::string_view s) {
    for (char c : s)
        if (static_cast<unsigned char>(c) >= 0x80) return false;
    return true;
}

bool py_isspace(char32_t c) {
    switch (c) {
        case ' ':
        case '\t':
        case '\n':
        case '\v':
        case '\f':
        case '\r':
        case 0x1C:
        case 0x1D:
        case 0x1E:
        case 0x1F:
        case 0x85:
        case 0xA0:
        case 0x1680:
        case 0x2028:
        case 0x2029:
        case 0x202F:
        case 0x205F:
        case 0x3000:
            return true;
        default:
            return c >= 0x2000 && c <= 0x200A;
    }
}

// Python's non-printable set is categories C* and Z* except the space; this covers the assigned
// control, format, separator, surrogate and private-use ranges (unassigned code points are not
// tracked).
bool py_isprintable(char32_t c) {
    if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD) return false;
    if (c < 0x600) return true;
    if ((c >= 0x600 && c <= 0x605) || c == 0x61C || c == 0x6DD || c == 0x70F || c == 0x890 ||
        c == 0x891 || c == 0x8E2 || c == 0x1680 || c == 0x180E)
        return false;
    if ((c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) ||
        (c >= 0x205F && c <= 0x2064) || (c >= 0x2066 && c <= 0x206F) || c == 0x3000)
        return false;
    if ((c >= 0xD800 && c <= 0xF8FF) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB) ||
        c == 0xFFFE || c == 0xFFFF)
        return false;
    if (c == 0x110BD || c == 0x110CD || (c >= 0x1BCA0 && c <= 0x1BCA3) ||
        (c >= 0x1D173 && c <= 0x1D17A) || c == 0xE0001 || (c >= 0xE0020 && c <= 0xE007F) ||
        c >= 0xF0000)
        return false;
    return true;
}

char32_t py_upper(char32_t c) {
    if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 32 : c;
    if (is_surrogate_escape(c)) return c;
    locale_t loc = utf8_locale();
    return loc ? static_cast<char32_t>(towupper_l(static_cast<wint_t>(c), loc)) : c;
}

char32_t py_lower(char32_t c) {
    if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    if (is_surrogate_escape(c)) return c;
    locale_t loc = utf8_locale();
    return loc ? static_cast<char32_t>(towlower_l(static_cast<wint_t>(c), loc)) : c;
}

bool py_is_cased(char32_t c) {
    return py_upper(c) != c || py_lower(c) != c;
}

bool py_isalnum(char32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z');
    if (is_surrogate_escape(c)) return false;
    locale_t loc = utf8_locale();
    return loc && iswalnum_l(static_cast<wint_t>(c), loc);
}

namespace {

// Full case mappings that expand to several characters (Python applies them, towupper cannot).
const char* upper_special(char32_t c) {
    switch (c) {
        case 0xDF:
            return "SS";
        case 0x149:
            return "\xCA\xBCN";
        case 0xFB00:
            return "FF";
        case 0xFB01:
            return "FI";
        case 0xFB02:
            return "FL";
        case 0xFB03:
            return "FFI";
        case 0xFB04:
            return "FFL";
        case 0xFB05:
            return "ST";
        case 0xFB06:
            return "ST";
        default:
            return nullptr;
    }
}

template <typename Map>
std::string map_chars(std::string_view s, Map map) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) map(out, decode_one(s, i));
    return out;
}

void append_upper(std::string& out, char32_t c) {
    if (const char* special = upper_special(c)) {
        out += special;
    } else {
        utf8_append(out, py_upper(c));
    }
}

void append_lower(std::string& out, char32_t c) {
    if (c == 0x130) {
        out += "i\xCC\x87";  // İ lowers to i + combining dot above
    } else {
        utf8_append(out, py_lower(c));
    }
}

}  // namespace

std::string py_str_upper(std::string_view s) {
    return map_chars(s, append_upper);
}
std::string py_str_lower(std::string_view s) {
    return map_chars(s, append_lower);
}

std::string py_str_title(std::string_view s) {
    bool previous_cased = false;
    return map_chars(s, [&](std::string& out, char32_t c) {
        if (previous_cased) {
            append_lower(out, c);
        } else {
            append_upper(out, c);
        }
        previous_cased = py_is_cased(c);
    });
}

std::string py_str_capitalize(std::string_view s) {
    bool first = true;
    return map_chars(s, [&](std::string& out, char32_t c) {
        if (first) {
            append_upper(out, c);
        } else {
            append_lower(out, c);
        }
        first = false;
    });
}

std::string py_str_strip(std::string_view s, const std::optional<std::string>& chars, bool left,
                         bool right) {
    const std::u32string u = utf8_decode(s);
    const std::u32string set = chars ? utf8_decode(*chars) : std::u32string();
    auto strip_it = [&](char32_t c) { return chars ? in_chars(c, set) : py_isspace(c); };
    size_t begin = 0, end = u.size();
    if (left)
        while (begin < end && strip_it(u[begin])) ++begin;
    if (right)
        while (end > begin && strip_it(u[end - 1])) --end;
    return utf8_encode(std::u32string_view(u).substr(begin, end - begin));
}

std::vector<std::string> py_str_split(std::string_view s, const std::optional<std::string>& sep,
                                      int64_t maxsplit, bool from_right) {
    std::vector<std::string> parts;
    if (sep) {
        // An explicit separator matches bytes; valid UTF-8 cannot match mid-character.
        if (!from_right) {
            size_t start = 0;
            while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
                const size_t at = s.find(*sep, start);
                if (at == std::string_view::npos) break;
                parts.emplace_back(s.substr(start, at - start));
                start = at + sep->size();
            }
            parts.emplace_back(s.substr(start));
        } else {
            size_t end = s.size();
            std::vector<std::string> rev;
            while (maxsplit < 0 || static_cast<int64_t>(rev.size()) < maxsplit) {
                if (end < sep->size()) break;
                const size_t at = s.rfind(*sep, end - sep->size());
                if (at == std::string_view::npos) break;
                rev.emplace_back(s.substr(at + sep->size(), end - at - sep->size()));
                end = at;
            }
            rev.emplace_back(s.substr(0, end));
            parts.assign(rev.rbegin(), rev.rend());
        }
        return parts;
    }
    const std::u32string u = utf8_decode(s);
    if (!from_right) {
        size_t i = 0;
        while (true) {
            while (i < u.size() && py_isspace(u[i])) ++i;
            if (i >= u.size()) break;
            if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) >= maxsplit) {
                // The rest keeps its trailing whitespace, as in Python.
                parts.push_back(utf8_encode(std::u32string_view(u).substr(i)));
                break;
            }
            size_t j = i;
            while (j < u.size() && !py_isspace(u[j])) ++j;
            parts.push_back(utf8_encode(std::u32string_view(u).substr(i, j - i)));
            i = j;
        }
        return parts;
    }
    std::vector<std::string> rev;
    size_t end = u.size();
    while (true) {
        while (end > 0 && py_isspace(u[end - 1])) --end;
        if (end == 0) break;
        if (maxsplit >= 0 && static_cast<int64_t>(rev.size()) >= maxsplit) {
            rev.push_back(
                utf8_encode(std::u32string_view(u).substr(0, end)));  // keeps leading space
            break;
        }
        size_t begin = end;
        while (begin > 0 && !py_isspace(u[begin - 1])) --begin;
        rev.push_back(utf8_encode(std::u32string_view(u).substr(begin, end - begin)));
        end = begin;
    }
    parts.assign(rev.rbegin(), rev.rend());
    return parts;
}

std::vector<std::string> py_str_splitlines(std::string_view s, bool keepends) {
    const std::u32string u = utf8_decode(s);
    std::vector<std::string> lines;
    size_t start = 0;
    for (size_t i = 0; i < u.size(); ++i) {
        const char32_t c = u[i];
        const bool is_break = c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == 0x1C ||
                              c == 0x1D || c == 0x1E || c == 0x85 || c == 0x2028 || c == 0x2029;
        if (!is_break) continue;
        size_t eol = i + 1;
        if (c == '\r' && i + 1 < u.size() && u[i + 1] == '\n') eol = i + 2;
        const size_t keep = keepends ? eol : i;
        lines.push_back(utf8_encode(std::u32string_view(u).substr(start, keep - start)));
        start = eol;
        i = eol - 1;
    }
    if (start < u.size()) lines.push_back(utf8_encode(std::u32string_view(u).substr(start)));
    return lines;
}

std::string py_str_replace(std::string_view s, std::string_view old, std::string_view replacement,
                           int64_t count) {
    std::string out;
    if (old.empty()) {
        // Python inserts the replacement before every character and at the end.
        const std::u32string u = utf8_decode(s);
        int64_t done = 0;
        for (char32_t c : u) {
            if (count < 0 || done < count) {
                out += replacement;
                ++done;
            }
            utf8_append(out, c);
        }
        if (count < 0 || done < count) out += replacement;
        return out;
    }
    size_t start = 0;
    int64_t done = 0;
    while (count < 0 || done < count) {
        const size_t at = s.find(old, start);
        if (at == std::string_view::npos) break;
        out.append(s.substr(start, at - start));
        out.append(replacement);
        start = at + old.size();
        ++done;
    }
    out.append(s.substr(start));
    return out;
}

int64_t py_str_count(std::string_view s, std::string_view sub) {
    if (sub.empty()) return static_cast<int64_t>(utf8_length(s)) + 1;
    int64_t n = 0;
    for (size_t at = s.find(sub); at != std::string_view::npos; at = s.find(sub, at + sub.size()))
        ++n;
    return n;
}

int64_t py_str_find(std::string_view s, std::string_view sub, bool from_right) {
    const size_t at = from_right ? s.rfind(sub) : s.find(sub);
    if (at == std::string_view::npos) return -1;
    return static_cast<int64_t>(utf8_length(s.substr(0, at)));
}

std::string py_repr_string(std::string_view s) {
    const bool has_single = s.find('\'') != std::string_view::npos;
    const bool has_double = s.find('"') != std::string_view::npos;
    const char quote = (has_single && !has_double) ? '"' : '\'';
    std::string out(1, quote);
    for (size_t i = 0; i < s.size();) {
        const char32_t c = decode_one(s, i);
        if (c == static_cast<char32_t>(quote) || c == '\\') {
            out.push_back('\\');
            out.push_back(static_cast<char>(c));
        } else if (c == '\t') {
            out += "\\t";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (is_surrogate_escape(c) || !py_isprintable(c)) {
            char buf[16];
            if (c <= 0xFF) {
                snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(c));
            } else if (c <= 0xFFFF) {
                snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
            } else {
                snprintf(buf, sizeof(buf), "\\U%08x", static_cast<unsigned>(c));
            }
            out += buf;
        } else {
            utf8_append(out, c);
        }
    }
    out.push_back(quote);
    return out;
}

std::string html_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&#34;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out.push_back(c);
        }
    }
    return out;
}

void json_escape_string(std::string& out, std::string_view s, bool ensure_ascii) {
    out.push_back('"');
    char buf[16];
    for (size_t i = 0; i < s.size();) {
        const auto byte = static_cast<unsigned char>(s[i]);
        if (byte >= 0x80 && !ensure_ascii) {
            out.push_back(s[i++]);  // raw UTF-8 passes through byte by byte
            continue;
        }
        const char32_t c = decode_one(s, i);
        switch (c) {
            case '"':
                out += "\\\"";
                continue;
            case '\\':
                out += "\\\\";
                continue;
            case '\n':
                out += "\\n";
                continue;
            case '\r':
                out += "\\r";
                continue;
            case '\t':
                out += "\\t";
                continue;
            case '\b':
                out += "\\b";
                continue;
            case '\f':
                out += "\\f";
                continue;
            default:
                break;
        }
        if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
            if (c >= 0x10000) {
                const char32_t v = c - 0x10000;
                snprintf(buf, sizeof(buf), "\\u%04x\\u%04x",
                         static_cast<unsigned>(0xD800 + (v >> 10)),
                         static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
            } else {
                snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
            }
            out += buf;
        } else {
            utf8_append(out, c);
        }
    }
    out.push_back('"');
}

}  // namespace sift::jinja
