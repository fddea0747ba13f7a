#include "tokenizer/unicode.h"

#include <algorithm>
#include <vector>

#include "tokenizer/unicode_nfc_table.h"

namespace sift::unicode {

size_t utf8_char_len(std::string_view text, size_t pos) {
    const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
    const uint8_t lead = byte(pos);
    if (lead < 0x80) return 1;
    size_t len = 0;
    char32_t min = 0;
    if ((lead & 0xE0) == 0xC0) {
        len = 2, min = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
        len = 3, min = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
        len = 4, min = 0x10000;
    } else {
        return 1;
    }
    if (pos + len > text.size()) return 1;
    char32_t cp = lead & (0x7F >> len);
    for (size_t i = 1; i < len; ++i) {
        if ((byte(pos + i) & 0xC0) != 0x80) return 1;
        cp = (cp << 6) | (byte(pos + i) & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid UTF-8.
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 1;
    return len;
}

char32_t utf8_decode(std::string_view text, size_t pos, size_t* len) {
    const size_t n = utf8_char_len(text, pos);
    *len = n;
    const auto lead = static_cast<uint8_t>(text[pos]);
    if (n == 1) return lead < 0x80 ? char32_t{lead} : (kInvalidFlag | lead);
    char32_t cp = lead & (0x7F >> n);
    for (size_t i = 1; i < n; ++i) cp = (cp << 6) | (static_cast<uint8_t>(text[pos + i]) & 0x3F);
    return cp;
}

void utf8_append(std::string& out, char32_t cp) {
    if (cp & kInvalidFlag) {
        out += static_cast<char>(cp & 0xFF);
    } else if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

size_t utf8_incomplete_tail(std::string_view text) {
    // Walk back over at most 3 continuation bytes to the lead byte of the last character.
    const size_t n = text.size();
    for (size_t back = 1; back <= 4 && back <= n; ++back) {
        const auto b = static_cast<uint8_t>(text[n - back]);
        if ((b & 0xC0) == 0x80) continue;  // continuation byte
        size_t need = 0;
        if ((b & 0xE0) == 0xC0) {
            need = 2;
        } else if ((b & 0xF0) == 0xE0) {
            need = 3;
        } else if ((b & 0xF8) == 0xF0) {
            need = 4;
        }
        return need > back ? back : 0;
    }
    return 0;
}

ByteLevelAlphabet::ByteLevelAlphabet() {
    cp_to_byte.fill(-1);
    // Printable bytes stand for themselves; the others take U+0100 onwards in byte order.
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
        const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        byte_to_cp[b] = printable ? static_cast<char32_t>(b) : next++;
        cp_to_byte[byte_to_cp[b]] = static_cast<int16_t>(b);
    }
}

const ByteLevelAlphabet& byte_level_alphabet() {
    static const ByteLevelAlphabet alphabet;
    return alphabet;
}

namespace {

// Hangul syllables compose and decompose algorithmically (Unicode 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount;
constexpr char32_t kSCount = kLCount * kNCount;

uint8_t combining_class(char32_t cp) {
    if (cp < 0x300 || (cp & kInvalidFlag)) return 0;
    const auto* end = nfc::kCombiningRuns + nfc::kCombiningRunCount;
    const auto* it =
        std::upper_bound(nfc::kCombiningRuns, end, cp,
                         [](char32_t c, const nfc::CombiningRun& r) { return c < r.first; });
    if (it == nfc::kCombiningRuns) return 0;
    --it;
    return cp <= it->last ? it->ccc : 0;
}

void decompose(char32_t cp, std::vector<char32_t>& out) {
    if (cp >= kSBase && cp < kSBase + kSCount) {
        const char32_t s = cp - kSBase;
        out.push_back(kLBase + s / kNCount);
        out.push_back(kVBase + (s % kNCount) / kTCount);
        if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
        return;
    }
    if (cp >= 0xC0 && !(cp & kInvalidFlag)) {
        const auto* end = nfc::kDecompositions + nfc::kDecompositionCount;
        const auto* it =
            std::lower_bound(nfc::kDecompositions, end, cp,
                             [](const nfc::Decomposition& d, char32_t c) { return d.cp < c; });
        if (it != end && it->cp == cp) {
            out.insert(out.end(), nfc::kDecompositionPool + it->offset,
                       nfc::kDecompositionPool + it->offset + it->length);
            return;
        }
    }
    out.push_back(cp);
}

// The primary composite of (first, second), or 0.
char32_t compose_pair(char32_t first, char32_t second) {
    if (first >= kLBase && first < kLBase + kLCount && second >= kVBase &&
        second < kVBase + kVCount) {
        return kSBase + ((first - kLBase) * kVCount + (second - kVBase)) * kTCount;
    }
    if (first >= kSBase && first < kSBase + kSCount && (first - kSBase) % kTCount == 0 &&
        second > kTBase && second < kTBase + kTCount) {
        return first + (second - kTBase);
    }
    const auto* end = nfc::kCompositions + nfc::kCompositionCount;
    const auto* it =
        std::lower_bound(nfc::kCompositions, end, std::pair{first, second},
                         [](const nfc::Composition& c, std::pair<char32_t, char32_t> k) {
                             return c.first != k.first ? c.first < k.first : c.second < k.second;
                         });
    return (it != end && it->first == first && it->second == second) ? it->composite : 0;
}

}  // namespace

bool nfc_normalize(std::string_view text, std::string& out) {
    // Everything below U+0300 is a starter that NFC leaves alone (checked against unicodedata
    // when the table was generated), so most text needs no work at all.
    bool simple = true;
    for (size_t i = 0; i < text.size() && simple; ++i) {
        const auto b = static_cast<uint8_t>(text[i]);
        if (b >= 0xCC) simple = false;  // lead bytes of U+0300 and above
    }
    if (simple) return false;

    std::vector<char32_t> cps;
    cps.reserve(text.size());
    for (size_t pos = 0; pos < text.size();) {
        size_t len = 0;
        decompose(utf8_decode(text, pos, &len), cps);
        pos += len;
    }
    // Canonical ordering: a stable sort of each run of non-starters by combining class.
    for (size_t i = 0; i < cps.size();) {
        if (combining_class(cps[i]) == 0) {
            ++i;
            continue;
        }
        size_t j = i;
        while (j < cps.size() && combining_class(cps[j]) != 0) ++j;
        std::stable_sort(
            cps.begin() + static_cast<ptrdiff_t>(i), cps.begin() + static_cast<ptrdiff_t>(j),
            [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
        i = j;
    }
    // Canonical composition: each character joins the last starter unless a character between
    // them has a class of zero or one at least as high (it is "blocked").
    size_t starter = SIZE_MAX;
    int last_class = -1;
    size_t kept = 0;
    for (size_t i = 0; i < cps.size(); ++i) {
        const char32_t cp = cps[i];
        const int cls = combining_class(cp);
        if (starter != SIZE_MAX) {
            const bool blocked = last_class != -1 && (last_class == 0 || last_class >= cls);
            const char32_t composite = blocked ? 0 : compose_pair(cps[starter], cp);
            if (composite != 0) {
                cps[starter] = composite;
                continue;
            }
        }
        if (cls == 0) {
            starter = kept;
            last_class = -1;
        } else {
            last_class = cls;
        }
        cps[kept++] = cp;
    }
    // `last_class` tracks classes since the starter; a starter directly after the starter (class
    // 0, not composed) becomes the new starter above, which is what the algorithm asks for.
    out.clear();
    out.reserve(text.size());
    for (size_t i = 0; i < kept; ++i) utf8_append(out, cps[i]);
    return true;
}

}  // namespace sift::unicode
