// CPU matmul and attention speed against this machine's ceilings.
//
//   build-cpu/bench_matmul                          # everything
//   build-cpu/bench_matmul --benchmark_filter=q4_k  # one type
//
// First measures the read bandwidth (sum of a 512 MiB buffer on 1 and all threads), then runs
// Qwen2.5-1.5B-shaped matmuls (k x n = 1536 x 8960 ffn_up, 8960 x 1536 ffn_down) per weight type:
//   decode (T = 1): weight GB/s and its fraction of the measured all-thread read bandwidth. The
//     weights rotate over enough copies (>= 256 MiB) that every call reads them from DRAM, as a
//     model's layers do.
//   prefill (T = 512): GFLOP/s counting 2 n k T.
// and attention of 4096 tokens (12 heads, 2 KV heads, head_dim 128, F16 cache, causal).
// SIFT_BENCH_THREADS sets the thread count (default: all cores).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "core/thread_pool.h"
#include "tensor/quant.h"
#include "tensor/random_fill.h"

namespace {

using sift::DType;
using sift::Tensor;

int bench_threads() {
    const char* env = std::getenv("SIFT_BENCH_THREADS");
    return env != nullptr ? std::atoi(env) : 0;
}

double g_read_gbs = 0;  // all-thread read bandwidth, GB/s (1e9 bytes)

// Sums 64-bit words of buf with 4 independent chains (so the loop is load-bound, not add-bound).
uint64_t sum_words(const uint64_t* p, int64_t n) {
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int64_t i = 0; i + 4 <= n; i += 4) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
    }
    return s0 + s1 + s2 + s3;
}

// Best of 5 passes over a 512 MiB buffer, in GB/s.
double measure_read_bandwidth(int n_threads) {
    constexpr int64_t kBytes = int64_t{512} << 20;
    constexpr int64_t kChunk = int64_t{4} << 20;
    static std::vector<uint64_t> buf(kBytes / 8, 0x0101010101010101ull);
    sift::ThreadPool pool(n_threads);
    std::vector<uint64_t> sink(static_cast<size_t>(pool.size()) * 8);
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        pool.parallel_for(kBytes / kChunk, 1, [&](int64_t b, int64_t e, int thread) {
            for (int64_t c = b; c < e; ++c)
                sink[thread * 8] += sum_words(buf.data() + c * kChunk / 8, kChunk / 8);
        });
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, static_cast<double>(kBytes) / s / 1e9);
    }
    benchmark::DoNotOptimize(sink.data());
    return best;
}

void BM_ReadBandwidth(benchmark::State& state) {
    const auto n_threads = static_cast<int>(state.range(0));
    double gbs = 0;
    for (auto _ : state) gbs = measure_read_bandwidth(n_threads);
    state.counters["GB/s"] = gbs;
}

// Cost of one parallel_for that wakes every thread for a trivial chunk (decode issues hundreds
// of these per token).
void BM_ThreadPoolCall(benchmark::State& state) {
    sift::ThreadPool pool(bench_threads());
    std::vector<int64_t> sink(static_cast<size_t>(pool.size()) * 8);
    for (auto _ : state) {
        pool.parallel_for(pool.size(), 1, [&](int64_t b, int64_t, int t) { sink[t * 8] += b; });
    }
    benchmark::DoNotOptimize(sink.data());
}

// Random weights of one type: `copies` distinct matrices [k, n].
struct Weights {
    int64_t k = 0, n = 0;
    std::vector<std::vector<uint8_t>> copies;
    int64_t bytes_each = 0;
};

Weights& weights(DType type, int64_t k, int64_t n, int64_t min_total_bytes) {
    static std::map<std::tuple<DType, int64_t, int64_t, int64_t>, Weights> cache;
    Weights& w = cache[{type, k, n, min_total_bytes}];
    if (!w.copies.empty()) return w;
    w.k = k;
    w.n = n;
    w.bytes_each = *sift::dtype_row_bytes(type, k) * n;
    const int64_t count = std::max<int64_t>(1, (min_total_bytes + w.bytes_each - 1) / w.bytes_each);
    sift::RandomBlockSource source(type, 0.02f, 1234);
    for (int64_t i = 0; i < count; ++i) {
        w.copies.emplace_back(static_cast<size_t>(w.bytes_each));
        source.fill(w.copies.back().data(), k * n);
    }
    return w;
}

std::vector<float> random_floats(int64_t n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = normal(rng);
    return v;
}

void BM_MatmulDecode(benchmark::State& state, DType type, int64_t k, int64_t n) {
    auto backend = sift::backend_cpu_create({.n_threads = bench_threads()});
    Weights& w = weights(type, k, n, int64_t{256} << 20);
    std::vector<float> x = random_floats(k, 1), out(static_cast<size_t>(n));
    const Tensor xt = Tensor::view(x.data(), DType::F32, {k, 1});
    const Tensor ot = Tensor::view(out.data(), DType::F32, {n, 1});
    size_t i = 0;
    for (auto _ : state) {
        const Tensor wt = Tensor::view(w.copies[i++ % w.copies.size()].data(), type, {k, n});
        backend->matmul(wt, xt, ot);
        benchmark::DoNotOptimize(out.data());
    }
    const double gbs =
        static_cast<double>(state.iterations()) * static_cast<double>(w.bytes_each) / 1e9;
    state.counters["GB/s"] = benchmark::Counter(gbs, benchmark::Counter::kIsRate);
    state.counters["read_bw"] = g_read_gbs;
}

