#include "snp/abi.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <set>

namespace torgw::snp {

const char* to_string(Product p) {
  switch (p) {
    case Product::Milan: return "Milan";
    case Product::Genoa: return "Genoa";
    case Product::Turin: return "Turin";
  }
  return "Milan";
}

Result<Product> product_from_string(std::string_view s) {
  std::string l;
  for (char c : s) l.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
  if (l == "milan") return Product::Milan;
  if (l == "genoa") return Product::Genoa;
  if (l == "turin") return Product::Turin;
  return make_error("snp.bad_product", std::string(s));
}

// Milan/Genoa: [0] BOOT_LOADER [1] TEE [2..5] reserved [6] SNP [7] MICROCODE.
// Turin:       [0] FMC [1] BOOT_LOADER [2] TEE [3] SNP [4..6] reserved [7] MICROCODE.
Tcb decode_tcb(std::uint64_t raw, Product p) {
  auto byte = [raw](int i) { return static_cast<std::uint8_t>(raw >> (8 * i)); };
  Tcb t;
  t.raw = raw;
  if (p == Product::Turin) {
    t.fmc = byte(0);
    t.bootloader = byte(1);
    t.tee = byte(2);
    t.snp = byte(3);
  } else {
    t.bootloader = byte(0);
    t.tee = byte(1);
    t.snp = byte(6);
  }
  t.microcode = byte(7);
  return t;
}

std::uint64_t encode_tcb(const Tcb& t, Product p) {
  auto at = [](std::uint8_t v, int i) { return std::uint64_t{v} << (8 * i); };
  if (p == Product::Turin) return at(t.fmc, 0) | at(t.bootloader, 1) | at(t.tee, 2) | at(t.snp, 3) | at(t.microcode, 7);
  return at(t.bootloader, 0) | at(t.tee, 1) | at(t.snp, 6) | at(t.microcode, 7);
}

bool tcb_at_least(const Tcb& a, const Tcb& b) {
  return a.fmc >= b.fmc && a.bootloader >= b.bootloader && a.tee >= b.tee && a.snp >= b.snp &&
         a.microcode >= b.microcode;
}

std::string tcb_to_string(const Tcb& t, Product p) {
  std::string s;
  if (p == Product::Turin) s = "fmc" + std::to_string(t.fmc) + " ";
  s += "bl" + std::to_string(t.bootloader) + " tee" + std::to_string(t.tee) + " snp" + std::to_string(t.snp) +
       " ucode" + std::to_string(t.microcode);
  return s;
}

namespace {

template <std::size_t N>
void copy_at(std::array<std::uint8_t, N>& dst, ByteView src, std::size_t off) {
  std::memcpy(dst.data(), src.data() + off, N);
}
template <std::size_t N>
void put_at(Bytes& dst, const std::array<std::uint8_t, N>& src, std::size_t off) {
  std::memcpy(dst.data() + off, src.data(), N);
}
bool all_zero(ByteView b, std::size_t from, std::size_t to) {
  return std::all_of(b.begin() + static_cast<std::ptrdiff_t>(from), b.begin() + static_cast<std::ptrdiff_t>(to),
                     [](std::uint8_t c) { return c == 0; });
}
std::string hex_range(std::size_t from, std::size_t to) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%03zX..0x%03zX", from, to - 1);
  return buf;
}

// Reserved (must-be-zero) areas by report version. Version 2 also has 0x188..0x18A
// reserved (CPUID fields came with version 3); version 5 uses 0x1F8..0x207.
struct Range {
  std::size_t from, to;
};
std::vector<Range> reserved_ranges(std::uint32_t version) {
  std::vector<Range> r = {{0x4C, 0x50}, {0x18B, 0x1A0}, {0x1EB, 0x1EC}, {0x1EF, 0x1F0}};
  if (version < 3) r.push_back({0x188, 0x18B});
  r.push_back({version >= 5 ? std::size_t{0x208} : std::size_t{0x1F8}, kSignedSize});
  // Signature: r and s are 72-byte fields for up-to-576-bit curves; the rest of the
  // 512-byte signature area is reserved.
  r.push_back({kSignatureOffset + 2 * kSigComponentSize, kReportSize});
  return r;
}

}  // namespace

