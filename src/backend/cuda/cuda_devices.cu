#include <cuda_runtime.h>

#include "backend/cuda/cuda_devices.h"

namespace sift {

Result<CudaRuntimeInfo> cuda_runtime_info() {
    CudaRuntimeInfo info;
    cudaDriverGetVersion(&info.driver_version);
    cudaRuntimeGetVersion(&info.runtime_version);
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err == cudaErrorNoDevice) {
        cudaGetLastError();
        return info;
    }
    if (err != cudaSuccess) {
        cudaGetLastError();
        return make_error("CUDA: {} ({})", cudaGetErrorString(err), cudaGetErrorName(err));
    }
    for (int i = 0; i < count; ++i) {
        cudaDeviceProp prop{};
        if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
        CudaDeviceInfo dev;
        dev.index = i;
        dev.name = prop.name;
        dev.cc_major = prop.major;
        dev.cc_minor = prop.minor;
        dev.sm_count = prop.multiProcessorCount;
        dev.total_bytes = prop.totalGlobalMem;
        int mem_clock_khz = 0;
        int bus_bits = 0;
        cudaDeviceGetAttribute(&mem_clock_khz, cudaDevAttrMemoryClockRate, i);
        cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, i);
        // DDR: two transfers per clock.
        dev.mem_bandwidth_gbs = 2.0 * mem_clock_khz * 1e3 * (bus_bits / 8.0) / 1e9;
        size_t free_bytes = 0, total_bytes = 0;
        if (cudaSetDevice(i) == cudaSuccess &&
            cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) {
            dev.free_bytes = free_bytes;
        }
        cudaGetLastError();
        info.devices.push_back(dev);
    }
    return info;
}

}  // namespace sift
