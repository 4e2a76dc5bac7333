#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.h"

#ifndef TORGW_VERSION
#define TORGW_VERSION "0.0.0"
#endif

namespace torgw::cli {

bool read_input_file(const std::string& path, std::string& out, std::size_t max_bytes) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "torgw: %s: cannot open\n", path.c_str());
    return false;
  }
  std::string data;
  char buf[65536];
  while (f.read(buf, sizeof buf) || f.gcount() > 0) {
    data.append(buf, static_cast<std::size_t>(f.gcount()));
    if (data.size() > max_bytes) {
      std::fprintf(stderr, "torgw: %s: larger than %zu bytes\n", path.c_str(), max_bytes);
      return false;
    }
  }
  out = std::move(data);
  return true;
}

}  // namespace torgw::cli

int main(int argc, char** argv) {
  using namespace torgw::cli;
  CLI::App app{"torgw: the operator's tool for torgw gateways (verify scraped serial logs, "
               "attestation reports, onion keys)"};
  app.set_version_flag("--version", TORGW_VERSION);
  app.require_subcommand(1);
  Action selected;
  register_serial(app, selected);
  register_onion(app, selected);
  register_config(app, selected);
  register_report(app, selected);
  register_verify(app, selected);
  register_identity(app, selected);
  register_measure(app, selected);
  register_release(app, selected);
  register_balance(app, selected);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  return selected ? selected() : kExitUsage;
}
