// Result<T>: a value or an Error, returned across every module border instead of
// throwing. Error.reason is a stable token (e.g. "socks5.bad_version") that tests,
// markers and scrapers match on; Error.detail is free text for humans.
//
// Misuse is a bug, and it is caught in every build type, not only where assert() is
// compiled in (RelWithDebInfo, our release build, strips it): value() (or * / ->) of an
// error, and error() of a value, print what was misused, with the error it held, to stderr
// and abort(). This is abseil's StatusOr discipline; a parser that forgot a check dies
// loudly with the reason instead of reading a variant that is not there.
//
// The check is spelled `if (!r)` (explicit operator bool) everywhere; propagation is
// TORGW_TRY(expr) for a Status or a discarded value, TORGW_ASSIGN_OR_RETURN(lhs, expr)
// for a value (both at the bottom of this header).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace torgw {

struct Error {
  std::string reason;
  std::string detail;

  // "reason" or "reason: detail".
  std::string to_string() const { return detail.empty() ? reason : reason + ": " + detail; }
  friend bool operator==(const Error&, const Error&) = default;
};

inline Error make_error(std::string reason, std::string detail = {}) {
  return Error{std::move(reason), std::move(detail)};
}

namespace result_internal {
// Out of line of the accessors so they stay small enough to inline; never returns.
// `error` is null when error() was asked of a value.
[[noreturn]] [[gnu::noinline, gnu::cold]] inline void misuse(const char* what, const Error* error) {
  if (error) std::fprintf(stderr, "torgw: Result misuse: %s of an error: %s\n", what, error->to_string().c_str());
  else std::fprintf(stderr, "torgw: Result misuse: %s of a value\n", what);
  std::fflush(stderr);
  std::abort();
}
}  // namespace result_internal

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    check_value();
    return *std::get_if<0>(&v_);
  }
  const T& value() const& {
    check_value();
    return *std::get_if<0>(&v_);
  }
  T&& value() && {
    check_value();
    return std::move(*std::get_if<0>(&v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const {
    if (ok()) result_internal::misuse("Result::error()", nullptr);
    return *std::get_if<1>(&v_);
  }

 private:
  void check_value() const {
    if (!ok()) result_internal::misuse("Result::value()", std::get_if<1>(&v_));
  }

  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    if (ok_) result_internal::misuse("Status::error()", nullptr);
    return error_;
  }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace torgw

// Propagate an error from an expression returning Result<...>.
#define TORGW_TRY(expr)                             \
  do {                                              \
    auto torgw_try_r_ = (expr);                     \
    if (!torgw_try_r_) return torgw_try_r_.error(); \
  } while (0)

// `lhs = value of expr`, or return expr's error from the enclosing function:
//   TORGW_ASSIGN_OR_RETURN(auto report, parse_report(bytes));
//   TORGW_ASSIGN_OR_RETURN(cfg.port, parse_port(text));
// lhs may declare a variable or name an existing one; wrap an lhs with a top-level comma
// (a template argument list) in a type alias first. Expands to several statements: do
// not use it as the body of an unbraced if/else.
#define TORGW_ASSIGN_OR_RETURN(lhs, expr) \
  TORGW_ASSIGN_OR_RETURN_IMPL_(TORGW_RESULT_CONCAT_(torgw_aor_r_, __LINE__), lhs, expr)
#define TORGW_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp) return tmp.error();                      \
  lhs = std::move(tmp).value()
#define TORGW_RESULT_CONCAT_INNER_(a, b) a##b
#define TORGW_RESULT_CONCAT_(a, b) TORGW_RESULT_CONCAT_INNER_(a, b)
