// The CPU Backend: host memory, and each op forwarded to its cpu_* implementation. The ISA is
// chosen once here: AVX2+FMA+F16C when the running CPU has them, else portable scalar code, so
// one binary runs on any x86-64 (and builds elsewhere).
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include <unistd.h>

#include "backend/cpu/cpu_context.h"
#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/ops.h"
#include "core/check.h"
#include "core/thread_pool.h"

namespace sift {
namespace {

using Clock = std::chrono::steady_clock;

// Sums a buffer far larger than the caches with every thread of the pool; best of six passes.
double measure_read_bandwidth(ThreadPool& pool, size_t bytes) {
    const size_t n = bytes / sizeof(uint64_t);
    std::unique_ptr<uint64_t[]> buf(new uint64_t[n]);
    pool.parallel_for(static_cast<int64_t>(n), 1 << 20, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) buf[static_cast<size_t>(i)] = static_cast<uint64_t>(i);
    });
    std::vector<uint64_t> sink(static_cast<size_t>(pool.size()) * 8, 0);
    double best = 0;
    for (int pass = 0; pass < 6; ++pass) {
        const int64_t per = static_cast<int64_t>(n) / pool.size();
        const Clock::time_point start = Clock::now();
        pool.parallel_for(pool.size(), 1, [&](int64_t b, int64_t, int t) {
            const uint64_t* p = buf.get() + b * per;
            uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
            for (int64_t i = 0; i + 8 <= per; i += 8) {
                a0 += p[i];
                a1 += p[i + 1];
                a2 += p[i + 2];
                a3 += p[i + 3];
                a4 += p[i + 4];
                a5 += p[i + 5];
                a6 += p[i + 6];
                a7 += p[i + 7];
            }
            sink[static_cast<size_t>(t) * 8] += a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
        });
        const double s = std::chrono::duration<double>(Clock::now() - start).count();
        best = std::max(best, static_cast<double>(per * pool.size()) * 8.0 / s);
    }
    volatile uint64_t keep = 0;
    for (uint64_t v : sink) keep = keep + v;
    (void)keep;
    return best;
}

class CpuBackend final : public Backend {
  public:
    explicit CpuBackend(const CpuBackendOptions& options)
        : ctx_(options.n_threads, options.exact, cpu::cpu_isa_detect()) {}

    Device device() const override { return Device::DEVICE_CPU; }
    std::string name() const override {
        return fmt::format("cpu ({}, {} threads, {})", cpu::cpu_isa_name(ctx_.isa),
                           ctx_.pool.size(), ctx_.exact ? "exact" : "fast");
    }

    void* alloc(size_t bytes) override {
        // 64-byte alignment: whole cache lines for SIMD loads and no false sharing.
        const size_t rounded = (bytes + 63) / 64 * 64;
        void* p = std::aligned_alloc(64, rounded);
        SIFT_CHECK(p != nullptr || bytes == 0, "out of host memory allocating {} bytes", bytes);
        // Zero-filled (the Backend contract): cache cells a batch has claimed but not yet
        // written are read by attention with zero weight, and 0 * NaN garbage would be NaN.
        if (p != nullptr) std::memset(p, 0, rounded);
        return p;
    }
    void free(void* ptr) override { std::free(ptr); }
    double measure_bandwidth() override {
        return measure_read_bandwidth(ctx_.pool, size_t{1} << 30);
    }
    size_t available_bytes() const override {
        // MemAvailable counts reclaimable page cache (the mapped GGUF lives there).
        std::ifstream meminfo("/proc/meminfo");
        std::string key;
        size_t kb = 0;
        while (meminfo >> key >> kb) {
            if (key == "MemAvailable:") return kb * 1024;
            meminfo.ignore(256, '\n');
        }
        return static_cast<size_t>(sysconf(_SC_AVPHYS_PAGES)) *
               static_cast<size_t>(sysconf(_SC_PAGESIZE));
    }
    void upload(const Tensor& dst, const void* src, size_t bytes) override {
        std::memcpy(dst.data, src, bytes);
    }
    void download(void* dst, const Tensor& src, size_t bytes) override {
        std::memcpy(dst, src.data, bytes);
    }
    void synchronize() override {}

    void get_rows(const Tensor& table, const Tensor& ids, Tensor out) override {
        cpu::cpu_get_rows(ctx_, table, ids, out);
    }
    void matmul(const Tensor& w, const Tensor& x, Tensor out) override {
        cpu::cpu_matmul(ctx_, w, x, out);
    }
    void add(const Tensor& a, const Tensor& b, Tensor out) override {
        cpu::cpu_add(ctx_, a, b, out);
    }
    void mul(const Tensor& a, const Tensor& b, Tensor out) override {
        cpu::cpu_mul(ctx_, a, b, out);
    }
    void scale(const Tensor& x, float s, Tensor out) override { cpu::cpu_scale(ctx_, x, s, out); }
    void rms_norm(const Tensor& x, const Tensor* w, float eps, Tensor out) override {
        cpu::cpu_rms_norm(ctx_, x, w, eps, out);
    }
    void rope(const Tensor& x, const Tensor& pos, const RopeParams& params, Tensor out) override {
        cpu::cpu_rope(ctx_, x, pos, params, out);
    }
    void swiglu(const Tensor& gate, const Tensor& up, Tensor out) override {
        cpu::cpu_swiglu(ctx_, gate, up, out);
    }
    void geglu(const Tensor& gate, const Tensor& up, Tensor out) override {
        cpu::cpu_geglu(ctx_, gate, up, out);
    }
    void set_rows(const Tensor& src, const Tensor& idx, Tensor dst) override {
        cpu::cpu_set_rows(ctx_, src, idx, dst);
    }
    void attention(const AttentionInputs& in, const AttentionParams& params, Tensor out) override {
        cpu::cpu_attention(ctx_, in, params, out);
    }
    void attention_probe(const AttentionInputs& in, const AttentionParams& params,
                         const RopeParams* unrope, Tensor probs_max) override {
        cpu::cpu_attention_probe(ctx_, in, params, unrope, probs_max);
    }
    void attention_block_select(const AttentionInputs& in, const AttentionParams& params,
                                const BlockSparseParams& bs, int64_t n_qblocks_total,
                                Tensor block_mask) override {
        cpu::cpu_attention_block_select(ctx_, in, params, bs, n_qblocks_total, block_mask);
    }
    void argmax(const Tensor& x, Tensor out) override { cpu::cpu_argmax(ctx_, x, out); }

  private:
    cpu::CpuContext ctx_;
};

}  // namespace

std::unique_ptr<Backend> backend_cpu_create(const CpuBackendOptions& options) {
    return std::make_unique<CpuBackend>(options);
}

}  // namespace sift
