// SEV-SNP launch-digest prediction: what MEASUREMENT a guest launched from a given OVMF
// (and, for measured direct boot, a given kernel/initrd/command line) will report, computed
// as the PSP computes it during SNP_LAUNCH_UPDATE. The algorithm and flag vocabulary follow
// virtee/sev-snp-measure (the tool operators already use), so both give the same digest.
//
// Everything here is a pure function over bytes: the OVMF parser reads outside bytes and
// answers a value or a Result error with a dotted reason (measure.ovmf.*, measure.vcpu.*).
//
// The module's other part: measure/manifest.h (an image's manifest.json, for
// `torgw verify --manifest`).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"

namespace torgw::measure {

inline constexpr std::size_t kPageSize = 4096;
using Digest384 = std::array<std::uint8_t, 48>;  // the launch digest (SHA-384 chain)
using Sha256 = std::array<std::uint8_t, 32>;

// ---------------------------------------------------------------------------------------
// OVMF: the GUIDed footer table at the end of the image, and the SEV metadata it points to.

// Page types of OVMF's SEV metadata sections (edk2 OvmfPkg ResetVector).
enum class SectionType : std::uint32_t {
  SnpSecMemory = 1,        // pre-validated memory the firmware needs early (zero pages)
  SnpSecrets = 2,          // the PSP's secrets page
  Cpuid = 3,               // the CPUID page
  SvsmCaa = 4,             // the SVSM calling-area page (zero pages)
  SnpKernelHashes = 0x10,  // where QEMU puts the SEV hashes table (measured direct boot)
};
const char* section_type_name(SectionType t);

struct MetadataSection {
  std::uint32_t gpa = 0;
  std::uint32_t size = 0;
  SectionType type{};
};

struct Ovmf {
  std::uint64_t size = 0;  // bytes; the image is mapped at 4 GiB - size
  std::uint64_t gpa() const { return (std::uint64_t{1} << 32) - size; }
  std::vector<MetadataSection> sections;              // in table order (the order measured)
  std::optional<std::uint32_t> sev_es_reset_eip;      // the APs' reset vector (SEV-ES reset block)
  std::optional<std::uint32_t> sev_hashes_table_gpa;  // where the SEV hashes table goes; 0 = none
  bool has_section(SectionType t) const;
};

// The largest image accepted: OVMF is mapped below 4 GiB, real builds are 2-4 MiB.
inline constexpr std::size_t kMaxOvmfSize = 64u << 20;

// Parses the footer table and the SEV metadata. Errors: measure.ovmf.bad_size (empty, not
// a whole number of pages, over kMaxOvmfSize), measure.ovmf.no_footer, measure.ovmf.truncated
// (a length pointing outside the table or the file), measure.ovmf.bad_entry,
// measure.ovmf.duplicate_entry, measure.ovmf.no_sev_metadata, measure.ovmf.bad_metadata,
// measure.ovmf.unknown_section_type, measure.ovmf.misaligned, measure.ovmf.overlap.
Result<Ovmf> parse_ovmf(ByteView image);

// ---------------------------------------------------------------------------------------
// The launch digest chain (SNP ABI, PAGE_INFO): LD' = SHA-384(LD || contents || page info).

enum class PageType : std::uint8_t { Normal = 1, Vmsa = 2, Zero = 3, Unmeasured = 4, Secrets = 5, Cpuid = 6 };

// The PSP's running launch digest. Starts at 48 zero bytes, or at a precomputed value
// (an "OVMF hash", the digest after the firmware's own pages).
class LaunchDigest {
 public:
  LaunchDigest();
  explicit LaunchDigest(const Digest384& seed);
  ~LaunchDigest();
  LaunchDigest(const LaunchDigest&) = delete;
  LaunchDigest& operator=(const LaunchDigest&) = delete;

  // One page whose contents digest is already known (SHA-384 of the page for NORMAL and
  // VMSA pages, zeros for the others).
  void add_page(PageType type, std::uint64_t gpa, const Digest384& contents);
  // NORMAL pages of `data` (a whole number of pages) at consecutive GPAs from `gpa`.
  void add_normal_pages(std::uint64_t gpa, ByteView data);
  // `bytes / 4096` pages of a contents-less type (ZERO, UNMEASURED, SECRETS, CPUID).
  void add_empty_pages(PageType type, std::uint64_t gpa, std::uint64_t bytes);

  const Digest384& value() const { return ld_; }

