// Corrupt inputs: handcrafted bad files, every truncation of valid files, random byte flips. Each
// must give an error naming the field and byte offset; none may crash or over-allocate.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "gguf/gguf.h"

#include "tests/test_temp.h"

namespace sift::gguf {
namespace {

constexpr uint64_t kMax64 = ~uint64_t{0};

// Little-endian byte builder for handcrafted files.
struct Bytes {
    std::vector<uint8_t> b;

    size_t size() const { return b.size(); }
    template <typename T>
    Bytes& put(T v) {
        size_t at = b.size();
        b.resize(at + sizeof(T));
        std::memcpy(b.data() + at, &v, sizeof(T));
        return *this;
    }
    Bytes& u8(uint8_t v) { return put(v); }
    Bytes& u32(uint32_t v) { return put(v); }
    Bytes& u64(uint64_t v) { return put(v); }
    Bytes& str(std::string_view s) {
        u64(s.size());
        b.insert(b.end(), s.begin(), s.end());
        return *this;
    }
    Bytes& zeros(size_t n) {
        b.resize(b.size() + n, 0);
        return *this;
    }
    Bytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
        return u32(kMagic).u32(version).u64(n_tensors).u64(n_kv);
    }
    Bytes& kv_u32(std::string_view key, uint32_t v) {
        return str(key).u32(static_cast<uint32_t>(ValueType::UINT32)).u32(v);
    }
    // Returns the byte offset of the tensor's offset field.
    size_t tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
        str(name).u32(static_cast<uint32_t>(ne.size()));
        for (uint64_t d : ne) u64(d);
        u32(type);
        size_t at = size();
        u64(offset);
        return at;
    }
    Bytes& pad(size_t alignment) { return zeros((alignment - size() % alignment) % alignment); }
};

std::string parse_error(const std::vector<uint8_t>& bytes, const std::string& name = "bad.gguf") {
    // An exact-size heap copy, so sanitizer builds catch any read past the end.
    std::vector<uint8_t> copy(bytes);
    auto file = File::parse(copy, name);
    EXPECT_FALSE(file.ok()) << "parsed a corrupt file";
    if (file.ok()) return "";
    EXPECT_EQ(file.message().rfind(name + ": ", 0), 0u) << file.message();
    return file.message();
}

#define EXPECT_HAS(haystack, needle) \
    EXPECT_NE((haystack).find(needle), std::string::npos) << "message: " << (haystack)

TEST(GgufCorrupt, MinimalFileIsValid) {
    Bytes b;
    b.header(0, 0);
    auto file = File::parse(b.b, "min.gguf");
    ASSERT_TRUE(file.ok()) << file.message();
    EXPECT_EQ((*file)->data_offset(), 32u);  // aligned, though past the end: no tensors use it
}

TEST(GgufCorrupt, EmptyAndBadMagic) {
    EXPECT_EQ(parse_error({}),
              "bad.gguf: magic at byte 0 needs 4 bytes but only 0 remain (truncated file)");
    Bytes b;
    b.u32(0x58554747).u32(3).u64(0).u64(0);
    EXPECT_EQ(parse_error(b.b),
              "bad.gguf: magic 0x58554747 at byte 0 is not \"GGUF\" (not a GGUF file)");
}

TEST(GgufCorrupt, BadVersions) {
    for (uint32_t version : {0u, 1u, 4u, 0xffffffffu}) {
        Bytes b;
        b.header(0, 0, version);
        std::string message = parse_error(b.b);
        EXPECT_HAS(message, fmt::format("version {} at byte 4 is not supported", version));
    }
    for (uint32_t version : {0x03000000u, 0x02000000u}) {
        Bytes b;
        b.header(0, 0, version);
        std::string message = parse_error(b.b);
        EXPECT_HAS(message, "big-endian GGUF not supported");
        EXPECT_HAS(message, "at byte 4");
    }
}

TEST(GgufCorrupt, AbsurdHeaderCounts) {
    Bytes kv;
    kv.header(0, uint64_t{1} << 63);
    EXPECT_EQ(parse_error(kv.b),
              "bad.gguf: n_kv 9223372036854775808 at byte 16 exceeds the 0 bytes remaining (each "
              "key-value pair needs at least 13 bytes)");
    Bytes tensors;
    tensors.header(kMax64, 0).zeros(100);
    EXPECT_HAS(parse_error(tensors.b), "n_tensors 18446744073709551615 at byte 8 exceeds the 100");
    Bytes truncated_header;
    truncated_header.u32(kMagic).u32(3).u32(0);
    EXPECT_HAS(parse_error(truncated_header.b), "n_tensors at byte 8 needs 8 bytes but only 4");
}

