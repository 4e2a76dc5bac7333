// The OVMF parser on synthetic images: what it reads, and a clear error for every way the
// footer table or the SEV metadata can lie about itself.
#include <catch2/catch.hpp>

#include "measure/measure.h"
#include "measure/tests/synthetic_ovmf.h"

using namespace torgw;
using namespace torgw::measure;
using namespace torgw::measure::testing;

namespace {

std::string reason_of(const Bytes& img) {
  auto r = parse_ovmf(img);
  return r.ok() ? "ok" : r.error().reason;
}

}  // namespace

TEST_CASE("parse_ovmf reads the footer table and the SEV metadata") {
  auto img = build_ovmf(SyntheticOvmf::with_kernel_hashes());
  auto o = parse_ovmf(img);
  REQUIRE(o.ok());
  CHECK(o->size == img.size());
  CHECK(o->gpa() == 0x100000000 - img.size());
  REQUIRE(o->sections.size() == 4);
  CHECK(o->sections[0].type == SectionType::SnpSecMemory);
  CHECK(o->sections[0].gpa == 0x800000);
  CHECK(o->sections[0].size == 0x9000);
  CHECK(o->sections[3].type == SectionType::SnpKernelHashes);
  CHECK(o->has_section(SectionType::Cpuid));
  CHECK_FALSE(o->has_section(SectionType::SvsmCaa));
  CHECK(o->sev_es_reset_eip == std::optional<std::uint32_t>(0xffffe000));
  CHECK(o->sev_hashes_table_gpa == std::optional<std::uint32_t>(0x80bc00));
}

TEST_CASE("parse_ovmf: sizes that are not an OVMF image") {
  CHECK(reason_of(Bytes{}) == "measure.ovmf.bad_size");
  CHECK(reason_of(Bytes(4095, 0)) == "measure.ovmf.bad_size");
  CHECK(reason_of(Bytes(4096 + 1, 0)) == "measure.ovmf.bad_size");
  CHECK(reason_of(Bytes(kMaxOvmfSize + kPageSize, 0)) == "measure.ovmf.bad_size");
  CHECK(reason_of(Bytes(4096, 0)) == "measure.ovmf.no_footer");
}

TEST_CASE("parse_ovmf: a truncated footer") {
  auto good = build_ovmf(SyntheticOvmf{});
  SECTION("an image cut short has no footer where it must be") {
    Bytes cut(good.begin(), good.end() - 4096);
    CHECK(reason_of(cut) == "measure.ovmf.no_footer");
    Bytes shifted(good.begin() + 16, good.end());
    shifted.resize(good.size() - 4096);
    CHECK(reason_of(shifted) == "measure.ovmf.no_footer");
  }
  SECTION("a footer length shorter than the footer itself") {
    SyntheticLayout l;
    auto img = build_ovmf(SyntheticOvmf{}, &l);
    store_le16(&img[l.footer_len_at], 17);
    CHECK(reason_of(img) == "measure.ovmf.bad_entry");
  }
  SECTION("an entry shorter than its own header") {
    SyntheticLayout l;
    auto img = build_ovmf(SyntheticOvmf{}, &l);
    store_le16(&img[l.first_entry_len_at], 10);
    CHECK(reason_of(img) == "measure.ovmf.bad_entry");
  }
}

