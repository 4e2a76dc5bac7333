// The ATTESTED_CONFIG text `torgw verify` decodes from a serial log (outside bytes):
// config::parse_canonical_config, then what the verifier does with what it accepts.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cfg = torgw::config::parse_canonical_config(text);
  if (!cfg) {
    if (cfg.error().reason.rfind("attested_config.", 0) != 0) __builtin_trap();
    return 0;
  }
  // Whatever parses renders back to the same bytes: the digest the VM bound is the
  // digest of what the verifier shows.
  if (torgw::config::render_canonical_config(*cfg) != text) __builtin_trap();
  if (cfg->size() > torgw::config::kMaxEntries) __builtin_trap();
  std::map<std::string, std::string> telemetry{{"CONFIG_BACKEND", "unset"}, {"CONFIG_BACKEND_PASSWORD", "redacted"}};
  (void)torgw::config::check_config_telemetry(*cfg, telemetry);
  (void)torgw::config::check_expected_config(*cfg, "backend=127.0.0.1:9050");
  (void)torgw::config::check_expected_config(*cfg, "backend_password=x");
  return 0;
}