TEST(GgufCorrupt, HugeKeyLengthMessageIsExact) {
    Bytes b;
    b.header(0, 1).u64(kMax64).zeros(8);
    EXPECT_EQ(parse_error(b.b, "model.gguf"),
              "model.gguf: kv[0] key string length 18446744073709551615 at byte 24 exceeds the 8 "
              "bytes remaining");
}

TEST(GgufCorrupt, HugeArrayCountAndStringLength) {
    const std::string key = "tokenizer.ggml.tokens";
    Bytes count;
    count.header(0, 1).str(key).u32(static_cast<uint32_t>(ValueType::ARRAY));
    count.u32(static_cast<uint32_t>(ValueType::STRING));
    size_t count_at = count.size();
    count.u64(uint64_t{1} << 62).zeros(64);
    std::string message = parse_error(count.b);
    EXPECT_HAS(message, fmt::format("kv[0] '{}' array count 4611686018427387904 at byte {} "
                                    "exceeds the 64 bytes remaining",
                                    key, count_at));

    Bytes item;
    item.header(0, 1).str(key).u32(static_cast<uint32_t>(ValueType::ARRAY));
    item.u32(static_cast<uint32_t>(ValueType::STRING)).u64(3).str("a");
    size_t length_at = item.size();
    item.u64(kMax64).str("c");
    EXPECT_HAS(parse_error(item.b),
               fmt::format("kv[0] '{}' array item 1 string length 18446744073709551615 at byte {} "
                           "exceeds the 9 bytes remaining",
                           key, length_at));

    // A large count of one-byte items is bounded by the bytes left, not trusted.
    Bytes u8s;
    u8s.header(0, 1).str("k").u32(static_cast<uint32_t>(ValueType::ARRAY));
    u8s.u32(static_cast<uint32_t>(ValueType::UINT8)).u64(1000).zeros(999);
    EXPECT_HAS(parse_error(u8s.b), "kv[0] 'k' array count 1000");
}

TEST(GgufCorrupt, UnknownValueTypes) {
    for (uint32_t type : {13u, 0xffffffffu}) {
        Bytes b;
        b.header(0, 1).str("k");
        size_t at = b.size();
        b.u32(type).u32(0);
        EXPECT_HAS(parse_error(b.b),
                   fmt::format("kv[0] 'k' value type {} at byte {} is not a known "
                               "GGUF value type",
                               type, at));
    }
    Bytes element;
    element.header(0, 1).str("k").u32(static_cast<uint32_t>(ValueType::ARRAY));
    size_t at = element.size();
    element.u32(99).u64(0);
    EXPECT_HAS(parse_error(element.b),
               fmt::format("kv[0] 'k' array element type 99 at byte {}", at));
}

TEST(GgufCorrupt, UnterminatedAndTruncatedValues) {
    Bytes string;
    string.header(0, 1).str("k").u32(static_cast<uint32_t>(ValueType::STRING));
    size_t at = string.size();
    string.u64(100).zeros(10);
    EXPECT_HAS(
        parse_error(string.b),
        fmt::format("kv[0] 'k' string length 100 at byte {} exceeds the 10 bytes remaining", at));
    Bytes key;
    key.header(0, 1).u64(50).zeros(20);
    EXPECT_HAS(parse_error(key.b), "kv[0] key string length 50 at byte 24 exceeds the 20 bytes");
    Bytes value;
    value.header(0, 2).kv_u32("a", 1).str("b").u32(static_cast<uint32_t>(ValueType::UINT64));
    at = value.size();
    value.u32(7);
    EXPECT_HAS(
        parse_error(value.b),
        fmt::format("kv[1] 'b' uint64 value at byte {} needs 8 bytes but only 4 remain", at));
}

Bytes nested_arrays(int depth) {
    Bytes b;
    b.header(0, 1).str("deep").u32(static_cast<uint32_t>(ValueType::ARRAY));
    for (int level = 1; level < depth; ++level) {
        b.u32(static_cast<uint32_t>(ValueType::ARRAY)).u64(1);
    }
    b.u32(static_cast<uint32_t>(ValueType::UINT8)).u64(1).u8(42);
    return b;
}

