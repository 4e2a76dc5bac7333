#include <catch2/catch.hpp>

#include <memory>

#include "common/result.h"

using namespace torgw;

static Result<int> half(int x) {
  if (x % 2) return make_error("odd", std::to_string(x));
  return x / 2;
}

static Result<int> quarter(int x) {
  auto h = half(x);
  if (!h) return h.error();
  return half(*h);
}

static Status check_even(int x) {
  TORGW_TRY(half(x));
  return {};
}

TEST_CASE("Result carries a value or an error") {
  CHECK(quarter(8).value() == 2);
  auto r = quarter(6);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().reason == "odd");
  CHECK(r.error().to_string() == "odd: 3");
  CHECK(check_even(4).ok());
  CHECK(check_even(5).error().detail == "5");
}

TEST_CASE("Result holds move-only values") {
  Result<std::unique_ptr<int>> r(std::make_unique<int>(7));
  REQUIRE(r.ok());
  auto p = std::move(r).value();
  CHECK(*p == 7);
}
