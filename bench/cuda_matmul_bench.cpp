// CUDA matmul speed against the card's ceilings.
//
//   build/bench_cuda_matmul_bench                              # everything
//   build/bench_cuda_matmul_bench --benchmark_filter=Matvec    # decode only
//
// - Copy: a 1 GiB device-to-device cudaMemcpy, bytes read + written: the bandwidth ceiling.
// - Matvec (T = 1, and 2, 4, 8 for the speculative-verification widths) per weight type on the
//   Qwen3-8B matrices (k x n = 4096 x 4096 q/o, 4096 x 1024 k/v, 4096 x 12288 ffn_up/gate,
//   12288 x 4096 ffn_down, 4096 x 151936 output) and, for BF16/F16, the Qwen3-0.6B ones (1024
//   wide): weight GB/s, its share of the copy rate (pct_copy), the floor (weight bytes over the
//   copy rate, floor_us) and the time per call (us). Weights rotate over copies totalling
//   >= 256 MiB (5x the 50 MB L2), so every call reads DRAM; calls are launched back to back on
//   one stream, so small matrices pay the gap between kernels, as decode without graphs does.
// - Dequant: W -> bf16 (read W, write 2 bytes per weight), GB/s counting both.
// - Prefill (T = 512, 8192): cuda_matmul TFLOP/s counting 2 n k T, next to cuBLAS alone on the
//   same shape with bf16 operands ready (the GEMM share of the prefill path).
// Timing: CUDA events around a batch of launches, after a warm-up.
#include <benchmark/benchmark.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_context.h"
#include "backend/cuda/cuda_matmul.cuh"
#include "backend/cuda/cuda_ops.h"
#include "tensor/dtype.h"

