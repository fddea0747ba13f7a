// GGUF reader. Every count and length is checked against the bytes that remain before anything is
// allocated, so no input can make it assert, crash or allocate far beyond the file's size.
#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

#include "gguf/gguf.h"

namespace sift::gguf {

static_assert(std::endian::native == std::endian::little,
              "the reader decodes little-endian GGUF fields with memcpy");

namespace {

constexpr int kMaxArrayDepth = 8;
// Smallest encodings, used to bound counts by the bytes that remain.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;              // key length, value type, one-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;  // name length, n_dims, type, offset
// Vectors reserve at most this many items up front; beyond it they grow only with bytes actually
// read, so a legal-but-large count in a multi-GB file cannot reserve memory it does not back.
constexpr uint64_t kMaxReserve = 1 << 16;

bool value_type_known(uint32_t id) {
    return id <= static_cast<uint32_t>(ValueType::FLOAT64);
}

uint64_t min_value_bytes(ValueType type) {
    switch (type) {
        case ValueType::UINT8:
        case ValueType::INT8:
        case ValueType::BOOL:
            return 1;
        case ValueType::UINT16:
        case ValueType::INT16:
            return 2;
        case ValueType::UINT32:
        case ValueType::INT32:
        case ValueType::FLOAT32:
            return 4;
        case ValueType::UINT64:
        case ValueType::INT64:
        case ValueType::FLOAT64:
        case ValueType::STRING:
            return 8;  // a string is at least its u64 length
        case ValueType::ARRAY:
            return 12;  // u32 element type + u64 count
    }
    return 1;
}

// One level of the field path named in errors, e.g. "kv[3] 'tokenizer.ggml.tokens'" then
// "array item 1200". A chain of stack frames, so the happy path formats no strings.
struct Field {
    enum class Kind { kv, tensor, item } kind;
    uint64_t index = 0;
    std::string_view name;
    const Field* parent = nullptr;
};

std::string describe(const Field* field) {
    std::vector<const Field*> chain;
    for (; field != nullptr; field = field->parent) chain.push_back(field);
    std::string out;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
        const Field& f = **it;
        if (!out.empty()) out += ' ';
        switch (f.kind) {
            case Field::Kind::kv:
                out += fmt::format("kv[{}]", f.index);
                break;
            case Field::Kind::tensor:
                out += fmt::format("tensor[{}]", f.index);
                break;
            case Field::Kind::item:
                out += fmt::format("array item {}", f.index);
                break;
        }
        if (f.kind != Field::Kind::item && !f.name.empty()) out += fmt::format(" '{}'", f.name);
    }
    return out;
}

uint64_t align_up(uint64_t x, uint64_t alignment) {
    return (x + alignment - 1) / alignment * alignment;
}

// Constant names so reading a value formats nothing unless it fails.
std::string_view value_leaf(ValueType type) {
    switch (type) {
        case ValueType::UINT8:
            return "uint8 value";
        case ValueType::INT8:
            return "int8 value";
        case ValueType::UINT16:
            return "uint16 value";
        case ValueType::INT16:
            return "int16 value";
        case ValueType::UINT32:
            return "uint32 value";
        case ValueType::INT32:
            return "int32 value";
        case ValueType::FLOAT32:
            return "float32 value";
        case ValueType::UINT64:
            return "uint64 value";
        case ValueType::INT64:
            return "int64 value";
        case ValueType::FLOAT64:
            return "float64 value";
        default:
            return "value";
    }
}

constexpr std::array<std::string_view, kMaxDims> kDimLeaf = {"ne[0]", "ne[1]", "ne[2]", "ne[3]"};

std::string type_description(const Value& value) {
    if (const Array* array = value.as_array()) {
        return fmt::format("array of {}", value_type_name(array->element_type));
    }
    return std::string(value_type_name(value.type));
}

}  // namespace

class Parser {
  public:
    explicit Parser(File& file) : file_(file), bytes_(file.bytes_), name_(file.name_) {}

