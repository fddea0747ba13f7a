// UTF-8 helpers, GPT-2's byte-to-unicode alphabet and NFC normalization for the tokenizers.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace sift::unicode {

// Length of the UTF-8 sequence starting at text[pos] if it is valid (1..4), else 1: an invalid byte
// is its own one-byte "character", so tokenizers stay lossless on any input.
size_t utf8_char_len(std::string_view text, size_t pos);

// Decodes the character at text[pos] (as utf8_char_len measures it); invalid bytes decode to
// kInvalidFlag | byte.
constexpr char32_t kInvalidFlag = 0x80000000u;
char32_t utf8_decode(std::string_view text, size_t pos, size_t* len);

void utf8_append(std::string& out, char32_t cp);

// Bytes at the end of `text` that start a UTF-8 sequence still missing bytes (0..3); bytes that
// can never become valid are not held back.
size_t utf8_incomplete_tail(std::string_view text);

// GPT-2's reversible map from bytes to printable code points (byte-level BPE vocabularies spell
// every token with these), and its inverse.
struct ByteLevelAlphabet {
    std::array<char32_t, 256> byte_to_cp;
    std::array<int16_t, 324> cp_to_byte;  // -1 where the code point is not in the alphabet
    ByteLevelAlphabet();
    int byte_of(char32_t cp) const { return cp < cp_to_byte.size() ? cp_to_byte[cp] : -1; }
};
const ByteLevelAlphabet& byte_level_alphabet();

// Canonical composition (NFC). Returns false and leaves `out` untouched when `text` is already
// NFC by a cheap check (every code point below U+0300), which is the common case.
bool nfc_normalize(std::string_view text, std::string& out);

}  // namespace sift::unicode
