// The CUDA Backend (host API; no CUDA headers leak to callers). Built only when CMake enables
// CUDA (SIFT_HAVE_CUDA); callers guard with #if SIFT_HAVE_CUDA.
#pragma once

#include <memory>

#include "backend/ops.h"
#include "core/result.h"

namespace sift {

struct CudaBackendOptions {
    int device = 0;  // CUDA device index
};

// Errors (no driver, no such device, device too old) are values: the caller falls back or
// reports them.
Result<std::unique_ptr<Backend>> backend_cuda_create(const CudaBackendOptions& options);

}  // namespace sift
