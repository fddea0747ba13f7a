// The CUDA context: created on a real GPU with its properties, clear errors otherwise.
#include <gtest/gtest.h>

#include "tests/cuda/cuda_test_util.h"

namespace sift {
namespace {

TEST(CudaContext, HasStreamHandleAndProperties) {
    SIFT_REQUIRE_CUDA();
    EXPECT_NE(ctx.stream, nullptr);
    EXPECT_NE(ctx.cublas, nullptr);
    EXPECT_GT(ctx.sm_count, 0);
    EXPECT_GE(ctx.cc_major, 8);
    EXPECT_FALSE(ctx.name.empty());
    void* a = ctx.scratch_a.get(1000);
    EXPECT_NE(a, nullptr);
    EXPECT_EQ(ctx.scratch_a.get(500), a);  // grow-only: a smaller request reuses the buffer
}

// Asking for a device that does not exist is an error naming it (without a GPU or driver every
// request is an error, naming the CUDA failure instead).
TEST(CudaContext, MissingDeviceIsAnError) {
    Result<cuda::CudaContext*> c = cuda::cuda_context_create(1000);
    ASSERT_FALSE(c.ok());
    EXPECT_FALSE(c.message().empty());
    if (test::cuda_test_context() != nullptr) {
        EXPECT_NE(c.message().find("1000"), std::string::npos) << c.message();
    }
}

}  // namespace
}  // namespace sift
