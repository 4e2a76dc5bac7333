// SEV-SNP ABI: bytes <-> structs for the ATTESTATION_REPORT (versions 2, 3, 4 and 5),
// TCB_VERSION (Milan/Genoa and Turin layouts) and the GHCB certificate table.
// Every function here is pure; the parsers take hostile bytes (the host hands us the
// cert table; an operator hands us a scraped report) and never read out of bounds.
//
// References: AMD SEV-SNP Firmware ABI Specification (56860) rev 1.55+, Table 23
// "ATTESTATION_REPORT Structure"; GHCB spec (56421) "SNP Extended Guest Request".
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"

namespace torgw::snp {

inline constexpr std::size_t kReportSize = 0x4A0;  // 1184
inline constexpr std::size_t kSignedSize = 0x2A0;  // bytes 0x000..0x29F are signed
inline constexpr std::size_t kSignatureOffset = 0x2A0;
inline constexpr std::size_t kSigComponentSize = 72;  // r and s, little-endian, zero-extended
inline constexpr std::uint32_t kMinReportVersion = 2;
inline constexpr std::uint32_t kMaxReportVersion = 5;
inline constexpr std::uint32_t kSigAlgoEcdsaP384Sha384 = 1;

// Which AMD product line a chip (and its certificate chain) belongs to. It decides the
// TCB_VERSION layout: Turin adds an FMC byte and moves the others.
enum class Product { Milan, Genoa, Turin };
const char* to_string(Product p);
Result<Product> product_from_string(std::string_view s);  // "milan", "Genoa", ...

// Guest policy bits (ABI spec Table 9).
namespace policy_bits {
inline constexpr std::uint64_t kSmt = 1ull << 16;
inline constexpr std::uint64_t kReserved17 = 1ull << 17;  // must be 1
inline constexpr std::uint64_t kMigrateMa = 1ull << 18;
inline constexpr std::uint64_t kDebug = 1ull << 19;
inline constexpr std::uint64_t kSingleSocket = 1ull << 20;
inline constexpr std::uint64_t kCxlAllow = 1ull << 21;
inline constexpr std::uint64_t kMemAes256Xts = 1ull << 22;
inline constexpr std::uint64_t kRaplDis = 1ull << 23;
inline constexpr std::uint64_t kCiphertextHiding = 1ull << 24;
inline constexpr std::uint64_t kPageSwapDisable = 1ull << 25;
inline constexpr std::uint64_t kKnownMask = 0x3FFFFFFull;  // bits 0..25; 26..63 reserved, MBZ
}  // namespace policy_bits

// Decoded TCB_VERSION. `raw` is the 64-bit little-endian value as it sits in the report.
struct Tcb {
  std::uint8_t fmc = 0;  // Turin only
  std::uint8_t bootloader = 0;
  std::uint8_t tee = 0;
  std::uint8_t snp = 0;
  std::uint8_t microcode = 0;
  std::uint64_t raw = 0;
  friend bool operator==(const Tcb&, const Tcb&) = default;
};
Tcb decode_tcb(std::uint64_t raw, Product p);
std::uint64_t encode_tcb(const Tcb& t, Product p);  // ignores t.raw
// True if every component of `a` is >= the same component of `b`.
bool tcb_at_least(const Tcb& a, const Tcb& b);
std::string tcb_to_string(const Tcb& t, Product p);  // "bl4 tee0 snp24 ucode217" (+ "fmc0 " on Turin)

struct Report {
  std::uint32_t version = 0;
  std::uint32_t guest_svn = 0;
  std::uint64_t policy = 0;
  std::array<std::uint8_t, 16> family_id{};
  std::array<std::uint8_t, 16> image_id{};
  std::uint32_t vmpl = 0;
  std::uint32_t signature_algo = 0;
  std::uint64_t current_tcb = 0;
  std::uint64_t platform_info = 0;
  std::uint32_t key_info = 0;  // 0x48: AUTHOR_KEY_EN bit 0, MASK_CHIP_KEY bit 1, SIGNING_KEY 4:2
  std::array<std::uint8_t, 64> report_data{};
  std::array<std::uint8_t, 48> measurement{};
  std::array<std::uint8_t, 32> host_data{};
  std::array<std::uint8_t, 48> id_key_digest{};
  std::array<std::uint8_t, 48> author_key_digest{};
  std::array<std::uint8_t, 32> report_id{};
  std::array<std::uint8_t, 32> report_id_ma{};
  std::uint64_t reported_tcb = 0;
  // Version >= 3: CPUID family/model/stepping of the chip (zero in version 2).
  std::uint8_t cpuid_fam_id = 0;
  std::uint8_t cpuid_mod_id = 0;
  std::uint8_t cpuid_step = 0;
  std::array<std::uint8_t, 64> chip_id{};
  std::uint64_t committed_tcb = 0;
  std::uint8_t current_build = 0, current_minor = 0, current_major = 0;
  std::uint8_t committed_build = 0, committed_minor = 0, committed_major = 0;
  std::uint64_t launch_tcb = 0;
  // Version >= 5.
  std::uint64_t launch_mit_vector = 0;
  std::uint64_t current_mit_vector = 0;
  // Signature: r and s as 48-byte big-endian integers (decoded from the 72-byte LE fields).
  std::array<std::uint8_t, 48> sig_r{};
  std::array<std::uint8_t, 48> sig_s{};

