// GPUs visible to the CUDA runtime (host API; no CUDA headers leak to callers).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace sift {

struct CudaDeviceInfo {
    int index = 0;
    std::string name;
    int cc_major = 0;
    int cc_minor = 0;
    int sm_count = 0;
    uint64_t total_bytes = 0;
    uint64_t free_bytes = 0;
    double mem_bandwidth_gbs = 0;  // theoretical, from memory clock and bus width
};

struct CudaRuntimeInfo {
    int driver_version = 0;  // e.g. 13000
    int runtime_version = 0;
    std::vector<CudaDeviceInfo> devices;
};

// Errors when no driver is loaded; an empty device list when there is a driver but no GPU.
Result<CudaRuntimeInfo> cuda_runtime_info();

}  // namespace sift
