// The SEV-SNP guest device behind one interface: /dev/sev-guest (ioctls from
// <linux/sev-guest.h>), configfs-tsm (/sys/kernel/config/tsm/report, reports only), and
// the simulated PSP (simulated.h) for tests and `torgw-init --dev`.
//
// Reason tokens: snp.device.absent, snp.device.open, snp.device.ioctl,
// snp.device.fw_error, snp.device.status, snp.device.status.invalid_param (the PSP's
// INVALID_PARAM, 0x16: e.g. firmware that predates KEY_SEL), snp.device.bad_response,
// snp.device.zero_key, snp.device.no_derived_key, snp.device.certs_too_large,
// snp.tsm.io, snp.tsm.generation (a concurrent writer changed the entry),
// snp.tsm.provider (the TSM is not sev_guest, e.g. TDX).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/fd.h"
#include "common/result.h"
#include "common/secret.h"

struct snp_guest_request_ioctl;

namespace torgw::snp {

enum class DeviceKind { SevGuest, ConfigfsTsm, Simulated };
const char* to_string(DeviceKind k);

// GUEST_FIELD_SELECT bits of MSG_KEY_REQ (ABI spec Table 19): which guest fields the PSP
// mixes into a derived key.
namespace key_field {
inline constexpr std::uint64_t kPolicy = 1u << 0;
inline constexpr std::uint64_t kImageId = 1u << 1;
inline constexpr std::uint64_t kFamilyId = 1u << 2;
inline constexpr std::uint64_t kMeasurement = 1u << 3;
inline constexpr std::uint64_t kGuestSvn = 1u << 4;
inline constexpr std::uint64_t kTcbVersion = 1u << 5;
inline constexpr std::uint64_t kAll = 0x3f;
}  // namespace key_field

// "policy,measurement" (config `snp_key_fields`; ',' or '+' separated, any order) <->
// bits. Names: policy image_id family_id measurement guest_svn tcb_version.
// Error: snp.bad_key_fields.
Result<std::uint64_t> parse_key_fields(std::string_view text);
std::string key_fields_to_string(std::uint64_t fields);  // "policy+measurement"

enum class RootKey : std::uint32_t { Vcek = 0, Vmrk = 1 };

// KEY_SEL, bits 2:1 of MSG_KEY_REQ's first word (the uapi's root_key_select), for the
// VCEK/VLEK root: 0 = the VLEK if the host installed one, else the VCEK; 1 = the VCEK
// only; 2 = the VLEK only. A VLEK is the provider's key, shared across its chips, so
// torgw asks for the VCEK only (identity::request_chip_key handles firmware that
// predates the field). Ignored (sent as 0) with the VMRK root.
enum class KeySel : std::uint32_t { VlekIfInstalled = 0, VcekOnly = 1, VlekOnly = 2 };

struct DerivedKeyRequest {
  RootKey root = RootKey::Vcek;
  KeySel key_sel = KeySel::VcekOnly;
  std::uint64_t fields = key_field::kPolicy | key_field::kMeasurement;
  std::uint32_t vmpl = 0;
  std::uint32_t guest_svn = 0;    // used if kGuestSvn is selected
  std::uint64_t tcb_version = 0;  // used if kTcbVersion is selected
};

// The request's first 32-bit word as the PSP reads it: ROOT_KEY_SELECT bit 0, KEY_SEL
// bits 2:1 (key_sel = VCEK only -> 0x2).
std::uint32_t root_key_word(const DerivedKeyRequest& req);
// Inverse for the simulated PSP and tests: reserved bits 31:3 or KEY_SEL 3 -> nullopt.
struct RootKeyWord {
  RootKey root;
  KeySel key_sel;
};
std::optional<RootKeyWord> parse_root_key_word(std::uint32_t word);

inline constexpr std::uint32_t kPspStatusInvalidParam = 0x16;
inline constexpr std::uint32_t kPspStatusInvalidKey = 0x27;
// The error a MSG_KEY_RSP status maps to: snp.device.status.invalid_param for 0x16,
// snp.device.status otherwise.
Error key_status_error(std::uint32_t status, const std::string& why = {});

inline constexpr std::size_t kDerivedKeySize = 32;
using ReportData = std::array<std::uint8_t, 64>;

struct ExtendedReport {
  Bytes report;      // kReportSize bytes
  Bytes cert_table;  // GHCB cert table (may be empty when the host supplies none)
};

class Device {
 public:
  virtual ~Device() = default;
  virtual DeviceKind kind() const = 0;
  virtual std::string describe() const = 0;
  // MSG_REPORT_REQ; with_certs asks for the extended report (host's cert table).
  virtual Result<ExtendedReport> get_report(const ReportData& data, std::uint32_t vmpl, bool with_certs) = 0;
  // MSG_KEY_REQ: 32 bytes in locked memory; an all-zero key is refused.
  virtual Result<SecretBytes> get_derived_key(const DerivedKeyRequest& req) = 0;
  // The root (DER) a verifier must be handed explicitly to accept this device's chain
  // (ChainOptions::simulated_ark): the simulated PSP's own ARK. nullopt for real
  // hardware, whose chain must end in AMD's pinned roots.
  virtual std::optional<Bytes> simulated_ark() const { return std::nullopt; }
};

// ---- /dev/sev-guest ----------------------------------------------------------------

// Performs one ioctl; returns 0 or -errno (the struct's exitinfo2 is filled in either
// way). Injectable so tests can play the kernel.
using IoctlFn = std::function<int(unsigned long request, snp_guest_request_ioctl* arg)>;

class SevGuestDevice final : public Device {
 public:
  static Result<std::unique_ptr<SevGuestDevice>> open(const std::string& path = "/dev/sev-guest");
  SevGuestDevice(IoctlFn ioctl, std::string describe);
  ~SevGuestDevice() override;