  bool author_key_en() const { return key_info & 1u; }
  bool mask_chip_key() const { return (key_info >> 1) & 1u; }
  std::uint32_t signing_key() const { return (key_info >> 2) & 7u; }  // 0 VCEK, 1 VLEK, 7 none
  bool debug() const { return policy & policy_bits::kDebug; }
  bool migrate_ma() const { return policy & policy_bits::kMigrateMa; }
  std::uint8_t abi_major() const { return static_cast<std::uint8_t>(policy >> 8); }
  std::uint8_t abi_minor() const { return static_cast<std::uint8_t>(policy); }
};

inline constexpr std::uint32_t kSigningKeyVcek = 0;
inline constexpr std::uint32_t kSigningKeyVlek = 1;
inline constexpr std::uint32_t kSigningKeyNone = 7;

// Parses exactly kReportSize bytes. Structural checks only (size, version 2..5,
// signature algorithm 1, reserved/MBZ areas zero, r/s high bytes zero, SIGNING_KEY
// 0/1/7); trust decisions live in verify.h / validate.h.
// Errors: snp.report.size, snp.report.version, snp.report.sig_algo, snp.report.reserved,
// snp.report.signing_key, snp.report.sig_encoding.
Result<Report> parse_report(ByteView bytes);
// The inverse, for the simulated PSP and tests: serialises every field, zero elsewhere.
Bytes serialize_report(const Report& r);
// The bytes the signature covers (0x000..0x29F) of a serialised report.
inline ByteView signed_bytes(ByteView report) { return report.first(kSignedSize); }

// ---- GHCB certificate table ------------------------------------------------------------

using Guid = std::array<std::uint8_t, 16>;    // RFC 4122 byte order, as on the wire
Guid parse_guid_literal(std::string_view s);  // compile-time constants only; aborts on bad input
std::string guid_to_string(const Guid& g);

enum class CertKind { Vcek, Vlek, Ask, Ark, Crl, Other };
const char* to_string(CertKind k);
CertKind cert_kind(const Guid& g);
Guid guid_of(CertKind k);  // not for Other

struct CertEntry {
  Guid guid{};
  CertKind kind = CertKind::Other;
  Bytes data;  // the certificate (DER) or CRL bytes
};

inline constexpr std::size_t kCertEntrySize = 24;
inline constexpr std::size_t kMaxCertTable = 1u << 20;  // far above any real table
inline constexpr std::size_t kMaxCertEntries = 64;

// Parses a cert table as returned by SNP_GET_EXT_REPORT (page-padded) or configfs-tsm
// auxblob (trimmed): 24-byte entries {GUID, offset LE32, length LE32} ended by an
// all-zero entry; offsets are from the table start and must point past the entry
// array and inside the buffer. A GUID may appear once. Unknown GUIDs are kept as Other.
// Errors: snp.certs.too_large, snp.certs.truncated, snp.certs.no_terminator,
// snp.certs.too_many, snp.certs.bad_offset, snp.certs.duplicate, snp.certs.empty_entry.
Result<std::vector<CertEntry>> parse_cert_table(ByteView bytes);
// Builds a table (entries, zero terminator, then the blobs back to back).
Bytes build_cert_table(const std::vector<CertEntry>& entries);
const CertEntry* find_cert(const std::vector<CertEntry>& entries, CertKind kind);

}  // namespace torgw::snp
