// Helpers for the CUDA op-parity harness: a CUDA context (or a skip where there is no GPU), the
// exact CPU reference backend, device copies of host data, and the error measure.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_context.h"
#include "backend/ops.h"
#include "tensor/tensor.h"

namespace sift::test {

// One CUDA context per test binary (creating one per test would dominate the run time); null
// when there is no usable GPU, and tests then GTEST_SKIP with the reason. Op tests call the
// cuda:: functions on it directly.
inline cuda::CudaContext* cuda_test_context(std::string* why = nullptr) {
    static cuda::CudaContext* ctx = nullptr;
    static std::string reason;
    static bool tried = false;
    if (!tried) {
        tried = true;
        Result<cuda::CudaContext*> c = cuda::cuda_context_create(0);
        if (c) {
            ctx = *c;
        } else {
            reason = c.message();
        }
    }
    if (why) *why = reason;
    return ctx;
}

// Declares `ctx` (cuda::CudaContext&) or skips the test.
#define SIFT_REQUIRE_CUDA()                                                                \
    std::string sift_no_cuda_reason_;                                                      \
    ::sift::cuda::CudaContext* sift_ctx_ptr_ =                                             \
        ::sift::test::cuda_test_context(&sift_no_cuda_reason_);                            \
    if (sift_ctx_ptr_ == nullptr) GTEST_SKIP() << "no CUDA GPU: " << sift_no_cuda_reason_; \
    ::sift::cuda::CudaContext& ctx = *sift_ctx_ptr_

// The exact CPU backend: the reference every CUDA op is compared with.
inline Backend& cpu_reference() {
    static std::unique_ptr<Backend> cpu = [] {
        CpuBackendOptions o;
        o.exact = true;
        return backend_cpu_create(o);
    }();
    return *cpu;
}

// Device memory holding a contiguous tensor of a given shape; freed with the object.
class DeviceTensor {
  public:
    DeviceTensor(DType type, std::initializer_list<int64_t> ne) {
        Tensor shape = Tensor::view(nullptr, type, ne);
        bytes_ = static_cast<size_t>(shape.nb[3] * shape.ne[3]);
        SIFT_CUDA_CHECK(cudaMalloc(&ptr_, std::max<size_t>(bytes_, 1)));
        t_ = Tensor::view(ptr_, type, ne, Device::DEVICE_CUDA);
    }
    ~DeviceTensor() { cudaFree(ptr_); }
    DeviceTensor(const DeviceTensor&) = delete;
    DeviceTensor& operator=(const DeviceTensor&) = delete;

    const Tensor& t() const { return t_; }
    size_t bytes() const { return bytes_; }
    void upload(const void* src) {
        SIFT_CUDA_CHECK(cudaDeviceSynchronize());
        SIFT_CUDA_CHECK(cudaMemcpy(ptr_, src, bytes_, cudaMemcpyHostToDevice));
    }
    template <typename T>
    std::vector<T> download() {
        std::vector<T> out(bytes_ / sizeof(T));
        SIFT_CUDA_CHECK(cudaDeviceSynchronize());
        SIFT_CUDA_CHECK(cudaMemcpy(out.data(), ptr_, bytes_, cudaMemcpyDeviceToHost));
        return out;
    }
    // Fills with NaN bytes (0xFF), so an element the op never writes fails the comparison.
    void poison() {
        SIFT_CUDA_CHECK(cudaDeviceSynchronize());
        SIFT_CUDA_CHECK(cudaMemset(ptr_, 0xFF, bytes_));
    }

  private:
    void* ptr_ = nullptr;
    size_t bytes_ = 0;
    Tensor t_;
};

// ||got - ref||_inf / max(||ref||_inf, tiny); NaN anywhere (or a size mismatch) gives +inf.
inline double max_rel_error(const std::vector<float>& got, const std::vector<float>& ref) {
    if (got.size() != ref.size()) return INFINITY;
    double max_ref = 0, max_err = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        if (!std::isfinite(got[i]) && std::isfinite(ref[i])) return INFINITY;
        max_ref = std::max(max_ref, static_cast<double>(std::fabs(ref[i])));
        max_err = std::max(max_err, static_cast<double>(std::fabs(got[i] - ref[i])));
    }
    return max_err / std::max(max_ref, 1e-30);
}

inline std::vector<float> random_normal(size_t n, uint64_t seed, float stddev = 1.0f) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, stddev);
    std::vector<float> v(n);
    for (float& x : v) x = normal(rng);
    return v;
}

}  // namespace sift::test
