// Tensor-core prefill attention (cuda_attention_mma.cu) across head dims, for tuning its tiles.
//
//   build/bench_cuda_attention_mma_tune_bench --benchmark_filter=mma_prefill/128
//
// mma_prefill/D/S: causal prompt of S tokens over its own S cells, 32 query heads, 8 KV heads,
// head_dim D, F16 cache, random values; TFLOP/s counting 4 S^2/2 n_head D (the visible lower
// triangle only). Each iteration is timed with CUDA events around the one op, after a warm-up.
#include <benchmark/benchmark.h>

#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "backend/cuda/cuda_ops.h"
#include "bench/cuda_bench_util.h"

namespace {

using sift::DType;
using sift::Tensor;
using namespace sift::cuda;

constexpr int64_t kHeads = 32, kHeadsKv = 8;

using sift::bench::context;
using sift::bench::device_alloc;
using sift::bench::device_copy;

void BM_mma_prefill(benchmark::State& state) {
    const int64_t d = state.range(0), s = state.range(1);
    const size_t q_n = d * kHeads * s, kv_n = d * kHeadsKv * s;
    // Uniform values of unit variance from a cheap generator (the inputs reach 1 G values).
    uint64_t state_rng = 0x9e3779b97f4a7c15ull;
    auto next = [&] {
        state_rng ^= state_rng << 13;
        state_rng ^= state_rng >> 7;
        state_rng ^= state_rng << 17;
        return (static_cast<float>(state_rng >> 40) * 0x1p-24f - 0.5f) * 3.4641016f;
    };
    std::vector<float> qh(q_n);
    for (auto& x : qh) x = next();
    std::vector<__half> kh(kv_n), vh(kv_n);
    for (auto& x : kh) x = __float2half(next());
    for (auto& x : vh) x = __float2half(next());
    std::vector<int32_t> pos(s), seq(s, 0);
    for (int64_t i = 0; i < s; ++i) pos[i] = static_cast<int32_t>(i);
    void* q = device_copy(qh);
    void* k = device_copy(kh);
    void* v = device_copy(vh);
    void* p = device_copy(pos);
    void* sq = device_copy(seq);
    void* out = device_alloc(q_n * 4);
    const auto dev = sift::Device::DEVICE_CUDA;
    sift::AttentionInputs in;
    in.q = Tensor::view(q, DType::F32, {d, kHeads, s}, dev);
    in.k = Tensor::view(k, DType::F16, {d, kHeadsKv, s}, dev);
    in.v = Tensor::view(v, DType::F16, {d, kHeadsKv, s}, dev);
    in.q_pos = Tensor::view(p, DType::I32, {s}, dev);
    in.q_seq = Tensor::view(sq, DType::I32, {s}, dev);
    in.cell_pos = Tensor::view(p, DType::I32, {s}, dev);
    in.cell_seq = Tensor::view(sq, DType::I32, {s}, dev);
    in.cell_begin = 0;
    in.cell_end = s;
    const Tensor out_t = Tensor::view(out, DType::F32, {d, kHeads, s}, dev);
    CudaContext& ctx = context();
    sift::AttentionParams params;
    params.scale = 1.0f / std::sqrt(static_cast<float>(d));
    for (int i = 0; i < 3; ++i) cuda_attention(ctx, in, params, out_t);  // warm-up
    cudaEvent_t start, stop;
    SIFT_CUDA_CHECK(cudaEventCreate(&start));
    SIFT_CUDA_CHECK(cudaEventCreate(&stop));
    for (auto _ : state) {
        SIFT_CUDA_CHECK(cudaEventRecord(start, ctx.stream));
        cuda_attention(ctx, in, params, out_t);
        SIFT_CUDA_CHECK(cudaEventRecord(stop, ctx.stream));
        SIFT_CUDA_CHECK(cudaEventSynchronize(stop));
        float ms = 0;
        SIFT_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
        state.SetIterationTime(ms * 1e-3);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    for (void* x : {q, k, v, p, sq, out}) cudaFree(x);
    const double flops = 4.0 * static_cast<double>(s) * s / 2 * kHeads * d;
    state.counters["TFLOP/s"] =
        benchmark::Counter(flops * 1e-12, benchmark::Counter::kIsIterationInvariantRate);
    state.SetLabel(ctx.name);
}

BENCHMARK(BM_mma_prefill)
    ->Name("mma_prefill")
    ->ArgsProduct({{64, 128, 256}, {8192, 32768}})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
