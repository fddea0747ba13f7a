// Tokenizers from small vocabularies built in memory (no model needed): corrupt metadata gives
// errors naming the key, and the BPE, SentencePiece, special-token, streaming and Unicode parts
// behave as HF's on hand-checked cases.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "tests/test_temp.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace sift {
namespace {

using gguf::Value;
using gguf::ValueType;
using Metadata = std::map<std::string, Value>;

Result<std::unique_ptr<Tokenizer>> from_metadata(const Metadata& kv) {
    gguf::Writer writer;
    for (const auto& [key, value] : kv) writer.set(key, value);
    const std::string path = test_temp_path("vocab.gguf");
    if (auto s = writer.open(path); !s) return s.error();
    if (auto s = writer.finish(); !s) return s.error();
    auto file = gguf::File::open(path);
    std::remove(path.c_str());
    if (!file) return file.error();
    return Tokenizer::from_gguf(**file);
}

std::string byte_char(int byte) {  // GPT-2's spelling of one byte
    std::string s;
    unicode::utf8_append(s, unicode::byte_level_alphabet().byte_to_cp[byte]);
    return s;
}

Value int_array(const std::vector<int32_t>& v) {
    std::vector<Value> items;
    for (int32_t x : v) items.push_back(Value::i32(x));
    return Value::array(ValueType::INT32, items);
}

// A byte-level BPE vocabulary: 256 byte tokens, a few merges, two added tokens.
Metadata bpe_metadata() {
    std::vector<std::string> tokens;
    for (int b = 0; b < 256; ++b) tokens.push_back(byte_char(b));
    const std::string sp = byte_char(' ');
    const std::vector<std::pair<std::string, std::string>> merges = {
        {"h", "e"},         {"l", "l"}, {"he", "ll"},     {"hell", "o"},
        {sp, "w"},          {"o", "r"}, {sp + "w", "or"}, {sp + "wor", "l"},
        {sp + "worl", "d"}, {"a", "a"}, {"1", "2"}};
    std::vector<std::string> merge_texts;
    for (const auto& [l, r] : merges) {
        tokens.push_back(l + r);
        merge_texts.push_back(l + " " + r);
    }
    tokens.push_back("<|end|>");
    tokens.push_back("<tool>");
    std::vector<int32_t> types(tokens.size(), 1);
    types[types.size() - 2] = 3;  // control
    types[types.size() - 1] = 4;  // user-defined
    return {
        {"tokenizer.ggml.model", Value::string("gpt2")},
        {"tokenizer.ggml.pre", Value::string("qwen2")},
        {"tokenizer.ggml.tokens", Value::string_array(tokens)},
        {"tokenizer.ggml.token_type", int_array(types)},
        {"tokenizer.ggml.merges", Value::string_array(merge_texts)},
        {"tokenizer.ggml.eos_token_id", Value::u32(static_cast<uint32_t>(tokens.size() - 2))},
    };
}

TokenId id_of(const Tokenizer& tok, const std::string& text) {
    for (TokenId i = 0; i < tok.n_vocab(); ++i) {
        if (tok.token_text(i) == text) return i;
    }
    return -1;
}

TEST(TokenizerVocab, CorruptMetadataGivesErrors) {
    struct Case {
        const char* what;
        std::function<void(Metadata&)> edit;
        const char* message;  // must appear in the error
    };
    const std::vector<Case> cases = {
        {"no model", [](Metadata& m) { m.erase("tokenizer.ggml.model"); }, "tokenizer.ggml.model"},
        {"model not a string", [](Metadata& m) { m["tokenizer.ggml.model"] = Value::u32(2); },
         "tokenizer.ggml.model"},
        {"unknown model", [](Metadata& m) { m["tokenizer.ggml.model"] = Value::string("bert"); },
         "not supported"},
        {"unknown pre", [](Metadata& m) { m["tokenizer.ggml.pre"] = Value::string("nope"); },
         "'nope'"},
        {"no tokens", [](Metadata& m) { m.erase("tokenizer.ggml.tokens"); },
         "tokenizer.ggml.tokens is missing"},
        {"tokens not strings",
         [](Metadata& m) {
             m["tokenizer.ggml.tokens"] = int_array({1, 2});
         },
         "tokenizer.ggml.tokens is an array of int32"},
        {"tokens empty", [](Metadata& m) { m["tokenizer.ggml.tokens"] = Value::string_array({}); },
         "tokenizer.ggml.tokens is empty"},
        {"types too short", [](Metadata& m) { m["tokenizer.ggml.token_type"] = int_array({1}); },
         "tokenizer.ggml.token_type has 1 entries"},
        {"types not integers",
         [](Metadata& m) { m["tokenizer.ggml.token_type"] = Value::string_array({"a"}); },
         "tokenizer.ggml.token_type is an array of string"},
        {"bad type value",
         [](Metadata& m) {
             auto& items = std::get<gguf::Array>(m["tokenizer.ggml.token_type"].data).items;
             items[7] = Value::i32(9);
         },
         "tokenizer.ggml.token_type[7] = 9"},
        {"scores not floats", [](Metadata& m) { m["tokenizer.ggml.scores"] = int_array({1}); },
         "tokenizer.ggml.scores is an array of int32"},
        {"scores too short",
         [](Metadata& m) {
             m["tokenizer.ggml.scores"] = Value::array(ValueType::FLOAT32, {Value::f32(0)});
         },
         "tokenizer.ggml.scores has 1 entries"},
        {"no merges", [](Metadata& m) { m.erase("tokenizer.ggml.merges"); },
         "tokenizer.ggml.merges is missing"},
        {"merge of unknown token",
         [](Metadata& m) { m["tokenizer.ggml.merges"] = Value::string_array({"h zz"}); },
         "names a token not in the vocabulary"},
        {"merge without space",
         [](Metadata& m) { m["tokenizer.ggml.merges"] = Value::string_array({"hello"}); },
         "not two tokens"},
        {"merge with two spaces",
         [](Metadata& m) { m["tokenizer.ggml.merges"] = Value::string_array({"h e l"}); },
         "not two tokens"},
        {"merge result unknown",
         [](Metadata& m) { m["tokenizer.ggml.merges"] = Value::string_array({"x y"}); },
         "merges into 'xy', which is not a token"},
        {"merges not an array",
         [](Metadata& m) { m["tokenizer.ggml.merges"] = Value::string("h e"); },
         "tokenizer.ggml.merges"},
        {"eos out of range",
         [](Metadata& m) { m["tokenizer.ggml.eos_token_id"] = Value::u32(100000); },
         "tokenizer.ggml.eos_token_id = 100000 is out of range"},
        {"bos negative", [](Metadata& m) { m["tokenizer.ggml.bos_token_id"] = Value::i32(-1); },
         "tokenizer.ggml.bos_token_id"},
        {"bos not an integer",
         [](Metadata& m) { m["tokenizer.ggml.bos_token_id"] = Value::string("1"); },
         "tokenizer.ggml.bos_token_id"},
        {"add_bos without bos",
         [](Metadata& m) { m["tokenizer.ggml.add_bos_token"] = Value::boolean(true); },
         "no tokenizer.ggml.bos_token_id"},
        {"add_bos not a bool",
         [](Metadata& m) { m["tokenizer.ggml.add_bos_token"] = Value::u8(1); },
         "tokenizer.ggml.add_bos_token"},
    };
    ASSERT_TRUE(from_metadata(bpe_metadata()).ok());
    for (const Case& c : cases) {
        Metadata m = bpe_metadata();
        c.edit(m);
        auto tok = from_metadata(m);
        ASSERT_FALSE(tok.ok()) << c.what;
        EXPECT_NE(tok.message().find(c.message), std::string::npos)
            << c.what << ": " << tok.message();
    }
}

TEST(TokenizerVocab, ByteLevelBpe) {
    auto result = from_metadata(bpe_metadata());
    ASSERT_TRUE(result.ok()) << result.message();
    const Tokenizer& tok = **result;
    const TokenId hello = id_of(tok, "hello"), world = id_of(tok, byte_char(' ') + "world");
    EXPECT_EQ(tok.encode("hello world", false, true), (std::vector<TokenId>{hello, world}));
    // Equal ranks merge leftmost first: "aaa" is "aa" + "a".
    EXPECT_EQ(tok.encode("aaa", false, true), (std::vector<TokenId>{id_of(tok, "aa"), 'a'}));
    // Qwen2 splits digits one by one, so the "12" merge never applies.
    EXPECT_EQ(tok.encode("12", false, true).size(), 2u);

    const TokenId end = id_of(tok, "<|end|>"), tool = id_of(tok, "<tool>");
    EXPECT_EQ(tok.encode("hello<|end|>", false, true), (std::vector<TokenId>{hello, end}));
    const auto plain = tok.encode("hello<|end|>", false, false);
    EXPECT_EQ(plain.size(), 8u);  // hello, "<|" and "|>" as two bytes each, e n d
    EXPECT_EQ(tok.decode(plain, false), "hello<|end|>");
    // User-defined tokens are matched even when special tokens are not parsed, as in HF.
    EXPECT_EQ(tok.encode("<tool>", false, false), std::vector<TokenId>{tool});
    EXPECT_EQ(tok.decode(std::vector<TokenId>{hello, end, tool}, true), "hello<tool>");
    EXPECT_EQ(tok.decode(std::vector<TokenId>{hello, end, tool}, false), "hello<|end|><tool>");
    EXPECT_TRUE(tok.is_control(end));
    EXPECT_FALSE(tok.is_control(tool));
    // No BOS in this vocabulary; EOS is only added when the vocabulary asks.
    EXPECT_EQ(tok.encode("hello", true, true), std::vector<TokenId>{hello});

    // Any bytes survive, and NFC (qwen2) composes e + U+0301 before splitting.
    const std::string bytes = "\xff\xfe x \xc3";
    EXPECT_EQ(tok.decode(tok.encode(bytes, false, true), false), bytes);
    EXPECT_EQ(tok.decode(tok.encode("e\xCC\x81", false, true), false), "\xC3\xA9");
}

TEST(TokenizerVocab, StreamHoldsBackPartialCharacters) {
    auto result = from_metadata(bpe_metadata());
    ASSERT_TRUE(result.ok()) << result.message();
    const Tokenizer& tok = **result;
    const std::string text = "h\xF0\x9F\x98\x80!\xE4\xB8\xAD";  // h, U+1F600, !, U+4E2D
    const auto ids = tok.encode(text, false, true);
    ASSERT_EQ(ids.size(), 9u);  // every byte alone
    TokenStreamDecoder stream(tok, false);
    std::vector<std::string> pieces;
    for (TokenId id : ids) pieces.push_back(stream.push(id));
    const std::vector<std::string> want = {
        "h", "", "", "", "\xF0\x9F\x98\x80", "!", "", "", "\xE4\xB8\xAD"};
    EXPECT_EQ(pieces, want);
    EXPECT_EQ(stream.flush(), "");
    // A dangling lead byte comes out at flush; an invalid byte never waits.
    TokenStreamDecoder partial(tok, false);
    EXPECT_EQ(partial.push(tok.encode("\xff", false, false)[0]), "\xff");
    EXPECT_EQ(partial.push(tok.encode("\xe4", false, false)[0]), "");
    EXPECT_EQ(partial.flush(), "\xe4");
}

// A SentencePiece vocabulary in the shape of Gemma's: control tokens, byte fallback, pieces
// scored by merge order, user-defined whitespace stored with real spaces.
Metadata spm_metadata(bool space_prefix) {
    std::vector<std::string> tokens = {"<pad>", "<eos>", "<bos>", "<unk>", "<start>", "\n", "  "};
    std::vector<int32_t> types = {3, 3, 3, 2, 3, 4, 4};
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", b);
        tokens.push_back(name);
        types.push_back(6);
    }
    const std::string sp = "\xE2\x96\x81";
    // Every piece is reachable by merging two others, as in a trained BPE vocabulary.
    const std::vector<std::string> pieces = {
        sp,     "h",         "e",     "l",          "o",        "w",         "r",
        "d",    sp + "h",    "ll",    "he",         sp + "w",   "or",        sp + "he",
        "hell", sp + "hell", "hello", sp + "hello", sp + "wor", sp + "worl", sp + "world"};
    for (const std::string& piece : pieces) {
        tokens.push_back(piece);
        types.push_back(1);
    }
    std::vector<Value> scores;
    for (size_t i = 0; i < tokens.size(); ++i) {
        scores.push_back(Value::f32(types[i] == 1 ? -static_cast<float>(i) : 0.0f));
    }
    return {
        {"tokenizer.ggml.model", Value::string("llama")},
        {"tokenizer.ggml.pre", Value::string("default")},
        {"tokenizer.ggml.tokens", Value::string_array(tokens)},
        {"tokenizer.ggml.token_type", int_array(types)},
        {"tokenizer.ggml.scores", Value::array(ValueType::FLOAT32, scores)},
        {"tokenizer.ggml.bos_token_id", Value::u32(2)},
        {"tokenizer.ggml.eos_token_id", Value::u32(1)},
        {"tokenizer.ggml.unknown_token_id", Value::u32(3)},
        {"tokenizer.ggml.add_bos_token", Value::boolean(true)},
        {"tokenizer.ggml.add_space_prefix", Value::boolean(space_prefix)},
    };
}

