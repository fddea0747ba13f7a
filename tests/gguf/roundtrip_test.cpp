// Writer -> reader round trips: every value type, tensors of several dtypes, alignment, v2,
// getters.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "gguf/gguf.h"

#include "tests/test_temp.h"

namespace sift::gguf {
namespace {

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Value nested(int depth) {
    if (depth == 0) return Value::array(ValueType::INT16, {Value::i16(-1), Value::i16(2)});
    return Value::array(ValueType::ARRAY, {nested(depth - 1), nested(depth - 1)});
}

std::vector<KeyValue> every_value() {
    const std::string unicode = "h\u00e9llo \U0001f999 \u6f22\u5b57";
    return {
        {"u8.max", Value::u8(255)},
        {"i8.min", Value::i8(-128)},
        {"u16.max", Value::u16(65535)},
        {"i16.min", Value::i16(-32768)},
        {"u32.max", Value::u32(std::numeric_limits<uint32_t>::max())},
        {"i32.min", Value::i32(std::numeric_limits<int32_t>::min())},
        {"f32", Value::f32(-0.375f)},
        {"bool.true", Value::boolean(true)},
        {"bool.false", Value::boolean(false)},
        {"string", Value::string("hello")},
        {"string.empty", Value::string("")},
        {"string.unicode", Value::string(unicode)},
        {"string.nul", Value::string(std::string("a\0b", 3))},
        {"u64.max", Value::u64(std::numeric_limits<uint64_t>::max())},
        {"i64.min", Value::i64(std::numeric_limits<int64_t>::min())},
        {"f64", Value::f64(1e-300)},
        {"array.u8", Value::array(ValueType::UINT8, {Value::u8(0), Value::u8(255)})},
        {"array.i8", Value::array(ValueType::INT8, {Value::i8(-1)})},
        {"array.u16", Value::array(ValueType::UINT16, {Value::u16(7)})},
        {"array.i16", Value::array(ValueType::INT16, {Value::i16(-7)})},
        {"array.u32", Value::array(ValueType::UINT32, {Value::u32(1), Value::u32(2)})},
        {"array.i32", Value::array(ValueType::INT32, {Value::i32(-3)})},
        {"array.f32", Value::array(ValueType::FLOAT32, {Value::f32(0.5f), Value::f32(-1e30f)})},
        {"array.bool",
         Value::array(ValueType::BOOL, {Value::boolean(true), Value::boolean(false)})},
        {"array.string", Value::string_array({"a", "", unicode})},
        {"array.u64", Value::array(ValueType::UINT64, {Value::u64(1ull << 63)})},
        {"array.i64", Value::array(ValueType::INT64, {Value::i64(-(1ll << 62))})},
        {"array.f64", Value::array(ValueType::FLOAT64, {Value::f64(2.5)})},
        {"array.empty.u8", Value::array(ValueType::UINT8, {})},
        {"array.empty.string", Value::array(ValueType::STRING, {})},
        {"array.empty.array", Value::array(ValueType::ARRAY, {})},
        {"array.of_empty", Value::array(ValueType::ARRAY, {Value::array(ValueType::FLOAT64, {}),
                                                           Value::array(ValueType::FLOAT64, {})})},
        {"array.nested.strings", Value::array(ValueType::ARRAY, {Value::string_array({"x", "y"}),
                                                                 Value::string_array({unicode})})},
        {"array.nested.deep", nested(7)},  // 8 levels of arrays: the reader's limit
        {unicode, Value::u32(1)},          // keys are plain strings too
    };
}

TEST(GgufRoundTrip, EveryValueType) {
    std::string path = test_temp_path("values.gguf");
    Writer writer;
    for (const KeyValue& kv : every_value()) writer.set(kv.key, kv.value);
    ASSERT_TRUE(writer.open(path).ok());
    ASSERT_TRUE(writer.finish().ok());
    EXPECT_EQ(read_bytes(path).size(), writer.total_bytes());

    auto file = File::open(path);
    ASSERT_TRUE(file.ok()) << file.message();
    EXPECT_EQ((*file)->version(), 3u);
    EXPECT_EQ((*file)->alignment(), kDefaultAlignment);
    EXPECT_TRUE((*file)->tensors().empty());
    std::vector<KeyValue> want = every_value();
    const std::vector<KeyValue>& got = (*file)->metadata();
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(got[i].key, want[i].key);
        EXPECT_TRUE(got[i].value == want[i].value) << "kv " << want[i].key;
        EXPECT_EQ((*file)->find(want[i].key), &got[i].value);
    }
    EXPECT_EQ((*file)->find("missing"), nullptr);
    std::remove(path.c_str());
}

TEST(GgufRoundTrip, SetReplacesExistingKey) {
    std::string path = test_temp_path("replace.gguf");
    Writer writer;
    writer.set("a", Value::u32(1));
    writer.set("b", Value::u32(2));
    writer.set("a", Value::string("again"));
    ASSERT_TRUE(writer.open(path).ok());
    ASSERT_TRUE(writer.finish().ok());
    auto file = File::open(path);
    ASSERT_TRUE(file.ok()) << file.message();
    ASSERT_EQ((*file)->metadata().size(), 2u);
    EXPECT_EQ((*file)->get_string("a").value(), "again");
    std::remove(path.c_str());
}

struct TensorSpec {
    std::string name;
    std::vector<int64_t> ne;
    DType type;
};

// Writes the tensors with pseudo-random data, in chunks of `chunk` bytes that straddle tensor
// boundaries, then checks everything the reader reports.
void round_trip_tensors(const std::vector<TensorSpec>& specs, uint32_t alignment, size_t chunk) {
    std::string path = test_temp_path(fmt::format("tensors_{}_{}.gguf", alignment, chunk));
    Writer writer;
    writer.set("general.architecture", Value::string("test"));
    if (alignment != kDefaultAlignment) writer.set("general.alignment", Value::u32(alignment));
    uint64_t total_data = 0;
    for (const TensorSpec& s : specs) {
        ASSERT_TRUE(writer.add_tensor(s.name, s.ne, s.type).ok()) << s.name;
        total_data += writer.tensors().back().byte_size;
    }
    std::vector<uint8_t> data(total_data);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 131 + 7);

