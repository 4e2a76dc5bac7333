// Policy checks on a parsed (and, by the caller, signature-verified) report. Strict
// defaults: an attestation that passes with a default-constructed Policy is one an
// operator of this appliance can rely on. Every failure carries a stable reason token:
//   snp.policy.debug              guest policy allows debugging (DEBUG bit 19)
//   snp.policy.migrate_ma         guest policy allows a migration agent (bit 18)
//   snp.policy.reserved17         reserved policy bit 17 is not 1
//   snp.policy.reserved_bits      policy bits 26..63 are not zero
//   snp.policy.single_socket      SINGLE_SOCKET required but not set
//   snp.tcb.uncommitted           COMMITTED_TCB != CURRENT_TCB (firmware can roll back)
//   snp.tcb.below_minimum         REPORTED_TCB below the configured minimum
//   snp.vmpl.mismatch             VMPL other than the required one
//   snp.measurement.mismatch      MEASUREMENT != expected
//   snp.report_data.mismatch      REPORT_DATA != expected
//   snp.host_data.mismatch        HOST_DATA != expected
//   snp.report.version_too_old    report version below the configured minimum
#pragma once

#include <optional>

#include "common/result.h"
#include "snp/abi.h"

namespace torgw::snp {

struct Policy {
  bool allow_debug = false;
  bool allow_migrate_ma = false;
  bool allow_uncommitted_tcb = false;  // accept COMMITTED_TCB != CURRENT_TCB
  bool require_single_socket = false;
  std::optional<Tcb> minimum_tcb;     // compared component-wise with REPORTED_TCB
  std::optional<std::uint32_t> vmpl;  // required VMPL
  std::uint32_t minimum_version = kMinReportVersion;
  std::optional<std::array<std::uint8_t, 48>> expected_measurement;
  std::optional<std::array<std::uint8_t, 64>> expected_report_data;
  std::optional<std::array<std::uint8_t, 32>> expected_host_data;
};

// `product` selects the TCB layout (from the verified chain).
Status validate_policy(const Report& r, Product product, const Policy& policy);

// Hex helpers for operator input (--expected-measurement etc.): exact length, either case.
// Error: snp.bad_hex.
Result<std::array<std::uint8_t, 48>> parse_measurement_hex(std::string_view hex);
Result<std::array<std::uint8_t, 64>> parse_report_data_hex(std::string_view hex);
// "bl=4,tee=0,snp=24,ucode=219[,fmc=0]" (any order, every component but fmc required)
// -> Tcb, for --min-tcb / a minimum-TCB config. Error: snp.bad_tcb.
Result<Tcb> parse_tcb_spec(std::string_view spec);

}  // namespace torgw::snp
