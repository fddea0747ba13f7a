// A small persistent thread pool: parallel_for over [0, n) in chunks, with the calling thread
// taking part. Decode calls it hundreds of times per token, so a call costs a few atomics when
// the workers are awake (they spin briefly after each job before sleeping on a futex).
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace sift {

class ThreadPool {
  public:
    // n_threads counts the caller; <= 0 means one per hardware thread.
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }

    // Calls fn(begin, end, thread) for consecutive chunks [begin, end) of at most `chunk`
    // indices covering [0, n) exactly once, and returns when all are done. thread is in
    // [0, size()) and unique among concurrently running calls (for per-thread scratch).
    // Chunks are handed out dynamically, so uneven chunks balance. Calls from inside fn
    // (nested) run inline on the calling thread. One caller at a time (the backend's thread).
    template <typename Fn>
    void parallel_for(int64_t n, int64_t chunk, Fn&& fn) {
        using F = std::remove_reference_t<Fn>;
        run(
            n, chunk,
            [](void* ctx, int64_t b, int64_t e, int t) { (*static_cast<F*>(ctx))(b, e, t); },
            const_cast<void*>(static_cast<const void*>(&fn)));
    }

  private:
    using ChunkFn = void (*)(void* ctx, int64_t begin, int64_t end, int thread);

    void run(int64_t n, int64_t chunk, ChunkFn call, void* ctx);
    void worker_main(int thread);
    void run_chunks(int thread);

    int n_threads_ = 1;
    std::vector<std::thread> workers_;

    // The current job; written by the caller before epoch_ is bumped (release), read by workers
    // after they see the new epoch (acquire).
    ChunkFn job_call_ = nullptr;
    void* job_ctx_ = nullptr;
    int64_t job_n_ = 0;
    int64_t job_chunk_ = 1;

    // Separate cache lines: next_ is hammered by every chunk grab, epoch_ polled by spinners.
    alignas(64) std::atomic<int64_t> next_{0};
    alignas(64) std::atomic<uint32_t> epoch_{0};
    alignas(64) std::atomic<int> pending_{0};  // workers that have not finished the current job
    std::atomic<bool> stop_{false};
};

}  // namespace sift