    ASSERT_TRUE(writer.open(path).ok());
    EXPECT_EQ(writer.alignment(), alignment);
    for (size_t at = 0; at < data.size(); at += chunk) {
        size_t n = std::min(chunk, data.size() - at);
        ASSERT_TRUE(writer.write(std::span<const uint8_t>(data.data() + at, n)).ok());
    }
    ASSERT_TRUE(writer.finish().ok());
    std::vector<uint8_t> bytes = read_bytes(path);
    EXPECT_EQ(bytes.size(), writer.total_bytes());

    auto file = File::open(path);
    ASSERT_TRUE(file.ok()) << file.message();
    const File& f = **file;
    EXPECT_EQ(f.alignment(), alignment);
    EXPECT_EQ(f.data_offset() % alignment, 0u);
    EXPECT_EQ(f.file_size(), bytes.size());
    ASSERT_EQ(f.tensors().size(), specs.size());
    uint64_t consumed = 0;
    for (size_t i = 0; i < specs.size(); ++i) {
        const TensorInfo& t = f.tensors()[i];
        const TensorSpec& s = specs[i];
        SCOPED_TRACE(s.name);
        EXPECT_EQ(t.name, s.name);
        EXPECT_EQ(f.tensor(s.name), &t);
        EXPECT_EQ(t.n_dims, static_cast<int>(s.ne.size()));
        int64_t n = 1;
        for (size_t d = 0; d < kMaxDims; ++d) {
            int64_t want = d < s.ne.size() ? s.ne[d] : 1;
            EXPECT_EQ(t.ne[d], want);
            n *= want;
        }
        EXPECT_EQ(t.n_elements(), n);
        EXPECT_EQ(t.type, s.type);
        int64_t rows = t.ne[1] * t.ne[2] * t.ne[3];
        EXPECT_EQ(t.byte_size, static_cast<uint64_t>(*dtype_row_bytes(s.type, t.ne[0]) * rows));
        EXPECT_EQ(t.offset % alignment, 0u);
        EXPECT_EQ(t.offset, writer.tensors()[i].offset);
        EXPECT_EQ(0, std::memcmp(t.data, data.data() + consumed, t.byte_size));
        consumed += t.byte_size;
    }
    EXPECT_EQ(f.tensor("missing"), nullptr);
    std::remove(path.c_str());
}

