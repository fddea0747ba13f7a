// Leveled logging to stderr. SIFT_LOG=debug|info|warn|error sets the threshold.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace sift {

enum class LogLevel { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

LogLevel log_threshold();
void log_set_threshold(LogLevel level);
void log_write(LogLevel level, std::string_view message);

template <typename... Args>
void log_at(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
    if (level < log_threshold()) return;
    log_write(level, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace sift

#define SIFT_LOG_DEBUG(...) ::sift::log_at(::sift::LogLevel::LOG_DEBUG, __VA_ARGS__)
#define SIFT_LOG_INFO(...) ::sift::log_at(::sift::LogLevel::LOG_INFO, __VA_ARGS__)
#define SIFT_LOG_WARN(...) ::sift::log_at(::sift::LogLevel::LOG_WARN, __VA_ARGS__)
#define SIFT_LOG_ERROR(...) ::sift::log_at(::sift::LogLevel::LOG_ERROR, __VA_ARGS__)
