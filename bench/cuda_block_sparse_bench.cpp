// Block-sparse attention speed (ALGORITHMS.md 2) on the drafter's shape: Qwen3-0.6B, 16 query
// heads, 8 KV heads, head_dim 128, F16 cache. One layer's attention over a causal prompt of S
// tokens run as the model runs it, in micro-batches of 4096 tokens over the cells so far (the
// key-block means cached across micro-batches, the prompt's last blocks as the dense tail):
//   bsa_prefill/S/mode: mode 0 dense; block-sparse with alpha 0.12 (1), 0.85 (2) on random keys,
//     and with block-structured keys (a random offset per key block) alpha 0.12 (3), 0.85 (4),
//     1.0 (5: only the argmax and the forced blocks). Random keys give near-uniform block scores
//     that keep almost everything: real attention is not like that.
// Counters: TFLOP/s over the dense causal work (4 S^2/2 n_head d; the speed-up in disguise),
// kept (fraction of causal (query block, key block, head) triples kept), kept_TFLOP/s (the work
// of the kept blocks per second, diagonal blocks counted half: the kernel's efficiency on what it
// does), select_ms (the selection alone, all micro-batches).
//
//   build/bench_cuda_block_sparse_bench --benchmark_min_time=0.2
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

constexpr int64_t kHeadDim = 128, kHeads = 16, kHeadsKv = 8, kUbatch = 4096, kBlock = 128;

using sift::bench::context;
using sift::bench::device_alloc;

struct Prompt {
    int64_t n;
    bool structured;
    void *q, *k, *v, *out, *pos, *seq, *mask;
    Prompt(int64_t s, bool blocks) : n(s), structured(blocks) {
        const size_t q_n = kHeadDim * kHeads * kUbatch, kv_n = kHeadDim * kHeadsKv * s;
        q = device_alloc(q_n * 4);
        out = device_alloc(q_n * 4);
        k = device_alloc(kv_n * 2);
        v = device_alloc(kv_n * 2);
        std::mt19937 rng(1);
        std::normal_distribution<float> normal(0.0f, 1.0f);
        std::vector<float> offset(kHeadsKv * kHeadDim);
        std::vector<__half> h(kv_n);
        for (int64_t c = 0; c < s; ++c) {
            if (c % kBlock == 0)
                for (float& x : offset) x = structured ? 1.5f * normal(rng) : 0.0f;
            for (int64_t i = 0; i < kHeadsKv * kHeadDim; ++i)
                h[c * kHeadsKv * kHeadDim + i] = __float2half(normal(rng) + offset[i]);
        }
        SIFT_CUDA_CHECK(cudaMemcpy(k, h.data(), kv_n * 2, cudaMemcpyHostToDevice));
        for (auto& x : h) x = __float2half(normal(rng));
        SIFT_CUDA_CHECK(cudaMemcpy(v, h.data(), kv_n * 2, cudaMemcpyHostToDevice));
        std::vector<float> qh(q_n);
        for (auto& x : qh) x = normal(rng);
        SIFT_CUDA_CHECK(cudaMemcpy(q, qh.data(), q_n * 4, cudaMemcpyHostToDevice));
        std::vector<int32_t> p(s), z(s, 0);
        for (int64_t i = 0; i < s; ++i) p[i] = static_cast<int32_t>(i);
        pos = device_alloc(s * 4);
        seq = device_alloc(s * 4);
        SIFT_CUDA_CHECK(cudaMemcpy(pos, p.data(), s * 4, cudaMemcpyHostToDevice));
        SIFT_CUDA_CHECK(cudaMemcpy(seq, z.data(), s * 4, cudaMemcpyHostToDevice));
        mask = device_alloc((s / kBlock + 1) * (kUbatch / kBlock + 1) * kHeads);
    }
    ~Prompt() {
        for (void* p : {q, k, v, out, pos, seq, mask}) cudaFree(p);
    }
    // Micro-batch starting at token t0: its tokens over cells [0, t0 + T).
    sift::AttentionInputs inputs(int64_t t0, Tensor& mask_t) const {
        const auto dev = sift::Device::DEVICE_CUDA;
        const int64_t t = std::min(kUbatch, n - t0), end = t0 + t;
        sift::AttentionInputs in;
        in.q = Tensor::view(q, DType::F32, {kHeadDim, kHeads, t}, dev);
        in.k = Tensor::view(k, DType::F16, {kHeadDim, kHeadsKv, n}, dev);
        in.v = Tensor::view(v, DType::F16, {kHeadDim, kHeadsKv, n}, dev);
        in.q_pos = Tensor::view(static_cast<int32_t*>(pos) + t0, DType::I32, {t}, dev);
        in.q_seq = Tensor::view(seq, DType::I32, {t}, dev);
        in.cell_pos = Tensor::view(pos, DType::I32, {n}, dev);
        in.cell_seq = Tensor::view(seq, DType::I32, {n}, dev);
        in.cell_begin = 0;
        in.cell_end = end;
        const int64_t n_kb = (end + kBlock - 1) / kBlock;
        const int64_t n_qb = (end - 1) / kBlock - t0 / kBlock + 1;
        mask_t = Tensor::view(mask, DType::I8, {n_kb, n_qb, kHeads}, dev);
        return in;
    }
    Tensor out_t(int64_t t0) const {
        return Tensor::view(out, DType::F32, {kHeadDim, kHeads, std::min(kUbatch, n - t0)},
                            sift::Device::DEVICE_CUDA);
    }
};

