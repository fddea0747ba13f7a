// ThreadPool: every index exactly once, valid thread indices, many back-to-back jobs, nesting.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>
#include <vector>

#include "core/thread_pool.h"

namespace sift {
namespace {

void expect_each_index_once(ThreadPool& pool, int64_t n, int64_t chunk) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    std::atomic<bool> bad_range{false}, bad_thread{false};
    pool.parallel_for(n, chunk, [&](int64_t b, int64_t e, int thread) {
        if (b < 0 || e > n || b >= e || e - b > std::max<int64_t>(1, chunk)) bad_range = true;
        if (thread < 0 || thread >= pool.size()) bad_thread = true;
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
    });
    EXPECT_FALSE(bad_range) << "n=" << n << " chunk=" << chunk;
    EXPECT_FALSE(bad_thread);
    for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "index " << i;
}

TEST(ThreadPool, VisitsEveryIndexOnceForManyShapes) {
    for (int threads : {1, 2, 3, 5}) {
        ThreadPool pool(threads);
        EXPECT_EQ(pool.size(), threads);
        for (int64_t n : {0, 1, 2, 7, 64, 1000, 4097}) {
            for (int64_t chunk : {0, 1, 3, 64, 5000}) expect_each_index_once(pool, n, chunk);
        }
    }
}

TEST(ThreadPool, DefaultSizeIsTheHardwareThreads) {
    ThreadPool pool(0);
    EXPECT_GE(pool.size(), 1);
}

TEST(ThreadPool, ManyBackToBackJobsAsInDecode) {
    ThreadPool pool(4);
    std::atomic<int64_t> total{0};
    for (int job = 0; job < 5000; ++job) {
        pool.parallel_for(16, 1, [&](int64_t b, int64_t e, int) { total += e - b; });
    }
    EXPECT_EQ(total.load(), 5000 * 16);
}

TEST(ThreadPool, ConcurrentChunksUseDistinctThreadIndices) {
    ThreadPool pool(3);
    std::vector<std::atomic<int>> in_use(3);
    std::atomic<bool> shared{false};
    pool.parallel_for(300, 1, [&](int64_t, int64_t, int thread) {
        if (in_use[static_cast<size_t>(thread)].fetch_add(1) != 0) shared = true;
        std::this_thread::sleep_for(std::chrono::microseconds(20));  // overlap the chunks
        in_use[static_cast<size_t>(thread)].fetch_sub(1);
    });
    EXPECT_FALSE(shared);
}

TEST(ThreadPool, NestedCallsRunInlineOnTheCallersThread) {
    ThreadPool pool(2);
    std::atomic<int64_t> total{0};
    std::atomic<bool> thread_changed{false};
    pool.parallel_for(8, 1, [&](int64_t, int64_t, int outer) {
        pool.parallel_for(10, 3, [&](int64_t b, int64_t e, int inner) {
            if (inner != outer) thread_changed = true;
            total += e - b;
        });
    });
    EXPECT_EQ(total.load(), 80);
    EXPECT_FALSE(thread_changed);
}

TEST(ThreadPool, SurvivesIdleSleepBetweenJobs) {
    ThreadPool pool(2);
    for (int round = 0; round < 3; ++round) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // workers fall asleep
        expect_each_index_once(pool, 100, 7);
    }
}

}  // namespace
}  // namespace sift
