// The Catch2 main of every torgw test binary: Catch2's own session, then the skip
// contract of tests/support/skip.h (exit 77 when something skipped and nothing failed).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <iostream>

#include "tests/support/skip.h"

namespace torgw::testing {
namespace {
std::vector<Skip>& skips() {
  static std::vector<Skip> s;
  return s;
}
}  // namespace

std::string_view needs_name(Needs n) {
  switch (n) {
    case Needs::root: return "root";
    case Needs::package: return "package";
    case Needs::shared: return "shared";
    case Needs::cache: return "cache";
    case Needs::sanitizer: return "sanitizer";
    case Needs::kvm: return "kvm";
  }
  return "unknown";
}

bool ci_guarantees(Needs n) {
  const char* ci = std::getenv("CI");
  if (ci == nullptr || std::strcmp(ci, "true") != 0) return false;
  return n == Needs::root || n == Needs::package || n == Needs::shared || n == Needs::cache;
}

void record_skip(Needs n, std::string reason) {
  skips().push_back(
      Skip{Catch::getResultCapture().getCurrentTestName(), std::string(needs_name(n)), std::move(reason)});
}

const std::vector<Skip>& recorded_skips() { return skips(); }

}  // namespace torgw::testing

int main(int argc, char** argv) {
  const int rc = Catch::Session().run(argc, argv);
  if (rc != 0) return rc;
  const auto& skipped = torgw::testing::recorded_skips();
  if (skipped.empty()) return 0;
  // One line per skipped case; scripts/test collects these lines as the skip reasons.
  for (const auto& s : skipped) {
    std::cout << "TORGW-SKIP: " << s.needs << ": " << s.reason << " [" << s.test_case << "]\n";
  }
  std::cout << std::flush;
  return 77;
}
