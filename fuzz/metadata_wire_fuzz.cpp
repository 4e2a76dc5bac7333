// The metadata helper's pipe format (config::parse_metadata_wire), which PID 1 parses:
// hostile once the unprivileged helper is compromised by a metadata answer. Whatever
// parses must format back to the same report (the helper's writer and PID 1's reader
// agree), and everything a log line may print is printable.
#include <cstdint>
#include <string_view>

#include "config/metadata.h"

using namespace torgw::config;

namespace {

bool printable(std::string_view s) {
  for (char c : s)
    if (c < 0x20 || c >= 0x7f) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = parse_metadata_wire(text);
  if (!r) {
    if (r.error().reason.rfind("metadata_wire.", 0) != 0) __builtin_trap();
    return 0;
  }
  if (r->failed) {
    if (r->error.reason.empty() || !printable(r->error.reason) || !printable(r->error.detail)) __builtin_trap();
    auto again = parse_metadata_wire(format_metadata_wire(r->error));
    if (!again || !again->failed || !(again->error == r->error)) __builtin_trap();
    return 0;
  }
  if (!printable(r->result.gce.note) || !printable(r->result.hetzner.note)) __builtin_trap();
  auto again = parse_metadata_wire(format_metadata_wire(r->result));
  if (!again || again->failed) __builtin_trap();
  for (auto which : {&MetadataResult::gce, &MetadataResult::hetzner}) {
    const auto& a = r->result.*which;
    const auto& b = again->result.*which;
    if (a.state != b.state || a.note != b.note || a.data.entries.size() != b.data.entries.size()) __builtin_trap();
    for (std::size_t i = 0; i < a.data.entries.size(); ++i)
      if (a.data.entries[i].key != b.data.entries[i].key || a.data.entries[i].value != b.data.entries[i].value)
        __builtin_trap();
  }
  return 0;
}
