// The CUDA Backend the model-level GPU tests share (one per test binary), or null with the
// reason when there is no usable GPU.
#pragma once

#include <memory>
#include <string>

#include "backend/cuda/cuda_backend.h"

namespace sift::test {

inline Backend* cuda_test_backend(std::string* why) {
    static std::unique_ptr<Backend> gpu;
    static std::string reason;
    static bool tried = false;
    if (!tried) {
        tried = true;
        Result<std::unique_ptr<Backend>> b = backend_cuda_create({});
        if (b) {
            gpu = std::move(*b);
        } else {
            reason = b.message();
        }
    }
    *why = reason;
    return gpu.get();
}

}  // namespace sift::test
