// GGUF metadata values: every GGUF value type, including nested arrays.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sift::gguf {

// On-disk value type ids (GGUF v2/v3).
enum class ValueType : uint32_t {
    UINT8 = 0,
    INT8 = 1,
    UINT16 = 2,
    INT16 = 3,
    UINT32 = 4,
    INT32 = 5,
    FLOAT32 = 6,
    BOOL = 7,
    STRING = 8,
    ARRAY = 9,
    UINT64 = 10,
    INT64 = 11,
    FLOAT64 = 12,
};

std::string_view value_type_name(ValueType type);

struct Value;

struct Array {
    ValueType element_type = ValueType::UINT8;
    std::vector<Value> items;  // every item has element_type

    bool operator==(const Array& other) const;  // deep: element type and every item
};

struct Value {
    ValueType type = ValueType::UINT8;
    // u64 holds UINT8/16/32/64 and BOOL; i64 holds INT8/16/32/64; f64 holds FLOAT32/64.
    std::variant<uint64_t, int64_t, double, std::string, Array> data;

    static Value u8(uint8_t v) { return {ValueType::UINT8, uint64_t{v}}; }
    static Value i8(int8_t v) { return {ValueType::INT8, int64_t{v}}; }
    static Value u16(uint16_t v) { return {ValueType::UINT16, uint64_t{v}}; }
    static Value i16(int16_t v) { return {ValueType::INT16, int64_t{v}}; }
    static Value u32(uint32_t v) { return {ValueType::UINT32, uint64_t{v}}; }
    static Value i32(int32_t v) { return {ValueType::INT32, int64_t{v}}; }
    static Value u64(uint64_t v) { return {ValueType::UINT64, v}; }
    static Value i64(int64_t v) { return {ValueType::INT64, v}; }
    static Value f32(float v) { return {ValueType::FLOAT32, double{v}}; }
    static Value f64(double v) { return {ValueType::FLOAT64, v}; }
    static Value boolean(bool v) { return {ValueType::BOOL, uint64_t{v ? 1u : 0u}}; }
    static Value string(std::string v) { return {ValueType::STRING, std::move(v)}; }
    static Value array(ValueType element_type, std::vector<Value> items) {
        return {ValueType::ARRAY, Array{element_type, std::move(items)}};
    }
    static Value string_array(const std::vector<std::string>& items);

    bool is_integer() const;  // any UINT*/INT* type (not BOOL)
    bool is_float() const { return type == ValueType::FLOAT32 || type == ValueType::FLOAT64; }
    const std::string* as_string() const { return std::get_if<std::string>(&data); }
    const Array* as_array() const { return std::get_if<Array>(&data); }

    bool operator==(const Value& other) const;  // same type and same data, arrays deeply
};

}  // namespace sift::gguf
