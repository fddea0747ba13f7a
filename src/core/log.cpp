#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace sift {
namespace {

LogLevel level_from_env() {
    const char* env = std::getenv("SIFT_LOG");
    if (env == nullptr) return LogLevel::LOG_INFO;
    if (std::strcmp(env, "debug") == 0) return LogLevel::LOG_DEBUG;
    if (std::strcmp(env, "warn") == 0) return LogLevel::LOG_WARN;
    if (std::strcmp(env, "error") == 0) return LogLevel::LOG_ERROR;
    return LogLevel::LOG_INFO;
}

std::atomic<int>& threshold() {
    static std::atomic<int> value{static_cast<int>(level_from_env())};
    return value;
}

}  // namespace

LogLevel log_threshold() {
    return static_cast<LogLevel>(threshold().load());
}

void log_set_threshold(LogLevel level) {
    threshold().store(static_cast<int>(level));
}

void log_write(LogLevel level, std::string_view message) {
    static std::mutex mutex;
    static const char* const names[] = {"debug", "info", "warn", "error"};
    std::lock_guard<std::mutex> lock(mutex);
    std::fprintf(stderr, "sift %s: %.*s\n", names[static_cast<int>(level)],
                 static_cast<int>(message.size()), message.data());
}

}  // namespace sift
