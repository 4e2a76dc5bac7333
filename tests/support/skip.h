// STAND-IN for the lead's tests/support/skip.h (announced, not on main when the measure
// branch was written): the same API, TORGW_SKIP(torgw::testing::Needs::X, "reason").
// At merge, keep main's version and drop this file.
//
// A skip records itself and returns from the TEST_CASE; a binary that skipped and failed
// nothing exits 77, which CTest (SKIP_RETURN_CODE 77) shows as Skipped. Under CI=true a
// skip whose precondition CI guarantees (root, package, shared, cache) fails instead.
#pragma once

// The listener below needs Catch2's external interfaces: include this header before
// <catch2/catch.hpp>.
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

namespace torgw::testing {

enum class Needs { root, package, shared, cache, sanitizer, kvm };

inline const char* needs_name(Needs n) {
  switch (n) {
    case Needs::root: return "root";
    case Needs::package: return "package";
    case Needs::shared: return "shared";
    case Needs::cache: return "cache";
    case Needs::sanitizer: return "sanitizer";
    case Needs::kvm: return "kvm";
  }
  return "?";
}

struct SkipState {
  bool skipped = false;
  bool failed = false;
};
inline SkipState& skip_state() {
  static SkipState s;
  return s;
}

inline void exit_77_if_only_skipped() {
  if (skip_state().skipped && !skip_state().failed) {
    std::cout.flush();
    std::fflush(nullptr);
    std::_Exit(77);
  }
}

struct SkipListener : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  void testRunEnded(const Catch::TestRunStats& stats) override {
    skip_state().failed = stats.totals.assertions.failed > 0 || stats.totals.testCases.failed > 0;
  }
};
inline Catch::ListenerRegistrar<SkipListener> skip_listener_registrar;

// True when the skip is allowed; false (after a FAIL) when CI guarantees the precondition.
inline bool record_skip(Needs n, const std::string& reason) {
  const char* ci = std::getenv("CI");
  const bool ci_guaranteed = n == Needs::root || n == Needs::package || n == Needs::shared || n == Needs::cache;
  if (ci && std::strcmp(ci, "true") == 0 && ci_guaranteed) return false;
  if (!skip_state().skipped) std::atexit(exit_77_if_only_skipped);
  skip_state().skipped = true;
  WARN("SKIPPED (needs " << needs_name(n) << "): " << reason);
  return true;
}

}  // namespace torgw::testing

#define TORGW_SKIP(needs, reason)                                                                  \
  do {                                                                                             \
    if (!::torgw::testing::record_skip(needs, reason))                                             \
      FAIL("CI=true guarantees '" << ::torgw::testing::needs_name(needs) << "' but: " << (reason)); \
    return;                                                                                        \
  } while (0)
