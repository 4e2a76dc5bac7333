// Kernel command line: on GCE and Hetzner the host (and on KVM the operator) writes it.
#include <cstdint>
#include <string_view>

#include "fuzz/config_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto entries = torgw::config::parse_cmdline(text);
  if (!entries) return 0;
  for (const auto& e : *entries)
    if (torgw::config::normalize_key(e.key) != e.key) __builtin_trap();
  std::vector<torgw::config::SourceData> srcs{{torgw::config::Source::Cmdline, *entries}};
  torgw::fuzz::check_resolved(srcs);
  return 0;
}