namespace {

using sift::DType;
using sift::Tensor;
using sift::cuda::CudaContext;

constexpr int64_t kRotateBytes = int64_t{256} << 20;

CudaContext& bench_ctx() {
    static CudaContext* ctx = [] {
        auto c = sift::cuda::cuda_context_create(0);
        SIFT_CHECK(c.ok(), "no CUDA device: {}", c.message());
        std::printf("device: %s (%d SMs, L2 %zu MB)\n", (*c)->name.c_str(), (*c)->sm_count,
                    (*c)->l2_bytes >> 20);
        return *c;
    }();
    return *ctx;
}

// Device buffer filled with pseudo-random bytes (not zeros, so nothing is special-cased).
struct DeviceBuffer {
    void* ptr = nullptr;
    size_t bytes = 0;
    explicit DeviceBuffer(size_t n) : bytes(n) {
        SIFT_CUDA_CHECK(cudaMalloc(&ptr, n));
        std::vector<uint32_t> host(std::min<size_t>(n, size_t{16} << 20) / 4 + 1);
        std::mt19937 rng(42);
        // Random bytes, but with F16/BF16/half scale bits kept finite: clear bit 14 of each
        // 16-bit half (exponent < max), so no NaN/inf reaches the arithmetic.
        for (uint32_t& v : host) v = rng() & 0xBFFFBFFFu;
        for (size_t off = 0; off < n; off += host.size() * 4) {
            const size_t len = std::min(n - off, host.size() * 4);
            SIFT_CUDA_CHECK(cudaMemcpy(static_cast<char*>(ptr) + off, host.data(), len,
                                       cudaMemcpyHostToDevice));
        }
    }
    ~DeviceBuffer() { cudaFree(ptr); }
};

// Runs fn(i) for batches of launches between CUDA events; reports the time per launch.
template <typename F>
void time_launches(benchmark::State& state, int batch, F&& fn) {
    CudaContext& ctx = bench_ctx();
    cudaEvent_t a, b;
    SIFT_CUDA_CHECK(cudaEventCreate(&a));
    SIFT_CUDA_CHECK(cudaEventCreate(&b));
    int i = 0;
    for (int w = 0; w < 3; ++w) fn(i++);  // warm-up (cuBLAS heuristics, lazy module loading)
    SIFT_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    for (auto _ : state) {
        SIFT_CUDA_CHECK(cudaEventRecord(a, ctx.stream));
        for (int j = 0; j < batch; ++j) fn(i++);
        SIFT_CUDA_CHECK(cudaEventRecord(b, ctx.stream));
        SIFT_CUDA_CHECK(cudaEventSynchronize(b));
        float ms = 0;
        SIFT_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
        state.SetIterationTime(ms / 1e3 / batch);
    }
    SIFT_CUDA_CHECK(cudaEventDestroy(a));
    SIFT_CUDA_CHECK(cudaEventDestroy(b));
}

double g_copy_gbs = 0;  // measured D2D copy rate, GB/s, read + write counted

void BM_CopyD2D(benchmark::State& state) {
    CudaContext& ctx = bench_ctx();
    const size_t bytes = size_t{1} << 30;
    DeviceBuffer src(bytes), dst(bytes);
    time_launches(state, 5, [&](int) {
        SIFT_CUDA_CHECK(
            cudaMemcpyAsync(dst.ptr, src.ptr, bytes, cudaMemcpyDeviceToDevice, ctx.stream));
    });
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2 * bytes);
    state.counters["GBps"] =
        benchmark::Counter(2.0 * bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

double copy_gbs() {
    if (g_copy_gbs == 0) {  // measured once, for the %-of-ceiling counters
        CudaContext& ctx = bench_ctx();
        const size_t bytes = size_t{1} << 30;
        DeviceBuffer src(bytes), dst(bytes);
        cudaEvent_t a, b;
        SIFT_CUDA_CHECK(cudaEventCreate(&a));
        SIFT_CUDA_CHECK(cudaEventCreate(&b));
        float best = 1e30f;
        for (int r = 0; r < 6; ++r) {
            SIFT_CUDA_CHECK(cudaEventRecord(a, ctx.stream));
            SIFT_CUDA_CHECK(
                cudaMemcpyAsync(dst.ptr, src.ptr, bytes, cudaMemcpyDeviceToDevice, ctx.stream));
            SIFT_CUDA_CHECK(cudaEventRecord(b, ctx.stream));
            SIFT_CUDA_CHECK(cudaEventSynchronize(b));
            float ms = 0;
            SIFT_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
            if (r > 0) best = std::min(best, ms);
        }
        g_copy_gbs = 2.0 * bytes / (best / 1e3) / 1e9;
        std::printf("copy ceiling: %.0f GB/s (1 GiB D2D, read + write)\n", g_copy_gbs);
    }
    return g_copy_gbs;
}

// Weight matrices [k, n] of `type`, rotated over copies >= kRotateBytes.
struct RotatedWeights {
    std::vector<Tensor> copies;
    std::unique_ptr<DeviceBuffer> buf;
    int64_t bytes_each = 0;
    RotatedWeights(DType type, int64_t k, int64_t n, int64_t min_total = kRotateBytes) {
        const Tensor shape = Tensor::view(nullptr, type, {k, n});
        bytes_each = (shape.n_bytes() + 255) / 256 * 256;
        const int64_t n_copies = std::max<int64_t>(1, (min_total + bytes_each - 1) / bytes_each);
        buf = std::make_unique<DeviceBuffer>(static_cast<size_t>(bytes_each * n_copies));
        for (int64_t c = 0; c < n_copies; ++c) {
            Tensor t = shape;
            t.data = static_cast<char*>(buf->ptr) + c * bytes_each;
            t.device = sift::Device::DEVICE_CUDA;
            copies.push_back(t);
        }
    }
    const Tensor& get(int i) const { return copies[i % copies.size()]; }
};

Tensor device_f32(DeviceBuffer& b, int64_t rows, int64_t cols) {
    return Tensor::view(b.ptr, DType::F32, {rows, cols}, sift::Device::DEVICE_CUDA);
}

// f32_path: the exact F32 kernels even where cuda_matmul would pick the int8 (dp4a) ones.
void BM_Matvec(benchmark::State& state, DType type, int64_t k, int64_t n, int64_t nt,
               bool f32_path) {
    CudaContext& ctx = bench_ctx();
    const double ceiling = copy_gbs();
    RotatedWeights w(type, k, n);
    DeviceBuffer xb(k * nt * 4), ob(n * nt * 4);
    // x holds random bits: make it finite F32 (clear the top exponent bit).
    std::vector<float> xh(k * nt);
    std::mt19937 rng(1);
    std::normal_distribution<float> normal;
    for (float& v : xh) v = normal(rng);
    SIFT_CUDA_CHECK(cudaMemcpy(xb.ptr, xh.data(), xh.size() * 4, cudaMemcpyHostToDevice));
    const Tensor x = device_f32(xb, k, nt), out = device_f32(ob, n, nt);
    time_launches(state, 20, [&](int i) {
        if (f32_path) {
            sift::cuda::cuda_matvec_f32(ctx, w.get(i), x, out);
        } else {
            sift::cuda::cuda_matmul(ctx, w.get(i), x, out);
        }
    });
    const double bytes = static_cast<double>(w.copies[0].n_bytes());
    state.counters["GBps"] =
        benchmark::Counter(bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
    state.counters["pct_copy"] = benchmark::Counter(
        100.0 * bytes * state.iterations() / 1e9 / ceiling, benchmark::Counter::kIsRate);
    state.counters["floor_us"] = bytes / (ceiling * 1e3);
    state.counters["us"] = benchmark::Counter(
        1e-6 * state.iterations(), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_DequantBf16(benchmark::State& state, DType type, int64_t k, int64_t n) {
    CudaContext& ctx = bench_ctx();
    const double ceiling = copy_gbs();
    RotatedWeights w(type, k, n, 0);
    DeviceBuffer dst(static_cast<size_t>(n * k * 2));
    time_launches(state, 10,
                  [&](int i) { sift::cuda::cuda_dequantize_bf16(ctx, w.get(i), dst.ptr); });
    const double bytes = static_cast<double>(w.copies[0].n_bytes()) + 2.0 * n * k;
    state.counters["GBps"] =
        benchmark::Counter(bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
    state.counters["pct_copy"] = benchmark::Counter(
        100.0 * bytes * state.iterations() / 1e9 / ceiling, benchmark::Counter::kIsRate);
}

void BM_Prefill(benchmark::State& state, DType type, int64_t k, int64_t n, int64_t nt) {
    CudaContext& ctx = bench_ctx();
    RotatedWeights w(type, k, n, 64 << 20);
    DeviceBuffer xb(static_cast<size_t>(k * nt * 4)), ob(static_cast<size_t>(n * nt * 4));
    std::vector<float> xh(static_cast<size_t>(k * nt));
    std::mt19937 rng(1);
    std::normal_distribution<float> normal;
    for (float& v : xh) v = normal(rng);
    SIFT_CUDA_CHECK(cudaMemcpy(xb.ptr, xh.data(), xh.size() * 4, cudaMemcpyHostToDevice));
    const Tensor x = device_f32(xb, k, nt), out = device_f32(ob, n, nt);
    time_launches(state, 3, [&](int i) { sift::cuda::cuda_matmul(ctx, w.get(i), x, out); });
    state.counters["TFLOPs"] = benchmark::Counter(2.0 * n * k * nt * state.iterations() / 1e12,
                                                  benchmark::Counter::kIsRate);
}

// cuBLAS alone: bf16 [n][k] x bf16 [k][T] -> F32, the GEMM step of the prefill path.
void BM_GemmBf16Only(benchmark::State& state, int64_t k, int64_t n, int64_t nt) {
    CudaContext& ctx = bench_ctx();
    DeviceBuffer wb(static_cast<size_t>(n * k * 2)), xb(static_cast<size_t>(k * nt * 2)),
        ob(static_cast<size_t>(n * nt * 4));
    const float one = 1, zero = 0;
    time_launches(state, 3, [&](int) {
        SIFT_CUBLAS_CHECK(cublasGemmEx(
            ctx.cublas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(nt),
            static_cast<int>(k), &one, wb.ptr, CUDA_R_16BF, static_cast<int>(k), xb.ptr,
            CUDA_R_16BF, static_cast<int>(k), &zero, ob.ptr, CUDA_R_32F, static_cast<int>(n),
            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    });
    state.counters["TFLOPs"] = benchmark::Counter(2.0 * n * k * nt * state.iterations() / 1e12,
                                                  benchmark::Counter::kIsRate);
}

std::string type_name(DType t) {
    return std::string(sift::dtype_name(t));
}

void register_all() {
    benchmark::RegisterBenchmark("Copy/D2D_1GiB", BM_CopyD2D)->UseManualTime()->MinTime(0.2);
    struct Shape {
        const char* name;
        int64_t k, n;
    };
    const auto add_matvec = [](DType t, const Shape& s, int64_t nt, bool f32_path) {
        std::string name = "Matvec/" + type_name(t) + "/" + s.name + "/T=" + std::to_string(nt);
        if (f32_path) name += "/f32_kernel";
        benchmark::RegisterBenchmark(name.c_str(), BM_Matvec, t, s.k, s.n, nt, f32_path)
            ->UseManualTime()
            ->MinTime(0.05);
    };
    // Qwen3-8B decode matrices, in the order of the types' share of a Q4_K_M file.
    const Shape shapes_8b[] = {{"q_o_4096x4096", 4096, 4096},
                               {"k_v_4096x1024", 4096, 1024},
                               {"ffn_up_4096x12288", 4096, 12288},
                               {"ffn_down_12288x4096", 12288, 4096},
                               {"output_4096x151936", 4096, 151936}};
    const DType types_8b[] = {DType::Q4_K, DType::Q6_K, DType::Q5_K, DType::Q8_0,
                              DType::Q4_0, DType::BF16, DType::F16};
    for (const Shape& s : shapes_8b) {
        for (DType t : types_8b) {
            if ((t == DType::BF16 || t == DType::F16) && s.n > 100000) continue;  // 1.2 GB
            add_matvec(t, s, 1, false);
        }
    }
    const Shape shapes_wide[] = {shapes_8b[2], shapes_8b[3]};
    for (const Shape& s : shapes_wide) {
        for (DType t : {DType::Q4_K, DType::Q6_K, DType::Q8_0, DType::BF16}) {
            for (int64_t nt : {2, 4, 8}) add_matvec(t, s, nt, false);
        }
        // The exact F32-decode kernels on the types the int8 kernels now take (the old path).
        for (DType t : {DType::Q4_K, DType::Q6_K, DType::Q8_0, DType::Q4_0}) {
            add_matvec(t, s, 1, true);
        }
    }
    // Qwen3-0.6B BF16 decode: 1024 wide, launch-bound.
    const Shape shapes_06b[] = {
        {"q_1024x2048", 1024, 2048},        {"k_v_1024x1024", 1024, 1024},
        {"o_2048x1024", 2048, 1024},        {"ffn_up_1024x3072", 1024, 3072},
        {"ffn_down_3072x1024", 3072, 1024}, {"output_1024x151936", 1024, 151936}};
    for (const Shape& s : shapes_06b) {
        for (DType t : {DType::BF16, DType::F16}) add_matvec(t, s, 1, false);
    }
    const Shape shapes[] = {shapes_8b[2], shapes_8b[3]};
    for (DType t : {DType::Q4_K, DType::Q6_K, DType::F16}) {
        const std::string name = "Dequant/" + type_name(t) + "/ffn_up_4096x12288";
        benchmark::RegisterBenchmark(name.c_str(), BM_DequantBf16, t, int64_t{4096}, int64_t{12288})
            ->UseManualTime()
            ->MinTime(0.05);
    }
    for (int64_t nt : {512, 8192}) {
        for (const Shape& s : shapes) {
            for (DType t : {DType::Q4_K, DType::Q6_K}) {
                const std::string name =
                    "Prefill/" + type_name(t) + "/" + s.name + "/T=" + std::to_string(nt);
                benchmark::RegisterBenchmark(name.c_str(), BM_Prefill, t, s.k, s.n, nt)
                    ->UseManualTime()
                    ->MinTime(0.1);
            }
            const std::string name =
                std::string("GemmBf16Only/") + s.name + "/T=" + std::to_string(nt);
            benchmark::RegisterBenchmark(name.c_str(), BM_GemmBf16Only, s.k, s.n, nt)
                ->UseManualTime()
                ->MinTime(0.1);
        }
    }
    benchmark::RegisterBenchmark("GemmBf16Only/8192^3", BM_GemmBf16Only, int64_t{8192},
                                 int64_t{8192}, int64_t{8192})
        ->UseManualTime()
        ->MinTime(0.1);
}

}  // namespace

int main(int argc, char** argv) {
    register_all();
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