const std::vector<TensorSpec> kSpecs = {
    {"f32", {3, 2}, DType::F32},          {"f16", {5}, DType::F16},
    {"q8_0", {64, 2}, DType::Q8_0},       {"empty", {0, 4}, DType::F32},
    {"q4_k", {256}, DType::Q4_K},         {"bf16", {7, 1, 2}, DType::BF16},
    {"i32.4d", {1, 1, 1, 3}, DType::I32}, {"scalar", {}, DType::F32},
    {"q6_k", {512, 3}, DType::Q6_K},
};

TEST(GgufRoundTrip, TensorsOfSeveralDtypes) {
    round_trip_tensors(kSpecs, 32, 1 << 20);
}
TEST(GgufRoundTrip, TensorsWrittenInOddChunks) {
    round_trip_tensors(kSpecs, 32, 7);
}
TEST(GgufRoundTrip, TensorsWrittenByteByByte) {
    round_trip_tensors(kSpecs, 32, 1);
}
TEST(GgufRoundTrip, Alignment64) {
    round_trip_tensors(kSpecs, 64, 1000);
}
TEST(GgufRoundTrip, Alignment1) {
    round_trip_tensors(kSpecs, 1, 1000);
}
TEST(GgufRoundTrip, Alignment4096) {
    round_trip_tensors(kSpecs, 4096, 333);
}

TEST(GgufRoundTrip, Version2IsReadable) {
    // v2 and v3 share the layout (u64 counts); only the version field differs.
    std::string path = test_temp_path("v2.gguf");
    Writer writer;
    writer.set("k", Value::string("v"));
    ASSERT_TRUE(writer.add_tensor("w", std::vector<int64_t>{4}, DType::F32).ok());
    ASSERT_TRUE(writer.open(path).ok());
    std::vector<float> w = {1, 2, 3, 4};
    ASSERT_TRUE(writer.write({reinterpret_cast<const uint8_t*>(w.data()), 16}).ok());
    ASSERT_TRUE(writer.finish().ok());
    std::vector<uint8_t> bytes = read_bytes(path);
    ASSERT_EQ(bytes[4], 3);
    bytes[4] = 2;
    auto file = File::parse(bytes, "v2.gguf");
    ASSERT_TRUE(file.ok()) << file.message();
    EXPECT_EQ((*file)->version(), 2u);
    EXPECT_EQ((*file)->get_string("k").value(), "v");
    ASSERT_NE((*file)->tensor("w"), nullptr);
    EXPECT_EQ(0, std::memcmp((*file)->tensor("w")->data, w.data(), 16));
    std::remove(path.c_str());
}

// Builds an in-memory file holding the given metadata.
std::unique_ptr<File> parse_kvs(const std::vector<KeyValue>& kvs, std::vector<uint8_t>& storage) {
    std::string path = test_temp_path("kvs.gguf");
    Writer writer;
    for (const KeyValue& kv : kvs) writer.set(kv.key, kv.value);
    EXPECT_TRUE(writer.open(path).ok());
    EXPECT_TRUE(writer.finish().ok());
    storage = read_bytes(path);
    std::remove(path.c_str());
    auto file = File::parse(storage, "getters.gguf");
    EXPECT_TRUE(file.ok()) << file.message();
    return std::move(file).value();
}

