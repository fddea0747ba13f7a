#include "backend/cuda/cuda_context.h"

#include <cstdlib>
#include <string_view>

namespace sift::cuda {

Scratch::~Scratch() {
    if (ptr_ != nullptr) cudaFree(ptr_);
}

void* Scratch::get(size_t bytes) {
    if (bytes <= bytes_) return ptr_;
    if (ptr_ != nullptr) {
        ++epoch_->generation;  // graphs that baked in the old address are stale
        if (epoch_->capturing) {
            // Synchronizing would break the capture (which then fails: its first ops saw the
            // old buffer); free it once the capture has ended.
            epoch_->retired.push_back(ptr_);
        } else {
            // Ops queued earlier on the stream may still read the old buffer.
            SIFT_CUDA_CHECK(cudaDeviceSynchronize());
            SIFT_CUDA_CHECK(cudaFree(ptr_));
        }
        ptr_ = nullptr;
    }
    const size_t grown = std::max(bytes, bytes_ + bytes_ / 2);
    const size_t rounded = (grown + 255) / 256 * 256;
    const cudaError_t err = cudaMalloc(&ptr_, rounded);
    SIFT_CHECK(err == cudaSuccess, "CUDA: out of device memory allocating {} bytes of scratch ({})",
               rounded, cudaGetErrorString(err));
    bytes_ = rounded;
    return ptr_;
}

Result<CudaContext*> cuda_context_create(int device) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        cudaGetLastError();
        return make_error("CUDA: {} ({})", cudaGetErrorString(err), cudaGetErrorName(err));
    }
    if (device < 0 || device >= count)
        return make_error("CUDA device {} does not exist ({} device{} visible)", device, count,
                          count == 1 ? "" : "s");
    cudaDeviceProp prop{};
    SIFT_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    if (prop.major < 8)
        return make_error("CUDA device {} ({}) has compute capability {}.{}; sift needs 8.0+",
                          device, prop.name, prop.major, prop.minor);
    SIFT_CUDA_CHECK(cudaSetDevice(device));
    auto* ctx = new CudaContext;
    ctx->device = device;
    ctx->sm_count = prop.multiProcessorCount;
    ctx->cc_major = prop.major;
    ctx->cc_minor = prop.minor;
    ctx->l2_bytes = static_cast<size_t>(prop.l2CacheSize);
    ctx->smem_optin = prop.sharedMemPerBlockOptin;
    const char* pdl_env = std::getenv("SIFT_CUDA_PDL");
    ctx->pdl = prop.major >= 9 && !(pdl_env != nullptr && std::string_view(pdl_env) == "0");
    ctx->name = prop.name;
    SIFT_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
    SIFT_CUBLAS_CHECK(cublasCreate(&ctx->cublas));
    SIFT_CUBLAS_CHECK(cublasSetStream(ctx->cublas, ctx->stream));
    // A workspace of our own: cuBLAS would otherwise allocate one on first use, which a stream
    // capture does not allow. 32 MiB is NVIDIA's recommendation for Hopper.
    const size_t workspace_bytes = size_t{32} << 20;
    SIFT_CUDA_CHECK(cudaMalloc(&ctx->cublas_workspace, workspace_bytes));
    SIFT_CUBLAS_CHECK(cublasSetWorkspace(ctx->cublas, ctx->cublas_workspace, workspace_bytes));
    SIFT_CUDA_CHECK(cudaMalloc(&ctx->tickets, CudaContext::kTickets * sizeof(uint32_t)));
    SIFT_CUDA_CHECK(cudaMemset(ctx->tickets, 0, CudaContext::kTickets * sizeof(uint32_t)));
    SIFT_CUDA_CHECK(cudaMalloc(&ctx->partials, CudaContext::kPartialBytes));
    return ctx;
}

void cuda_context_destroy(CudaContext* ctx) {
    if (ctx == nullptr) return;
    cudaStreamSynchronize(ctx->stream);
    cublasDestroy(ctx->cublas);
    cudaFree(ctx->cublas_workspace);
    cudaFree(ctx->tickets);
    cudaFree(ctx->partials);
    for (void* p : ctx->epoch.retired) cudaFree(p);
    cudaStreamDestroy(ctx->stream);
    delete ctx;
}

}  // namespace sift::cuda