void BM_bsa_prefill(benchmark::State& state) {
    const int64_t s = state.range(0), mode = state.range(1);
    Prompt p(s, mode >= 3);
    CudaContext& ctx = context();
    sift::AttentionParams params;
    params.scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));
    sift::BlockSparseParams bs;
    bs.alpha = mode == 5 ? 1.0f : (mode == 2 || mode == 4) ? 0.85f : 0.12f;
    const int64_t total = (s + kBlock - 1) / kBlock;
    // One prompt pass; select_only times the selection alone; counts kept blocks when asked.
    double kept_blocks = 0, causal_blocks = 0, kept_work = 0;
    // As the model runs it: the key-block means cached across micro-batches, and the prompt's
    // last_full query blocks flagged as the dense tail.
    const size_t means_bytes = sift::cuda::cuda_key_means_bytes(kHeadDim, kHeadsKv, total);
    void* means = nullptr;
    SIFT_CUDA_CHECK(cudaMalloc(&means, means_bytes));
    auto pass = [&](bool select_only, bool count) {
        sift::KeyMeansCache cache{means, means_bytes, 0};
        for (int64_t t0 = 0; t0 < s; t0 += kUbatch) {
            Tensor mask_t;
            sift::AttentionInputs in = p.inputs(t0, mask_t);
            if (mode > 0) {
                in.key_means = &cache;
                cuda_attention_block_select(ctx, in, params, bs, total, mask_t);
                cache.valid = std::min(s, t0 + kUbatch) / kBlock;
                in.block_mask = &mask_t;
                const int64_t qb_first = t0 / kBlock;
                const int64_t qb_last = (std::min(s, t0 + kUbatch) - 1) / kBlock;
                in.dense_tail = sift::dense_tail_blocks(qb_first, qb_last, total, bs.last_full);
            }
            if (count && mode > 0) {
                std::vector<int8_t> m(static_cast<size_t>(mask_t.n_elements()));
                SIFT_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
                SIFT_CUDA_CHECK(cudaMemcpy(m.data(), p.mask, m.size(), cudaMemcpyDeviceToHost));
                const int64_t n_kb = mask_t.ne[0], n_qb = mask_t.ne[1];
                for (int64_t h = 0; h < kHeads; ++h) {
                    for (int64_t mi = 0; mi < n_qb; ++mi) {
                        const int64_t mg = t0 / kBlock + mi;
                        for (int64_t n = 0; n <= mg && n < n_kb; ++n) {
                            const bool keep = m[(h * n_qb + mi) * n_kb + n] != 0;
                            causal_blocks += 1;
                            kept_blocks += keep;
                            kept_work += keep ? (n == mg ? 0.5 : 1.0) : 0.0;
                        }
                    }
                }
            }
            if (!select_only) cuda_attention(ctx, in, params, p.out_t(t0));
        }
    };
    pass(false, true);  // warm-up, and the keep fraction
    cudaEvent_t start, stop;
    SIFT_CUDA_CHECK(cudaEventCreate(&start));
    SIFT_CUDA_CHECK(cudaEventCreate(&stop));
    float select_ms = 0;
    if (mode > 0) {
        SIFT_CUDA_CHECK(cudaEventRecord(start, ctx.stream));
        pass(true, false);
        SIFT_CUDA_CHECK(cudaEventRecord(stop, ctx.stream));
        SIFT_CUDA_CHECK(cudaEventSynchronize(stop));
        SIFT_CUDA_CHECK(cudaEventElapsedTime(&select_ms, start, stop));
    }
    for (auto _ : state) {
        SIFT_CUDA_CHECK(cudaEventRecord(start, ctx.stream));
        pass(false, false);
        SIFT_CUDA_CHECK(cudaEventRecord(stop, ctx.stream));
        SIFT_CUDA_CHECK(cudaEventSynchronize(stop));
        float ms = 0;
        SIFT_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
        state.SetIterationTime(ms * 1e-3);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    SIFT_CUDA_CHECK(cudaFree(means));
    const double dense = 4.0 * static_cast<double>(s) * s / 2 * kHeads * kHeadDim;
    const double block_flops = 4.0 * kBlock * kBlock * kHeadDim;  // one (m, n, h) triple
    state.counters["TFLOP/s"] =
        benchmark::Counter(dense * 1e-12, benchmark::Counter::kIsIterationInvariantRate);
    if (mode > 0) {
        state.counters["kept"] = kept_blocks / causal_blocks;
        state.counters["kept_TFLOP/s"] = benchmark::Counter(
            kept_work * block_flops * 1e-12, benchmark::Counter::kIsIterationInvariantRate);
        state.counters["select_ms"] = select_ms;
    }
    state.SetLabel(ctx.name);
}

BENCHMARK(BM_bsa_prefill)
    ->Name("bsa_prefill")
    ->ArgsProduct({{8192, 16384, 32768, 65536, 131072}, {0, 1, 2, 3, 4, 5}})
    ->UseManualTime()
    ->Iterations(2)
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
