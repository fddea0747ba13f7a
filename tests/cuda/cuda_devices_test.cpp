#include "backend/cuda/cuda_devices.h"

#include <gtest/gtest.h>

namespace sift {
namespace {

TEST(CudaDevices, ReportsEveryVisibleGpu) {
    Result<CudaRuntimeInfo> info = cuda_runtime_info();
    if (!info || info->devices.empty()) {
        GTEST_SKIP() << "no CUDA GPU here: " << (info ? "no device" : info.message());
    }
    for (const CudaDeviceInfo& d : info->devices) {
        EXPECT_FALSE(d.name.empty());
        EXPECT_GE(d.cc_major, 7);
        EXPECT_GT(d.sm_count, 0);
        EXPECT_GT(d.total_bytes, uint64_t{1} << 30);
        EXPECT_GT(d.free_bytes, 0u);
        EXPECT_LE(d.free_bytes, d.total_bytes);
    }
}

}  // namespace
}  // namespace sift
