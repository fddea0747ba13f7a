// Files written by the reference Python `gguf` package (scripts/gen_gguf_fixture.py; keep the
// expected values here in sync with it) read correctly, and our writer reproduces them exactly.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gguf/gguf.h"

#include "tests/test_temp.h"

namespace sift::gguf {
namespace {

const std::string kFixture = SIFT_TEST_DATA "/gguf/python_writer.gguf";
const std::string kAlign64 = SIFT_TEST_DATA "/gguf/python_align64.gguf";
const std::string kUnicode = "h\u00e9llo w\u00f6rld \U0001f999 \u6f22\u5b57";

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

template <typename T>
std::vector<T> tensor_values(const TensorInfo& t) {
    std::vector<T> out(t.byte_size / sizeof(T));
    std::memcpy(out.data(), t.data, out.size() * sizeof(T));
    return out;
}

std::vector<uint64_t> u64_items(const Array& array) {
    std::vector<uint64_t> out;
    for (const Value& v : array.items) out.push_back(std::get<uint64_t>(v.data));
    return out;
}

TEST(GgufPythonFixture, MetadataOfEveryType) {
    auto opened = File::open(kFixture);
    ASSERT_TRUE(opened.ok()) << opened.message();
    const File& f = **opened;
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.alignment(), 32u);
    EXPECT_EQ(f.metadata().size(), 24u);  // general.architecture + 23 test keys
    EXPECT_EQ(f.metadata()[0].key, "general.architecture");
    EXPECT_EQ(f.get_string("general.architecture").value(), "test");

    auto type_of = [&](std::string_view key) { return f.find(key)->type; };
    EXPECT_EQ(type_of("test.u8"), ValueType::UINT8);
    EXPECT_EQ(f.get_u64("test.u8").value(), 200u);
    EXPECT_EQ(type_of("test.i8"), ValueType::INT8);
    EXPECT_EQ(f.get_i64("test.i8").value(), -100);
    EXPECT_EQ(type_of("test.u16"), ValueType::UINT16);
    EXPECT_EQ(f.get_u64("test.u16").value(), 60000u);
    EXPECT_EQ(type_of("test.i16"), ValueType::INT16);
    EXPECT_EQ(f.get_i64("test.i16").value(), -30000);
    EXPECT_EQ(type_of("test.u32"), ValueType::UINT32);
    EXPECT_EQ(f.get_u64("test.u32").value(), 4000000000u);
    EXPECT_EQ(type_of("test.i32"), ValueType::INT32);
    EXPECT_EQ(f.get_i64("test.i32").value(), -2000000000);
    EXPECT_EQ(type_of("test.f32"), ValueType::FLOAT32);
    EXPECT_EQ(f.get_f64("test.f32").value(), 0.25);
    EXPECT_EQ(type_of("test.bool_true"), ValueType::BOOL);
    EXPECT_TRUE(f.get_bool("test.bool_true").value());
    EXPECT_FALSE(f.get_bool("test.bool_false").value());
    EXPECT_EQ(f.get_string("test.string").value(), "hello");
    EXPECT_EQ(f.get_string("test.string_empty").value(), "");
    EXPECT_EQ(f.get_string("test.string_unicode").value(), kUnicode);
    EXPECT_EQ(type_of("test.u64"), ValueType::UINT64);
    EXPECT_EQ(f.get_u64("test.u64").value(), 18000000000000000000ull);
    EXPECT_EQ(type_of("test.i64"), ValueType::INT64);
    EXPECT_EQ(f.get_i64("test.i64").value(), -9000000000000000000ll);
    EXPECT_EQ(type_of("test.f64"), ValueType::FLOAT64);
    EXPECT_EQ(f.get_f64("test.f64").value(), -1.5e300);