TEST(GgufGetters, IntegersConvertWhenTheyFit) {
    std::vector<uint8_t> storage;
    auto f = parse_kvs({{"u8", Value::u8(200)},
                        {"i8", Value::i8(-5)},
                        {"i32", Value::i32(7)},
                        {"u64.big", Value::u64(std::numeric_limits<uint64_t>::max())},
                        {"i64.min", Value::i64(std::numeric_limits<int64_t>::min())}},
                       storage);
    EXPECT_EQ(f->get_u64("u8").value(), 200u);
    EXPECT_EQ(f->get_i64("u8").value(), 200);
    EXPECT_EQ(f->get_i64("i8").value(), -5);
    EXPECT_EQ(f->get_u64("i32").value(), 7u);
    EXPECT_EQ(f->get_u64("u64.big").value(), std::numeric_limits<uint64_t>::max());
    EXPECT_EQ(f->get_i64("i64.min").value(), std::numeric_limits<int64_t>::min());
    EXPECT_DOUBLE_EQ(f->get_f64("i8").value(), -5.0);

    auto negative = f->get_u64("i8");
    ASSERT_FALSE(negative.ok());
    EXPECT_NE(negative.message().find("getters.gguf"), std::string::npos) << negative.message();
    EXPECT_NE(negative.message().find("'i8'"), std::string::npos) << negative.message();
    EXPECT_NE(negative.message().find("int8"), std::string::npos) << negative.message();
    auto too_big = f->get_i64("u64.big");
    ASSERT_FALSE(too_big.ok());
    EXPECT_NE(too_big.message().find("'u64.big'"), std::string::npos) << too_big.message();
    EXPECT_NE(too_big.message().find("uint64"), std::string::npos) << too_big.message();
}

TEST(GgufGetters, TypedValuesAndWrongTypes) {
    std::vector<uint8_t> storage;
    auto f = parse_kvs({{"name", Value::string("qwen")},
                        {"f32", Value::f32(0.5f)},
                        {"f64", Value::f64(1e100)},
                        {"flag", Value::boolean(true)},
                        {"list", Value::string_array({"a", "b"})}},
                       storage);
    EXPECT_EQ(f->get_string("name").value(), "qwen");
    EXPECT_DOUBLE_EQ(f->get_f64("f32").value(), 0.5);
    EXPECT_DOUBLE_EQ(f->get_f64("f64").value(), 1e100);
    EXPECT_TRUE(f->get_bool("flag").value());
    ASSERT_TRUE(f->get_array("list").ok());
    EXPECT_EQ(f->get_array("list").value()->items.size(), 2u);
    EXPECT_EQ(f->get_array("list").value()->element_type, ValueType::STRING);

    struct Case {
        std::string message;
        std::string_view key, type;
    };
    std::vector<Case> cases = {
        {f->get_string("f32").message(), "f32", "float32"},
        {f->get_u64("name").message(), "name", "string"},
        {f->get_i64("f64").message(), "f64", "float64"},
        {f->get_f64("flag").message(), "flag", "bool"},
        {f->get_bool("name").message(), "name", "string"},
        {f->get_array("flag").message(), "flag", "bool"},
        {f->get_string("list").message(), "list", "array of string"},
        {f->get_u64("flag").message(), "flag", "bool"},  // bool is not an integer
    };
    for (const Case& c : cases) {
        EXPECT_NE(c.message.find(fmt::format("key '{}'", c.key)), std::string::npos) << c.message;
        EXPECT_NE(c.message.find(fmt::format("has type {},", c.type)), std::string::npos)
            << c.message;
    }
    auto missing = f->get_u64("absent");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.message(), "getters.gguf: key 'absent' not found");
}