TEST_CASE("parse_ovmf: a table length past the file") {
  SyntheticLayout l;
  SECTION("the footer table claims more bytes than precede it") {
    Bytes img(kPageSize, 0);
    auto donor = build_ovmf(SyntheticOvmf{}, &l);
    std::copy(donor.end() - 64, donor.end(), img.end() - 64);
    store_le16(&img[kPageSize - 50], 0xffff);
    CHECK(reason_of(img) == "measure.ovmf.truncated");
  }
  SECTION("an entry runs past the table") {
    auto img = build_ovmf(SyntheticOvmf{}, &l);
    store_le16(&img[l.first_entry_len_at], 0x7000);
    CHECK(reason_of(img) == "measure.ovmf.truncated");
  }
  SECTION("the metadata offset points before the image") {
    SyntheticOvmf s;
    s.metadata_offset_from_end = static_cast<std::uint32_t>(s.pages * kPageSize + 16);
    CHECK(reason_of(build_ovmf(s)) == "measure.ovmf.truncated");
    s.metadata_offset_from_end = 8;  // a header cannot fit in the last 8 bytes
    CHECK(reason_of(build_ovmf(s)) == "measure.ovmf.truncated");
  }
  SECTION("the metadata length runs past the image") {
    auto img = build_ovmf(SyntheticOvmf{}, &l);
    store_le32(&img[l.metadata_at + 4], 0x10000);
    CHECK(reason_of(img) == "measure.ovmf.truncated");
  }
  SECTION("more descriptors than the metadata length holds") {
    auto img = build_ovmf(SyntheticOvmf{}, &l);
    store_le32(&img[l.metadata_at + 12], 4);
    CHECK(reason_of(img) == "measure.ovmf.truncated");
    store_le32(&img[l.metadata_at + 12], 0xffffffff);
    CHECK(reason_of(img) == "measure.ovmf.truncated");
  }
}

TEST_CASE("parse_ovmf: overlapping sections") {
  SyntheticOvmf s;
  s.sections.push_back({0x808000, 0x2000, SectionType::SvsmCaa});  // ends inside SNP_SECRETS
  CHECK(reason_of(build_ovmf(s)) == "measure.ovmf.overlap");
  SyntheticOvmf same;
  same.sections.push_back(same.sections[1]);
  CHECK(reason_of(build_ovmf(same)) == "measure.ovmf.overlap");
  SyntheticOvmf into_image;
  into_image.sections.push_back({0xfffff000, 0x1000, SectionType::SvsmCaa});
  CHECK(reason_of(build_ovmf(into_image)) == "measure.ovmf.overlap");
  SyntheticOvmf adjacent;  // touching is fine
  adjacent.sections.push_back({0x80b000, 0x1000, SectionType::SvsmCaa});
  CHECK(reason_of(build_ovmf(adjacent)) == "ok");
}

TEST_CASE("parse_ovmf: malformed metadata") {
  SyntheticLayout l;
  SECTION("no SEV metadata entry: not an SNP firmware") {
    SyntheticOvmf s;
    s.metadata_entry = false;
    CHECK(reason_of(build_ovmf(s)) == "measure.ovmf.no_sev_metadata");
  }
  SECTION("wrong signature") {
    auto img = build_ovmf(SyntheticOvmf{}, &l);
    img[l.metadata_at] = 'X';
    CHECK(reason_of(img) == "measure.ovmf.bad_metadata");
  }
  SECTION("unknown version") {
    SyntheticOvmf s;
    s.metadata_version = 2;
    CHECK(reason_of(build_ovmf(s)) == "measure.ovmf.bad_metadata");
  }
  SECTION("unknown section type") {
    auto img = build_ovmf(SyntheticOvmf{}, &l);
    store_le32(&img[l.metadata_at + 16 + 8], 7);
    CHECK(reason_of(img) == "measure.ovmf.unknown_section_type");
  }
  SECTION("sections that are not whole pages") {
    SyntheticOvmf s;
    s.sections[0].size = 0x8800;
    CHECK(reason_of(build_ovmf(s)) == "measure.ovmf.misaligned");
    s = SyntheticOvmf{};
    s.sections[1].gpa = 0x809010;
    CHECK(reason_of(build_ovmf(s)) == "measure.ovmf.misaligned");
    s = SyntheticOvmf{};
    s.sections[2].size = 0;
    CHECK(reason_of(build_ovmf(s)) == "measure.ovmf.misaligned");
  }
  SECTION("the same GUID twice") {
    auto img = build_ovmf(SyntheticOvmf{}, &l);
    // Make the reset-block entry (second from the footer) carry the metadata GUID.
    const std::size_t first_len = img[l.first_entry_len_at] | img[l.first_entry_len_at + 1] << 8;
    const std::size_t second_guid = l.first_entry_len_at + 18 - first_len - 16;
    std::copy(img.begin() + static_cast<long>(l.first_entry_len_at + 2),
              img.begin() + static_cast<long>(l.first_entry_len_at + 18), img.begin() + static_cast<long>(second_guid));
    CHECK(reason_of(img) == "measure.ovmf.duplicate_entry");
  }
}
