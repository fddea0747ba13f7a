#include "tokenizer/jinja_lexer.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <optional>

#include "tokenizer/jinja_text.h"
#include "tokenizer/jinja_value.h"

namespace sift::jinja {
namespace {

bool is_ascii_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_name_start(char c) {
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_name_char(char c) {
    return is_name_start(c) || is_digit(c);
}

// Python's \s on str: every Unicode whitespace character.
bool all_whitespace(std::string_view s) {
    if (s.empty()) return false;
    if (is_ascii(s)) return std::all_of(s.begin(), s.end(), is_ascii_space);
    for (char32_t c : utf8_decode(s))
        if (!py_isspace(c)) return false;
    return true;
}

class Lexer {
  public:
    explicit Lexer(std::string_view source) { normalize(source); }

    std::vector<LexToken> run() {
        while (pos_ < src_.size()) lex_root();
        emit(LexKind::LEX_EOF, "", src_.size());
        return std::move(out_);
    }

  private:
    std::string src_;
    std::vector<size_t> line_starts_;
    size_t pos_ = 0;
    bool line_starting_ = true;  // the previous match ended a line (lstrip_blocks applies)
    std::vector<LexToken> out_;

    // Jinja2 treats \r\n, \r and \n alike and drops one trailing newline (keep_trailing_newline
    // is off in transformers' environment).
    void normalize(std::string_view source) {
        src_.reserve(source.size());
        for (size_t i = 0; i < source.size(); ++i) {
            if (source[i] == '\r') {
                src_.push_back('\n');
                if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
            } else {
                src_.push_back(source[i]);
            }
        }
        if (!src_.empty() && src_.back() == '\n') src_.pop_back();
        line_starts_.push_back(0);
        for (size_t i = 0; i < src_.size(); ++i)
            if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }

    std::pair<int, int> position(size_t offset) const {
        auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
        const size_t line = static_cast<size_t>(it - line_starts_.begin());
        const size_t start = line_starts_[line - 1];
        const int column =
            static_cast<int>(utf8_length(std::string_view(src_).substr(start, offset - start))) + 1;
        return {static_cast<int>(line), column};
    }

    [[noreturn]] void fail(const std::string& message, size_t offset) const {
        auto [line, column] = position(offset);
        throw JinjaError(message, line, column);
    }

    LexToken& emit(LexKind kind, std::string value, size_t offset) {
        auto [line, column] = position(offset);
        out_.push_back(LexToken{kind, std::move(value), line, column});
        return out_.back();
    }

    bool starts_with(size_t at, std::string_view s) const {
        return src_.compare(at, s.size(), s) == 0;
    }

    size_t skip_space(size_t at) const {
        while (at < src_.size() && is_ascii_space(src_[at])) ++at;
        return at;
    }

    // The text before a tag, with `-` (strip all whitespace) or lstrip_blocks applied.
    void emit_text(size_t begin, size_t end, char sign, bool lstrip_allowed) {
        std::string text = src_.substr(begin, end - begin);
        if (sign == '-') {
            text = py_str_strip(text, std::nullopt, false, true);
        } else if (sign != '+' && lstrip_allowed) {
            const size_t newline = text.rfind('\n');
            const size_t l_pos = newline == std::string::npos ? 0 : newline + 1;
            if ((l_pos > 0 || line_starting_) &&
                all_whitespace(std::string_view(text).substr(l_pos)))
                text.resize(l_pos);
        }
        if (!text.empty()) emit(LexKind::LEX_TEXT, std::move(text), begin);
    }

    // After `%}` or `#}`: `-` eats all following whitespace, `+` nothing, else trim_blocks eats one
    // newline.
    size_t after_block_end(size_t end, char sign) const {
        if (sign == '-') return skip_space(end);
        if (sign == '+') return end;
        return (end < src_.size() && src_[end] == '\n') ? end + 1 : end;
    }

    void lex_root() {
        size_t start = pos_;
        while (true) {
            start = src_.find('{', start);
            if (start == std::string::npos || start + 1 >= src_.size()) {
                emit_text(pos_, src_.size(), 0, false);
                pos_ = src_.size();
                return;
            }
            const char next = src_[start + 1];
            if (next == '{' || next == '%' || next == '#') break;
            ++start;
        }
        const char kind = src_[start + 1];
        size_t after = start + 2;
        char sign = 0;
        if (after < src_.size() && (src_[after] == '-' || src_[after] == '+')) sign = src_[after++];

        if (kind == '%') {
            size_t p = skip_space(after);
            if (starts_with(p, "raw")) {
                p = skip_space(p + 3);
                std::optional<size_t> raw_end;
                if (starts_with(p, "-%}")) {
                    raw_end = skip_space(p + 3);
                } else if (starts_with(p, "%}")) {
                    raw_end = p + 2;
                }
                if (raw_end) {
                    emit_text(pos_, start, sign, true);
                    lex_raw(start, *raw_end);
                    return;
                }
            }
        }
        emit_text(pos_, start, sign, kind != '{');
        line_starting_ = false;
        if (kind == '#') {
            lex_comment(start, after);
        } else {
            lex_tag(start, after, kind == '%');
        }
    }

    void lex_comment(size_t start, size_t body) {
        const size_t close = src_.find("#}", body);
        if (close == std::string::npos) fail("missing end of comment tag '#}'", start);
        char sign = 0;
        if (close > body && (src_[close - 1] == '-' || src_[close - 1] == '+'))
            sign = src_[close - 1];
        pos_ = after_block_end(close + 2, sign);
        line_starting_ = src_[pos_ - 1] == '\n';
    }

    void lex_raw(size_t start, size_t body) {
        line_starting_ = src_[body - 1] == '\n';
        for (size_t at = src_.find("{%", body); at != std::string::npos;
             at = src_.find("{%", at + 1)) {
            size_t p = at + 2;
            char sign = 0;
            if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
            p = skip_space(p);
            if (!starts_with(p, "endraw")) continue;
            p = skip_space(p + 6);
            char end_sign = 0;
            if (starts_with(p, "+%}") || starts_with(p, "-%}")) {
                end_sign = src_[p];
                p += 3;
            } else if (starts_with(p, "%}")) {
                p += 2;
            } else {
                continue;
            }
            emit_text(body, at, sign, true);
            pos_ = after_block_end(p, end_sign);
            line_starting_ = src_[pos_ - 1] == '\n';
            return;
        }
        fail("missing end of raw directive ('{% endraw %}')", start);
    }

    // Digits with single underscores between them ("1_000"); returns the end or `at` if none.
    size_t digit_run(size_t at, bool (*digit)(char)) const {
        size_t p = at;
        if (p >= src_.size() || !digit(src_[p])) return at;
        ++p;
        while (p < src_.size()) {
            if (digit(src_[p])) {
                ++p;
            } else if (src_[p] == '_' && p + 1 < src_.size() && digit(src_[p + 1])) {
                p += 2;
            } else {
                break;
            }
        }
        return p;
    }

    static std::string without_underscores(std::string_view s) {
        std::string out;
        for (char c : s)
            if (c != '_') out.push_back(c);
        return out;
    }

    bool lex_number(size_t at) {
        const size_t int_end = digit_run(at, is_digit);
        if (int_end == at) return false;
        // Float: digits then a required fraction and/or exponent (not after a '.', as in x.0.1).
        if (at == 0 || src_[at - 1] != '.') {
            size_t p = int_end;
            bool has_fraction = false;
            if (p < src_.size() && src_[p] == '.') {
                const size_t frac_end = digit_run(p + 1, is_digit);
                if (frac_end > p + 1) {
                    p = frac_end;
                    has_fraction = true;
                }
            }
            bool has_exponent = false;
            if (p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
                size_t q = p + 1;
                if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
                const size_t exp_end = digit_run(q, is_digit);
                if (exp_end > q) {
                    p = exp_end;
                    has_exponent = true;
                }
            }
            if (has_fraction || has_exponent) {
                const std::string text = without_underscores(src_.substr(at, p - at));
                LexToken& t = emit(LexKind::LEX_FLOAT, text, at);
                t.float_value = std::strtod(text.c_str(), nullptr);
                pos_ = p;
                return true;
            }
        }
        int base = 10;
        size_t p = at;
        if (src_[at] == '0' && at + 1 < src_.size()) {
            const char prefix = static_cast<char>(src_[at + 1] | 32);
            auto bin = [](char c) { return c == '0' || c == '1'; };
            auto oct = [](char c) { return c >= '0' && c <= '7'; };
            auto hex = [](char c) { return is_digit(c) || ((c | 32) >= 'a' && (c | 32) <= 'f'); };
            bool (*digit)(char) = nullptr;
            if (prefix == 'b') {
                base = 2;
                digit = bin;
            } else if (prefix == 'o') {
                base = 8;
                digit = oct;
            } else if (prefix == 'x') {
                base = 16;
                digit = hex;
            }
            if (digit) {
                size_t q = at + 2;
                if (q < src_.size() && src_[q] == '_') ++q;
                const size_t end = digit_run(q, digit);
                if (end > q)
                    p = end;
                else
                    base = 10;
            }
        }
        const size_t begin_digits = base == 10 ? at : at + 2;
        if (base == 10) p = int_end;
        const std::string text = without_underscores(src_.substr(begin_digits, p - begin_digits));
        errno = 0;
        const long long v = std::strtoll(text.c_str(), nullptr, base);
        if (errno == ERANGE) fail("integer literal too large", at);
        LexToken& t = emit(LexKind::LEX_INT, src_.substr(at, p - at), at);
        t.int_value = v;
        pos_ = p;
        return true;
    }

    // Python's unicode-escape decoding of a literal's body (what Jinja2 applies to strings).
    std::string decode_string(size_t begin, size_t end) const {
        std::string out;
        for (size_t i = begin; i < end;) {
            const char c = src_[i];
            if (c != '\\' || i + 1 >= end) {
                out.push_back(c);
                ++i;
                continue;
            }
            const char e = src_[i + 1];
            auto hex_value = [&](size_t at, int n) -> char32_t {
                if (at + static_cast<size_t>(n) > end)
                    fail("truncated \\" + std::string(1, e) + " escape in string literal", i);
                char32_t v = 0;
                for (int k = 0; k < n; ++k) {
                    const char h = src_[at + static_cast<size_t>(k)];
                    int d;
                    if (is_digit(h))
                        d = h - '0';
                    else if ((h | 32) >= 'a' && (h | 32) <= 'f')
                        d = (h | 32) - 'a' + 10;
                    else
                        fail("truncated \\" + std::string(1, e) + " escape in string literal", i);
                    v = v * 16 + static_cast<char32_t>(d);
                }
                return v;
            };
            switch (e) {
                case '\n':
                    i += 2;
                    continue;  // line continuation
                case '\\':
                    out.push_back('\\');
                    break;
                case '\'':
                    out.push_back('\'');
                    break;
                case '"':
                    out.push_back('"');
                    break;
                case 'a':
                    out.push_back('\a');
                    break;
                case 'b':
                    out.push_back('\b');
                    break;
                case 'f':
                    out.push_back('\f');
                    break;
                case 'n':
                    out.push_back('\n');
                    break;
                case 'r':
                    out.push_back('\r');
                    break;
                case 't':
                    out.push_back('\t');
                    break;
                case 'v':
                    out.push_back('\v');
                    break;
                case 'x':
                    utf8_append(out, hex_value(i + 2, 2));
                    i += 4;
                    continue;
                case 'u':
                    utf8_append(out, hex_value(i + 2, 4));
                    i += 6;
                    continue;
                case 'U': {
                    const char32_t v = hex_value(i + 2, 8);
                    if (v > 0x10FFFF) fail("illegal Unicode character in string literal", i);
                    utf8_append(out, v);
                    i += 10;
                    continue;
                }
                case 'N':
                    fail("\\N{...} escapes are not supported in string literals", i);
                default:
                    if (e >= '0' && e <= '7') {
                        char32_t v = 0;
                        size_t k = i + 1;
                        for (int n = 0; n < 3 && k < end && src_[k] >= '0' && src_[k] <= '7'; ++n)
                            v = v * 8 + static_cast<char32_t>(src_[k++] - '0');
                        utf8_append(out, v);
                        i = k;
                        continue;
                    }
                    if (static_cast<unsigned char>(e) >= 0x80) {
                        // Jinja2 backslash-escapes non-ASCII characters before decoding, so a
                        // backslash in front of one stays as text next to the escape.
                        size_t k = i + 1;
                        const std::u32string one = utf8_decode(
                            std::string_view(src_).substr(k, std::min<size_t>(4, end - k)));
                        char buf[16];
                        const char32_t cp = one.empty() ? 0 : one[0];
                        if (cp <= 0xFF)
                            snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(cp));
                        else if (cp <= 0xFFFF)
                            snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(cp));
                        else
                            snprintf(buf, sizeof(buf), "\\U%08x", static_cast<unsigned>(cp));
                        out.push_back('\\');
                        out += buf;
                        std::string encoded;
                        utf8_append(encoded, cp);
                        i = k + encoded.size();
                        continue;
                    }
                    out.push_back('\\');
                    out.push_back(e);
                    break;
            }
            i += 2;
        }
        return out;
    }

