// A scraped serial log as `torgw verify` and `torgw identity wrap` read it: markers ->
// base64 report and cert table -> chain and signature verification. The host owns the
// serial port, so every byte is hostile.
#include <cstdint>
#include <string_view>

#include "serial/serial.h"
#include "snp/attest.h"

using namespace torgw;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto log = serial::parse_log(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!log) return 0;
  snp::LogVerifyOptions strict;
  snp::LogVerifyOptions lenient;
  lenient.allow_missing_onion = true;
  lenient.verify.policy.allow_debug = true;
  lenient.verify.policy.allow_uncommitted_tcb = true;
  for (const auto& b : log->boots) {
    auto v = snp::verify_boot(b, strict);
    // Invariant: nothing verifies without a report that parsed and a verified chain.
    if (v.valid() && (!v.verification.report || !v.verification.chain)) __builtin_trap();
    (void)snp::verify_boot(b, lenient);
  }
  (void)snp::last_transfer_boot(*log);
  return 0;
}
