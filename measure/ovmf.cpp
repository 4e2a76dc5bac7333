// OVMF's footer GUID table and SEV metadata (edk2 OvmfPkg/ResetVector), read from the end of
// the image. The layout, from the last byte backwards:
//   [size-32, size)      the reset vector area (not part of the table)
//   [size-48, size-32)   footer GUID 96b582de-1fb2-45f7-baea-a366c55a082d
//   [size-50, size-48)   u16 length of the whole table, footer GUID and this field included
//   below that           entries, each {data, u16 length (data + 18), GUID}, read backwards
// The SEV metadata entry holds a u32 offset from the end of the image to an "ASEV" header
// {u32 length, u32 version, u32 count} followed by `count` {u32 gpa, u32 size, u32 type}.
#include <algorithm>
#include <cstring>

#include "measure/guid_internal.h"
#include "measure/measure.h"

namespace torgw::measure {

namespace {

constexpr auto kFooterGuid = guid_le("96b582de-1fb2-45f7-baea-a366c55a082d");
constexpr auto kSevEsResetBlockGuid = guid_le("00f771de-1a7e-4fcb-890e-68c77e2fb44e");
constexpr auto kSevMetadataGuid = guid_le("dc886566-984a-4798-a75e-5585a7bf67cc");
constexpr auto kSevHashTableRvGuid = guid_le("7255371f-3a3b-4b04-927b-1da6efa8d454");

constexpr std::size_t kGuidLen = 16;
constexpr std::size_t kEntryTrailer = kGuidLen + 2;  // u16 length + GUID
constexpr std::size_t kResetArea = 32;

bool guid_at(const std::uint8_t* p, const Guid& g) { return std::memcmp(p, g.data(), g.size()) == 0; }

Error err(const char* reason, std::string detail) { return make_error(reason, std::move(detail)); }

// The bytes a section puts into the digest: SECRETS and CPUID are one page whatever their
// declared size; the others cover their whole size.
std::uint64_t measured_span(const MetadataSection& s) {
  return (s.type == SectionType::SnpSecrets || s.type == SectionType::Cpuid) ? kPageSize : s.size;
}

Result<std::vector<MetadataSection>> parse_metadata(ByteView image, std::uint32_t offset_from_end) {
  const std::size_t size = image.size();
  if (offset_from_end < 16 || offset_from_end > size)
    return err("measure.ovmf.truncated",
               "SEV metadata offset " + std::to_string(offset_from_end) + " is outside the image");
  const std::size_t start = size - offset_from_end;
  const std::uint8_t* h = image.data() + start;
  if (std::memcmp(h, "ASEV", 4) != 0)
    return err("measure.ovmf.bad_metadata", "SEV metadata without its ASEV signature");
  const std::uint32_t len = load_le32(h + 4);
  const std::uint32_t version = load_le32(h + 8);
  const std::uint32_t count = load_le32(h + 12);
  if (version != 1) return err("measure.ovmf.bad_metadata", "SEV metadata version " + std::to_string(version));
  if (len < 16 || len > size - start) return err("measure.ovmf.truncated", "SEV metadata length runs past the image");
  if (count > (len - 16) / 12) return err("measure.ovmf.truncated", "more SEV metadata sections than its length holds");
  std::vector<MetadataSection> out;
  out.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint8_t* d = h + 16 + std::size_t{i} * 12;
    MetadataSection s{load_le32(d), load_le32(d + 4), static_cast<SectionType>(load_le32(d + 8))};
    switch (s.type) {
      case SectionType::SnpSecMemory:
      case SectionType::SnpSecrets:
      case SectionType::Cpuid:
      case SectionType::SvsmCaa:
      case SectionType::SnpKernelHashes: break;
      default:
        return err("measure.ovmf.unknown_section_type",
                   "section " + std::to_string(i) + " has type " + std::to_string(load_le32(d + 8)));
    }
    if (s.gpa % kPageSize != 0 || s.size % kPageSize != 0 || s.size == 0)
      return err("measure.ovmf.misaligned", std::string(section_type_name(s.type)) + " section is not whole pages");
    out.push_back(s);
  }
  return out;
}

// The PSP refuses to add a page twice, so a firmware whose sections overlap each other or
// the image itself cannot be launched: say so rather than predict a digest no launch has.
Status check_overlap(const Ovmf& o) {
  struct Range {
    std::uint64_t begin, end;
    std::string what;
  };
  std::vector<Range> r;
  r.push_back({o.gpa(), std::uint64_t{1} << 32, "the firmware image"});
  for (const auto& s : o.sections) r.push_back({s.gpa, s.gpa + measured_span(s), section_type_name(s.type)});
  std::sort(r.begin(), r.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  for (std::size_t i = 1; i < r.size(); ++i)
    if (r[i].begin < r[i - 1].end) return err("measure.ovmf.overlap", r[i - 1].what + " and " + r[i].what + " overlap");
  return {};
}

}  // namespace

const char* section_type_name(SectionType t) {
  switch (t) {
    case SectionType::SnpSecMemory: return "SNP_SEC_MEMORY";
    case SectionType::SnpSecrets: return "SNP_SECRETS";
    case SectionType::Cpuid: return "CPUID";
    case SectionType::SvsmCaa: return "SVSM_CAA";
    case SectionType::SnpKernelHashes: return "SNP_KERNEL_HASHES";
  }
  return "unknown";
}

bool Ovmf::has_section(SectionType t) const {
  return std::any_of(sections.begin(), sections.end(), [t](const MetadataSection& s) { return s.type == t; });
}

Result<Ovmf> parse_ovmf(ByteView image) {
  const std::size_t size = image.size();
  if (size == 0 || size % kPageSize != 0 || size > kMaxOvmfSize)
    return err("measure.ovmf.bad_size", std::to_string(size) + " bytes: not a whole number of 4 KiB pages up to " +
                                            std::to_string(kMaxOvmfSize >> 20) + " MiB");
  const std::size_t footer_end = size - kResetArea;  // end of the footer GUID
  if (!guid_at(image.data() + footer_end - kGuidLen, kFooterGuid))
    return err("measure.ovmf.no_footer", "no OVMF GUID table footer 32 bytes before the end of the image");
  const std::size_t table_end = footer_end - kEntryTrailer;  // entries end here
  const std::uint16_t full_len = load_le16(image.data() + table_end);
  if (full_len < kEntryTrailer) return err("measure.ovmf.bad_entry", "footer table length below its own footer");
  const std::size_t table_len = full_len - kEntryTrailer;
  if (table_len > table_end)
    return err("measure.ovmf.truncated", "footer table length runs past the start of the image");

  Ovmf o;
  o.size = size;
  std::optional<std::uint32_t> metadata_offset;
  const std::uint8_t* begin = image.data() + table_end - table_len;
  std::size_t rem = table_len;  // entries occupy [begin, begin + rem)
  std::vector<Guid> seen;
  while (rem >= kEntryTrailer) {
    const std::uint8_t* guid = begin + rem - kGuidLen;
    const std::uint16_t entry_len = load_le16(guid - 2);
    if (entry_len < kEntryTrailer) return err("measure.ovmf.bad_entry", "footer table entry shorter than its header");
    if (entry_len > rem) return err("measure.ovmf.truncated", "footer table entry runs past the table");
    Guid g;
    std::memcpy(g.data(), guid, g.size());
    if (std::find(seen.begin(), seen.end(), g) != seen.end())
      return err("measure.ovmf.duplicate_entry", "the same GUID twice in the footer table");
    seen.push_back(g);
    const std::uint8_t* data = begin + rem - entry_len;
    const std::size_t data_len = entry_len - kEntryTrailer;
    auto u32_entry = [&](const char* name) -> Result<std::uint32_t> {
      if (data_len < 4) return err("measure.ovmf.bad_entry", std::string(name) + " entry shorter than 4 bytes");
      return load_le32(data);
    };
    if (g == kSevEsResetBlockGuid) {
      TORGW_ASSIGN_OR_RETURN(auto v, u32_entry("SEV-ES reset block"));
      o.sev_es_reset_eip = v;
    } else if (g == kSevMetadataGuid) {
      TORGW_ASSIGN_OR_RETURN(auto v, u32_entry("SEV metadata"));
      metadata_offset = v;
    } else if (g == kSevHashTableRvGuid) {
      TORGW_ASSIGN_OR_RETURN(auto v, u32_entry("SEV hash table"));
      o.sev_hashes_table_gpa = v;
    }
    rem -= entry_len;
  }
  if (!metadata_offset)
    return err("measure.ovmf.no_sev_metadata",
               "the OVMF has no SEV metadata: it was not built to launch as an SNP guest");
  TORGW_ASSIGN_OR_RETURN(auto sections, parse_metadata(image, *metadata_offset));
  o.sections = std::move(sections);
  TORGW_TRY(check_overlap(o));
  return o;
}

}  // namespace torgw::measure