    const Array* u8 = f.get_array("test.array_u8").value();
    EXPECT_EQ(u8->element_type, ValueType::UINT8);
    EXPECT_EQ(u64_items(*u8), (std::vector<uint64_t>{1, 2, 255}));
    const Array* i32 = f.get_array("test.array_i32").value();
    EXPECT_EQ(i32->element_type, ValueType::INT32);
    EXPECT_EQ(std::get<int64_t>(i32->items[0].data), -1);
    EXPECT_EQ(std::get<int64_t>(i32->items[2].data), 7);
    const Array* f32 = f.get_array("test.array_f32").value();
    EXPECT_EQ(f32->element_type, ValueType::FLOAT32);
    EXPECT_EQ(std::get<double>(f32->items[1].data), -2.0);
    const Array* u64 = f.get_array("test.array_u64").value();
    EXPECT_EQ(u64_items(*u64), (std::vector<uint64_t>{1, 1ull << 63}));
    const Array* bools = f.get_array("test.array_bool").value();
    EXPECT_EQ(bools->element_type, ValueType::BOOL);
    EXPECT_EQ(u64_items(*bools), (std::vector<uint64_t>{1, 0, 1}));
    EXPECT_TRUE(*f.find("test.array_string") == Value::string_array({"a", "", kUnicode}));