    Status run() {
        if (!parse()) return error_;
        return {};
    }

  private:
    // Per-entry byte offsets, kept so later checks (duplicates, alignment, ranges) can point at
    // the field that caused them.
    struct KvSpot {
        uint64_t key_at, value_at;
    };
    struct TensorSpot {
        uint64_t info_at, offset_at;
    };

    uint64_t remaining() const { return bytes_.size() - pos_; }

    bool fail(const Field* field, std::string_view leaf, uint64_t at, std::string problem) {
        std::string path = describe(field);
        if (!path.empty() && !leaf.empty()) path += ' ';
        path += leaf;
        error_ = make_error("{}: {} at byte {} {}", name_, path, at, problem);
        return false;
    }

    template <typename T>
    bool read(T& out, const Field* field, std::string_view leaf) {
        if (remaining() < sizeof(T)) {
            return fail(field, leaf, pos_,
                        fmt::format("needs {} bytes but only {} remain (truncated file)", sizeof(T),
                                    remaining()));
        }
        std::memcpy(&out, bytes_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return true;
    }

    // `what` names the string ("key string", "string"); errors say "<what> length ...".
    bool read_string(std::string& out, const Field* field, std::string_view what) {
        uint64_t at = pos_;
        uint64_t length = 0;
        if (remaining() < sizeof(length)) {
            return fail(
                field, fmt::format("{} length", what), at,
                fmt::format("needs 8 bytes but only {} remain (truncated file)", remaining()));
        }
        std::memcpy(&length, bytes_.data() + pos_, sizeof(length));
        pos_ += sizeof(length);
        if (length > remaining()) {
            return fail(field, fmt::format("{} length {}", what, length), at,
                        fmt::format("exceeds the {} bytes remaining", remaining()));
        }
        out.assign(reinterpret_cast<const char*>(bytes_.data() + pos_), length);
        pos_ += length;
        return true;
    }

    bool read_value(Value& out, ValueType type, const Field* field, int depth) {
        out.type = type;
        switch (type) {
            case ValueType::UINT8:
                return read_as<uint8_t, uint64_t>(out, field);
            case ValueType::INT8:
                return read_as<int8_t, int64_t>(out, field);
            case ValueType::UINT16:
                return read_as<uint16_t, uint64_t>(out, field);
            case ValueType::INT16:
                return read_as<int16_t, int64_t>(out, field);
            case ValueType::UINT32:
                return read_as<uint32_t, uint64_t>(out, field);
            case ValueType::INT32:
                return read_as<int32_t, int64_t>(out, field);
            case ValueType::UINT64:
                return read_as<uint64_t, uint64_t>(out, field);
            case ValueType::INT64:
                return read_as<int64_t, int64_t>(out, field);
            case ValueType::FLOAT32:
                return read_as<float, double>(out, field);
            case ValueType::FLOAT64:
                return read_as<double, double>(out, field);
            case ValueType::BOOL: {
                uint8_t v = 0;
                if (!read(v, field, "bool value")) return false;
                // Any non-zero byte is true, as in ggml; stored normalised.
                out.data = uint64_t{v != 0 ? 1u : 0u};
                return true;
            }
            case ValueType::STRING: {
                std::string s;
                if (!read_string(s, field, "string")) return false;
                out.data = std::move(s);
                return true;
            }
            case ValueType::ARRAY:
                return read_array(out, field, depth + 1);
        }
        return fail(field, "value type", pos_, "is not a known GGUF value type");
    }

    template <typename Disk, typename Stored>
    bool read_as(Value& out, const Field* field) {
        Disk v{};
        if (!read(v, field, value_leaf(out.type))) return false;
        out.data = static_cast<Stored>(v);
        return true;
    }

    bool read_array(Value& out, const Field* field, int depth) {
        if (depth > kMaxArrayDepth) {
            return fail(field, "array", pos_,
                        fmt::format("nests arrays {} deep, more than the limit of {}", depth,
                                    kMaxArrayDepth));
        }
        uint64_t type_at = pos_;
        uint32_t element_id = 0;
        if (!read(element_id, field, "array element type")) return false;
        if (!value_type_known(element_id)) {
            return fail(field, fmt::format("array element type {}", element_id), type_at,
                        "is not a known GGUF value type");
        }
        auto element_type = static_cast<ValueType>(element_id);
        uint64_t count_at = pos_;
        uint64_t count = 0;
        if (!read(count, field, "array count")) return false;
        uint64_t min_bytes = min_value_bytes(element_type);
        if (count > remaining() / min_bytes) {
            return fail(field, fmt::format("array count {}", count), count_at,
                        fmt::format("exceeds the {} bytes remaining ({} items need at least {} "
                                    "bytes each)",
                                    remaining(), value_type_name(element_type), min_bytes));
        }
        Array array;
        array.element_type = element_type;
        array.items.reserve(std::min(count, kMaxReserve));
        for (uint64_t i = 0; i < count; ++i) {
            Field item{Field::Kind::item, i, {}, field};
            Value& value = array.items.emplace_back();
            if (!read_value(value, element_type, &item, depth)) return false;
        }
        out.data = std::move(array);
        return true;
    }

    bool parse() {
        uint32_t magic = 0;
        if (!read(magic, nullptr, "magic")) return false;
        if (magic != kMagic) {
            return fail(nullptr, fmt::format("magic 0x{:08x}", magic), 0,
                        "is not \"GGUF\" (not a GGUF file)");
        }
        uint32_t version = 0;
        if (!read(version, nullptr, "version")) return false;
        if (version != 2 && version != 3) {
            uint32_t swapped = __builtin_bswap32(version);
            if (swapped >= 1 && swapped <= 3) {
                return fail(nullptr, fmt::format("version 0x{:08x}", version), 4,
                            fmt::format("is version {} byte-swapped: big-endian GGUF not supported",
                                        swapped));
            }
            return fail(nullptr, fmt::format("version {}", version), 4,
                        version == 1 ? "is not supported (GGUF v1 used 32-bit counts; re-convert)"
                                     : "is not supported (expected 2 or 3)");
        }
        file_.version_ = version;

        uint64_t n_tensors = 0, n_kv = 0;
        uint64_t n_tensors_at = pos_;
        if (!read(n_tensors, nullptr, "n_tensors")) return false;
        uint64_t n_kv_at = pos_;
        if (!read(n_kv, nullptr, "n_kv")) return false;
        if (n_kv > remaining() / kMinKvBytes) {
            return fail(nullptr, fmt::format("n_kv {}", n_kv), n_kv_at,
                        fmt::format("exceeds the {} bytes remaining (each key-value pair needs "
                                    "at least {} bytes)",
                                    remaining(), kMinKvBytes));
        }
        if (n_tensors > remaining() / kMinTensorInfoBytes) {
            return fail(nullptr, fmt::format("n_tensors {}", n_tensors), n_tensors_at,
                        fmt::format("exceeds the {} bytes remaining (each tensor info needs at "
                                    "least {} bytes)",
                                    remaining(), kMinTensorInfoBytes));
        }
        if (!parse_metadata(n_kv)) return false;
        if (!parse_alignment()) return false;
        if (!parse_tensor_infos(n_tensors)) return false;
        return check_tensor_data();
    }

    bool parse_metadata(uint64_t n_kv) {
        file_.kv_.reserve(std::min(n_kv, kMaxReserve));
        kv_spots_.reserve(std::min(n_kv, kMaxReserve));
        for (uint64_t i = 0; i < n_kv; ++i) {
            KvSpot spot{pos_, 0};
            Field unnamed{Field::Kind::kv, i, {}, nullptr};
            std::string key;
            if (!read_string(key, &unnamed, "key string")) return false;
            Field field{Field::Kind::kv, i, key, nullptr};
            uint64_t type_at = pos_;
            uint32_t type_id = 0;
            if (!read(type_id, &field, "value type")) return false;
            if (!value_type_known(type_id)) {
                return fail(&field, fmt::format("value type {}", type_id), type_at,
                            "is not a known GGUF value type");
            }
            spot.value_at = pos_;
            Value value;
            if (!read_value(value, static_cast<ValueType>(type_id), &field, 0)) return false;
            file_.kv_.push_back(KeyValue{std::move(key), std::move(value)});
            kv_spots_.push_back(spot);
        }
        // Views into kv_ are stable from here on: the vector is complete.
        for (size_t i = 0; i < file_.kv_.size(); ++i) {
            auto [it, inserted] = file_.kv_index_.emplace(file_.kv_[i].key, i);
            if (!inserted) {
                Field field{Field::Kind::kv, i, file_.kv_[i].key, nullptr};
                return fail(&field, "key", kv_spots_[i].key_at,
                            fmt::format("duplicates kv[{}]", it->second));
            }
        }
        return true;
    }

    bool parse_alignment() {
        auto it = file_.kv_index_.find("general.alignment");
        if (it == file_.kv_index_.end()) return true;
        const Value& value = file_.kv_[it->second].value;
        Field field{Field::Kind::kv, it->second, "general.alignment", nullptr};
        uint64_t at = kv_spots_[it->second].value_at;
        if (value.type != ValueType::UINT32) {
            return fail(&field, "value", at,
                        fmt::format("has type {}, expected uint32", type_description(value)));
        }
        uint64_t alignment = std::get<uint64_t>(value.data);
        if (alignment == 0 || !std::has_single_bit(alignment)) {
            return fail(&field, fmt::format("value {}", alignment), at,
                        "is not a non-zero power of two");
        }
        file_.alignment_ = static_cast<uint32_t>(alignment);
        return true;
    }

    bool parse_tensor_info(TensorInfo& info, TensorSpot& spot, uint64_t index) {
        Field unnamed{Field::Kind::tensor, index, {}, nullptr};
        if (!read_string(info.name, &unnamed, "name string")) return false;
        Field field{Field::Kind::tensor, index, info.name, nullptr};
        uint64_t n_dims_at = pos_;
        uint32_t n_dims = 0;
        if (!read(n_dims, &field, "n_dims")) return false;
        if (n_dims > kMaxDims) {
            return fail(&field, fmt::format("n_dims {}", n_dims), n_dims_at,
                        fmt::format("exceeds the maximum of {}", kMaxDims));
        }
        info.n_dims = static_cast<int>(n_dims);
        int64_t nonzero_product = 1;  // zero dims would hide an overflow in n_elements()
        for (uint32_t d = 0; d < n_dims; ++d) {
            uint64_t dim_at = pos_;
            std::string_view leaf = kDimLeaf[d];
            uint64_t dim = 0;
            if (!read(dim, &field, leaf)) return false;
            if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
                return fail(&field, fmt::format("{} {}", leaf, static_cast<int64_t>(dim)), dim_at,
                            "is negative");
            }
            info.ne[d] = static_cast<int64_t>(dim);
            if (dim != 0 && __builtin_mul_overflow(nonzero_product, info.ne[d], &nonzero_product)) {
                return fail(&field, fmt::format("{} {}", leaf, dim), dim_at,
                            "makes the element count overflow int64");
            }
        }
        uint64_t type_at = pos_;
        uint32_t type_id = 0;
        if (!read(type_id, &field, "type")) return false;
        const DTypeTraits* traits = dtype_find(type_id);
        if (traits == nullptr) {
            return fail(&field, fmt::format("type {}", type_id), type_at,
                        "is not a known ggml type");
        }
        info.type = traits->type;
        if (info.ne[0] % traits->block_size != 0) {
            return fail(&field, fmt::format("ne[0] {}", info.ne[0]), n_dims_at + 4,
                        fmt::format("is not a multiple of the {} block size {}", traits->name,
                                    traits->block_size));
        }
        uint64_t rows = static_cast<uint64_t>(info.ne[1]) * static_cast<uint64_t>(info.ne[2]) *
                        static_cast<uint64_t>(info.ne[3]);  // fits: bounded by the check above
        uint64_t row_bytes = 0;
        if (__builtin_mul_overflow(static_cast<uint64_t>(info.ne[0] / traits->block_size),
                                   static_cast<uint64_t>(traits->block_bytes), &row_bytes) ||
            __builtin_mul_overflow(row_bytes, rows, &info.byte_size)) {
            return fail(&field, "byte size", n_dims_at, "overflows 64 bits");
        }
        spot.offset_at = pos_;
        if (!read(info.offset, &field, "offset")) return false;
        if (info.offset % file_.alignment_ != 0) {
            return fail(&field, fmt::format("offset {}", info.offset), spot.offset_at,
                        fmt::format("is not a multiple of the alignment {}", file_.alignment_));
        }
        return true;
    }