TEST(GgufCorrupt, NestingDepthIsBounded) {
    auto ok = File::parse(nested_arrays(8).b, "deep.gguf");
    ASSERT_TRUE(ok.ok()) << ok.message();
    const Value* v = (*ok)->find("deep");
    for (int level = 1; level < 8; ++level) v = &v->as_array()->items.at(0);
    EXPECT_EQ(std::get<uint64_t>(v->as_array()->items.at(0).data), 42u);

    std::string message = parse_error(nested_arrays(9).b);
    EXPECT_HAS(message, "kv[0] 'deep' array item 0 array item 0");
    EXPECT_HAS(message, "nests arrays 9 deep, more than the limit of 8");
    EXPECT_FALSE(File::parse(nested_arrays(100000).b).ok());
}

TEST(GgufCorrupt, DuplicateKeys) {
    Bytes b;
    b.header(0, 3).kv_u32("a", 1).kv_u32("b", 2);
    size_t at = b.size();
    b.kv_u32("a", 3);
    EXPECT_HAS(parse_error(b.b), fmt::format("kv[2] 'a' key at byte {} duplicates kv[0]", at));
}

TEST(GgufCorrupt, BadAlignment) {
    for (uint32_t alignment : {0u, 3u, 48u}) {
        Bytes b;
        b.header(0, 1).str("general.alignment").u32(static_cast<uint32_t>(ValueType::UINT32));
        size_t at = b.size();
        b.u32(alignment);
        EXPECT_HAS(parse_error(b.b),
                   fmt::format("kv[0] 'general.alignment' value {} at byte {} is not a non-zero "
                               "power of two",
                               alignment, at));
    }
    Bytes u64;
    u64.header(0, 1).str("general.alignment").u32(static_cast<uint32_t>(ValueType::UINT64));
    size_t at = u64.size();
    u64.u64(32);
    EXPECT_HAS(parse_error(u64.b), fmt::format("kv[0] 'general.alignment' value at byte {} has "
                                               "type uint64, expected uint32",
                                               at));
    Bytes string;
    string.header(0, 1).str("general.alignment").u32(static_cast<uint32_t>(ValueType::STRING));
    string.str("32");
    EXPECT_HAS(parse_error(string.b), "has type string, expected uint32");
}

// A file with one tensor info (whatever the caller writes) and `data` bytes of data.
template <typename F>
std::vector<uint8_t> with_tensors(uint64_t n_tensors, size_t data, F&& add_infos) {
    Bytes b;
    b.header(n_tensors, 0);
    add_infos(b);
    b.pad(32).zeros(data);
    return b.b;
}

TEST(GgufCorrupt, BadTensorInfos) {
    const auto f32 = static_cast<uint32_t>(DType::F32);
    const auto q8_0 = static_cast<uint32_t>(DType::Q8_0);
    size_t at = 0;
    auto type_at = [&](Bytes& b) { return b.size() + 8 + 1 + 4 + 8; };  // name "w", 1 dim
    for (uint32_t type : {4u, 5u, 1000u}) {
        auto bytes = with_tensors(1, 64, [&](Bytes& b) {
            at = type_at(b);
            b.tensor("w", {16}, type, 0);
        });
        EXPECT_HAS(
            parse_error(bytes),
            fmt::format("tensor[0] 'w' type {} at byte {} is not a known ggml type", type, at));
    }
    auto dims5 = with_tensors(1, 64, [&](Bytes& b) {
        at = b.size() + 9;
        b.tensor("w", {1, 1, 1, 1, 1}, f32, 0);
    });
    EXPECT_HAS(parse_error(dims5), fmt::format("tensor[0] 'w' n_dims 5 at byte {} exceeds the "
                                               "maximum of 4",
                                               at));
    auto negative = with_tensors(1, 64, [&](Bytes& b) {
        at = b.size() + 9 + 4 + 8;
        b.tensor("w", {4, static_cast<uint64_t>(-3)}, f32, 0);
    });
    EXPECT_HAS(parse_error(negative),
               fmt::format("tensor[0] 'w' ne[1] -3 at byte {} is negative", at));
    auto overflow = with_tensors(1, 64, [&](Bytes& b) {
        b.tensor("w", {uint64_t{1} << 32, uint64_t{1} << 32}, f32, 0);
    });
    EXPECT_HAS(parse_error(overflow), "tensor[0] 'w' ne[1] 4294967296");
    EXPECT_HAS(parse_error(overflow), "makes the element count overflow int64");
    // The zero dim must not hide the overflow of the others (n_elements() multiplies them all).
    auto zero_hides = with_tensors(1, 64, [&](Bytes& b) {
        b.tensor("w", {0, uint64_t{1} << 32, uint64_t{1} << 32}, f32, 0);
    });
    EXPECT_HAS(parse_error(zero_hides), "overflow");
    auto bytes_overflow =
        with_tensors(1, 64, [&](Bytes& b) { b.tensor("w", {uint64_t{1} << 62}, f32, 0); });
    EXPECT_HAS(parse_error(bytes_overflow), "tensor[0] 'w' byte size");
    auto block = with_tensors(1, 64, [&](Bytes& b) { b.tensor("w", {33}, q8_0, 0); });
    EXPECT_HAS(parse_error(block), "tensor[0] 'w' ne[0] 33");
    EXPECT_HAS(parse_error(block), "is not a multiple of the q8_0 block size 32");
    auto name = with_tensors(1, 64, [&](Bytes& b) { b.u64(kMax64); });
    EXPECT_HAS(parse_error(name), "tensor[0] name string length 18446744073709551615 at byte 24");
    auto duplicate = with_tensors(2, 64, [&](Bytes& b) {
        b.tensor("w", {8}, f32, 0);
        at = b.size();
        b.tensor("w", {8}, f32, 32);
    });
    EXPECT_HAS(parse_error(duplicate), fmt::format("tensor[1] 'w' name at byte {} duplicates "
                                                   "tensor[0]",
                                                   at));
    Bytes truncated;
    truncated.header(1, 0).str("w").u32(2).u64(4);
    at = truncated.size();
    truncated.zeros(3);
    EXPECT_HAS(parse_error(truncated.b),
               fmt::format("tensor[0] 'w' ne[1] at byte {} needs 8 bytes but only 3 remain", at));
}

