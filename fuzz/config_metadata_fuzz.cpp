// Metadata answers (plain HTTP from a link-local address the host controls): the GCE
// attribute listing, attribute values, Hetzner userdata. The first byte picks the
// shape; the rest is the body.
#include <cstdint>
#include <string_view>

#include "fuzz/config_common.h"

using namespace torgw::config;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {  // GCE listing
      auto names = parse_gce_attribute_list(body);
      if (!names) return 0;
      for (const auto& n : *names) {
        if (n.rfind("torgw-", 0) != 0) __builtin_trap();
        (void)gce_attribute_key(n);
      }
      break;
    }
    case 1: {  // one GCE attribute value, for every key
      std::vector<SourceData> srcs(1);
      srcs[0].source = Source::Gce;
      for (const auto& spec : keys()) {
        auto v = validate_value(spec, body);
        if (v && (v->empty() || v->find(' ') != std::string::npos)) __builtin_trap();
        if (spec.trust != Trust::local) srcs[0].entries.push_back(Entry{std::string(spec.name), std::string(body), 0});
      }
      torgw::fuzz::check_resolved(srcs);
      break;
    }
    case 2: {  // Hetzner userdata
      auto entries = parse_hetzner_userdata(body);
      if (!entries) return 0;
      std::vector<SourceData> srcs{{Source::Hetzner, *entries}};
      torgw::fuzz::check_resolved(srcs);
      break;
    }
  }
  return 0;
}
