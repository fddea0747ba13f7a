// The CUDA Backend: device memory, one stream, and each op forwarded to its cuda_* implementation.
#include <fmt/format.h>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_ops.h"

namespace sift {

// A captured op sequence: the instantiated graph and the scratch generation it baked in.
struct BackendGraph {
    cudaGraphExec_t exec = nullptr;
    uint64_t generation = 0;
};

namespace {

class CudaBackend final : public Backend {
  public:
    explicit CudaBackend(cuda::CudaContext* ctx) : ctx_(ctx) {}
    ~CudaBackend() override { cuda::cuda_context_destroy(ctx_); }

    Device device() const override { return Device::DEVICE_CUDA; }
    std::string name() const override {
        return fmt::format("cuda ({}, sm_{}{})", ctx_->name, ctx_->cc_major, ctx_->cc_minor);
    }

    void* alloc(size_t bytes) override {
        void* p = nullptr;
        const cudaError_t err = cudaMalloc(&p, std::max<size_t>(bytes, 1));
        if (err != cudaSuccess) {
            size_t free_bytes = 0, total = 0;
            cudaGetLastError();
            cudaMemGetInfo(&free_bytes, &total);
            SIFT_CHECK(false, "CUDA: out of device memory allocating {} bytes ({} of {} free)",
                       bytes, free_bytes, total);
        }
        // Zero-filled (the Backend contract): cache cells a batch has claimed but not yet
        // written are read by attention with zero weight, and 0 * NaN garbage would be NaN.
        SIFT_CUDA_CHECK(cudaMemset(p, 0, std::max<size_t>(bytes, 1)));
        return p;
    }
    size_t available_bytes() const override {
        size_t free_bytes = 0, total = 0;
        SIFT_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
        return free_bytes;
    }
    double measure_bandwidth() override {
        const size_t bytes = size_t{1} << 30;
        void* a = alloc(bytes);
        void* b = alloc(bytes);
        SIFT_CUDA_CHECK(cudaMemsetAsync(a, 1, bytes, ctx_->stream));
        cudaEvent_t start, stop;
        SIFT_CUDA_CHECK(cudaEventCreate(&start));
        SIFT_CUDA_CHECK(cudaEventCreate(&stop));
        float best_ms = 1e30f;
        for (int pass = 0; pass < 6; ++pass) {
            SIFT_CUDA_CHECK(cudaEventRecord(start, ctx_->stream));
            SIFT_CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, ctx_->stream));
            SIFT_CUDA_CHECK(cudaEventRecord(stop, ctx_->stream));
            SIFT_CUDA_CHECK(cudaEventSynchronize(stop));
            float ms = 0;
            SIFT_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
            if (pass > 0) best_ms = std::min(best_ms, ms);  // pass 0 warms up
        }
        cudaEventDestroy(start);
        cudaEventDestroy(stop);
        free(a);
        free(b);
        return 2.0 * static_cast<double>(bytes) / (best_ms * 1e-3);
    }
    void free(void* ptr) override {
        if (ptr != nullptr) {
            SIFT_CUDA_CHECK(cudaStreamSynchronize(ctx_->stream));
            SIFT_CUDA_CHECK(cudaFree(ptr));
        }
    }
    // Uploads are ordered with the ops on the stream; the host buffer may be reused on return
    // (pageable memory is staged before cudaMemcpyAsync returns; small copies are synchronous).
    void upload(const Tensor& dst, const void* src, size_t bytes) override {
        if (bytes == 0) return;
        SIFT_CUDA_CHECK(
            cudaMemcpyAsync(dst.data, src, bytes, cudaMemcpyHostToDevice, ctx_->stream));
    }
    void download(void* dst, const Tensor& src, size_t bytes) override {
        if (bytes == 0) return;
        SIFT_CUDA_CHECK(
            cudaMemcpyAsync(dst, src.data, bytes, cudaMemcpyDeviceToHost, ctx_->stream));
        SIFT_CUDA_CHECK(cudaStreamSynchronize(ctx_->stream));
    }
    void synchronize() override { SIFT_CUDA_CHECK(cudaStreamSynchronize(ctx_->stream)); }

