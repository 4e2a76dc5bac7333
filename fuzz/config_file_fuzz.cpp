// key=value text: /etc/torgw/torgw.conf and (same parser) Hetzner userdata.
#include <cstdint>
#include <string_view>

#include "fuzz/config_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto entries = torgw::config::parse_kv_text(text, "config_file");
  if (!entries) {
    if (entries.error().reason.find(':') == std::string::npos) __builtin_trap();
    return 0;
  }
  if (entries->size() > torgw::config::kMaxEntries) __builtin_trap();
  std::vector<torgw::config::SourceData> srcs{{torgw::config::Source::File, *entries}};
  torgw::fuzz::check_resolved(srcs);
  return 0;
}
