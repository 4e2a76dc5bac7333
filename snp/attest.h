// The attestation as the appliance does it (PID 1 calls attest_and_emit) and as the
// operator checks it offline from a scraped serial log (verify_boot).
//
// REPORT_DATA (64 bytes) = SHA-512("torgw-report-v1" | onion ed25519 public key (32) |
//                                  transfer X25519 public key, or 32 zero bytes |
//                                  BOOT_ID as its 16 raw bytes (the marker's 32 hex
//                                  digits decoded))
// REPORT_DATA v2 (torgw-init since the attested configuration; docs/serial.md):
//   SHA-512("torgw-report-v2" | onion public key (32) | transfer key or zeros (32) |
//           BOOT_ID (16) | SHA-256 of the ATTESTED_CONFIG text (32))
// A verifier takes v2 when the boot printed ATTESTED_CONFIG, else v1: stripping the
// marker from a v2 log makes REPORT_DATA mismatch, so it cannot downgrade the check.
// A boot that has no onion identity yet (transfer mode, waiting for the wrapped key)
// uses 32 zero bytes for the onion key and prints no ONION_HOSTNAME before it.
//
// Markers attest_and_emit writes, in this order (DESIGN.md "Serial markers"):
//   ATTESTATION_TRANSFER_KEY=<64 hex>|none   the X25519 key bound in REPORT_DATA
//   ATTESTATION_REPORT_VALID=true|false
//   ATTESTATION_REPORT_VALID_REASON=<token>  only when false
//   ATTESTATION_GATE=pass|incomplete|fail    the in-guest gate (AttestationGate below)
//   ATTESTATION_MEASUREMENT=<96 hex>         when a report was obtained
//   ATTESTATION_REPORT.i/n=<base64>          the raw 1184-byte report
//   ATTESTATION_CERTS.i/n=<base64>           the cert table (VCEK/VLEK, ASK/ASVK, ARK)
// SNP=present|absent|simulated, IDENTITY_BINDING and ONION_HOSTNAME come before them
// and are the caller's (see snp_marker_value, identity::binding_marker).
#pragma once

#include <array>
#include <optional>
#include <string>

#include "common/result.h"
#include "onion/onion.h"
#include "serial/serial.h"
#include "snp/device.h"
#include "snp/verify.h"