    bool parse_tensor_infos(uint64_t n_tensors) {
        file_.tensors_.reserve(std::min(n_tensors, kMaxReserve));
        tensor_spots_.reserve(std::min(n_tensors, kMaxReserve));
        for (uint64_t i = 0; i < n_tensors; ++i) {
            TensorSpot spot{pos_, 0};
            TensorInfo info;
            if (!parse_tensor_info(info, spot, i)) return false;
            file_.tensors_.push_back(std::move(info));
            tensor_spots_.push_back(spot);
        }
        for (size_t i = 0; i < file_.tensors_.size(); ++i) {
            auto [it, inserted] = file_.tensor_index_.emplace(file_.tensors_[i].name, i);
            if (!inserted) {
                Field field{Field::Kind::tensor, i, file_.tensors_[i].name, nullptr};
                return fail(&field, "name", tensor_spots_[i].info_at,
                            fmt::format("duplicates tensor[{}]", it->second));
            }
        }
        // pos_ <= size, so adding at most 2^31 cannot overflow.
        file_.data_offset_ = align_up(pos_, file_.alignment_);
        return true;
    }

    bool check_tensor_data() {
        uint64_t size = bytes_.size();
        uint64_t data_bytes = file_.data_offset_ <= size ? size - file_.data_offset_ : 0;
        std::vector<size_t> order;
        order.reserve(file_.tensors_.size());
        for (size_t i = 0; i < file_.tensors_.size(); ++i) {
            TensorInfo& info = file_.tensors_[i];
            bool fits = file_.data_offset_ <= size && info.offset <= data_bytes &&
                        info.byte_size <= data_bytes - info.offset;
            if (!fits) {
                Field field{Field::Kind::tensor, i, info.name, nullptr};
                return fail(&field, fmt::format("offset {}", info.offset),
                            tensor_spots_[i].offset_at,
                            fmt::format("with {} bytes of data runs past the end of the file "
                                        "(data section of {} bytes at byte {})",
                                        info.byte_size, data_bytes, file_.data_offset_));
            }
            info.data = bytes_.data() + file_.data_offset_ + info.offset;
            if (info.byte_size > 0) order.push_back(i);
        }
        std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
            return file_.tensors_[a].offset < file_.tensors_[b].offset;
        });
        for (size_t k = 1; k < order.size(); ++k) {
            const TensorInfo& prev = file_.tensors_[order[k - 1]];
            const TensorInfo& cur = file_.tensors_[order[k]];
            if (prev.offset + prev.byte_size > cur.offset) {  // both bounded by the file size
                Field field{Field::Kind::tensor, order[k], cur.name, nullptr};
                return fail(
                    &field, fmt::format("offset {}", cur.offset), tensor_spots_[order[k]].offset_at,
                    fmt::format("overlaps the data of tensor[{}] '{}' (offset {}, {} bytes)",
                                order[k - 1], prev.name, prev.offset, prev.byte_size));
            }
        }
        return true;
    }

    File& file_;
    std::span<const uint8_t> bytes_;
    const std::string& name_;
    uint64_t pos_ = 0;
    Error error_;
    std::vector<KvSpot> kv_spots_;
    std::vector<TensorSpot> tensor_spots_;
};

