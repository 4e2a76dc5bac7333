// Hetzner userdata (config::parse_hetzner_userdata): key=value text or the #cloud-config
// write_files subset; the host serves it over plain HTTP.
#include <cstdint>
#include <string_view>

#include "fuzz/config_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace torgw::config;
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto entries = parse_hetzner_userdata(body);
  if (!entries) {
    // FATAL=hetzner:<token> (or <key>:<token> from the content): printable, with a colon.
    const auto& r = entries.error().reason;
    if (r.find(':') == std::string::npos) __builtin_trap();
    if (!torgw::serial::valid_value(r)) __builtin_trap();
    return 0;
  }
  if (entries->size() > kMaxEntries) __builtin_trap();
  for (const auto& e : *entries)
    if (e.key.empty() || e.value.size() > kMaxLineBytes) __builtin_trap();
  std::vector<SourceData> srcs{{Source::Hetzner, *entries}};
  torgw::fuzz::check_resolved(srcs);
  return 0;
}