Result<Report> parse_report(ByteView b) {
  if (b.size() != kReportSize)
    return make_error("snp.report.size",
                      "expected " + std::to_string(kReportSize) + " bytes, got " + std::to_string(b.size()));
  Report r;
  const std::uint8_t* p = b.data();
  r.version = load_le32(p + 0x00);
  if (r.version < kMinReportVersion || r.version > kMaxReportVersion)
    return make_error("snp.report.version", "unsupported report version " + std::to_string(r.version));
  r.guest_svn = load_le32(p + 0x04);
  r.policy = load_le64(p + 0x08);
  copy_at(r.family_id, b, 0x10);
  copy_at(r.image_id, b, 0x20);
  r.vmpl = load_le32(p + 0x30);
  r.signature_algo = load_le32(p + 0x34);
  if (r.signature_algo != kSigAlgoEcdsaP384Sha384)
    return make_error("snp.report.sig_algo", "signature algorithm " + std::to_string(r.signature_algo) +
                                                 " (only 1 = ECDSA P-384 with SHA-384 is defined)");
  r.current_tcb = load_le64(p + 0x38);
  r.platform_info = load_le64(p + 0x40);
  r.key_info = load_le32(p + 0x48);
  if (r.key_info >> 5)
    return make_error("snp.report.reserved", "reserved bits set in 0x048 (" + std::to_string(r.key_info) + ")");
  const auto sk = r.signing_key();
  if (sk != kSigningKeyVcek && sk != kSigningKeyVlek && sk != kSigningKeyNone)
    return make_error("snp.report.signing_key", "SIGNING_KEY " + std::to_string(sk) + " is reserved");
  copy_at(r.report_data, b, 0x50);
  copy_at(r.measurement, b, 0x90);
  copy_at(r.host_data, b, 0xC0);
  copy_at(r.id_key_digest, b, 0xE0);
  copy_at(r.author_key_digest, b, 0x110);
  copy_at(r.report_id, b, 0x140);
  copy_at(r.report_id_ma, b, 0x160);
  r.reported_tcb = load_le64(p + 0x180);
  if (r.version >= 3) {
    r.cpuid_fam_id = p[0x188];
    r.cpuid_mod_id = p[0x189];
    r.cpuid_step = p[0x18A];
  }
  copy_at(r.chip_id, b, 0x1A0);
  r.committed_tcb = load_le64(p + 0x1E0);
  r.current_build = p[0x1E8];
  r.current_minor = p[0x1E9];
  r.current_major = p[0x1EA];
  r.committed_build = p[0x1EC];
  r.committed_minor = p[0x1ED];
  r.committed_major = p[0x1EE];
  r.launch_tcb = load_le64(p + 0x1F0);
  if (r.version >= 5) {
    r.launch_mit_vector = load_le64(p + 0x1F8);
    r.current_mit_vector = load_le64(p + 0x200);
  }
  for (const auto& range : reserved_ranges(r.version))
    if (!all_zero(b, range.from, range.to))
      return make_error("snp.report.reserved", "reserved bytes " + hex_range(range.from, range.to) + " not zero");
  // r and s: 72-byte little-endian fields holding 48-byte P-384 values.
  for (int i = 0; i < 2; ++i) {
    const std::size_t off = kSignatureOffset + static_cast<std::size_t>(i) * kSigComponentSize;
    if (!all_zero(b, off + 48, off + kSigComponentSize))
      return make_error("snp.report.sig_encoding", std::string(i == 0 ? "r" : "s") + " exceeds 384 bits");
    auto& dst = i == 0 ? r.sig_r : r.sig_s;
    for (std::size_t j = 0; j < 48; ++j) dst[j] = p[off + 47 - j];  // LE -> BE
  }
  return r;
}

Bytes serialize_report(const Report& r) {
  Bytes b(kReportSize, 0);
  std::uint8_t* p = b.data();
  store_le32(p + 0x00, r.version);
  store_le32(p + 0x04, r.guest_svn);
  store_le64(p + 0x08, r.policy);
  put_at(b, r.family_id, 0x10);
  put_at(b, r.image_id, 0x20);
  store_le32(p + 0x30, r.vmpl);
  store_le32(p + 0x34, r.signature_algo);
  store_le64(p + 0x38, r.current_tcb);
  store_le64(p + 0x40, r.platform_info);
  store_le32(p + 0x48, r.key_info);
  put_at(b, r.report_data, 0x50);
  put_at(b, r.measurement, 0x90);
  put_at(b, r.host_data, 0xC0);
  put_at(b, r.id_key_digest, 0xE0);
  put_at(b, r.author_key_digest, 0x110);
  put_at(b, r.report_id, 0x140);
  put_at(b, r.report_id_ma, 0x160);
  store_le64(p + 0x180, r.reported_tcb);
  if (r.version >= 3) {
    p[0x188] = r.cpuid_fam_id;
    p[0x189] = r.cpuid_mod_id;
    p[0x18A] = r.cpuid_step;
  }
  put_at(b, r.chip_id, 0x1A0);
  store_le64(p + 0x1E0, r.committed_tcb);
  p[0x1E8] = r.current_build;
  p[0x1E9] = r.current_minor;
  p[0x1EA] = r.current_major;
  p[0x1EC] = r.committed_build;
  p[0x1ED] = r.committed_minor;
  p[0x1EE] = r.committed_major;
  store_le64(p + 0x1F0, r.launch_tcb);
  if (r.version >= 5) {
    store_le64(p + 0x1F8, r.launch_mit_vector);
    store_le64(p + 0x200, r.current_mit_vector);
  }
  for (std::size_t j = 0; j < 48; ++j) {
    p[kSignatureOffset + j] = r.sig_r[47 - j];
    p[kSignatureOffset + kSigComponentSize + j] = r.sig_s[47 - j];
  }
  return b;
}

// ---- cert table ------------------------------------------------------------------------

