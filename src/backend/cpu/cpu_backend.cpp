// The CPU Backend: host memory, and each op forwarded to its cpu_* implementation. The ISA is
// chosen once here: AVX2+FMA+F16C when the running CPU has them, else portable scalar code, so
// one binary runs on any x86-64 (and builds elsewhere).
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "backend/cpu/cpu_context.h"
#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/ops.h"
#include "core/check.h"

namespace sift {
namespace {

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
        void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
        SIFT_CHECK(p != nullptr || bytes == 0, "out of host memory allocating {} bytes", bytes);
        return p;
    }
    void free(void* ptr) override { std::free(ptr); }
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
    void argmax(const Tensor& x, Tensor out) override { cpu::cpu_argmax(ctx_, x, out); }

  private:
    cpu::CpuContext ctx_;
};

}  // namespace

std::unique_ptr<Backend> backend_cpu_create(const CpuBackendOptions& options) {
    return std::make_unique<CpuBackend>(options);
}

}  // namespace sift
