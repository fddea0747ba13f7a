// Streaming GGUF v3 writer. The header (metadata and tensor infos) is serialised into memory;
// tensor data streams through a large stdio buffer so tens of GB never sit in memory.
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>

#include "core/check.h"
#include "gguf/gguf.h"

namespace sift::gguf {

static_assert(std::endian::native == std::endian::little,
              "the writer emits little-endian GGUF fields with memcpy");

namespace {

constexpr uint32_t kVersion = 3;
constexpr int kMaxArrayDepth = 8;           // what the reader accepts
constexpr size_t kBufferBytes = 16u << 20;  // large writes bypass it; small ones coalesce

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
    size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &v, sizeof(T));
}

void put_string(std::vector<uint8_t>& out, std::string_view s) {
    put<uint64_t>(out, s.size());
    out.insert(out.end(), s.begin(), s.end());
}

template <typename T>
bool fits(uint64_t v) {
    return v <= static_cast<uint64_t>(std::numeric_limits<T>::max());
}

template <typename T>
bool fits_signed(int64_t v) {
    return v >= std::numeric_limits<T>::min() && v <= std::numeric_limits<T>::max();
}

// Checks that a Value's variant matches its type and the number fits the on-disk width, so what
// is written is exactly what the reader gives back.
Status check_value(const Value& value, std::string_view key, int depth) {
    auto bad = [&](std::string_view why) {
        return make_error("gguf writer: key '{}': {} value {}", key, value_type_name(value.type),
                          why);
    };
    const uint64_t* u = std::get_if<uint64_t>(&value.data);
    const int64_t* i = std::get_if<int64_t>(&value.data);
    switch (value.type) {
        case ValueType::UINT8:
            return u && fits<uint8_t>(*u) ? Status{} : bad("out of range");
        case ValueType::UINT16:
            return u && fits<uint16_t>(*u) ? Status{} : bad("out of range");
        case ValueType::UINT32:
            return u && fits<uint32_t>(*u) ? Status{} : bad("out of range");
        case ValueType::UINT64:
            return u ? Status{} : bad("does not hold an unsigned integer");
        case ValueType::BOOL:
            return u && *u <= 1 ? Status{} : bad("is not 0 or 1");
        case ValueType::INT8:
            return i && fits_signed<int8_t>(*i) ? Status{} : bad("out of range");
        case ValueType::INT16:
            return i && fits_signed<int16_t>(*i) ? Status{} : bad("out of range");
        case ValueType::INT32:
            return i && fits_signed<int32_t>(*i) ? Status{} : bad("out of range");
        case ValueType::INT64:
            return i ? Status{} : bad("does not hold a signed integer");
        case ValueType::FLOAT32:
        case ValueType::FLOAT64:
            return std::holds_alternative<double>(value.data) ? Status{} : bad("is not a float");
        case ValueType::STRING:
            return value.as_string() ? Status{} : bad("is not a string");
        case ValueType::ARRAY: {
            const Array* array = value.as_array();
            if (array == nullptr) return bad("is not an array");
            if (depth + 1 > kMaxArrayDepth) {
                return make_error("gguf writer: key '{}': arrays nest more than {} deep", key,
                                  kMaxArrayDepth);
            }
            if (static_cast<uint32_t>(array->element_type) > 12) {
                return make_error("gguf writer: key '{}': unknown array element type {}", key,
                                  static_cast<uint32_t>(array->element_type));
            }
            for (size_t n = 0; n < array->items.size(); ++n) {
                const Value& item = array->items[n];
                if (item.type != array->element_type) {
                    return make_error("gguf writer: key '{}': array item {} is {}, not {}", key, n,
                                      value_type_name(item.type),
                                      value_type_name(array->element_type));
                }
                SIFT_TRY(check_value(item, key, depth + 1));
            }
            return {};
        }
    }
    return make_error("gguf writer: key '{}': unknown value type {}", key,
                      static_cast<uint32_t>(value.type));
}

