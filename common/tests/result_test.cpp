#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>

#include "common/result.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using torgw::testing::FailsWith;

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
  CHECK_THAT(r, FailsWith("odd"));
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

namespace {

struct Death {
  bool aborted = false;  // died of SIGABRT (not an exit, not another signal)
  std::string stderr_text;
};

// Runs `misuse` in a forked child with stderr captured. The child restores SIGABRT's
// default action first, so Catch2's fatal-signal handler does not report the abort
// we are provoking; if `misuse` returns, the child exits 0 and the caller sees no abort.
Death run_in_child(const std::function<void()>& misuse) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    signal(SIGABRT, SIG_DFL);
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    close(fds[1]);
    misuse();
    _exit(0);
  }
  close(fds[1]);
  Death d;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) d.stderr_text.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  d.aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  return d;
}

}  // namespace

TEST_CASE("Result misuse aborts with the error printed, in every build type") {
  SECTION("value() of an error prints reason and detail") {
    auto d = run_in_child([] { (void)half(3).value(); });
    CHECK(d.aborted);
    CHECK(d.stderr_text == "torgw: Result misuse: Result::value() of an error: odd: 3\n");
  }
  SECTION("operator* and operator-> go through the same check") {
    auto star = run_in_child([] {
      Result<int> r = make_error("parse.truncated", "4 bytes");
      (void)*r;
    });
    CHECK(star.aborted);
    CHECK(star.stderr_text.find("parse.truncated: 4 bytes") != std::string::npos);
    auto arrow = run_in_child([] {
      Result<std::string> r = make_error("parse.empty");
      (void)r->size();
    });
    CHECK(arrow.aborted);
    CHECK(arrow.stderr_text.find("parse.empty") != std::string::npos);
  }
  SECTION("an rvalue value() of an error") {
    auto d = run_in_child([] { (void)std::move(quarter(6)).value(); });
    CHECK(d.aborted);
    CHECK(d.stderr_text.find("odd: 3") != std::string::npos);
  }
  SECTION("error() of a value") {
    auto d = run_in_child([] { (void)half(4).error(); });
    CHECK(d.aborted);
    CHECK(d.stderr_text == "torgw: Result misuse: Result::error() of a value\n");
  }
  SECTION("error() of an ok Status") {
    auto d = run_in_child([] { (void)check_even(4).error(); });
    CHECK(d.aborted);
    CHECK(d.stderr_text == "torgw: Result misuse: Status::error() of a value\n");
  }
  SECTION("the harness itself tells a correct use from a misuse") {
    auto d = run_in_child([] { (void)half(4).value(); });
    CHECK_FALSE(d.aborted);
    CHECK(d.stderr_text.empty());
  }
}
