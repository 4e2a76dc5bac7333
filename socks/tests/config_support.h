// Config tests' helpers: a config text (and flags) through the parsers and the build,
// as torgw-socks does it; the error as one "reason: detail" string.
#pragma once

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "socks/config.h"

namespace torgw::socks::testing {

inline Result<Config> build(const std::string& text, std::vector<std::string> argv = {}) {
  TORGW_ASSIGN_OR_RETURN(auto file, parse_config_text(text, "t.conf"));
  argv.insert(argv.begin(), "torgw-socks");
  TORGW_ASSIGN_OR_RETURN(auto args, parse_args(argv));
  return build_config(file, args.settings);
}

inline std::string err(const Result<Config>& r) {
  REQUIRE_FALSE(r.ok());
  return r.error().reason + ": " + r.error().detail;
}

}  // namespace torgw::socks::testing
