// Result<T>: a value or an Error, returned across every module border instead of
// throwing. Error.reason is a stable token (e.g. "socks5.bad_version") that tests,
// markers and scrapers match on; Error.detail is free text for humans.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace torgw {

struct Error {
  std::string reason;
  std::string detail;

  // "reason" or "reason: detail".
  std::string to_string() const {
    return detail.empty() ? reason : reason + ": " + detail;
  }
  friend bool operator==(const Error&, const Error&) = default;
};

inline Error make_error(std::string reason, std::string detail = {}) {
  return Error{std::move(reason), std::move(detail)};
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { assert(!ok_); return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace torgw

// Propagate an error from an expression returning Result<...>.
#define TORGW_TRY(expr)                                   \
  do {                                                    \
    auto torgw_try_r_ = (expr);                           \
    if (!torgw_try_r_.ok()) return torgw_try_r_.error();  \
  } while (0)