TEST(GgufWriter, RejectsBadTensors) {
    Writer writer;
    EXPECT_FALSE(writer.add_tensor("q", std::vector<int64_t>{33}, DType::Q8_0).ok());
    EXPECT_FALSE(writer.add_tensor("big", std::vector<int64_t>{1, 1, 1, 1, 1}, DType::F32).ok());
    EXPECT_FALSE(writer.add_tensor("neg", std::vector<int64_t>{4, -1}, DType::F32).ok());
    EXPECT_FALSE(
        writer.add_tensor("huge", std::vector<int64_t>{1ll << 40, 1ll << 40}, DType::F32).ok());
    EXPECT_FALSE(writer.add_tensor("bad", std::vector<int64_t>{4}, static_cast<DType>(4)).ok());
    ASSERT_TRUE(writer.add_tensor("a", std::vector<int64_t>{4}, DType::F32).ok());
    auto dup = writer.add_tensor("a", std::vector<int64_t>{8}, DType::F32);
    ASSERT_FALSE(dup.ok());
    EXPECT_NE(dup.message().find("duplicate tensor name 'a'"), std::string::npos);
}

TEST(GgufWriter, EnforcesWriteOrderAndCompleteness) {
    std::string path = test_temp_path("incomplete.gguf");
    Writer writer;
    std::vector<uint8_t> bytes(64, 1);
    EXPECT_FALSE(writer.write(bytes).ok());  // before open
    EXPECT_FALSE(writer.finish().ok());
    ASSERT_TRUE(writer.add_tensor("a", std::vector<int64_t>{4}, DType::F32).ok());
    ASSERT_TRUE(writer.add_tensor("b", std::vector<int64_t>{2}, DType::F32).ok());
    ASSERT_TRUE(writer.open(path).ok());
    EXPECT_FALSE(writer.open(path).ok());
    EXPECT_FALSE(writer.add_tensor("c", std::vector<int64_t>{2}, DType::F32).ok());
    ASSERT_TRUE(writer.write(std::span(bytes).first(20)).ok());
    auto incomplete = writer.finish();
    ASSERT_FALSE(incomplete.ok());
    EXPECT_NE(incomplete.message().find("tensor 'b' incomplete: 4 of 8 bytes"), std::string::npos)
        << incomplete.message();
    EXPECT_FALSE(writer.write(std::span(bytes).first(5)).ok());  // 1 byte too many
    std::remove(path.c_str());
}

TEST(GgufWriter, RejectsBadMetadata) {
    auto open_with = [&](const Value& v, const std::string& key = "k") {
        Writer writer;
        writer.set(key, v);
        return writer.open(test_temp_path("bad_meta.gguf"));
    };
    EXPECT_FALSE(open_with(Value::u32(3), "general.alignment").ok());
    EXPECT_FALSE(open_with(Value::u32(0), "general.alignment").ok());
    EXPECT_FALSE(open_with(Value::u64(64), "general.alignment").ok());
    EXPECT_FALSE(open_with(Value::array(ValueType::UINT8, {Value::i8(1)})).ok());
    EXPECT_FALSE(open_with(Value{ValueType::UINT8, uint64_t{300}}).ok());
    EXPECT_FALSE(open_with(Value{ValueType::STRING, uint64_t{1}}).ok());
    EXPECT_FALSE(open_with(nested(8)).ok());  // 9 levels: the reader would refuse it
    EXPECT_TRUE(open_with(nested(7)).ok());
    std::remove(test_temp_path("bad_meta.gguf").c_str());
}

TEST(GgufWriter, CannotCreateFileIsAnError) {
    Writer writer;
    auto status = writer.open("/nonexistent-dir/x.gguf");
    ASSERT_FALSE(status.ok());
    EXPECT_NE(status.message().find("/nonexistent-dir/x.gguf"), std::string::npos);
}

TEST(GgufReader, OpenMissingFileNamesIt) {
    auto file = File::open("/nonexistent-dir/model.gguf");
    ASSERT_FALSE(file.ok());
    EXPECT_NE(file.message().find("/nonexistent-dir/model.gguf"), std::string::npos);
}

}  // namespace
}  // namespace sift::gguf