Guid parse_guid_literal(std::string_view s) {
  Guid g{};
  std::size_t n = 0;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '-') continue;
    if (i + 1 >= s.size() || n >= 16 || nib(s[i]) < 0 || nib(s[i + 1]) < 0) std::abort();
    g[n++] = static_cast<std::uint8_t>(nib(s[i]) << 4 | nib(s[i + 1]));
    ++i;
  }
  if (n != 16) std::abort();
  return g;
}

std::string guid_to_string(const Guid& g) {
  std::string h = to_hex(ByteView(g.data(), g.size()));
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

namespace {
struct KnownGuid {
  CertKind kind;
  Guid guid;
};
const std::array<KnownGuid, 5>& known_guids() {
  static const std::array<KnownGuid, 5> k = {{
      {CertKind::Vcek, parse_guid_literal("63da758d-e664-4564-adc5-f4b93be8accd")},
      {CertKind::Vlek, parse_guid_literal("a8074bc2-a25a-483e-aae6-39c045a0b8a1")},
      {CertKind::Ask, parse_guid_literal("4ab7b379-bbac-4fe4-a02f-05aef327c782")},
      {CertKind::Ark, parse_guid_literal("c0b406a4-a803-4952-9743-3fb6014cd0ae")},
      {CertKind::Crl, parse_guid_literal("92f81bc3-5811-4d3d-97ff-d19f88dc67ea")},
  }};
  return k;
}
}  // namespace

const char* to_string(CertKind k) {
  switch (k) {
    case CertKind::Vcek: return "VCEK";
    case CertKind::Vlek: return "VLEK";
    case CertKind::Ask: return "ASK";
    case CertKind::Ark: return "ARK";
    case CertKind::Crl: return "CRL";
    case CertKind::Other: return "other";
  }
  return "other";
}

CertKind cert_kind(const Guid& g) {
  for (const auto& k : known_guids())
    if (k.guid == g) return k.kind;
  return CertKind::Other;
}

Guid guid_of(CertKind kind) {
  for (const auto& k : known_guids())
    if (k.kind == kind) return k.guid;
  return Guid{};
}

Result<std::vector<CertEntry>> parse_cert_table(ByteView bytes) {
  if (bytes.size() > kMaxCertTable) return make_error("snp.certs.too_large", std::to_string(bytes.size()) + " bytes");
  struct Raw {
    Guid guid;
    std::uint32_t offset, length;
  };
  std::vector<Raw> raws;
  ByteReader rd(bytes);
  bool terminated = false;
  while (!terminated) {
    auto e = rd.take(kCertEntrySize);
    if (!e)
      return make_error(
          raws.empty() && bytes.size() < kCertEntrySize ? "snp.certs.truncated" : "snp.certs.no_terminator",
          "table ends after " + std::to_string(raws.size()) + " entries without a zero entry");
    Raw r;
    std::memcpy(r.guid.data(), e->data(), 16);
    r.offset = load_le32(e->data() + 16);
    r.length = load_le32(e->data() + 20);
    if (std::all_of(e->begin(), e->end(), [](std::uint8_t c) { return c == 0; })) {
      terminated = true;
      break;
    }
    if (raws.size() == kMaxCertEntries) return make_error("snp.certs.too_many", "more than 64 entries");
    raws.push_back(r);
  }
  const std::size_t header_end = rd.offset();
  std::vector<CertEntry> out;
  std::set<Guid> seen;
  for (std::size_t i = 0; i < raws.size(); ++i) {
    const auto& r = raws[i];
    const std::string which = "entry " + std::to_string(i) + " (" + guid_to_string(r.guid) + ")";
    if (r.length == 0) return make_error("snp.certs.empty_entry", which + " has length 0");
    if (r.offset < header_end || std::uint64_t{r.offset} + r.length > bytes.size())
      return make_error("snp.certs.bad_offset", which + ": offset " + std::to_string(r.offset) + " length " +
                                                    std::to_string(r.length) + " outside the " +
                                                    std::to_string(bytes.size()) + "-byte table");
    if (!seen.insert(r.guid).second) return make_error("snp.certs.duplicate", which + " appears twice");
    CertEntry c;
    c.guid = r.guid;
    c.kind = cert_kind(r.guid);
    c.data.assign(bytes.begin() + r.offset, bytes.begin() + r.offset + r.length);
    out.push_back(std::move(c));
  }
  return out;
}

Bytes build_cert_table(const std::vector<CertEntry>& entries) {
  const std::size_t header = (entries.size() + 1) * kCertEntrySize;
  Bytes out(header, 0);
  std::size_t off = header;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    std::uint8_t* e = out.data() + i * kCertEntrySize;
    std::memcpy(e, entries[i].guid.data(), 16);
    store_le32(e + 16, static_cast<std::uint32_t>(off));
    store_le32(e + 20, static_cast<std::uint32_t>(entries[i].data.size()));
    off += entries[i].data.size();
  }
  for (const auto& e : entries) out.insert(out.end(), e.data.begin(), e.data.end());
  return out;
}

const CertEntry* find_cert(const std::vector<CertEntry>& entries, CertKind kind) {
  for (const auto& e : entries)
    if (e.kind == kind) return &e;
  return nullptr;
}

}  // namespace torgw::snp
