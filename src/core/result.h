// Result<T>: a value or an Error (input errors are values, never asserts).
#pragma once

#include <fmt/format.h>

#include <string>
#include <utility>
#include <variant>

namespace sift {

struct Error {
    std::string message;
};

// Builds an Error with a fmt-formatted message.
template <typename... Args>
Error make_error(fmt::format_string<Args...> format, Args&&... args) {
    return Error{fmt::format(format, std::forward<Args>(args)...)};
}

template <typename T>
class [[nodiscard]] Result {
  public:
    Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
    Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}

    bool ok() const { return state_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(state_); }
    const T& value() const& { return std::get<0>(state_); }
    T&& value() && { return std::get<0>(std::move(state_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const { return std::get<1>(state_); }
    const std::string& message() const { return error().message; }

  private:
    std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Error error) : error_(std::move(error)), ok_(false) {}

    bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    const Error& error() const { return error_; }
    const std::string& message() const { return error_.message; }

  private:
    Error error_;
    bool ok_ = true;
};

using Status = Result<void>;

}  // namespace sift

// Propagates an error from an expression yielding Result<...>.
#define SIFT_TRY(expr)                                               \
    do {                                                             \
        auto sift_try_result_ = (expr);                              \
        if (!sift_try_result_.ok()) return sift_try_result_.error(); \
    } while (0)
