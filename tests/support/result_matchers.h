// Catch2 matchers for torgw::Result, so a test states what it expects of a Result in
// one line and a failure prints the error that came back instead of aborting:
//
//   CHECK_THAT(parse_request(bytes), FailsWith("socks5.bad_version"));
//   REQUIRE_THAT(load(path), Succeeds());
//
// A mismatch reports the Result as "ok" or "error <reason>: <detail>". Asking
// r.error().reason of an ok Result aborts the whole test binary (common/result.h), so the
// matcher is also the safe way to check a reason.
#pragma once

#include <catch2/catch.hpp>

#include <string>

#include "common/result.h"

namespace torgw::testing {

// What the matchers look at in any Result<T>: Catch2 v2 matchers are typed on one
// argument type, and every Result<T> converts to this view.
struct ResultView {
  template <class T>
  ResultView(const Result<T>& r) : error(r.ok() ? nullptr : &r.error()) {}  // NOLINT: implicit on purpose
  const Error* error;                                                       // null when the Result holds a value
};

class FailsWithMatcher : public Catch::MatcherBase<ResultView> {
 public:
  explicit FailsWithMatcher(std::string reason) : reason_(std::move(reason)) {}
  bool match(const ResultView& r) const override { return r.error && r.error->reason == reason_; }
  std::string describe() const override { return "fails with " + reason_; }

 private:
  std::string reason_;
};

class SucceedsMatcher : public Catch::MatcherBase<ResultView> {
 public:
  bool match(const ResultView& r) const override { return r.error == nullptr; }
  std::string describe() const override { return "succeeds"; }
};

// The Result failed, and its reason token is exactly `reason`.
inline FailsWithMatcher FailsWith(std::string reason) { return FailsWithMatcher(std::move(reason)); }
// The Result holds a value.
inline SucceedsMatcher Succeeds() { return SucceedsMatcher(); }

}  // namespace torgw::testing

namespace Catch {
template <class T>
struct StringMaker<torgw::Result<T>> {
  static std::string convert(const torgw::Result<T>& r) {
    return r.ok() ? std::string("ok") : "error " + r.error().to_string();
  }
};
}  // namespace Catch
