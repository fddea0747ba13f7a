// Helpers for the CUDA op-parity harness: a CUDA backend (or a skip where there is no GPU), a
// CPU reference backend, device copies of host data, and the error measure of docs/ORACLES.md.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/ops.h"
#include "tensor/tensor.h"

namespace sift::test {

// One CUDA backend per test binary (creating a context per test would dominate the run time).
// Null when there is no usable GPU; tests then GTEST_SKIP with the reason.
inline Backend* cuda_backend(std::string* why = nullptr) {
    static std::unique_ptr<Backend> backend;
    static std::string reason;
    static bool tried = false;
    if (!tried) {
        tried = true;
        Result<std::unique_ptr<Backend>> b = backend_cuda_create({});
        if (b) {
            backend = std::move(*b);
        } else {
            reason = b.message();
        }
    }
    if (why) *why = reason;
    return backend.get();
}

#define SIFT_REQUIRE_CUDA()                                              \
    std::string sift_no_cuda_reason_;                                    \
    ::sift::Backend* gpu = ::sift::test::cuda_backend(&sift_no_cuda_reason_); \
    if (gpu == nullptr) GTEST_SKIP() << "no CUDA GPU: " << sift_no_cuda_reason_

// The exact CPU backend: the reference every CUDA op is compared with.
inline Backend& cpu_reference() {
    static std::unique_ptr<Backend> cpu = [] {
        CpuBackendOptions o;
        o.exact = true;
        return backend_cpu_create(o);
    }();
    return *cpu;
}

// Device memory holding a tensor of a given shape; freed with the object.
class DeviceTensor {
  public:
    DeviceTensor(Backend& be, DType type, std::initializer_list<int64_t> ne) : be_(be) {
        Tensor shape = Tensor::view(nullptr, type, ne);
        bytes_ = static_cast<size_t>(shape.nb[3] * shape.ne[3]);
        ptr_ = be_.alloc(std::max<size_t>(bytes_, 1));
        t_ = Tensor::view(ptr_, type, ne, be_.device());
    }
    ~DeviceTensor() { be_.free(ptr_); }
    DeviceTensor(const DeviceTensor&) = delete;
    DeviceTensor& operator=(const DeviceTensor&) = delete;

    const Tensor& t() const { return t_; }
    size_t bytes() const { return bytes_; }
    void upload(const void* src) { be_.upload(t_, src, bytes_); }
    template <typename T>
    std::vector<T> download() {
        std::vector<T> out(bytes_ / sizeof(T));
        be_.synchronize();
        be_.download(out.data(), t_, bytes_);
        return out;
    }
    // Fills with NaN bytes (0xFF), so an element the op never writes fails the comparison.
    void poison() {
        std::vector<uint8_t> nan(bytes_, 0xFF);
        upload(nan.data());
    }

  private:
    Backend& be_;
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
