// torgw-init: PID 1 of the torgw appliance, or (--dev) the same boot sequence as a
// normal process without the machine duties. See docs/init.md.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cstdio>

#include "init/boot.h"
#include "init/machine.h"

#ifndef TORGW_VERSION
#define TORGW_VERSION "0.0.0"
#endif
#ifndef TORGW_BUILD_TIME
#define TORGW_BUILD_TIME 0
#endif

int main(int argc, char** argv) {
  using namespace torgw;
  const bool is_pid1 = getpid() == 1;
  if (is_pid1) init::reserve_stdio();
  init::BootOptions opts;
  opts.version = TORGW_VERSION;
  opts.build_time = TORGW_BUILD_TIME;

  CLI::App app{"torgw-init: PID 1 of the torgw gateway appliance"};
  // The kernel hands init every unrecognised word of its command line: PID 1 must not
  // refuse to boot over one.
  app.allow_extras(is_pid1);
  app.set_version_flag("--version", TORGW_VERSION);
  bool dev = false;
  std::string config_path, cmdline_path;
  std::vector<std::string> sets;
  bool no_serial = false;
  app.add_flag("--dev", dev,
               "Run the boot sequence as a normal process: no mounts, no reboot, markers on stdout, "
               "FATAL exits 1");
  app.add_option("--config", config_path, "Config file (default /etc/torgw/torgw.conf)");
  app.add_option("--cmdline", cmdline_path,
                 "Read torgw.<key>=<value> parameters from this file instead of /proc/cmdline "
                 "(PID 1) or nothing (--dev)");
  app.add_option("--set", sets, "KEY=VALUE, overrides every other source (repeatable)");
  app.add_flag("--no-ttyS0", no_serial, "PID 1: write markers only to the console, never also to ttyS0");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (!is_pid1) return app.exit(e) == 0 ? 0 : 2;
    std::fprintf(stderr, "torgw-init: ignoring arguments: %s\n", e.what());
  }
  if (!dev && !is_pid1) {
    std::fprintf(stderr, "torgw-init: not PID 1; use --dev to run the boot sequence as a normal process\n");
    return 2;
  }
  if (dev && is_pid1) dev = false;  // PID 1 always does the machine's duties
  opts.dev = dev;
  if (!config_path.empty()) opts.config_path = config_path;
  if (!cmdline_path.empty()) opts.cmdline_path = cmdline_path;
  else if (dev) opts.cmdline_path.clear();
  opts.extra_serial = !no_serial;
  for (const auto& s : sets) {
    auto eq = s.find('=');
    std::string key = eq == std::string::npos ? "" : config::normalize_key(s.substr(0, eq));
    if (key.empty()) {
      std::fprintf(stderr, "torgw-init: --set %s: expected KEY=VALUE\n", s.c_str());
      if (!is_pid1) return 2;
      continue;
    }
    opts.flags.push_back({key, s.substr(eq + 1), 0});
  }
  init::Init init(opts);
  return init.run(init::default_stages(opts));
}