void BM_MatmulPrefill(benchmark::State& state, DType type, int64_t k, int64_t n, bool exact) {
    const int64_t t = state.range(0);
    auto backend = sift::backend_cpu_create({.n_threads = bench_threads(), .exact = exact});
    Weights& w = weights(type, k, n, 0);
    std::vector<float> x = random_floats(k * t, 2), out(static_cast<size_t>(n * t));
    const Tensor wt = Tensor::view(w.copies[0].data(), type, {k, n});
    const Tensor xt = Tensor::view(x.data(), DType::F32, {k, t});
    const Tensor ot = Tensor::view(out.data(), DType::F32, {n, t});
    for (auto _ : state) {
        backend->matmul(wt, xt, ot);
        benchmark::DoNotOptimize(out.data());
    }
    const double flops =
        2.0 * static_cast<double>(n * k * t) * static_cast<double>(state.iterations());
    state.counters["GFLOP/s"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsRate);
}

// One layer of Qwen2.5-1.5B attention: 12 heads, 2 KV heads, head_dim 128, F16 cache; a causal
// prompt of T tokens (prefill), or one token against T cached (decode).
void BM_Attention(benchmark::State& state, bool decode) {
    const int64_t ctx = state.range(0), hd = 128, n_head = 12, n_kv = 2;
    const int64_t n_tok = decode ? 1 : ctx;
    auto backend = sift::backend_cpu_create({.n_threads = bench_threads()});
    std::vector<float> q = random_floats(hd * n_head * n_tok, 3), out(q.size());
    std::vector<uint16_t> k(static_cast<size_t>(hd * n_kv * ctx)), v(k.size());
    std::vector<float> kf = random_floats(static_cast<int64_t>(k.size()), 4);
    for (size_t i = 0; i < k.size(); ++i) {
        k[i] = sift::fp32_to_fp16(kf[i]);
        v[i] = sift::fp32_to_fp16(kf[(i * 7) % kf.size()]);
    }
    std::vector<int32_t> qpos(static_cast<size_t>(n_tok)), qseq(qpos.size(), 0);
    std::vector<int32_t> cpos(static_cast<size_t>(ctx)), cseq(cpos.size(), 0);
    for (int64_t i = 0; i < ctx; ++i) cpos[static_cast<size_t>(i)] = static_cast<int32_t>(i);
    for (int64_t i = 0; i < n_tok; ++i)
        qpos[static_cast<size_t>(i)] = static_cast<int32_t>(ctx - n_tok + i);
    sift::AttentionInputs in;
    in.q = Tensor::view(q.data(), DType::F32, {hd, n_head, n_tok});
    in.k = Tensor::view(k.data(), DType::F16, {hd, n_kv, ctx});
    in.v = Tensor::view(v.data(), DType::F16, {hd, n_kv, ctx});
    in.q_pos = Tensor::view(qpos.data(), DType::I32, {n_tok});
    in.q_seq = Tensor::view(qseq.data(), DType::I32, {n_tok});
    in.cell_pos = Tensor::view(cpos.data(), DType::I32, {ctx});
    in.cell_seq = Tensor::view(cseq.data(), DType::I32, {ctx});
    in.cell_begin = 0;
    in.cell_end = ctx;
    sift::AttentionParams params;
    params.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const Tensor ot = Tensor::view(out.data(), DType::F32, {hd, n_head, n_tok});
    for (auto _ : state) {
        backend->attention(in, params, ot);
        benchmark::DoNotOptimize(out.data());
    }
    // Causal: q.k and p.v over the visible half (prefill) or all cells (decode).
    const double pairs = decode ? static_cast<double>(ctx)
                                : 0.5 * static_cast<double>(ctx) * static_cast<double>(ctx + 1);
    const double flops =
        4.0 * pairs * static_cast<double>(hd * n_head) * static_cast<double>(state.iterations());
    state.counters["GFLOP/s"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    g_read_gbs = measure_read_bandwidth(bench_threads());
    std::printf("read bandwidth: %.1f GB/s (all threads), %.1f GB/s (1 thread)\n", g_read_gbs,
                measure_read_bandwidth(1));
    std::printf("floors: decode >= 0.6 x %.1f = %.1f GB/s; prefill q4_k >= 210 GFLOP/s\n",
                g_read_gbs, 0.6 * g_read_gbs);

    benchmark::RegisterBenchmark("thread_pool_call", BM_ThreadPoolCall)->UseRealTime();
    benchmark::RegisterBenchmark("read_bandwidth", BM_ReadBandwidth)
        ->Arg(1)
        ->Arg(2)
        ->Iterations(1)
        ->UseRealTime();
    const DType types[] = {DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_0,
                           DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                           DType::F16,  DType::BF16, DType::F32};
    const int64_t shapes[][2] = {{1536, 8960}, {8960, 1536}};
    for (DType type : types) {
        const std::string name(sift::dtype_name(type));
        for (const auto& s : shapes) {
            const std::string shape = std::to_string(s[0]) + "x" + std::to_string(s[1]);
            benchmark::RegisterBenchmark(("decode/" + name + "/" + shape).c_str(), BM_MatmulDecode,
                                         type, s[0], s[1])
                ->UseRealTime()
                ->MinTime(1.0);
        }
        for (const auto& s : shapes) {
            const std::string shape = std::to_string(s[0]) + "x" + std::to_string(s[1]);
            benchmark::RegisterBenchmark(("prefill/" + name + "/" + shape).c_str(),
                                         BM_MatmulPrefill, type, s[0], s[1], false)
                ->Arg(512)
                ->UseRealTime()
                ->Unit(benchmark::kMillisecond);
        }
    }
    benchmark::RegisterBenchmark("prefill_exact/q4_k/1536x8960", BM_MatmulPrefill, DType::Q4_K,
                                 1536, 8960, true)
        ->Arg(512)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("attention/prefill", BM_Attention, false)
        ->Arg(4096)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("attention/decode", BM_Attention, true)
        ->Arg(4096)
        ->Arg(32768)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
