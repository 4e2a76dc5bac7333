// The firewall's endpoint parsers read config values (backend, metadata_url), which may
// come from host-controlled metadata. Whatever parses must print back to itself.
#include <cstdint>
#include <string_view>

#include "firewall/firewall.h"

using namespace torgw::firewall;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (auto r : {parse_endpoint(text), endpoint_from_url(text)}) {
    if (!r) {
      if (r.error().reason.rfind("firewall.", 0) != 0) __builtin_trap();
      continue;
    }
    auto again = parse_endpoint(r->text());
    if (!again || !(*again == *r) || r->port == 0) __builtin_trap();
  }
  return 0;
}
