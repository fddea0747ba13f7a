// Helpers shared by the CUDA op benches: one CUDA context per process and raw device buffers
// (benches keep what they allocate for the process's life).
#pragma once

#include <cstddef>
#include <vector>

#include "backend/cuda/cuda_context.h"
#include "core/check.h"

namespace sift::bench {

inline cuda::CudaContext& context() {
    static cuda::CudaContext* ctx = [] {
        Result<cuda::CudaContext*> c = cuda::cuda_context_create(0);
        SIFT_CHECK(c.ok(), "no CUDA device: {}", c.message());
        return *c;
    }();
    return *ctx;
}

inline void* device_alloc(size_t bytes) {
    void* p = nullptr;
    SIFT_CUDA_CHECK(cudaMalloc(&p, bytes));
    return p;
}

template <typename T>
void* device_copy(const std::vector<T>& h) {
    void* p = device_alloc(h.size() * sizeof(T));
    SIFT_CUDA_CHECK(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    return p;
}

}  // namespace sift::bench