TEST(TokenizerVocab, SentencePiece) {
    auto result = from_metadata(spm_metadata(false));
    ASSERT_TRUE(result.ok()) << result.message();
    const Tokenizer& tok = **result;
    const std::string sp = "\xE2\x96\x81";
    const TokenId hello = id_of(tok, "hello"), world = id_of(tok, sp + "world");
    EXPECT_EQ(tok.encode("hello world", true, true), (std::vector<TokenId>{2, hello, world}));
    // "é" is not a piece: its two bytes fall back to <0xC3><0xA9>.
    EXPECT_EQ(tok.encode("\xC3\xA9", false, true), (std::vector<TokenId>{7 + 0xC3, 7 + 0xA9}));
    // The user-defined "  " is one token; a third space stays a space piece.
    EXPECT_EQ(tok.encode("   hello", false, true),
              (std::vector<TokenId>{6, id_of(tok, sp + "hello")}));
    EXPECT_EQ(tok.encode("a\nb", false, true), (std::vector<TokenId>{7 + 'a', 5, 7 + 'b'}));
    EXPECT_EQ(tok.encode("<start>hello", false, true), (std::vector<TokenId>{4, hello}));
    EXPECT_EQ(tok.encode("<start>", false, false).front(), 7 + '<');
    for (const std::string text : {"hello world", "  x\n\n\xC3\xA9 <start>", "\xff\xfe", ""}) {
        EXPECT_EQ(tok.decode(tok.encode(text, false, true), false), text);
    }
    EXPECT_EQ(tok.decode(std::vector<TokenId>{2, hello, 4, world}, true), "hello world");
}

