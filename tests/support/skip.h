// Skips that CTest reports as Skipped, never as Passed.
//
// Catch2 v2 has no SKIP, and a test case that returns early after a WARN counts as
// passed: a suite that could not run its real check looked green. TORGW_SKIP records the
// skip and returns from the TEST_CASE; the Catch2 main of every torgw test
// (tests/support/catch_main.cpp) then lists the skipped cases with their reasons and
// exits 77, which torgw_test() registers as CTest's SKIP_RETURN_CODE. A failure anywhere
// in the binary still wins (exit 1).
//
// Under CI=true, a precondition that CI guarantees (it runs as root, after scripts/setup,
// with ../shared beside the checkout and a writable cache) is not a reason to skip: a
// missing one FAILs the test, so CI can never go green by skipping. The other needs
// (a sanitizer build, a working KVM) are properties of the build or machine and stay
// skips everywhere.
//
// The same contract holds for script tests: exit 77 and a line "SKIP: <needs>: reason"
// (tests/image/lib.sh's skip()).
#pragma once

#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace torgw::testing {

enum class Needs {
  root,       // CAP_SYS_ADMIN, user switches, namespaces: CI runs as root
  package,    // a Debian package scripts/setup installs (tor, danted, qemu, ...)
  shared,     // ../shared beside the checkout (vectors, research)
  cache,      // a writable $TORGW_CACHE
  sanitizer,  // the check means nothing under ASan/UBSan (e.g. mlock is a no-op there)
  kvm,        // a KVM that runs guests (proved by a probe, not by open())
};

std::string_view needs_name(Needs n);

// True when CI=true and CI guarantees `n`: the caller must fail instead of skipping.
bool ci_guarantees(Needs n);

struct Skip {
  std::string test_case;
  std::string needs;
  std::string reason;
};

// Records that the current test case skipped (the main reports it).
void record_skip(Needs n, std::string reason);
const std::vector<Skip>& recorded_skips();

}  // namespace torgw::testing

// The common part of both macros: fail under CI when CI guarantees `needs`, else record
// the skip (the main reports it) and say so in Catch2's output.
#define TORGW_SKIP_RECORD_(needs, reason, prefix)                                                             \
  const std::string torgw_skip_reason_ = std::string(prefix) + (reason);                                      \
  if (::torgw::testing::ci_guarantees(needs)) {                                                               \
    FAIL("CI guarantees this precondition (" << ::torgw::testing::needs_name(needs)                           \
                                             << "), so it is a failure, not a skip: " << torgw_skip_reason_); \
  }                                                                                                           \
  ::torgw::testing::record_skip(needs, torgw_skip_reason_);                                                   \
  WARN("SKIP: " << ::torgw::testing::needs_name(needs) << ": " << torgw_skip_reason_)

#define TORGW_SKIP(needs, reason)          \
  do {                                     \
    TORGW_SKIP_RECORD_(needs, reason, ""); \
    return;                                \
  } while (0)

// The test case goes on without the part that needs `needs`; it is still reported as
// skipped (a partial check is not a pass), and under CI it fails like TORGW_SKIP.
#define TORGW_SKIP_IN_PART(needs, reason)           \
  do {                                              \
    TORGW_SKIP_RECORD_(needs, reason, "in part: "); \
  } while (0)