TEST(GgufCorrupt, BadTensorData) {
    const auto f32 = static_cast<uint32_t>(DType::F32);
    size_t at = 0;
    auto past_end = with_tensors(1, 32, [&](Bytes& b) { at = b.tensor("w", {16}, f32, 0); });
    EXPECT_HAS(parse_error(past_end),
               fmt::format("tensor[0] 'w' offset 0 at byte {} with 64 bytes of data runs past the "
                           "end of the file (data section of 32 bytes",
                           at));
    auto far_offset = with_tensors(1, 64, [&](Bytes& b) { b.tensor("w", {16}, f32, 4096); });
    EXPECT_HAS(parse_error(far_offset), "tensor[0] 'w' offset 4096");
    auto wrapping = with_tensors(1, 64, [&](Bytes& b) { b.tensor("w", {16}, f32, kMax64 - 31); });
    EXPECT_HAS(parse_error(wrapping), "runs past the end of the file");
    auto misaligned = with_tensors(1, 64, [&](Bytes& b) { at = b.tensor("w", {4}, f32, 8); });
    EXPECT_HAS(parse_error(misaligned),
               fmt::format("tensor[0] 'w' offset 8 at byte {} is not a multiple of the "
                           "alignment 32",
                           at));
    auto overlap = with_tensors(2, 128, [&](Bytes& b) {
        b.tensor("a", {16}, f32, 0);
        at = b.tensor("b", {16}, f32, 32);
    });
    EXPECT_HAS(parse_error(overlap),
               fmt::format("tensor[1] 'b' offset 32 at byte {} overlaps the data of tensor[0] 'a' "
                           "(offset 0, 64 bytes)",
                           at));
    // Infos listed out of offset order are fine; so are zero-size tensors sharing an offset.
    auto unordered = with_tensors(3, 96, [&](Bytes& b) {
        b.tensor("late", {8}, f32, 64);
        b.tensor("early", {16}, f32, 0);
        b.tensor("empty", {0}, f32, 32);
    });
    auto file = File::parse(unordered, "ok.gguf");
    ASSERT_TRUE(file.ok()) << file.message();
    EXPECT_EQ((*file)->tensor("late")->data, unordered.data() + (*file)->data_offset() + 64);
}

