// A simulated AMD PSP for tests and `torgw-init --dev`: its own ARK/ASK/VCEK made with
// OpenSSL exactly as AMD makes them (RSA-4096 ARK and ASK, RSASSA-PSS SHA-384 salt 48
// signatures, an ECDSA P-384 VCEK carrying AMD's TCB and hwID extensions), ECDSA-signed
// version-5 reports in the Milan layout, and derived keys that are a deterministic
// function of (simulated chip, selected guest fields) like the real PSP's.
//
// Everything it produces is SIMULATED: its certificates say so in their subject
// ("SIMULATED-ARK-Milan", ...), its ARK is no AMD root, so `verify_chain` accepts its
// chain only when handed that ARK explicitly (ChainOptions::simulated_ark /
// `torgw verify --allow-simulated ARK.pem`), and then reports `simulated`.
//
// State dir (optional): holds the simulated "AMD" root keys (ark.key, ark.pem, ask.key,
// ask.pem), the simulated fuse secret (fuse.secret) and one VCEK per chip and TCB. With
// a state dir the same chip keeps its VCEK and derived keys across processes (a VM that
// "reboots on the same host"); without one everything is new per process. These are
// simulation fixtures, not secrets of any real machine.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>

#include "snp/abi.h"
#include "snp/device.h"

namespace torgw::snp {

struct SimulatedChip {
  std::string name = "sim-chip-0";  // CHIP_ID = SHA-512("torgw-sim-chip-id" | name)
  std::array<std::uint8_t, 48> measurement = default_measurement();
  std::uint64_t policy = 0x30000;  // SMT allowed, reserved bit 17, no debug
  Tcb tcb{0, 4, 0, 24, 219, 0};    // Milan layout: bl4 tee0 snp24 ucode219
  std::uint32_t guest_svn = 0;
  std::uint32_t vmpl = 0;  // the VMPL the guest runs at
  std::array<std::uint8_t, 16> family_id{};
  std::array<std::uint8_t, 16> image_id{};
  std::array<std::uint8_t, 32> host_data{};
  // false models SNP firmware that predates KEY_SEL: bits 2:1 of MSG_KEY_REQ's first word
  // are reserved there, so a request that sets them gets INVALID_PARAM (0x16).
  bool knows_key_sel = true;
  // The host installed a VLEK: reports say SIGNING_KEY=VLEK, and KEY_SEL 0 (VLEK if
  // installed) or 2 derive from it. The simulated VLEK is one per simulated host (state
  // dir), like a provider's key shared by its chips. There is no simulated VLEK
  // certificate: such a report is still signed by this chip's VCEK key, so it does not
  // verify; it exists to test the KEY_SEL fallback rule.
  bool vlek = false;
  // Misbehaviour for the attestation-gate tests (a debug or migration-agent policy is
  // `policy` instead): report_data signs a REPORT_DATA other than the one asked for,
  // signature corrupts the report's signature, no_certs returns no cert table, bad_certs
  // one with the VCEK only (no ASK, no ARK: a chain that cannot be verified).
  enum class Fault { None, WrongReportData, Signature, NoCerts, BadCerts };
  Fault fault = Fault::None;

  static std::array<std::uint8_t, 48> default_measurement();  // SHA-384("torgw-sim-measurement")
};

class SimulatedPsp final : public Device {
 public:
  // Errors: snp.sim.state (unreadable/unwritable state dir), snp.sim.crypto.
  static Result<std::unique_ptr<SimulatedPsp>> open(const std::string& state_dir, const SimulatedChip& chip);
  ~SimulatedPsp() override;

  DeviceKind kind() const override { return DeviceKind::Simulated; }
  std::string describe() const override { return "SIMULATED PSP (chip " + chip_.name + ")"; }
  Result<ExtendedReport> get_report(const ReportData& data, std::uint32_t vmpl, bool with_certs) override;
  Result<SecretBytes> get_derived_key(const DerivedKeyRequest& req) override;
  std::optional<Bytes> simulated_ark() const override { return ark_der(); }

  const SimulatedChip& chip() const { return chip_; }
  std::array<std::uint8_t, 64> chip_id() const;
  const Bytes& ark_der() const;
  std::string ark_pem() const;  // what an operator passes to --allow-simulated
  const Bytes& ask_der() const;
  const Bytes& vcek_der() const;
  Bytes cert_table() const;  // VCEK, ASK, ARK
  // A CRL issued by the ARK (DER), listing the ASK when `revoke_ask`.
  Result<Bytes> make_crl(bool revoke_ask) const;

  struct Impl;

 private:
  explicit SimulatedPsp(std::unique_ptr<Impl> impl, SimulatedChip chip);
  std::unique_ptr<Impl> impl_;
  SimulatedChip chip_;
};

// DeviceConfig's kind "simulated" (snp::open_device calls it through
// DeviceConfig::open_simulated): a SimulatedPsp whose chip follows cfg's sim_* fields.
// Errors: snp.sim.direct_boot, snp.bad_hex, snp.sim.bad_fault, measure.*, and open()'s.
Result<std::unique_ptr<Device>> open_simulated_device(const DeviceConfig& cfg);

}  // namespace torgw::snp