Result<std::unique_ptr<File>> File::parse(std::span<const uint8_t> bytes, const std::string& name) {
    std::unique_ptr<File> file(new File());
    file->bytes_ = bytes;
    file->name_ = name;
    Parser parser(*file);
    Status status = parser.run();
    if (!status) return status.error();
    return file;
}

Result<std::unique_ptr<File>> File::open(const std::string& path) {
    auto mapping = MappedFile::open(path);
    if (!mapping) return mapping.error();
    auto file = parse(mapping.value()->bytes(), path);
    if (!file) return file.error();
    file.value()->mapping_ = std::move(mapping.value());
    return file;
}

const Value* File::find(std::string_view key) const {
    auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kv_[it->second].value;
}

const TensorInfo* File::tensor(std::string_view name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

Result<const Value*> find_typed(const File& file, const std::string& name, std::string_view key) {
    const Value* value = file.find(key);
    if (value == nullptr) return make_error("{}: key '{}' not found", name, key);
    return value;
}

Error wrong_type(const std::string& name, std::string_view key, const Value& value,
                 std::string_view expected) {
    return make_error("{}: key '{}' has type {}, expected {}", name, key, type_description(value),
                      expected);
}

}  // namespace

Result<std::string> File::get_string(std::string_view key) const {
    auto value = find_typed(*this, name_, key);
    if (!value) return value.error();
    if (const std::string* s = (*value)->as_string()) return *s;
    return wrong_type(name_, key, **value, "string");
}