TEST(GgufCorrupt, MisalignedForCustomAlignment) {
    Bytes b;
    b.header(1, 1).kv_u32("general.alignment", 64);
    b.tensor("w", {8}, static_cast<uint32_t>(DType::F32), 32);
    b.pad(64).zeros(128);
    EXPECT_HAS(parse_error(b.b), "offset 32 at byte");
    EXPECT_HAS(parse_error(b.b), "is not a multiple of the alignment 64");
}

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A valid file with every kind of section whose last tensor ends at the end of the file, so that
// every strict prefix is missing something.
std::vector<uint8_t> small_valid_file() {
    std::string path = test_temp_path("small_valid.gguf");
    Writer writer;
    writer.set("general.architecture", Value::string("llama"));
    writer.set("n", Value::u32(7));
    writer.set("scores", Value::array(ValueType::FLOAT32, {Value::f32(1), Value::f32(2)}));
    writer.set("tokens", Value::string_array({"<s>", "", "\u00e9"}));
    writer.set("nested", Value::array(ValueType::ARRAY, {Value::string_array({"x"}),
                                                         Value::array(ValueType::STRING, {})}));
    EXPECT_TRUE(writer.add_tensor("q", std::vector<int64_t>{32, 2}, DType::Q8_0).ok());
    EXPECT_TRUE(writer.add_tensor("f", std::vector<int64_t>{16}, DType::F32).ok());  // 64 bytes
    EXPECT_TRUE(writer.open(path).ok());
    std::vector<uint8_t> data(68 + 64, 0x5a);
    EXPECT_TRUE(writer.write(data).ok());
    EXPECT_TRUE(writer.finish().ok());
    std::vector<uint8_t> bytes = read_bytes(path);
    std::remove(path.c_str());
    return bytes;
}

void expect_every_prefix_fails(const std::vector<uint8_t>& bytes) {
    ASSERT_TRUE(File::parse(bytes).ok());
    for (size_t n = 0; n < bytes.size(); ++n) {
        std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(n));
        auto file = File::parse(prefix, "prefix.gguf");
        ASSERT_FALSE(file.ok()) << "prefix of " << n << " bytes parsed";
        ASSERT_EQ(file.message().rfind("prefix.gguf: ", 0), 0u) << file.message();
    }
}

TEST(GgufCorrupt, EveryTruncationIsAnError) {
    expect_every_prefix_fails(small_valid_file());
}

TEST(GgufCorrupt, EveryTruncationOfPythonFixtureIsAnError) {
    std::vector<uint8_t> bytes = read_bytes(SIFT_TEST_DATA "/gguf/python_writer.gguf");
    ASSERT_FALSE(bytes.empty());
    expect_every_prefix_fails(bytes);
}

// Parses mutations of a valid file; each must parse or fail cleanly, and parsed tensors must lie
// inside the buffer.
void fuzz_flips(const std::vector<uint8_t>& valid, uint64_t seed, int iterations) {
    std::mt19937_64 rng(seed);
    int parsed = 0;
    for (int it = 0; it < iterations; ++it) {
        std::vector<uint8_t> bytes = valid;
        int flips = 1 + static_cast<int>(rng() % 8);
        for (int k = 0; k < flips; ++k) {
            size_t at = rng() % bytes.size();
            switch (rng() % 4) {
                case 0:
                    bytes[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
                    break;
                case 1:
                    bytes[at] = static_cast<uint8_t>(rng());
                    break;
                default: {  // extreme 8-byte values hit counts, lengths, dims and offsets
                    uint64_t extremes[] = {kMax64, uint64_t{1} << 63, uint64_t{1} << 32, 0,
                                           kMax64 - 31};
                    uint64_t v = extremes[rng() % 5];
                    size_t n = std::min<size_t>(8, bytes.size() - at);
                    std::memcpy(bytes.data() + at, &v, n);
                }
            }
        }
        auto file = File::parse(bytes, "flipped.gguf");
        if (!file.ok()) continue;
        ++parsed;
        const File& f = **file;
        for (const TensorInfo& t : f.tensors()) {
            ASSERT_GE(t.data, bytes.data());
            ASSERT_LE(t.byte_size, static_cast<uint64_t>(bytes.data() + bytes.size() - t.data));
        }
    }
    // Some mutations land in tensor data or string bytes and still parse.
    EXPECT_GT(parsed, 0);
}

TEST(GgufCorrupt, RandomByteFlipsNeverCrash) {
    fuzz_flips(small_valid_file(), 1, 20000);
    fuzz_flips(read_bytes(SIFT_TEST_DATA "/gguf/python_writer.gguf"), 2, 20000);
}

TEST(GgufCorrupt, OpenNamesThePath) {
    std::string path = test_temp_path("corrupt_on_disk.gguf");
    {
        std::ofstream out(path, std::ios::binary);
        out << "GGUF";
    }
    auto file = File::open(path);
    ASSERT_FALSE(file.ok());
    EXPECT_EQ(file.message(), path +
                                  ": version at byte 4 needs 4 bytes but only 0 remain "
                                  "(truncated file)");
    std::remove(path.c_str());
}

}  // namespace
}  // namespace sift::gguf
