#include "core/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace sift {
namespace {

// The pool whose job this OS thread is running (null outside jobs) and its index there: nested
// calls run inline and must reuse the caller's index so per-thread scratch is not shared.
thread_local const ThreadPool* tls_pool = nullptr;
thread_local int tls_thread_index = 0;

// About 50 us of polling at ~65 cycles per pause: decode issues the next op well within that, so
// workers rarely pay a futex wake-up, yet an idle pool stops burning the (shared) cores quickly.
constexpr int kSpinIterations = 2000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#else
    std::this_thread::yield();
#endif
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
    if (n_threads <= 0) n_threads = static_cast<int>(std::thread::hardware_concurrency());
    n_threads_ = std::max(1, n_threads);
    workers_.reserve(static_cast<size_t>(n_threads_ - 1));
    for (int t = 1; t < n_threads_; ++t) workers_.emplace_back([this, t] { worker_main(t); });
}

ThreadPool::~ThreadPool() {
    stop_.store(true, std::memory_order_release);
    epoch_.fetch_add(1, std::memory_order_release);
    epoch_.notify_all();
    for (std::thread& w : workers_) w.join();
}

void ThreadPool::run_chunks(int thread) {
    const int64_t n = job_n_;
    const int64_t chunk = job_chunk_;
    for (;;) {
        const int64_t begin = next_.fetch_add(chunk, std::memory_order_relaxed);
        if (begin >= n) break;
        job_call_(job_ctx_, begin, std::min(begin + chunk, n), thread);
    }
}

void ThreadPool::worker_main(int thread) {
    tls_pool = this;
    tls_thread_index = thread;
    uint32_t seen = 0;
    for (;;) {
        uint32_t epoch = epoch_.load(std::memory_order_acquire);
        for (int spin = 0; epoch == seen; epoch = epoch_.load(std::memory_order_acquire)) {
            if (++spin < kSpinIterations) {
                cpu_relax();
            } else {
                epoch_.wait(seen, std::memory_order_acquire);
                spin = 0;
            }
        }
        seen = epoch;
        if (stop_.load(std::memory_order_acquire)) return;
        run_chunks(thread);
        pending_.fetch_sub(1, std::memory_order_release);
    }
}

void ThreadPool::run(int64_t n, int64_t chunk, ChunkFn call, void* ctx) {
    if (n <= 0) return;
    chunk = std::max<int64_t>(1, chunk);
    // Inline when there is nothing to share or when nested inside a job.
    if (workers_.empty() || chunk >= n || tls_pool == this) {
        const int thread = tls_pool == this ? tls_thread_index : 0;
        for (int64_t b = 0; b < n; b += chunk) call(ctx, b, std::min(b + chunk, n), thread);
        return;
    }
    job_call_ = call;
    job_ctx_ = ctx;
    job_n_ = n;
    job_chunk_ = chunk;
    next_.store(0, std::memory_order_relaxed);
    pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    epoch_.fetch_add(1, std::memory_order_release);
    epoch_.notify_all();

    const ThreadPool* saved_pool = tls_pool;
    const int saved_index = tls_thread_index;
    tls_pool = this;
    tls_thread_index = 0;
    run_chunks(0);
    tls_pool = saved_pool;
    tls_thread_index = saved_index;

    // Workers finish within a chunk's time; yield if one was descheduled on a busy machine.
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
        if (spin < kSpinIterations) {
            cpu_relax();
        } else {
            std::this_thread::yield();
        }
    }
}

}  // namespace sift