    void lex_tag(size_t start, size_t body, bool block) {
        emit(block ? LexKind::LEX_BLOCK_BEGIN : LexKind::LEX_VAR_BEGIN, "", start);
        pos_ = body;
        std::vector<std::pair<char, size_t>> balance;  // expected closer, opener offset
        static const char* const kOperators[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/",
                                                 "*",  "%",  "~",  "[",  "]",  "(",  ")", "{", "}",
                                                 ">",  "<",  "=",  ".",  ":",  "|",  ",", ";"};
        while (true) {
            if (pos_ >= src_.size()) {
                if (!balance.empty())
                    fail(std::string("unclosed '") +
                             (balance.back().first == ')'   ? '('
                              : balance.back().first == ']' ? '['
                                                            : '{') +
                             "'",
                         balance.back().second);
                fail(std::string("unexpected end of template: tag '") + (block ? "{%" : "{{") +
                         "' is not closed",
                     start);
            }
            if (balance.empty()) {
                if (block) {
                    if (starts_with(pos_, "+%}") || starts_with(pos_, "-%}") ||
                        starts_with(pos_, "%}")) {
                        const char sign = src_[pos_] == '%' ? 0 : src_[pos_];
                        emit(LexKind::LEX_BLOCK_END, "", pos_);
                        pos_ = after_block_end(pos_ + (sign ? 3 : 2), sign);
                        line_starting_ = src_[pos_ - 1] == '\n';
                        return;
                    }
                } else if (starts_with(pos_, "-}}") || starts_with(pos_, "}}")) {
                    const bool strip = src_[pos_] == '-';
                    emit(LexKind::LEX_VAR_END, "", pos_);
                    pos_ = strip ? skip_space(pos_ + 3) : pos_ + 2;
                    line_starting_ = src_[pos_ - 1] == '\n';
                    return;
                }
            }
            const char c = src_[pos_];
            if (is_ascii_space(c)) {
                ++pos_;
                continue;
            }
            if (lex_number(pos_)) continue;
            if (is_name_start(c)) {
                size_t p = pos_;
                while (p < src_.size() && is_name_char(src_[p])) ++p;
                emit(LexKind::LEX_NAME, src_.substr(pos_, p - pos_), pos_);
                pos_ = p;
                continue;
            }
            if (c == '\'' || c == '"') {
                size_t p = pos_ + 1;
                while (p < src_.size() && src_[p] != c) p += (src_[p] == '\\') ? 2 : 1;
                if (p >= src_.size()) fail("unterminated string literal", pos_);
                emit(LexKind::LEX_STRING, decode_string(pos_ + 1, p), pos_);
                pos_ = p + 1;
                continue;
            }
            bool matched = false;
            for (const char* op : kOperators) {
                if (!starts_with(pos_, op)) continue;
                const std::string_view o(op);
                if (o == "(" || o == "[" || o == "{") {
                    balance.emplace_back(o == "(" ? ')' : o == "[" ? ']' : '}', pos_);
                } else if (o == ")" || o == "]" || o == "}") {
                    if (balance.empty()) fail("unexpected '" + std::string(o) + "'", pos_);
                    if (balance.back().first != o[0])
                        fail("unexpected '" + std::string(o) + "', expected '" +
                                 std::string(1, balance.back().first) + "'",
                             pos_);
                    balance.pop_back();
                }
                emit(LexKind::LEX_OP, std::string(o), pos_);
                pos_ += o.size();
                matched = true;
                break;
            }
            if (!matched) {
                std::string shown(1, c);
                if (static_cast<unsigned char>(c) >= 0x80) {
                    const std::u32string one = utf8_decode(std::string_view(src_).substr(pos_, 4));
                    shown = utf8_encode(std::u32string_view(one).substr(0, 1));
                }
                fail("unexpected character '" + shown + "'", pos_);
            }
        }
    }
};

}  // namespace

std::vector<LexToken> jinja_lex(std::string_view source) {
    return Lexer(source).run();
}

}  // namespace sift::jinja
