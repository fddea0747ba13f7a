// CUDA attention speed (--perf mode of the attention parity harness).
//
//   build/bench_cuda_attention_bench
//   build/bench_cuda_attention_bench --benchmark_filter=prefill
//
// Llama-3-8B-shaped attention: 32 query heads, 8 KV heads, head_dim 128 (prefill also 64 and
// 256, the tensor-core kernel's other tile configurations), F16 cache.
//   prefill/S/D: causal prompt of S tokens over its own S cells, head_dim D; TFLOP/s counting
//     4 S^2/2 n_head D (QK^T and PV, the visible lower triangle only).
//   decode/N: one token over N cells; GB/s of K and V read (2 N n_head_kv d 2 bytes) and the
//     fraction of the measured device-to-device copy bandwidth.
// Each iteration is timed with CUDA events around the one op (manual time), after a warm-up; K/V
// hold random values.
#include <benchmark/benchmark.h>

#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
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

// Random F16 values on the device (generated on the host once per size).
void fill_random_f16(void* dst, size_t n, uint32_t seed) {
    std::vector<__half> h(n);
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (auto& x : h) x = __float2half(normal(rng));
    SIFT_CUDA_CHECK(cudaMemcpy(dst, h.data(), n * sizeof(__half), cudaMemcpyHostToDevice));
}

struct Problem {
    int64_t n_tokens, n_cells, head_dim;
    void *q, *k, *v, *out, *q_pos, *q_seq, *cell_pos, *cell_seq;
    sift::AttentionInputs in;

    Problem(int64_t tokens, int64_t cells, int64_t d = 128)
        : n_tokens(tokens), n_cells(cells), head_dim(d) {
        const size_t q_n = d * kHeads * tokens, kv_n = d * kHeadsKv * cells;
        q = device_alloc(q_n * 4);
        out = device_alloc(q_n * 4);
        k = device_alloc(kv_n * 2);
        v = device_alloc(kv_n * 2);
        fill_random_f16(k, kv_n, 1);
        fill_random_f16(v, kv_n, 2);
        std::vector<float> qh(q_n);
        std::mt19937 rng(3);
        std::normal_distribution<float> normal(0.0f, 1.0f);
        for (auto& x : qh) x = normal(rng);
        SIFT_CUDA_CHECK(cudaMemcpy(q, qh.data(), q_n * 4, cudaMemcpyHostToDevice));
        // One sequence, cells at positions 0..cells-1; the tokens are the last cells.
        std::vector<int32_t> pos(cells), seq(cells, 0), tpos(tokens), tseq(tokens, 0);
        for (int64_t i = 0; i < cells; ++i) pos[i] = static_cast<int32_t>(i);
        for (int64_t t = 0; t < tokens; ++t) tpos[t] = static_cast<int32_t>(cells - tokens + t);
        cell_pos = device_alloc(cells * 4);
        cell_seq = device_alloc(cells * 4);
        q_pos = device_alloc(tokens * 4);
        q_seq = device_alloc(tokens * 4);
        SIFT_CUDA_CHECK(cudaMemcpy(cell_pos, pos.data(), cells * 4, cudaMemcpyHostToDevice));
        SIFT_CUDA_CHECK(cudaMemcpy(cell_seq, seq.data(), cells * 4, cudaMemcpyHostToDevice));
        SIFT_CUDA_CHECK(cudaMemcpy(q_pos, tpos.data(), tokens * 4, cudaMemcpyHostToDevice));
        SIFT_CUDA_CHECK(cudaMemcpy(q_seq, tseq.data(), tokens * 4, cudaMemcpyHostToDevice));
        const auto dev = sift::Device::DEVICE_CUDA;
        in.q = Tensor::view(q, DType::F32, {d, kHeads, tokens}, dev);
        in.k = Tensor::view(k, DType::F16, {d, kHeadsKv, cells}, dev);
        in.v = Tensor::view(v, DType::F16, {d, kHeadsKv, cells}, dev);
        in.q_pos = Tensor::view(q_pos, DType::I32, {tokens}, dev);
        in.q_seq = Tensor::view(q_seq, DType::I32, {tokens}, dev);
        in.cell_pos = Tensor::view(cell_pos, DType::I32, {cells}, dev);
        in.cell_seq = Tensor::view(cell_seq, DType::I32, {cells}, dev);
        in.cell_begin = 0;
        in.cell_end = cells;
    }
    ~Problem() {
        for (void* p : {q, k, v, out, q_pos, q_seq, cell_pos, cell_seq}) cudaFree(p);
    }
    Tensor out_t() const {
        return Tensor::view(out, DType::F32, {head_dim, kHeads, n_tokens},
                            sift::Device::DEVICE_CUDA);
    }
};