namespace torgw::snp {

using BootId = std::array<std::uint8_t, 16>;
using X25519Key = std::array<std::uint8_t, 32>;

// 32 hex digits (the BOOT_ID marker). Error: snp.bad_boot_id.
Result<BootId> parse_boot_id(std::string_view hex);
using ConfigDigest = std::array<std::uint8_t, 32>;
ReportData report_data_for(const onion::PublicKey& onion_key, const std::optional<X25519Key>& transfer_key,
                           const BootId& boot_id);
ReportData report_data_v2(const onion::PublicKey& onion_key, const std::optional<X25519Key>& transfer_key,
                          const BootId& boot_id, const ConfigDigest& config_sha256);

// "present" (sev-guest / configfs-tsm), "simulated", or "absent" (dev == nullptr).
const char* snp_marker_value(const Device* dev);

struct AttestRequest {
  onion::PublicKey onion_public_key{};  // all zero: no identity yet (transfer mode)
  std::optional<X25519Key> transfer_key;
  std::string boot_id;                        // the BOOT_ID marker value
  std::optional<ConfigDigest> config_sha256;  // set: REPORT_DATA v2 binds it
  std::uint32_t vmpl = 0;
  Policy policy;                   // expected_report_data is set by attest()
  std::optional<std::int64_t> at;  // certificate validity time; nullopt = now
};

// The in-guest attestation gate (docs/snp.md "Attestation gate"). The guest reads its
// own report over the VMPCK-authenticated guest channel, so the report's fields are
// authentic without any certificate, and the checks on them always hold:
//   Fail        no report; a debug or migration-agent policy, reserved policy bits, a
//               VMPL, measurement (expected_measurement) or REPORT_DATA other than asked;
//               a report signature that fails against the VCEK/VLEK of the host's table
//   Incomplete  the host's cert table is missing or cannot be verified (no chain to a
//               pinned AMD root, VCEK extensions off, expired), or the TCB is
//               uncommitted: the report itself is fine, a third party cannot check it yet
//   Pass        everything verified, as torgw verify will
enum class AttestationGate { Pass, Incomplete, Fail };
const char* to_string(AttestationGate g);  // "pass", "incomplete", "fail"

struct Attestation {
  ExtendedReport raw;  // empty report if the device failed
  ReportData report_data{};
  Verification verification;
  bool simulated = false;
  Status status;  // ok iff the report verified
  AttestationGate gate = AttestationGate::Fail;
  bool valid() const { return status.ok(); }
};

// Obtains the extended report for REPORT_DATA, then verifies it exactly as `torgw
// verify` will: chain to a pinned AMD root (a SimulatedPsp's own ARK for the simulated
// device), signature, VCEK extensions, policy, REPORT_DATA.
Attestation attest(Device& dev, const AttestRequest& req);
// attest() and the markers above. Never fails: problems become VALID=false + REASON.
Attestation attest_and_emit(Device& dev, const AttestRequest& req, serial::MarkerWriter& out);

// ---- offline verification of a scraped log -------------------------------------------------

struct LogVerifyOptions {
  VerifyOptions verify;
  std::optional<std::string> expected_onion;  // "<56>.onion" or without ".onion"
  // Transfer-waiting boots have no ONION_HOSTNAME: allow a zero onion key (wrap only).
  bool allow_missing_onion = false;
  // Operator-supplied VCEK/ASK/ARK (e.g. fetched from AMD's KDS when the host put no
  // cert table in the extended report): used instead of the log's ATTESTATION_CERTS.
  std::optional<CertChain> certs;
  // AMD's CRL (DER) to check the ASK/ASVK against, whatever the chain's source.
  Bytes crl;
};

struct LogVerdict {
  Status status;  // the first failure, or ok
  std::string boot_id;
  std::string snp;               // SNP marker value
  std::string identity_binding;  // IDENTITY_BINDING marker value
  std::string onion_hostname;    // ONION_HOSTNAME (empty if absent)
  std::optional<X25519Key> transfer_key;
  std::optional<bool> device_said_valid;  // ATTESTATION_REPORT_VALID as printed by the VM
  std::string device_reason;
  std::optional<ReportData> expected_report_data;
  // The ATTESTED_CONFIG text (REPORT_DATA v2) and its SHA-256; nullopt: a v1 boot.
  std::optional<std::string> attested_config;
  std::optional<ConfigDigest> config_sha256;
  Bytes report;  // the raw report rebuilt from the markers
  Verification verification;
  bool simulated() const { return verification.chain && verification.chain->simulated; }
  bool valid() const { return status.ok(); }
};

// Reason tokens beyond verify.h's: log.snp_absent, log.missing_marker, log.bad_marker,
// log.measurement_mismatch, log.onion_mismatch.
LogVerdict verify_boot(const serial::Boot& boot, const LogVerifyOptions& opts);

// Where AMD's Key Distribution Service serves the VCEK for this report (for a log whose
// host supplied no cert table): https://kdsintf.amd.com/vcek/v1/<product>/<hwid>?<TCB>.
std::string kds_vcek_url(const Report& r, Product product);

// The boot `torgw identity wrap` acts on: the last boot whose markers include an
// ATTESTATION_TRANSFER_KEY other than "none" and a whole ATTESTATION_REPORT (it need
// not be complete: a transfer-waiting VM has not printed READY yet). nullptr if none.
const serial::Boot* last_transfer_boot(const serial::ParsedLog& log);

}  // namespace torgw::snp
