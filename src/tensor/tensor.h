// Tensor: a typed, strided view of memory on one device. Ops take views; owners are Buffers.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>

#include "core/check.h"
#include "tensor/dtype.h"

namespace sift {

enum class Device : uint8_t { DEVICE_CPU, DEVICE_CUDA };

// ne[0] is the contiguous dimension (a row); nb[i] is the byte stride of dimension i.
// For quantized types nb[0] is the block's bytes and ne[0] a multiple of the block size.
struct Tensor {
    void* data = nullptr;
    DType type = DType::F32;
    std::array<int64_t, 4> ne = {0, 1, 1, 1};
    std::array<int64_t, 4> nb = {0, 0, 0, 0};
    Device device = Device::DEVICE_CPU;

    // A contiguous view of `data` with dims `ne` (trailing dims default to 1).
    static Tensor view(void* data, DType type, std::initializer_list<int64_t> ne,
                       Device device = Device::DEVICE_CPU) {
        Tensor t;
        t.data = data;
        t.type = type;
        t.device = device;
        SIFT_CHECK(ne.size() >= 1 && ne.size() <= 4, "tensor needs 1..4 dims");
        int i = 0;
        for (int64_t n : ne) t.ne[i++] = n;
        const DTypeTraits& tr = dtype_traits(type);
        SIFT_CHECK(t.ne[0] % tr.block_size == 0, "row of {} is not whole {} blocks", t.ne[0],
                   tr.name);
        t.nb[0] = tr.block_bytes;
        t.nb[1] = t.ne[0] / tr.block_size * tr.block_bytes;
        t.nb[2] = t.nb[1] * t.ne[1];
        t.nb[3] = t.nb[2] * t.ne[2];
        return t;
    }

    int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
    int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
    int64_t row_bytes() const { return ne[0] / dtype_traits(type).block_size * nb[0]; }
    int64_t n_bytes() const { return row_bytes() * n_rows(); }  // when contiguous
    bool is_contiguous() const {
        return nb[1] == row_bytes() && nb[2] == nb[1] * ne[1] && nb[3] == nb[2] * ne[2];
    }
    // Rows [first, first + n) of a 2-D view (dimension 1).
    Tensor rows(int64_t first, int64_t n) const {
        SIFT_CHECK(first >= 0 && first + n <= ne[1] && ne[2] == 1 && ne[3] == 1);
        Tensor t = *this;
        t.data = static_cast<uint8_t*>(data) + first * nb[1];
        t.ne[1] = n;
        t.nb[2] = t.nb[1] * n;
        t.nb[3] = t.nb[2];
        return t;
    }
    template <typename T>
    T* ptr() const {
        return static_cast<T*>(data);
    }
};

}  // namespace sift
