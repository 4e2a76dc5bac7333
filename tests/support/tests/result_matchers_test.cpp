#include "tests/support/result_matchers.h"

#include <catch2/catch.hpp>

#include <memory>
#include <string>

using torgw::Error;
using torgw::make_error;
using torgw::Result;
using torgw::Status;
using torgw::testing::FailsWith;
using torgw::testing::Succeeds;

namespace {
Result<int> parse_digit(char c) {
  if (c < '0' || c > '9') return make_error("digit.not_a_digit", std::string("'") + c + "'");
  return c - '0';
}
}  // namespace

TEST_CASE("FailsWith matches an error with exactly that reason") {
  const auto bad = parse_digit('x');
  CHECK(FailsWith("digit.not_a_digit").match(bad));
  CHECK_THAT(bad, FailsWith("digit.not_a_digit"));
  CHECK_THAT(parse_digit('y'), FailsWith("digit.not_a_digit"));  // a temporary works too
}

TEST_CASE("FailsWith does not match a wrong reason, a prefix, or a value") {
  const auto bad = parse_digit('x');
  CHECK_FALSE(FailsWith("digit.out_of_range").match(bad));
  CHECK_FALSE(FailsWith("digit").match(bad));                   // reasons are compared whole
  CHECK_FALSE(FailsWith("digit.not_a_digit: 'x'").match(bad));  // the detail is not part of it
  CHECK_FALSE(FailsWith("digit.not_a_digit").match(parse_digit('7')));
  CHECK_THAT(bad, !FailsWith("digit.out_of_range"));
}

TEST_CASE("Succeeds matches a value, never an error") {
  CHECK(Succeeds().match(parse_digit('7')));
  CHECK_FALSE(Succeeds().match(parse_digit('x')));
  CHECK_THAT(parse_digit('3'), Succeeds());
}

TEST_CASE("the matchers take every Result, Status and move-only values included") {
  const Status ok;
  const Status failed = make_error("status.failed");
  CHECK_THAT(ok, Succeeds());
  CHECK_THAT(failed, FailsWith("status.failed"));
  CHECK_FALSE(FailsWith("status.failed").match(ok));
  CHECK_FALSE(Succeeds().match(failed));
  const Result<std::unique_ptr<int>> p = std::make_unique<int>(1);
  CHECK_THAT(p, Succeeds());
  CHECK_THAT(p, !FailsWith("x"));
  CHECK_THAT(parse_digit('x'), FailsWith("digit.out_of_range") || FailsWith("digit.not_a_digit"));
}

TEST_CASE("a mismatch describes the matcher and prints the Result that came back") {
  CHECK(FailsWith("digit.not_a_digit").describe() == "fails with digit.not_a_digit");
  CHECK(Succeeds().describe() == "succeeds");
  CHECK(Catch::Detail::stringify(parse_digit('x')) == "error digit.not_a_digit: 'x'");
  CHECK(Catch::Detail::stringify(parse_digit('5')) == "ok");
  CHECK(Catch::Detail::stringify(Status{}) == "ok");
}
