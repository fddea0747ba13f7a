// State shared by the CUDA op implementations (included by .cu files only): the device, the one
// stream every op is queued on, the cuBLAS handle and a grow-only scratch buffer.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/result.h"

// Aborts with the CUDA error string: a failing CUDA call is a programmer error or a lost
// device, never bad user input (inputs are validated before ops run).
#define SIFT_CUDA_CHECK(expr)                                                             \
    do {                                                                                  \
        const cudaError_t sift_cuda_err_ = (expr);                                        \
        SIFT_CHECK(sift_cuda_err_ == cudaSuccess, "CUDA: {} ({})",                        \
                   cudaGetErrorString(sift_cuda_err_), cudaGetErrorName(sift_cuda_err_)); \
    } while (0)

#define SIFT_CUBLAS_CHECK(expr)                                                   \
    do {                                                                          \
        const cublasStatus_t sift_cublas_st_ = (expr);                            \
        SIFT_CHECK(sift_cublas_st_ == CUBLAS_STATUS_SUCCESS, "cuBLAS: status {}", \
                   static_cast<int>(sift_cublas_st_));                            \
    } while (0)

// After a kernel launch: configuration errors surface here, at the launching op.
#define SIFT_CUDA_LAUNCH_CHECK() SIFT_CUDA_CHECK(cudaGetLastError())

namespace sift::cuda {

// What captured graphs (CUDA graphs of the Backend's graph_* calls) depend on: a buffer that
// ops use moving to a new address makes every graph captured before stale (generation), and a
// buffer cannot be freed while a capture is open (freeing synchronizes the capturing stream), so
// it is retired until the capture ends.
struct GraphEpoch {
    uint64_t generation = 0;
    bool capturing = false;
    std::vector<void*> retired;
};

// Device memory that only grows; reused by consecutive ops on the one stream (an op may use it
// only until it returns: the next op may overwrite it, which stream order makes safe).
class Scratch {
  public:
    explicit Scratch(GraphEpoch* epoch) : epoch_(epoch) {}
    ~Scratch();
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    void* get(size_t bytes);                    // 256-byte aligned; contents undefined
    size_t capacity() const { return bytes_; }  // 0 until first used
    // The most a scratch grows to when no request exceeds `largest`: get grows by half again
    // at least (rounded to 256 bytes), so never past 1.5 times the largest request.
    static size_t capacity_bound(size_t largest) { return largest * 3 / 2 + 256; }

  private:
    GraphEpoch* epoch_;
    void* ptr_ = nullptr;
    size_t bytes_ = 0;
};

struct CudaContext {
    int device = 0;
    int sm_count = 0;
    int cc_major = 0, cc_minor = 0;
    size_t l2_bytes = 0;
    size_t smem_optin = 0;  // per-block shared memory limit after cudaFuncSetAttribute
    // Programmatic dependent launch (cuda_launch.cuh): sm_90 and later, unless SIFT_CUDA_PDL=0
    // (a switch for measuring what it buys).
    bool pdl = false;
    std::string name;  // e.g. "NVIDIA H100 80GB HBM3"
    cudaStream_t stream = nullptr;
    cublasHandle_t cublas = nullptr;
    void* cublas_workspace = nullptr;  // set explicitly so cuBLAS calls can be captured
    GraphEpoch epoch;
    Scratch scratch_a{&epoch};  // e.g. dequantized weights
    Scratch scratch_b{&epoch};  // e.g. converted activations
    // F16 copies of the attended cells of a Q8_0 KV cache for the prefill kernels
    // (cuda_kv_quant.cu); separate from a/b, which the attention ops use at the same time.
    Scratch scratch_kv_k{&epoch};
    Scratch scratch_kv_v{&epoch};
    // For kernels whose last block to finish combines the other blocks' partial results (one
    // launch instead of a kernel and a combine pass): zeroed counters, one per combined output,
    // that such a kernel leaves zero again, and a fixed buffer for small partial results. Both
    // are allocated with the context and never move, so captured graphs may use them.
    static constexpr int kTickets = 16384;
    static constexpr size_t kPartialBytes = size_t{1} << 20;
    uint32_t* tickets = nullptr;
    void* partials = nullptr;
};

// Creates the context on a device: errors (no driver, no device, compute capability below 8.0)
// are values. Destroy with cuda_context_destroy.
Result<CudaContext*> cuda_context_create(int device);
void cuda_context_destroy(CudaContext* ctx);

inline unsigned grid_1d(int64_t n, int block) {
    return static_cast<unsigned>((n + block - 1) / block);
}

}  // namespace sift::cuda