// Value payload without its type id (arrays carry element type and count). Assumes check_value.
void put_value(std::vector<uint8_t>& out, const Value& value) {
    switch (value.type) {
        case ValueType::UINT8:
        case ValueType::BOOL:
            put<uint8_t>(out, std::get<uint64_t>(value.data));
            break;
        case ValueType::UINT16:
            put<uint16_t>(out, std::get<uint64_t>(value.data));
            break;
        case ValueType::UINT32:
            put<uint32_t>(out, std::get<uint64_t>(value.data));
            break;
        case ValueType::UINT64:
            put<uint64_t>(out, std::get<uint64_t>(value.data));
            break;
        case ValueType::INT8:
            put<int8_t>(out, std::get<int64_t>(value.data));
            break;
        case ValueType::INT16:
            put<int16_t>(out, std::get<int64_t>(value.data));
            break;
        case ValueType::INT32:
            put<int32_t>(out, std::get<int64_t>(value.data));
            break;
        case ValueType::INT64:
            put<int64_t>(out, std::get<int64_t>(value.data));
            break;
        case ValueType::FLOAT32:
            put<float>(out, std::get<double>(value.data));
            break;
        case ValueType::FLOAT64:
            put<double>(out, std::get<double>(value.data));
            break;
        case ValueType::STRING:
            put_string(out, *value.as_string());
            break;
        case ValueType::ARRAY: {
            const Array& array = *value.as_array();
            put<uint32_t>(out, static_cast<uint32_t>(array.element_type));
            put<uint64_t>(out, array.items.size());
            for (const Value& item : array.items) put_value(out, item);
            break;
        }
    }
}

uint64_t align_up(uint64_t x, uint64_t alignment) {
    return (x + alignment - 1) / alignment * alignment;
}

}  // namespace

Writer::~Writer() {
    if (out_ != nullptr) std::fclose(out_);
}

void Writer::set(std::string key, Value value) {
    for (KeyValue& kv : kv_) {
        if (kv.key == key) {
            kv.value = std::move(value);
            return;
        }
    }
    kv_.push_back(KeyValue{std::move(key), std::move(value)});
}

Status Writer::add_tensor(std::string name, std::span<const int64_t> ne, DType type) {
    if (out_ != nullptr) return make_error("gguf writer: add_tensor('{}') after open", name);
    if (ne.size() > static_cast<size_t>(kMaxDims)) {
        return make_error("gguf writer: tensor '{}' has {} dims, more than {}", name, ne.size(),
                          kMaxDims);
    }
    const DTypeTraits* traits = dtype_find(static_cast<uint32_t>(type));
    if (traits == nullptr) {
        return make_error("gguf writer: tensor '{}' has unknown type {}", name,
                          static_cast<uint32_t>(type));
    }
    for (const TensorInfo& t : tensors_) {
        if (t.name == name) return make_error("gguf writer: duplicate tensor name '{}'", name);
    }
    TensorInfo info;
    info.name = std::move(name);
    info.n_dims = static_cast<int>(ne.size());
    info.type = type;
    int64_t nonzero_product = 1;
    for (size_t d = 0; d < ne.size(); ++d) {
        if (ne[d] < 0) {
            return make_error("gguf writer: tensor '{}' ne[{}] = {} is negative", info.name, d,
                              ne[d]);
        }
        if (ne[d] != 0 && __builtin_mul_overflow(nonzero_product, ne[d], &nonzero_product)) {
            return make_error("gguf writer: tensor '{}' element count overflows int64", info.name);
        }
        info.ne[d] = ne[d];
    }
    if (info.ne[0] % traits->block_size != 0) {
        return make_error(
            "gguf writer: tensor '{}' ne[0] = {} is not a multiple of the {} block "
            "size {}",
            info.name, info.ne[0], traits->name, traits->block_size);
    }
    uint64_t rows = static_cast<uint64_t>(info.ne[1] * info.ne[2] * info.ne[3]);
    uint64_t row_bytes = static_cast<uint64_t>(info.ne[0] / traits->block_size) *
                         static_cast<uint64_t>(traits->block_bytes);
    if (__builtin_mul_overflow(row_bytes, rows, &info.byte_size)) {
        return make_error("gguf writer: tensor '{}' byte size overflows", info.name);
    }
    tensors_.push_back(std::move(info));
    return {};
}

