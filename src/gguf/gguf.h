// GGUF reader (bounded: never asserts or over-allocates on input) and streaming writer.
//
// Layout (little-endian): magic "GGUF", u32 version (2 or 3; v1 and big-endian files are refused),
// u64 n_tensors, u64 n_kv, n_kv x (string key, u32 type, value), n_tensors x (string name,
// u32 n_dims, u64 dims[n_dims], u32 ggml type, u64 offset), padding to `general.alignment`
// (default 32), tensor data.
// Strings are u64 length + bytes (no terminator). Arrays are u32 element type + u64 count + items.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/mmap.h"
#include "core/result.h"
#include "gguf/value.h"
#include "tensor/dtype.h"

namespace sift::gguf {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr uint32_t kDefaultAlignment = 32;
constexpr int kMaxDims = 4;

struct KeyValue {
    std::string key;
    Value value;
};

struct TensorInfo {
    std::string name;
    int n_dims = 0;
    std::array<int64_t, kMaxDims> ne = {1, 1, 1, 1};  // ne[0] is the contiguous (row) dimension
    DType type = DType::F32;
    uint64_t offset = 0;            // relative to the start of the data section
    uint64_t byte_size = 0;         // validated: rows * row bytes
    const uint8_t* data = nullptr;  // into the mapped file (reader only)

    int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

// A parsed GGUF. Values are owned; tensor data points into the mapping (or caller's buffer).
class File {
  public:
    // Maps and parses a file. Errors name the file, the field and its byte offset.
    static Result<std::unique_ptr<File>> open(const std::string& path);
    // Parses bytes that outlive the File (used by the fuzzer and tests). `name` prefixes errors.
    static Result<std::unique_ptr<File>> parse(std::span<const uint8_t> bytes,
                                               const std::string& name = "<memory>");

    uint32_t version() const { return version_; }
    uint32_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }  // absolute file offset of data section
    uint64_t file_size() const { return bytes_.size(); }

    const std::vector<KeyValue>& metadata() const { return kv_; }
    const Value* find(std::string_view key) const;
    const std::vector<TensorInfo>& tensors() const { return tensors_; }
    const TensorInfo* tensor(std::string_view name) const;

    // Typed getters: error if missing or of the wrong type. Integers convert between integer types
    // when the value fits; get_f64 accepts FLOAT32/FLOAT64 and also integers (converted to double).
    Result<std::string> get_string(std::string_view key) const;
    Result<uint64_t> get_u64(std::string_view key) const;
    Result<int64_t> get_i64(std::string_view key) const;
    Result<double> get_f64(std::string_view key) const;
    Result<bool> get_bool(std::string_view key) const;
    Result<const Array*> get_array(std::string_view key) const;

  private:
    File() = default;
    std::unique_ptr<MappedFile> mapping_;
    std::span<const uint8_t> bytes_;
    std::string name_;
    uint32_t version_ = 0;
    uint32_t alignment_ = kDefaultAlignment;
    uint64_t data_offset_ = 0;
    std::vector<KeyValue> kv_;
    std::vector<TensorInfo> tensors_;
    // Built once parsing is done (the views point into kv_/tensors_, which no longer change).
    std::unordered_map<std::string_view, size_t> kv_index_;
    std::unordered_map<std::string_view, size_t> tensor_index_;
    friend class Parser;
};

// Streaming writer: declare metadata and tensors, then write tensor data in declared order, in as
// many chunks as convenient (tens of GB never need to sit in memory).
class Writer {
  public:
    Writer() = default;
    ~Writer();
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    void set(std::string key, Value value);  // replaces an existing key
    // Declares a tensor; ne[0] is the row dimension. Errors on row sizes not a multiple of the
    // block size, duplicate names or too many dims.
    Status add_tensor(std::string name, std::span<const int64_t> ne, DType type);

    // Writes header, metadata, tensor infos and padding. Alignment comes from
    // `general.alignment` when set (must be a power of two), else 32.
    Status open(const std::string& path);
    // Appends bytes of the current tensor; moves to the next tensor when one is complete.
    Status write(std::span<const uint8_t> bytes);
    // Checks every tensor was written completely, flushes and closes.
    Status finish();

    uint64_t total_bytes() const;  // size the finished file will have (valid after open)
    uint32_t alignment() const { return alignment_; }  // valid after open
    // Tensors as declared; offsets and byte sizes are filled in by open().
    const std::vector<TensorInfo>& tensors() const { return tensors_; }

  private:
    Status write_raw(const void* data, size_t size);
    Status write_padding(uint64_t size);
    void skip_empty_tensors();
    std::unique_ptr<char[]> buffer_;  // stdio buffer: large so tensor data streams at disk speed
    uint64_t written_ = 0;            // bytes handed to out_, checked against total_bytes()
    std::vector<KeyValue> kv_;
    std::vector<TensorInfo> tensors_;
    std::FILE* out_ = nullptr;
    std::string path_;
    uint32_t alignment_ = kDefaultAlignment;
    size_t current_ = 0;            // tensor being written
    uint64_t current_written_ = 0;  // bytes of it written so far
    uint64_t data_offset_ = 0;
    uint64_t data_size_ = 0;
};

}  // namespace sift::gguf
