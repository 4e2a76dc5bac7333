// SecretBytes' pages are locked. Its own binary: under ASan (where mlock is a no-op) it is
// the only check that must be reported as skipped, and the rest of common_test still runs.
#include <catch2/catch.hpp>

#include <cstdio>

#include "common/secret.h"
#include "tests/support/skip.h"

using namespace torgw;

TEST_CASE("SecretBytes memory is locked") {
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer intercepts mlock() and makes it a no-op, so VmLck cannot grow.
  TORGW_SKIP(torgw::testing::Needs::sanitizer, "mlock is a no-op under AddressSanitizer; checked in the default build");
#endif
  SecretBytes s(64);
  // mincore reports residency; locked pages are resident. More directly, mlock on an
  // already-locked page succeeds; the meaningful check is that VmLck grew.
  auto vmlck = [] {
    FILE* f = std::fopen("/proc/self/status", "r");
    long kb = -1;
    char line[256];
    while (f && std::fgets(line, sizeof line, f)) {
      if (std::sscanf(line, "VmLck: %ld kB", &kb) == 1) break;
    }
    if (f) std::fclose(f);
    return kb;
  };
  long before = vmlck();
  SecretBytes more(4096 * 4);
  CHECK(vmlck() > before);
}
