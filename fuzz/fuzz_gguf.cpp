// libFuzzer target for the GGUF reader: any input must parse or fail cleanly, never crash, and a
// parsed file must only expose in-bounds tensor data.
#include <cstddef>
#include <cstdint>
#include <span>

#include "gguf/gguf.h"

namespace {

// Touches every parsed value so the sanitizers see any bad item.
uint64_t walk(const sift::gguf::Value& value) {
    uint64_t sum = static_cast<uint64_t>(value.type);
    if (const auto* s = value.as_string()) sum += s->size();
    if (const auto* array = value.as_array()) {
        for (const auto& item : array->items) sum += walk(item);
    }
    return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto parsed = sift::gguf::File::parse(std::span<const uint8_t>(data, size), "fuzz.gguf");
    if (!parsed) return 0;
    const sift::gguf::File& file = *parsed.value();
    volatile uint64_t sink = 0;
    for (const auto& kv : file.metadata()) {
        sink = sink + walk(kv.value);
        // Getters must return values or errors for any key and type.
        (void)file.get_string(kv.key);
        (void)file.get_u64(kv.key);
        (void)file.get_i64(kv.key);
        (void)file.get_f64(kv.key);
        (void)file.get_bool(kv.key);
        (void)file.get_array(kv.key);
        if (file.find(kv.key) != &kv.value) __builtin_trap();
    }
    for (const auto& t : file.tensors()) {
        if (file.tensor(t.name) != &t) __builtin_trap();
        if (t.n_elements() < 0) __builtin_trap();
        // First and last byte of each tensor must be inside the input (ASan checks the reads).
        if (t.byte_size > 0) sink = sink + t.data[0] + t.data[t.byte_size - 1];
    }
    if (file.data_offset() % file.alignment() != 0) __builtin_trap();
    return 0;
}