 private:
  struct Hasher;
  Hasher* h_;
  Digest384 ld_{};
};

Digest384 sha384(ByteView data);
Sha256 sha256(ByteView data);

// The launch digest after the OVMF image's own pages (sev-snp-measure --mode snp:ovmf-hash).
// Errors: measure.ovmf.bad_size.
Result<Digest384> snp_ovmf_hash(ByteView image);

// ---------------------------------------------------------------------------------------
// SEV hashes table: what QEMU writes into the SNP_KERNEL_HASHES page for -kernel/-initrd/
// -append with kernel-hashes=on, and what OVMF checks each fetched blob against.

inline constexpr std::size_t kSevHashesTableSize = 176;  // 168 bytes padded to 16
using SevHashesTable = std::array<std::uint8_t, kSevHashesTableSize>;

struct DirectBoot {
  ByteView kernel;                 // the file exactly as passed to -kernel
  std::optional<ByteView> initrd;  // absent: hashed as empty, as QEMU does
  std::string cmdline;             // -append; hashed with its trailing NUL
};
SevHashesTable sev_hashes_table(const DirectBoot& boot);

// ---------------------------------------------------------------------------------------
// VMSA: the initial register state of each vCPU, measured as one VMSA page per vCPU.

enum class VmmType { Qemu, Ec2, Gce };
// "QEMU", "ec2", "gce" (sev-snp-measure's spelling; case-insensitive). Error:
// measure.vmm.unknown_type.
Result<VmmType> parse_vmm_type(std::string_view name);
const char* vmm_type_name(VmmType t);

// CPUID Fn0000_0001_EAX from family/model/stepping (AMD CPUID spec 25481).
std::uint32_t cpu_signature(unsigned family, unsigned model, unsigned stepping);
// QEMU -cpu model name -> CPUID signature (EPYC, EPYC-v1..v4, EPYC-Rome*, EPYC-Milan*,
// EPYC-Genoa*, EPYC-Turin*). Error: measure.vcpu.unknown_type.
Result<std::uint32_t> vcpu_signature(std::string_view type);
// The names vcpu_signature knows, for help texts and errors.
std::vector<std::string> vcpu_type_names();

inline constexpr std::uint32_t kBspEip = 0xfffffff0;
using VmsaPage = std::array<std::uint8_t, kPageSize>;
// The VMSA page of one vCPU starting at `eip`, as the VMM lays it out.
VmsaPage vmsa_page(VmmType vmm, std::uint32_t eip, std::uint64_t sev_features, std::uint32_t vcpu_sig);

// ---------------------------------------------------------------------------------------
// The whole SNP launch digest.

inline constexpr unsigned kMaxVcpus = 4096;  // KVM_MAX_VCPUS on x86

struct SnpLaunch {
  ByteView ovmf;                       // the image (its metadata is always read from it)
  std::optional<Digest384> ovmf_hash;  // given: replaces hashing the image's own pages
  unsigned vcpus = 1;
  std::uint32_t vcpu_sig = 0;  // QEMU only; ec2 and gce put a fixed value in RDX
  VmmType vmm = VmmType::Qemu;
  std::uint64_t guest_features = 0x1;     // VMSA SEV_FEATURES; 0x1 = SNPActive
  std::optional<DirectBoot> direct_boot;  // -kernel/-initrd/-append with kernel hashes
};

// Errors: every parse_ovmf error; measure.vcpus.out_of_range; measure.ovmf.no_reset_block
// (more than one vCPU without an AP reset vector); measure.ovmf.no_kernel_hashes_section
// (direct boot asked of an OVMF that cannot verify it); measure.ovmf.no_hashes_table_gpa;
// measure.ovmf.bad_kernel_hashes_section.
Result<Digest384> snp_launch_digest(const SnpLaunch& launch);
// The same with the OVMF already parsed (the image bytes are still needed unless
// launch.ovmf_hash is given).
Result<Digest384> snp_launch_digest(const SnpLaunch& launch, const Ovmf& parsed);

}  // namespace torgw::measure

// ---- reason tokens (docs/DEVELOPING.md "Reason tokens") -----------------------------
// Every Error.reason this module's code makes: the tokens it spells as literals and the
// FATAL reasons it composes at run time, spelled out (<...>: a part known at run time
// only). The unit test reason_tokens_test holds the code to this list.
#include <string_view>

namespace torgw::measure {
inline constexpr std::string_view kReasons[] = {
    "manifest.bad_digest",
    "manifest.bad_format",
    "manifest.bad_json",
    "manifest.bad_sha256",
    "manifest.bad_type",
    "manifest.bad_vcpus",
    "manifest.duplicate_row",
    "manifest.missing_field",
    "manifest.no_measurements",
    "manifest.too_large",
    "measure.ovmf.bad_entry",
    "measure.ovmf.bad_kernel_hashes_section",
    "measure.ovmf.bad_metadata",
    "measure.ovmf.bad_size",
    "measure.ovmf.duplicate_entry",
    "measure.ovmf.misaligned",
    "measure.ovmf.no_footer",
    "measure.ovmf.no_hashes_table_gpa",
    "measure.ovmf.no_kernel_hashes_section",
    "measure.ovmf.no_reset_block",
    "measure.ovmf.no_sev_metadata",
    "measure.ovmf.overlap",
    "measure.ovmf.truncated",
    "measure.ovmf.unknown_section_type",
    "measure.vcpu.unknown_type",
    "measure.vcpus.out_of_range",
    "measure.vmm.unknown_type",
};
}  // namespace torgw::measure
// ---- end of reason tokens ----------------------------------------------------------
