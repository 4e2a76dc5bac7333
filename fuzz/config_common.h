// Shared invariants for the config fuzz targets: whatever resolve() accepts prints as
// valid markers, and secrets never appear in them.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "serial/serial.h"

namespace torgw::fuzz {

inline void check_resolved(std::vector<torgw::config::SourceData>& srcs) {
  auto cfg = torgw::config::resolve(srcs);
  if (!cfg) {
    // The reason is always <key>:<token>, printable for FATAL=.
    const auto& r = cfg.error().reason;
    if (r.find(':') == std::string::npos || r.empty()) __builtin_trap();
    if (!torgw::serial::valid_value(torgw::serial::sanitize_value(r))) __builtin_trap();
    return;
  }
  for (const auto& [k, v] : cfg->markers()) {
    if (!torgw::serial::valid_key(k)) __builtin_trap();
    if (!torgw::serial::format_chunked(k, v).ok()) __builtin_trap();
  }
  for (const auto& spec : torgw::config::keys()) {
    if (spec.secret && cfg->has(spec.name) && !cfg->str(spec.name).empty()) __builtin_trap();
  }
}

}  // namespace torgw::fuzz