    bool graph_supported() const override { return true; }
    void graph_begin_capture() override {
        SIFT_CHECK(!ctx_->epoch.capturing, "graph capture already open");
        // Relaxed: the first use of a kernel sets its attributes and a grown scratch buffer is
        // allocated (not freed) during the capture; neither touches the stream.
        SIFT_CUDA_CHECK(cudaStreamBeginCapture(ctx_->stream, cudaStreamCaptureModeRelaxed));
        ctx_->epoch.capturing = true;
        capture_generation_ = ctx_->epoch.generation;
    }
    BackendGraph* graph_end_capture(BackendGraph* prev) override {
        SIFT_CHECK(ctx_->epoch.capturing, "no graph capture open");
        cudaGraph_t graph = nullptr;
        const cudaError_t err = cudaStreamEndCapture(ctx_->stream, &graph);
        ctx_->epoch.capturing = false;
        if (!ctx_->epoch.retired.empty()) {
            SIFT_CUDA_CHECK(cudaStreamSynchronize(ctx_->stream));
            for (void* p : ctx_->epoch.retired) SIFT_CUDA_CHECK(cudaFree(p));
            ctx_->epoch.retired.clear();
        }
        // A capture that saw a scratch buffer move baked in a freed address.
        if (err != cudaSuccess || graph == nullptr ||
            ctx_->epoch.generation != capture_generation_) {
            cudaGetLastError();
            if (graph != nullptr) cudaGraphDestroy(graph);
            return nullptr;
        }
        BackendGraph* out = prev != nullptr ? prev : new BackendGraph;
        bool updated = false;
        if (out->exec != nullptr) {
            // Same nodes with new parameters (the usual case: a longer attention range) update
            // in place, several times cheaper than instantiating.
            cudaGraphExecUpdateResultInfo info{};
            updated = cudaGraphExecUpdate(out->exec, graph, &info) == cudaSuccess;
            if (!updated) {
                cudaGetLastError();
                SIFT_CUDA_CHECK(cudaGraphExecDestroy(out->exec));
                out->exec = nullptr;
            }
        }
        if (!updated) SIFT_CUDA_CHECK(cudaGraphInstantiate(&out->exec, graph, 0));
        SIFT_CUDA_CHECK(cudaGraphDestroy(graph));
        out->generation = ctx_->epoch.generation;
        return out;
    }
    bool graph_launch(BackendGraph* graph) override {
        if (graph == nullptr || graph->exec == nullptr ||
            graph->generation != ctx_->epoch.generation)
            return false;
        SIFT_CUDA_CHECK(cudaGraphLaunch(graph->exec, ctx_->stream));
        return true;
    }
    void graph_destroy(BackendGraph* graph) override {
        if (graph == nullptr) return;
        if (graph->exec != nullptr) SIFT_CUDA_CHECK(cudaGraphExecDestroy(graph->exec));
        delete graph;
    }

