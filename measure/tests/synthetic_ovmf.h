// Builds small OVMF-like images (footer GUID table + SEV metadata) for the parser's
// bad-input tests and the fuzz seed corpus. Nothing here comes from a real firmware file.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "common/bytes.h"
#include "measure/measure.h"

namespace torgw::measure::testing {

struct SyntheticOvmf {
  std::size_t pages = 4;  // image size in 4 KiB pages
  std::vector<MetadataSection> sections = default_sections();
  std::uint32_t metadata_version = 1;
  std::optional<std::uint32_t> reset_eip = 0xffffe000;  // SEV-ES reset block (AP EIP)
  std::optional<std::uint32_t> hashes_table_gpa;        // SEV hash table entry
  bool metadata_entry = true;
  std::uint32_t metadata_offset_from_end = 0;  // 0: where the builder puts it

  static std::vector<MetadataSection> default_sections() {
    return {{0x800000, 0x9000, SectionType::SnpSecMemory},
            {0x809000, 0x1000, SectionType::SnpSecrets},
            {0x80a000, 0x1000, SectionType::Cpuid}};
  }
  // The AmdSev-like layout: also an SNP_KERNEL_HASHES page and the table address in it.
  static SyntheticOvmf with_kernel_hashes() {
    SyntheticOvmf s;
    s.sections.push_back({0x80b000, 0x1000, SectionType::SnpKernelHashes});
    s.hashes_table_gpa = 0x80bc00;
    return s;
  }
};

// Offsets of the parts the tests corrupt.
struct SyntheticLayout {
  std::size_t footer_len_at;       // u16 full table length
  std::size_t first_entry_len_at;  // u16 length of the entry nearest the footer
  std::size_t metadata_at;         // the "ASEV" header
};

Bytes build_ovmf(const SyntheticOvmf& s, SyntheticLayout* layout = nullptr);

}  // namespace torgw::measure::testing