Status Writer::open(const std::string& path) {
    if (out_ != nullptr) return make_error("gguf writer: {}: already open", path);
    alignment_ = kDefaultAlignment;
    for (const KeyValue& kv : kv_) {
        SIFT_TRY(check_value(kv.value, kv.key, 0));
        if (kv.key == "general.alignment") {
            const uint64_t* a = std::get_if<uint64_t>(&kv.value.data);
            if (kv.value.type != ValueType::UINT32 || *a == 0 || !std::has_single_bit(*a)) {
                return make_error("gguf writer: general.alignment must be a uint32 power of two");
            }
            alignment_ = static_cast<uint32_t>(*a);
        }
    }
    uint64_t offset = 0;
    for (TensorInfo& t : tensors_) {
        t.offset = offset;
        if (t.byte_size > std::numeric_limits<uint64_t>::max() - alignment_ ||
            __builtin_add_overflow(offset, align_up(t.byte_size, alignment_), &offset)) {
            return make_error("gguf writer: {}: tensor data exceeds 2^64 bytes", path);
        }
    }
    data_size_ = offset;

    std::vector<uint8_t> header;
    put<uint32_t>(header, kMagic);
    put<uint32_t>(header, kVersion);
    put<uint64_t>(header, tensors_.size());
    put<uint64_t>(header, kv_.size());
    for (const KeyValue& kv : kv_) {
        put_string(header, kv.key);
        put<uint32_t>(header, static_cast<uint32_t>(kv.value.type));
        put_value(header, kv.value);
    }
    for (const TensorInfo& t : tensors_) {
        put_string(header, t.name);
        put<uint32_t>(header, static_cast<uint32_t>(t.n_dims));
        for (int d = 0; d < t.n_dims; ++d) put<uint64_t>(header, t.ne[d]);
        put<uint32_t>(header, static_cast<uint32_t>(t.type));
        put<uint64_t>(header, t.offset);
    }
    data_offset_ = align_up(header.size(), alignment_);
    header.resize(data_offset_, 0);

    out_ = std::fopen(path.c_str(), "wb");
    if (out_ == nullptr) {
        return make_error("gguf writer: {}: cannot create: {}", path, std::strerror(errno));
    }
    path_ = path;
    buffer_ = std::make_unique<char[]>(kBufferBytes);
    std::setvbuf(out_, buffer_.get(), _IOFBF, kBufferBytes);
    written_ = 0;
    current_ = 0;
    current_written_ = 0;
    SIFT_TRY(write_raw(header.data(), header.size()));
    skip_empty_tensors();
    return {};
}

Status Writer::write_raw(const void* data, size_t size) {
    if (size == 0) return {};
    if (std::fwrite(data, 1, size, out_) != size) {
        return make_error("gguf writer: {}: write failed at byte {}: {}", path_, written_,
                          std::strerror(errno));
    }
    written_ += size;
    return {};
}

Status Writer::write_padding(uint64_t size) {
    static const uint8_t zeros[4096] = {};
    while (size > 0) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(size, sizeof(zeros)));
        SIFT_TRY(write_raw(zeros, n));
        size -= n;
    }
    return {};
}

void Writer::skip_empty_tensors() {
    while (current_ < tensors_.size() && tensors_[current_].byte_size == 0) ++current_;
}

Status Writer::write(std::span<const uint8_t> bytes) {
    if (out_ == nullptr) return make_error("gguf writer: write before open");
    while (!bytes.empty()) {
        if (current_ >= tensors_.size()) {
            return make_error("gguf writer: {}: {} bytes written beyond the declared tensors",
                              path_, bytes.size());
        }
        const TensorInfo& t = tensors_[current_];
        uint64_t n = std::min<uint64_t>(bytes.size(), t.byte_size - current_written_);
        SIFT_TRY(write_raw(bytes.data(), static_cast<size_t>(n)));
        bytes = bytes.subspan(static_cast<size_t>(n));
        current_written_ += n;
        if (current_written_ == t.byte_size) {
            SIFT_TRY(write_padding(align_up(t.byte_size, alignment_) - t.byte_size));
            ++current_;
            current_written_ = 0;
            skip_empty_tensors();
        }
    }
    return {};
}

Status Writer::finish() {
    if (out_ == nullptr) return make_error("gguf writer: finish before open");
    if (current_ < tensors_.size()) {
        const TensorInfo& t = tensors_[current_];
        return make_error(
            "gguf writer: {}: tensor '{}' incomplete: {} of {} bytes written ({} "
            "tensors not complete)",
            path_, t.name, current_written_, t.byte_size, tensors_.size() - current_);
    }
    SIFT_CHECK(written_ == total_bytes(), "wrote {} bytes, expected {}", written_, total_bytes());
    bool flushed = std::fflush(out_) == 0;
    int flush_errno = errno;
    bool closed = std::fclose(out_) == 0;
    out_ = nullptr;
    buffer_.reset();
    if (!flushed || !closed) {
        return make_error("gguf writer: {}: cannot flush: {}", path_,
                          std::strerror(flushed ? errno : flush_errno));
    }
    return {};
}

uint64_t Writer::total_bytes() const {
    return data_offset_ + data_size_;
}

}  // namespace sift::gguf