TEST(TokenizerVocab, SentencePieceDummyPrefix) {
    auto result = from_metadata(spm_metadata(true));
    ASSERT_TRUE(result.ok()) << result.message();
    const Tokenizer& tok = **result;
    const std::string sp = "\xE2\x96\x81";
    const auto ids = tok.encode("hello world", false, true);
    EXPECT_EQ(ids, (std::vector<TokenId>{id_of(tok, sp + "hello"), id_of(tok, sp + "world")}));
    EXPECT_EQ(tok.decode(ids, false), "hello world");
    TokenStreamDecoder stream(tok, false);
    std::string text;
    for (TokenId id : ids) text += stream.push(id);
    EXPECT_EQ(text + stream.flush(), "hello world");
    // Only the start of the input gets the prefix, not text after a special token.
    EXPECT_EQ(tok.encode("<start>hello", false, true),
              (std::vector<TokenId>{4, id_of(tok, "hello")}));
}

TEST(TokenizerUnicode, Nfc) {
    auto nfc = [](std::string_view s) {
        std::string out;
        return unicode::nfc_normalize(s, out) ? out : std::string(s);
    };
    EXPECT_EQ(nfc("abc"), "abc");
    EXPECT_EQ(nfc("e\xCC\x81"), "\xC3\xA9");                                 // e + acute -> é
    EXPECT_EQ(nfc("\xE2\x84\xAA"), "K");                                     // Kelvin sign
    EXPECT_EQ(nfc("\xE2\x84\xAB"), "\xC3\x85");                              // Angstrom sign -> Å
    EXPECT_EQ(nfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8"), "\xEA\xB0\x81");  // jamo -> 각
    // Marks are put in canonical order (dot below, class 220, before acute, class 230).
    EXPECT_EQ(nfc("a\xCC\x81\xCC\xA3"), nfc("a\xCC\xA3\xCC\x81"));
    EXPECT_EQ(nfc("a\xCC\xA3\xCC\x82"), "\xE1\xBA\xAD");  // a + dot below + circumflex -> ậ
    EXPECT_EQ(nfc("\xC3\xA9\xCC\xA3"), "\xE1\xBA\xB9\xCC\x81");  // é + dot below -> ẹ + acute
    EXPECT_EQ(nfc("\xff\xCC\x81"), "\xff\xCC\x81");              // invalid bytes pass through
}

TEST(TokenizerUnicode, Utf8Helpers) {
    EXPECT_EQ(unicode::utf8_char_len("\xE2\x96\x81", 0), 3u);
    EXPECT_EQ(unicode::utf8_char_len("\xE2\x96", 0), 1u);      // truncated
    EXPECT_EQ(unicode::utf8_char_len("\xC0\x80", 0), 1u);      // overlong
    EXPECT_EQ(unicode::utf8_char_len("\xED\xA0\x80", 0), 1u);  // surrogate
    EXPECT_EQ(unicode::utf8_incomplete_tail("ab\xF0\x9F"), 2u);
    EXPECT_EQ(unicode::utf8_incomplete_tail("ab\xF0\x9F\x98\x80"), 0u);
    EXPECT_EQ(unicode::utf8_incomplete_tail("ab\x80"), 0u);
    EXPECT_EQ(unicode::utf8_incomplete_tail("\xC3"), 1u);
    const auto& alphabet = unicode::byte_level_alphabet();
    EXPECT_EQ(alphabet.byte_to_cp[' '], 0x120u);   // "Ġ"
    EXPECT_EQ(alphabet.byte_to_cp['\n'], 0x10Au);  // "Ċ"
    for (int b = 0; b < 256; ++b) EXPECT_EQ(alphabet.byte_of(alphabet.byte_to_cp[b]), b);
}

std::vector<std::string> split(std::string_view pre, std::string_view text) {
    auto p = PreTokenizer::create(pre);
    EXPECT_TRUE(p.ok()) << p.message();
    std::vector<std::string_view> pieces;
    (*p)->split(text, pieces);
    return {pieces.begin(), pieces.end()};
}

TEST(TokenizerPreTokenizer, Families) {
    using V = std::vector<std::string>;
    EXPECT_EQ(split("default", "Hello world's 123  x"),
              (V{"Hello", " world", "'s", " 123", " ", " x"}));
    EXPECT_EQ(split("qwen2", "Hello WORLD'S 123\n\n  x"),
              (V{"Hello", " WORLD", "'S", " ", "1", "2", "3", "\n\n", " ", " x"}));
    EXPECT_EQ(split("llama-bpe", "12345 abc"), (V{"123", "45", " abc"}));
    // SmolLM2: digits alone first, then GPT-2's regex inside each piece.
    EXPECT_EQ(split("smollm", "a  12"), (V{"a", "  ", "1", "2"}));
    EXPECT_EQ(split("qwen35", "e\xCC\x81t\xC3\xA9"), (V{"e\xCC\x81t\xC3\xA9"}));
    EXPECT_EQ(split("qwen2", "e\xCC\x81t"), (V{"e", "\xCC\x81t"}));
    // Invalid UTF-8 is kept, in the gaps between matches.
    EXPECT_EQ(split("qwen2", "ab\xff cd"), (V{"ab", "\xff", " cd"}));
    EXPECT_FALSE(PreTokenizer::create("unknown-pre").ok());
}

}  // namespace
}  // namespace sift