Result<uint64_t> File::get_u64(std::string_view key) const {
    auto value = find_typed(*this, name_, key);
    if (!value) return value.error();
    const Value& v = **value;
    if (!v.is_integer()) return wrong_type(name_, key, v, "an integer");
    if (const int64_t* i = std::get_if<int64_t>(&v.data)) {
        if (*i < 0) {
            return make_error("{}: key '{}' is {} {}, which does not fit uint64", name_, key,
                              value_type_name(v.type), *i);
        }
        return static_cast<uint64_t>(*i);
    }
    return std::get<uint64_t>(v.data);
}

Result<int64_t> File::get_i64(std::string_view key) const {
    auto value = find_typed(*this, name_, key);
    if (!value) return value.error();
    const Value& v = **value;
    if (!v.is_integer()) return wrong_type(name_, key, v, "an integer");
    if (const uint64_t* u = std::get_if<uint64_t>(&v.data)) {
        if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            return make_error("{}: key '{}' is {} {}, which does not fit int64", name_, key,
                              value_type_name(v.type), *u);
        }
        return static_cast<int64_t>(*u);
    }
    return std::get<int64_t>(v.data);
}

Result<double> File::get_f64(std::string_view key) const {
    auto value = find_typed(*this, name_, key);
    if (!value) return value.error();
    const Value& v = **value;
    if (v.is_float()) return std::get<double>(v.data);
    // Some converters store float hyperparameters as integers; they convert exactly enough.
    if (const uint64_t* u = std::get_if<uint64_t>(&v.data); u && v.is_integer()) {
        return static_cast<double>(*u);
    }
    if (const int64_t* i = std::get_if<int64_t>(&v.data); i && v.is_integer()) {
        return static_cast<double>(*i);
    }
    return wrong_type(name_, key, v, "a float");
}

Result<bool> File::get_bool(std::string_view key) const {
    auto value = find_typed(*this, name_, key);
    if (!value) return value.error();
    const Value& v = **value;
    if (v.type != ValueType::BOOL) return wrong_type(name_, key, v, "bool");
    return std::get<uint64_t>(v.data) != 0;
}

Result<const Array*> File::get_array(std::string_view key) const {
    auto value = find_typed(*this, name_, key);
    if (!value) return value.error();
    const Value& v = **value;
    if (const Array* array = v.as_array()) return array;
    return wrong_type(name_, key, v, "array");
}

}  // namespace sift::gguf