    void get_rows(const Tensor& table, const Tensor& ids, Tensor out) override {
        cuda::cuda_get_rows(*ctx_, table, ids, out);
    }
    DType matmul_input_type(const Tensor& w, int64_t n_tokens) const override {
        return cuda::cuda_matmul_input_type(w, n_tokens);
    }
    void matmul(const Tensor& w, const Tensor& x, Tensor out) override {
        cuda::cuda_matmul(*ctx_, w, x, out);
    }
    void matmul_shared(const Tensor* ws, size_t n, const Tensor& x, Tensor* outs) override {
        cuda::cuda_matmul_shared(*ctx_, ws, n, x, outs);
    }
    void attention_prep(Tensor q, Tensor k, const Tensor& v, bool qk_norm, const Tensor* q_norm,
                        const Tensor* k_norm, float eps, const Tensor& pos, const RopeParams& rope,
                        const Tensor& cells, Tensor cache_k, Tensor cache_v) override {
        if (!cuda::cuda_attention_prep(*ctx_, q, k, v, qk_norm, q_norm, k_norm, eps, pos, rope,
                                       cells, cache_k, cache_v))
            Backend::attention_prep(q, k, v, qk_norm, q_norm, k_norm, eps, pos, rope, cells,
                                    cache_k, cache_v);
    }
    void matmul_gated(const Tensor& w_gate, const Tensor& w_up, const Tensor& x, GatedAct act,
                      Tensor gate, Tensor up, Tensor out) override {
        cuda::cuda_matmul_gated(*ctx_, w_gate, w_up, x, act, gate, up, out);
    }
    void add(const Tensor& a, const Tensor& b, Tensor out) override {
        cuda::cuda_add(*ctx_, a, b, out);
    }
    void mul(const Tensor& a, const Tensor& b, Tensor out) override {
        cuda::cuda_mul(*ctx_, a, b, out);
    }
    void scale(const Tensor& x, float s, Tensor out) override {
        cuda::cuda_scale(*ctx_, x, s, out);
    }
    void rms_norm(const Tensor& x, const Tensor* w, float eps, Tensor out) override {
        cuda::cuda_rms_norm(*ctx_, x, w, eps, out);
    }
    void rope(const Tensor& x, const Tensor& pos, const RopeParams& params, Tensor out) override {
        cuda::cuda_rope(*ctx_, x, pos, params, out);
    }
    void add_rms_norm(const Tensor& a, const Tensor& b, const Tensor* w, float eps, Tensor sum,
                      Tensor out) override {
        cuda::cuda_add_rms_norm(*ctx_, a, b, w, eps, sum, out);
    }
    void rms_norm_rope(const Tensor& x, const Tensor* w, float eps, const Tensor& pos,
                       const RopeParams& params, Tensor out) override {
        cuda::cuda_rms_norm_rope(*ctx_, x, w, eps, pos, params, out);
    }
    void swiglu(const Tensor& gate, const Tensor& up, Tensor out) override {
        cuda::cuda_swiglu(*ctx_, gate, up, out);
    }
    void geglu(const Tensor& gate, const Tensor& up, Tensor out) override {
        cuda::cuda_geglu(*ctx_, gate, up, out);
    }
    void set_rows(const Tensor& src, const Tensor& idx, Tensor dst) override {
        cuda::cuda_set_rows(*ctx_, src, idx, dst);
    }
    void attention(const AttentionInputs& in, const AttentionParams& params, Tensor out) override {
        cuda::cuda_attention(*ctx_, in, params, out);
    }
    void attention_probe(const AttentionInputs& in, const AttentionParams& params,
                         const RopeParams* unrope, Tensor probs_max) override {
        cuda::cuda_attention_probe(*ctx_, in, params, unrope, probs_max);
    }
    void attention_block_select(const AttentionInputs& in, const AttentionParams& params,
                                const BlockSparseParams& bs, int64_t n_qblocks_total,
                                Tensor block_mask) override {
        cuda::cuda_attention_block_select(*ctx_, in, params, bs, n_qblocks_total, block_mask);
    }
    size_t key_means_bytes(int64_t head_dim, int64_t n_head_kv, int64_t n_kblocks) const override {
        return cuda::cuda_key_means_bytes(head_dim, n_head_kv, n_kblocks);
    }
    size_t attention_scratch_bytes(int64_t kv_dim, int64_t n_cells, DType type_k,
                                   DType type_v) const override {
        return cuda::cuda_attention_scratch_bytes(kv_dim, n_cells, type_k, type_v);
    }
    void argmax(const Tensor& x, Tensor out) override { cuda::cuda_argmax(*ctx_, x, out); }

  private:
    cuda::CudaContext* ctx_;
    uint64_t capture_generation_ = 0;
};

}  // namespace

Result<std::unique_ptr<Backend>> backend_cuda_create(const CudaBackendOptions& options) {
    Result<cuda::CudaContext*> ctx = cuda::cuda_context_create(options.device);
    if (!ctx) return ctx.error();
    return std::unique_ptr<Backend>(std::make_unique<CudaBackend>(*ctx));
}

}  // namespace sift
