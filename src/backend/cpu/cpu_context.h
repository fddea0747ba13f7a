// What every CPU op needs: the thread pool, the ISA chosen at start-up, the matmul mode and
// reusable scratch memory (per thread, so kernels never allocate in the hot loop).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "backend/cpu/cpu_kernels.h"
#include "core/check.h"
#include "core/thread_pool.h"
#include "tensor/tensor.h"

namespace sift::cpu {

// Element i of an I32 tensor (positions, ids, sequence ids), any stride.
inline int32_t read_i32(const Tensor& t, int64_t i) {
    int32_t v;
    std::memcpy(&v, static_cast<const uint8_t*>(t.data) + i * t.nb[0], 4);
    return v;
}

// A 64-byte aligned buffer that only grows.
class ScratchBuffer {
  public:
    void* get(int64_t bytes) {
        if (bytes > size_) {
            const int64_t rounded = (bytes + 4095) / 4096 * 4096;
            void* p = std::aligned_alloc(64, static_cast<size_t>(rounded));
            SIFT_CHECK(p != nullptr, "out of memory for {} bytes of CPU scratch", rounded);
            data_.reset(static_cast<uint8_t*>(p));
            size_ = rounded;
        }
        return data_.get();
    }
    template <typename T>
    T* get(int64_t n) {
        return static_cast<T*>(get(n * static_cast<int64_t>(sizeof(T))));
    }

  private:
    struct Free {
        void operator()(uint8_t* p) const { std::free(p); }
    };
    std::unique_ptr<uint8_t, Free> data_;
    int64_t size_ = 0;
};

struct CpuContext {
    CpuContext(int n_threads, bool exact_mode, CpuIsa cpu_isa)
        : pool(n_threads), isa(cpu_isa), exact(exact_mode), thread_scratch(pool.size()) {}

    ThreadPool pool;
    CpuIsa isa;
    bool exact;
    std::vector<ScratchBuffer> thread_scratch;  // indexed by the pool's thread index
    ScratchBuffer shared_scratch;               // filled before a parallel_for, read inside it
};

}  // namespace sift::cpu