// Times one attention call per iteration with events; returns nothing, sets manual time.
void run(benchmark::State& state, Problem& p) {
    CudaContext& ctx = context();
    sift::AttentionParams params;
    params.scale = 1.0f / std::sqrt(static_cast<float>(p.head_dim));
    for (int i = 0; i < 3; ++i) cuda_attention(ctx, p.in, params, p.out_t());  // warm-up
    cudaEvent_t start, stop;
    SIFT_CUDA_CHECK(cudaEventCreate(&start));
    SIFT_CUDA_CHECK(cudaEventCreate(&stop));
    for (auto _ : state) {
        SIFT_CUDA_CHECK(cudaEventRecord(start, ctx.stream));
        cuda_attention(ctx, p.in, params, p.out_t());
        SIFT_CUDA_CHECK(cudaEventRecord(stop, ctx.stream));
        SIFT_CUDA_CHECK(cudaEventSynchronize(stop));
        float ms = 0;
        SIFT_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
        state.SetIterationTime(ms * 1e-3);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    state.SetLabel(ctx.name);
}

void BM_prefill(benchmark::State& state) {
    const int64_t s = state.range(0), d = state.range(1);
    Problem p(s, s, d);
    run(state, p);
    const double flops = 4.0 * static_cast<double>(s) * s / 2 * kHeads * d;
    state.counters["TFLOP/s"] =
        benchmark::Counter(flops * 1e-12, benchmark::Counter::kIsIterationInvariantRate);
}

double copy_bandwidth() {
    static double bw = [] {
        const size_t bytes = size_t{1} << 30;
        void* a = device_alloc(bytes);
        void* b = device_alloc(bytes);
        SIFT_CUDA_CHECK(cudaMemset(a, 1, bytes));
        cudaEvent_t start, stop;
        SIFT_CUDA_CHECK(cudaEventCreate(&start));
        SIFT_CUDA_CHECK(cudaEventCreate(&stop));
        float best = 1e30f;
        for (int i = 0; i < 5; ++i) {
            SIFT_CUDA_CHECK(cudaEventRecord(start));
            SIFT_CUDA_CHECK(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
            SIFT_CUDA_CHECK(cudaEventRecord(stop));
            SIFT_CUDA_CHECK(cudaEventSynchronize(stop));
            float ms = 0;
            SIFT_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
            if (i > 0) best = std::min(best, ms);
        }
        cudaFree(a);
        cudaFree(b);
        return 2.0 * static_cast<double>(bytes) / (best * 1e-3);
    }();
    return bw;
}

void BM_decode(benchmark::State& state) {
    const int64_t cells = state.range(0), tokens = state.range(1);
    Problem p(tokens, cells);
    run(state, p);
    const double bytes = 2.0 * cells * kHeadsKv * p.head_dim * 2;
    state.counters["GB/s"] =
        benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["of_copy_bw"] =
        benchmark::Counter(bytes / copy_bandwidth(), benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(BM_prefill)
    ->Name("prefill")
    ->Args({4096, 128})
    ->Args({32768, 128})
    ->Args({32768, 64})
    ->Args({32768, 256})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_decode)
    ->Name("decode")
    ->Args({32768, 1})
    ->Args({32768, 4})
    ->Args({4096, 1})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
