#include "measure/tests/synthetic_ovmf.h"

#include <cstring>

#include "measure/guid_internal.h"

namespace torgw::measure::testing {

Bytes build_ovmf(const SyntheticOvmf& s, SyntheticLayout* layout) {
  const std::size_t size = s.pages * kPageSize;
  Bytes img(size, 0xcc);  // recognisable filler, like code
  // Metadata in the last page, well below the footer table.
  const std::size_t meta_at = size - 0x800;
  std::memcpy(&img[meta_at], "ASEV", 4);
  store_le32(&img[meta_at + 4], static_cast<std::uint32_t>(16 + 12 * s.sections.size()));
  store_le32(&img[meta_at + 8], s.metadata_version);
  store_le32(&img[meta_at + 12], static_cast<std::uint32_t>(s.sections.size()));
  for (std::size_t i = 0; i < s.sections.size(); ++i) {
    std::uint8_t* d = &img[meta_at + 16 + 12 * i];
    store_le32(d, s.sections[i].gpa);
    store_le32(d + 4, s.sections[i].size);
    store_le32(d + 8, static_cast<std::uint32_t>(s.sections[i].type));
  }

  // Entries are laid out backwards from the footer: {data, u16 len, GUID}.
  struct Entry {
    Guid guid;
    Bytes data;
  };
  std::vector<Entry> entries;  // nearest the footer first
  auto u32 = [](std::uint32_t v) {
    Bytes b(4);
    store_le32(b.data(), v);
    return b;
  };
  if (s.metadata_entry)
    entries.push_back(
        {guid_le("dc886566-984a-4798-a75e-5585a7bf67cc"),
         u32(s.metadata_offset_from_end ? s.metadata_offset_from_end : static_cast<std::uint32_t>(size - meta_at))});
  if (s.reset_eip) entries.push_back({guid_le("00f771de-1a7e-4fcb-890e-68c77e2fb44e"), u32(*s.reset_eip)});
  if (s.hashes_table_gpa) {
    Bytes d = u32(*s.hashes_table_gpa);
    Bytes len = u32(0x400);
    d.insert(d.end(), len.begin(), len.end());
    entries.push_back({guid_le("7255371f-3a3b-4b04-927b-1da6efa8d454"), d});
  }

  const std::size_t footer_guid_at = size - 32 - 16;
  const auto footer = guid_le("96b582de-1fb2-45f7-baea-a366c55a082d");
  std::memcpy(&img[footer_guid_at], footer.data(), 16);
  std::size_t end = footer_guid_at - 2;  // entries end here
  std::size_t total = 18;
  SyntheticLayout l{end, 0, meta_at};
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    const std::size_t len = e.data.size() + 18;
    std::memcpy(&img[end - 16], e.guid.data(), 16);
    store_le16(&img[end - 18], static_cast<std::uint16_t>(len));
    if (i == 0) l.first_entry_len_at = end - 18;
    std::memcpy(&img[end - len], e.data.data(), e.data.size());
    end -= len;
    total += len;
  }
  store_le16(&img[footer_guid_at - 2], static_cast<std::uint16_t>(total));
  if (layout) *layout = l;
  return img;
}

}  // namespace torgw::measure::testing
