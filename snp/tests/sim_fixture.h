// One simulated "AMD" root per test process: RSA-4096 key generation takes seconds, so
// the ARK/ASK live in a state dir shared by every test case in this binary.
#pragma once

#include "snp/simulated.h"
#include "tests/support/tempdir.h"

namespace torgw::snp::testsim {

inline const std::string& state_dir() {
  static torgw::testing::TempDir dir("snp-sim");
  return dir.path();
}

inline std::unique_ptr<SimulatedPsp> open(const SimulatedChip& chip = {}) {
  auto s = SimulatedPsp::open(state_dir(), chip);
  if (!s) throw std::runtime_error(s.error().to_string());
  return std::move(*s);
}

inline SimulatedChip chip_named(const std::string& name) {
  SimulatedChip c;
  c.name = name;
  return c;
}

// A fixed identity_salt for tests (32 bytes, every byte `fill`).
inline SecretBytes salt(std::uint8_t fill = 0x5a) { return SecretBytes::copy_of(Bytes(32, fill)); }

}  // namespace torgw::snp::testsim
