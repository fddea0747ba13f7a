// Kernel launches with programmatic dependent launch (PDL, sm_90 and later): a kernel launched
// with it may be scheduled while the kernel before it in the stream is still running (its
// blocks park in pdl_wait), so in a decode step of hundreds of small dependent kernels the
// launch latency of each hides behind the one before, in streams and in captured graphs alike.
//
// The contract of a kernel launched with launch_pdl: every thread runs pdl_wait() before it
// reads anything an earlier kernel writes, writes anything an earlier kernel reads, or exits
// (a block that exits without waiting could let the grid complete before its predecessor, and
// the kernel after it would then wait on the wrong grid); before the wait it may only read
// what no kernel writes (weights). pdl_prologue() waits, then lets the next kernel be
// scheduled. Without PDL (older GPUs, SIFT_CUDA_PDL=0) both are no-ops and launches are plain.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/cuda_context.h"

namespace sift::cuda {

// Returns once the kernel before this one in the stream has completed and its writes are
// visible (at once when this kernel was launched without PDL).
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Lets the next kernel (if launched with PDL) be scheduled once every block of this one has
// run this (or exited).
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// The first statement of a kernel launched with launch_pdl that has nothing to do before its
// inputs are ready: wait, then let the next kernel be scheduled (waiting first keeps at most
// one kernel parked behind a running one).
__device__ __forceinline__ void pdl_prologue() {
    pdl_wait();
    pdl_launch_dependents();
}

// The launch configuration with the PDL attribute where the context enables it (ctx.pdl).
inline cudaLaunchConfig_t pdl_config(const CudaContext& ctx, dim3 grid, dim3 block, size_t smem,
                                     cudaLaunchAttribute* attr) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = ctx.stream;
    attr->id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr->val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = ctx.pdl ? 1 : 0;
    return cfg;
}

// kernel<<<grid, block, smem, ctx.stream>>>(args...) with PDL (see the contract above).
template <typename... Params, typename... Args>
void launch_pdl(const CudaContext& ctx, void (*kernel)(Params...), dim3 grid, dim3 block,
                size_t smem, Args... args) {
    cudaLaunchAttribute attr;
    const cudaLaunchConfig_t cfg = pdl_config(ctx, grid, block, smem, &attr);
    SIFT_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, args...));
}

}  // namespace sift::cuda
