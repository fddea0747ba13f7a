// Programmer errors abort with file:line; input errors use Result (core/result.h).
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

namespace sift::detail {
inline std::string check_message() {
    return {};
}
template <typename... Args>
std::string check_message(fmt::format_string<Args...> format, Args&&... args) {
    return fmt::format(format, std::forward<Args>(args)...);
}

[[noreturn]] inline void check_failed(const char* file, int line, const char* cond,
                                      const std::string& message) {
    std::fprintf(stderr, "%s:%d: check failed: %s %s\n", file, line, cond, message.c_str());
    std::fflush(stderr);
    std::abort();
}
}  // namespace sift::detail

// SIFT_CHECK(cond) or SIFT_CHECK(cond, "format {}", args...)
#define SIFT_CHECK(cond, ...)                                                         \
    do {                                                                              \
        if (!(cond)) {                                                                \
            ::sift::detail::check_failed(__FILE__, __LINE__, #cond,                   \
                                         ::sift::detail::check_message(__VA_ARGS__)); \
        }                                                                             \
    } while (0)