  DeviceKind kind() const override { return DeviceKind::SevGuest; }
  std::string describe() const override { return describe_; }
  Result<ExtendedReport> get_report(const ReportData& data, std::uint32_t vmpl, bool with_certs) override;
  Result<SecretBytes> get_derived_key(const DerivedKeyRequest& req) override;

  // configfs-tsm to fall back on for extended reports when the kernel no longer offers
  // SNP_GET_EXT_REPORT (ENOTTY/EOPNOTSUPP).
  void set_report_fallback(std::unique_ptr<Device> tsm) { fallback_ = std::move(tsm); }

 private:
  IoctlFn ioctl_;
  std::string describe_;
  std::shared_ptr<UniqueFd> fd_;  // keeps the device open for the ioctl closure
  std::unique_ptr<Device> fallback_;
};

// Pure decoders of the PSP's response messages (exposed for tests and the fuzzer).
// MSG_REPORT_RSP: status LE32 @0, report_size LE32 @4, report @0x20.
Result<Bytes> parse_report_response(ByteView resp);
// MSG_KEY_RSP: status LE32 @0, derived key @0x20 (32 bytes).
Result<SecretBytes> parse_key_response(ByteView resp);

// ---- configfs-tsm --------------------------------------------------------------------

class TsmDevice final : public Device {
 public:
  static constexpr const char* kDefaultRoot = "/sys/kernel/config/tsm/report";
  // Present only when an SEV-SNP provider serves the root: a kernel with TSM_REPORTS
  // built in has the configfs directory on every machine, SNP or not, so open() makes a
  // probe entry and asks check_tsm_provider() (snp.device.absent when nobody serves it).
  static Result<std::unique_ptr<TsmDevice>> open(const std::string& root = kDefaultRoot);
  explicit TsmDevice(std::string root) : root_(std::move(root)) {}

  DeviceKind kind() const override { return DeviceKind::ConfigfsTsm; }
  std::string describe() const override { return "configfs-tsm " + root_; }
  Result<ExtendedReport> get_report(const ReportData& data, std::uint32_t vmpl, bool with_certs) override;
  Result<SecretBytes> get_derived_key(const DerivedKeyRequest& req) override;

 private:
  std::string root_;
};

// Reads outblob/auxblob/generation from a configfs-tsm entry after inblob was written;
// `generation_before` is what generation read just after the writes. Exposed for tests.
Result<ExtendedReport> read_tsm_entry(const std::string& entry_dir, std::uint64_t generation_before, bool with_certs);

// Whether a configfs-tsm entry is served by the SEV-SNP guest driver: reading `provider`
// fails with ENXIO while no TSM provider is registered (6.12: every non-SNP machine with
// TSM_REPORTS), and names another driver on TDX and others; both are snp.device.absent.
// An entry without a `provider` attribute (kernels before it existed) counts as served.
Status check_tsm_provider(const std::string& entry_dir);

// ---- selection -----------------------------------------------------------------------

struct DeviceConfig;
// Makes the device for kind "simulated": snp::open_simulated_device (snp/simulated.h).
// The simulated PSP is its own library (torgw_snp_simulated) that only tests, benchmarks
// and torgw-init link, so torgw_snp reaches it only through this pointer.
using SimulatedOpener = Result<std::unique_ptr<Device>> (*)(const DeviceConfig& cfg);

struct DeviceConfig {
  // "auto" (sev-guest, else configfs-tsm), "sev-guest", "tsm", "simulated", "none".
  std::string kind = "auto";
  std::string sev_guest_path = "/dev/sev-guest";
  std::string tsm_root = TsmDevice::kDefaultRoot;
  // Simulated PSP (kind "simulated"): its state dir (ARK/ASK and fused secret; empty =
  // in memory, new each process), chip name and measurement (96 hex; empty = default).
  std::string sim_state_dir;
  std::string sim_chip = "sim-chip-0";
  std::string sim_measurement;
  // none|debug_policy|migrate_ma_policy|report_data|signature|no_certs|bad_certs
  // (SimulatedChip::Fault; the two policies set the DEBUG or MIGRATE_MA policy bit).
  std::string sim_fault = "none";
  // Simulated measured direct boot: when sim_direct_boot.ovmf is set, the simulated PSP
  // reports the launch digest measure::snp_launch_digest computes for QEMU launching this
  // OVMF with -kernel/-append (kernel-hashes=on, no initrd, guest features 0x1), the same
  // code `torgw measure` and image/build's expected measurements use. Exclusive with
  // sim_measurement.
  struct SimDirectBoot {
    std::string ovmf, kernel, append;
    unsigned vcpus = 1;
    std::string vcpu_type = "EPYC-Milan";
  } sim_direct_boot;
  // Kind "simulated" opens through this; unset, it is refused (snp.sim.unavailable).
  SimulatedOpener open_simulated = nullptr;
};

// The launch digest of a simulated measured direct boot (files read here). Errors:
// snp.sim.direct_boot (a file unreadable, no kernel), every measure.* error.
Result<std::array<std::uint8_t, 48>> sim_direct_boot_measurement(const DeviceConfig::SimDirectBoot& db);

// nullptr (not an error) when kind is "none", or "auto" and no device exists: the
// caller then follows the no-SNP fallback. Errors: snp.device.*, snp.bad_device_kind,
// snp.sim.unavailable (kind "simulated" without cfg.open_simulated), and for kind
// "simulated" those of open_simulated_device.
Result<std::unique_ptr<Device>> open_device(const DeviceConfig& cfg);

}  // namespace torgw::snp
