#include "gguf/value.h"

namespace sift::gguf {

std::string_view value_type_name(ValueType type) {
    switch (type) {
        case ValueType::UINT8:
            return "uint8";
        case ValueType::INT8:
            return "int8";
        case ValueType::UINT16:
            return "uint16";
        case ValueType::INT16:
            return "int16";
        case ValueType::UINT32:
            return "uint32";
        case ValueType::INT32:
            return "int32";
        case ValueType::FLOAT32:
            return "float32";
        case ValueType::BOOL:
            return "bool";
        case ValueType::STRING:
            return "string";
        case ValueType::ARRAY:
            return "array";
        case ValueType::UINT64:
            return "uint64";
        case ValueType::INT64:
            return "int64";
        case ValueType::FLOAT64:
            return "float64";
    }
    // Ids outside the enum can reach here from file input; name them instead of asserting.
    return "unknown";
}

Value Value::string_array(const std::vector<std::string>& items) {
    std::vector<Value> values;
    values.reserve(items.size());
    for (const std::string& item : items) values.push_back(Value::string(item));
    return array(ValueType::STRING, std::move(values));
}

bool Value::is_integer() const {
    switch (type) {
        case ValueType::UINT8:
        case ValueType::INT8:
        case ValueType::UINT16:
        case ValueType::INT16:
        case ValueType::UINT32:
        case ValueType::INT32:
        case ValueType::UINT64:
        case ValueType::INT64:
            return true;
        default:
            return false;
    }
}

bool Array::operator==(const Array& other) const {
    return element_type == other.element_type && items == other.items;
}

bool Value::operator==(const Value& other) const {
    return type == other.type && data == other.data;
}

}  // namespace sift::gguf