    // Nested arrays: the Python writer infers int32 for the inner ints.
    Value nested = Value::array(ValueType::ARRAY,
                                {Value::array(ValueType::INT32, {Value::i32(1), Value::i32(2)}),
                                 Value::array(ValueType::INT32, {Value::i32(3)})});
    EXPECT_TRUE(*f.find("test.array_nested") == nested);
    Value nested_strings = Value::array(
        ValueType::ARRAY, {Value::string_array({"x", "y"}), Value::string_array({"z"})});
    EXPECT_TRUE(*f.find("test.array_nested_string") == nested_strings);
}

TEST(GgufPythonFixture, Tensors) {
    auto opened = File::open(kFixture);
    ASSERT_TRUE(opened.ok()) << opened.message();
    const File& f = **opened;
    ASSERT_EQ(f.tensors().size(), 7u);
    EXPECT_EQ(f.data_offset() % 32, 0u);
    for (const TensorInfo& t : f.tensors()) EXPECT_EQ(t.offset % 32, 0u) << t.name;

    const TensorInfo* f32 = f.tensor("t.f32");
    ASSERT_NE(f32, nullptr);
    EXPECT_EQ(f32->type, DType::F32);
    EXPECT_EQ(f32->n_dims, 2);
    EXPECT_EQ(f32->ne[0], 3);  // numpy shape (2, 3) is reversed: ne[0] is the row
    EXPECT_EQ(f32->ne[1], 2);
    EXPECT_EQ(tensor_values<float>(*f32), (std::vector<float>{-1, -0.5, 0, 0.5, 1, 1.5}));

    const TensorInfo* f16 = f.tensor("t.f16");
    ASSERT_NE(f16, nullptr);
    EXPECT_EQ(f16->type, DType::F16);
    EXPECT_EQ(tensor_values<uint16_t>(*f16),
              (std::vector<uint16_t>{0x3c00, 0xc000, 0x3800, 0x7bff}));

    // Every Q8_0 block has scale 1.0 (f16 0x3c00) and quants equal to the source integers.
    const TensorInfo* q8 = f.tensor("t.q8_0");
    ASSERT_NE(q8, nullptr);
    EXPECT_EQ(q8->type, DType::Q8_0);
    EXPECT_EQ(q8->ne[0], 64);
    EXPECT_EQ(q8->ne[1], 2);
    ASSERT_EQ(q8->byte_size, 4u * 34u);
    for (int block = 0; block < 4; ++block) {
        const uint8_t* b = q8->data + block * 34;
        EXPECT_EQ(b[0] | (b[1] << 8), 0x3c00);
        for (int j = 0; j < 32; ++j) {
            int i = block * 32 + j;
            int want = j == 0 ? 127 : static_cast<int>(static_cast<int64_t>(i) * 37 % 255) - 127;
            ASSERT_EQ(static_cast<int8_t>(b[2 + j]), want) << "block " << block << " item " << j;
        }
    }

    EXPECT_EQ(tensor_values<int32_t>(*f.tensor("t.i32")),
              (std::vector<int32_t>{-7, 0, 2147483647}));
    EXPECT_EQ(f.tensor("t.i32")->type, DType::I32);
    EXPECT_EQ(tensor_values<int8_t>(*f.tensor("t.i8")), (std::vector<int8_t>{-128, -1, 0, 1, 127}));
    EXPECT_EQ(f.tensor("t.i8")->type, DType::I8);
    EXPECT_EQ(tensor_values<double>(*f.tensor("t.f64")), (std::vector<double>{3.0, -0.125}));
    EXPECT_EQ(f.tensor("t.f64")->type, DType::F64);
    const TensorInfo* cube = f.tensor("t.cube");
    ASSERT_NE(cube, nullptr);
    EXPECT_EQ(cube->n_dims, 3);
    EXPECT_EQ(cube->n_elements(), 8);
    EXPECT_EQ(tensor_values<float>(*cube), (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(GgufPythonFixture, CustomAlignment64) {
    auto opened = File::open(kAlign64);
    ASSERT_TRUE(opened.ok()) << opened.message();
    const File& f = **opened;
    EXPECT_EQ(f.alignment(), 64u);
    EXPECT_EQ(f.data_offset() % 64, 0u);
    ASSERT_EQ(f.tensors().size(), 2u);
    EXPECT_EQ(f.tensors()[0].offset, 0u);
    EXPECT_EQ(f.tensors()[1].offset, 64u);  // 12 bytes of "a" padded to 64
    EXPECT_EQ(tensor_values<float>(*f.tensor("a")), (std::vector<float>{0, 1, 2}));
    EXPECT_EQ(tensor_values<int16_t>(*f.tensor("b")), (std::vector<int16_t>{0, 1, 2, 3, 4}));
    EXPECT_EQ(f.tensor("b")->type, DType::I16);
}

// Copies a file through our writer; the Python writer and ours lay files out identically
// (metadata in order, data padded after every tensor), so the bytes must match exactly.
void expect_identical_copy(const std::string& source, const std::string& name) {
    auto opened = File::open(source);
    ASSERT_TRUE(opened.ok()) << opened.message();
    const File& f = **opened;
    // SIFT_GGUF_COPY_DIR keeps the copies, e.g. for `scripts/gen_gguf_fixture.py --verify`.
    const char* keep = std::getenv("SIFT_GGUF_COPY_DIR");
    std::string path = (keep ? std::string(keep) + "/" : test_temp_path("copy_")) + name;
    Writer writer;
    for (const KeyValue& kv : f.metadata()) writer.set(kv.key, kv.value);
    for (const TensorInfo& t : f.tensors()) {
        std::span<const int64_t> ne(t.ne.data(), static_cast<size_t>(t.n_dims));
        ASSERT_TRUE(writer.add_tensor(t.name, ne, t.type).ok()) << t.name;
    }
    ASSERT_TRUE(writer.open(path).ok());
    for (const TensorInfo& t : f.tensors()) {
        ASSERT_TRUE(writer.write({t.data, static_cast<size_t>(t.byte_size)}).ok()) << t.name;
    }
    ASSERT_TRUE(writer.finish().ok());
    std::vector<uint8_t> original = read_bytes(source);
    std::vector<uint8_t> copy = read_bytes(path);
    EXPECT_EQ(writer.total_bytes(), copy.size());
    ASSERT_EQ(copy.size(), original.size());
    EXPECT_TRUE(copy == original);
    if (keep == nullptr) std::remove(path.c_str());
}

TEST(GgufPythonFixture, OurWriterReproducesItByteForByte) {
    expect_identical_copy(kFixture, "python_writer.gguf");
    expect_identical_copy(kAlign64, "python_align64.gguf");
}

}  // namespace
}  // namespace sift::gguf
