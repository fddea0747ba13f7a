#include "backend/profiling_backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <vector>

namespace sift {
namespace {

using Clock = std::chrono::steady_clock;

// Micro-batch size classes: decode, small batches (speculative verify), prefill.
std::string tokens_class(int64_t t) {
    return t == 1 ? "T=1" : t <= 32 ? "T<=32" : "T>32";
}

std::string shape(const Tensor& t) {
    return fmt::format("{}x{}", t.ne[0], t.ne[1]);
}

}  // namespace

class ProfilingBackend final : public Backend {
  public:
    explicit ProfilingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}
    ~ProfilingBackend() override {
        const std::string report = this->report();
        if (!report.empty()) fmt::print(stderr, "{}", report);
    }

    std::string report() const {
        if (stats_.empty()) return "";
        std::vector<std::pair<std::string, Stat>> rows(stats_.begin(), stats_.end());
        std::sort(rows.begin(), rows.end(),
                  [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
        double total = 0;
        for (const auto& [key, s] : rows) total += s.seconds;
        std::string out = fmt::format("profile ({}; each op synchronized): {:.3f} s in ops\n",
                                      inner_->name(), total);
        out += fmt::format("{:>9} {:>6} {:>9} {:>11}  {}\n", "ms", "%", "calls", "us/call", "op");
        for (const auto& [key, s] : rows)
            out += fmt::format("{:9.2f} {:6.1f} {:9} {:11.1f}  {}\n", s.seconds * 1e3,
                               total > 0 ? 100.0 * s.seconds / total : 0.0, s.calls,
                               s.seconds * 1e6 / static_cast<double>(s.calls), key);
        return out;
    }

    Device device() const override { return inner_->device(); }
    std::string name() const override { return inner_->name(); }
    void* alloc(size_t bytes) override { return inner_->alloc(bytes); }
    size_t available_bytes() const override { return inner_->available_bytes(); }
    double measure_bandwidth() override { return inner_->measure_bandwidth(); }
    void free(void* ptr) override { inner_->free(ptr); }
    void upload(const Tensor& dst, const void* src, size_t bytes) override {
        timed("upload", [&] { inner_->upload(dst, src, bytes); });
    }
    void download(void* dst, const Tensor& src, size_t bytes) override {
        timed("download", [&] { inner_->download(dst, src, bytes); });
    }
    void synchronize() override { inner_->synchronize(); }

    void get_rows(const Tensor& table, const Tensor& ids, Tensor out) override {
        timed(fmt::format("get_rows {} {}", dtype_name(table.type), tokens_class(ids.ne[0])),
              [&] { inner_->get_rows(table, ids, out); });
    }
    void matmul(const Tensor& w, const Tensor& x, Tensor out) override {
        timed(fmt::format("matmul {} {} {}", dtype_name(w.type), shape(w), tokens_class(x.ne[1])),
              [&] { inner_->matmul(w, x, out); });
    }
    DType matmul_input_type(const Tensor& w, int64_t n_tokens) const override {
        return inner_->matmul_input_type(w, n_tokens);
    }
    void matmul_shared(const Tensor* ws, size_t n, const Tensor& x, Tensor* outs) override {
        std::string key =
            fmt::format("matmul_shared x{} {} {}x(", n, n == 0 ? "" : dtype_name(ws[0].type),
                        n == 0 ? 0 : ws[0].ne[0]);
        for (size_t i = 0; i < n; ++i) key += fmt::format("{}{}", i ? "+" : "", ws[i].ne[1]);
        timed(key + ") " + tokens_class(x.ne[1]), [&] { inner_->matmul_shared(ws, n, x, outs); });
    }
    void add(const Tensor& a, const Tensor& b, Tensor out) override {
        timed(fmt::format("add {}", tokens_class(a.ne[1])), [&] { inner_->add(a, b, out); });
    }
    void mul(const Tensor& a, const Tensor& b, Tensor out) override {
        timed(fmt::format("mul {}", tokens_class(a.ne[1])), [&] { inner_->mul(a, b, out); });
    }
    void scale(const Tensor& x, float s, Tensor out) override {
        timed(fmt::format("scale {}", tokens_class(x.ne[1])), [&] { inner_->scale(x, s, out); });
    }
    void rms_norm(const Tensor& x, const Tensor* w, float eps, Tensor out) override {
        timed(fmt::format("rms_norm {}", x.ne[0]), [&] { inner_->rms_norm(x, w, eps, out); });
    }
    void rope(const Tensor& x, const Tensor& pos, const RopeParams& params, Tensor out) override {
        timed(fmt::format("rope {}", tokens_class(pos.ne[0])),
              [&] { inner_->rope(x, pos, params, out); });
    }
    void add_rms_norm(const Tensor& a, const Tensor& b, const Tensor* w, float eps, Tensor sum,
                      Tensor out) override {
        timed(fmt::format("add_rms_norm {} {}", a.ne[0], tokens_class(a.ne[1])),
              [&] { inner_->add_rms_norm(a, b, w, eps, sum, out); });
    }
    void rms_norm_rope(const Tensor& x, const Tensor* w, float eps, const Tensor& pos,
                       const RopeParams& params, Tensor out) override {
        timed(fmt::format("rms_norm_rope {}", tokens_class(pos.ne[0])),
              [&] { inner_->rms_norm_rope(x, w, eps, pos, params, out); });
    }
    void swiglu(const Tensor& gate, const Tensor& up, Tensor out) override {
        timed(fmt::format("swiglu {}", tokens_class(gate.ne[1])),
              [&] { inner_->swiglu(gate, up, out); });
    }
    void geglu(const Tensor& gate, const Tensor& up, Tensor out) override {
        timed(fmt::format("geglu {}", tokens_class(gate.ne[1])),
              [&] { inner_->geglu(gate, up, out); });
    }
    void attention_prep(Tensor q, Tensor k, const Tensor& v, bool qk_norm, const Tensor* q_norm,
                        const Tensor* k_norm, float eps, const Tensor& pos, const RopeParams& rope,
                        const Tensor& cells, Tensor cache_k, Tensor cache_v) override {
        timed(
            fmt::format("attention_prep {} {}", dtype_name(cache_k.type), tokens_class(pos.ne[0])),
            [&] {
                inner_->attention_prep(q, k, v, qk_norm, q_norm, k_norm, eps, pos, rope, cells,
                                       cache_k, cache_v);
            });
    }
    void matmul_gated(const Tensor& w_gate, const Tensor& w_up, const Tensor& x, GatedAct act,
                      Tensor gate, Tensor up, Tensor out) override {
        timed(fmt::format("matmul_gated {} {} {}", dtype_name(w_gate.type), shape(w_gate),
                          tokens_class(x.ne[1])),
              [&] { inner_->matmul_gated(w_gate, w_up, x, act, gate, up, out); });
    }
    void set_rows(const Tensor& src, const Tensor& idx, Tensor dst) override {
        timed(fmt::format("set_rows {} {}", dtype_name(dst.type), tokens_class(idx.ne[0])),
              [&] { inner_->set_rows(src, idx, dst); });
    }
    void attention(const AttentionInputs& in, const AttentionParams& params, Tensor out) override {
        timed(fmt::format("attention{} d{} {}/{} heads {}", in.block_mask ? " block-sparse" : "",
                          in.q.ne[0], in.q.ne[1], in.k.ne[1], tokens_class(in.q.ne[2])),
              [&] { inner_->attention(in, params, out); });
    }
    void attention_probe(const AttentionInputs& in, const AttentionParams& params,
                         const RopeParams* unrope, Tensor probs_max) override {
        timed(fmt::format("attention_probe d{} {}/{} heads", in.q.ne[0], in.q.ne[1], in.k.ne[1]),
              [&] { inner_->attention_probe(in, params, unrope, probs_max); });
    }
    void attention_block_select(const AttentionInputs& in, const AttentionParams& params,
                                const BlockSparseParams& bs, int64_t n_qblocks_total,
                                Tensor block_mask) override {
        timed(fmt::format("attention_block_select d{} {}/{} heads", in.q.ne[0], in.q.ne[1],
                          in.k.ne[1]),
              [&] { inner_->attention_block_select(in, params, bs, n_qblocks_total, block_mask); });
    }
    size_t key_means_bytes(int64_t head_dim, int64_t n_head_kv, int64_t n_kblocks) const override {
        return inner_->key_means_bytes(head_dim, n_head_kv, n_kblocks);
    }
    size_t attention_scratch_bytes(int64_t kv_dim, int64_t n_cells, DType type_k,
                                   DType type_v) const override {
        return inner_->attention_scratch_bytes(kv_dim, n_cells, type_k, type_v);
    }
    void argmax(const Tensor& x, Tensor out) override {
        timed("argmax", [&] { inner_->argmax(x, out); });
    }

  private:
    struct Stat {
        int64_t calls = 0;
        double seconds = 0;
    };

    template <typename F>
    void timed(const std::string& key, F&& op) {
        inner_->synchronize();
        const Clock::time_point start = Clock::now();
        op();
        inner_->synchronize();
        Stat& s = stats_[key];
        ++s.calls;
        s.seconds += std::chrono::duration<double>(Clock::now() - start).count();
    }

    std::unique_ptr<Backend> inner_;
    std::map<std::string, Stat> stats_;
};

std::unique_ptr<Backend> backend_profile_wrap(std::unique_ptr<Backend> inner) {
    return std::make_unique<ProfilingBackend>(std::move(inner));
}

std::string backend_profile_report(const Backend& backend) {
    const auto* p = dynamic_cast<const ProfilingBackend*>(&backend);
    return p != nullptr ? p->report() : "";
}

}  // namespace sift
