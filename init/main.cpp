// torgw-init: PID 1 of the torgw appliance, or (--dev) the same boot sequence as a
// normal process without the machine duties. See docs/init.md.
#include <sys/stat.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string_view>
#include <vector>

#include "init/boot.h"
#include "init/machine.h"
#include "init/metadata_helper.h"
#include "snp/simulated.h"

#ifndef TORGW_VERSION
#define TORGW_VERSION "0.0.0"
#endif
#ifndef TORGW_BUILD_TIME
#define TORGW_BUILD_TIME 0
#endif

namespace {

// An executable on PATH (and the sbin directories tor lives in on Debian), or "".
std::string on_path(const std::string& name) {
  const char* env = std::getenv("PATH");
  std::stringstream dirs(std::string(env ? env : "") + ":/usr/sbin:/sbin:/usr/bin:/bin");
  std::string d;
  while (std::getline(dirs, d, ':'))
    if (!d.empty() && ::access((d + "/" + name).c_str(), X_OK) == 0) return d + "/" + name;
  return {};
}

// --dev: tor from PATH; torgw-socks from this build tree (torgw-init lives in
// <build>/init/, torgw-socks in <build>/socks/), else PATH.
void dev_defaults(torgw::init::BootOptions& o) {
  if (auto t = on_path("tor"); !t.empty()) o.tor_binary = t;
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  auto beside = self.parent_path().parent_path() / "socks" / "torgw-socks";
  if (!ec && ::access(beside.c_str(), X_OK) == 0) o.socks_binary = beside.string();
  else if (auto p = on_path("torgw-socks"); !p.empty()) o.socks_binary = p;
  o.tor_user.clear();
  o.socks_user.clear();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace torgw;
  const bool is_pid1 = getpid() == 1;
  // The privilege-separated metadata fetcher PID 1 re-executes (never PID 1 itself).
  if (!is_pid1 && argc >= 2 && std::string_view(argv[1]) == init::kMetadataHelperFlag)
    return init::metadata_helper_main(std::vector<std::string>(argv + 2, argv + argc));
  if (is_pid1) init::reserve_stdio();
  init::BootOptions opts;
  opts.version = TORGW_VERSION;
  opts.build_time = TORGW_BUILD_TIME;
  // snp_device=simulated is a config value in every mode, not only --dev.
  opts.open_simulated_psp = &snp::open_simulated_device;

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
  std::string screen = "/dev/tty0";
  bool no_screen = false;
  app.add_option("--screen", screen,
                 "PID 1: the screen console for the markers (unless it is the console's own tty) and the "
                 "summary block (default /dev/tty0)");
  app.add_flag("--no-screen", no_screen, "PID 1: no screen console");
  std::string state_dir, tor_binary, socks_binary, tor_user, socks_user, metadata_user;
  bool metadata_user_given = false;
  app.add_option("--state-dir", state_dir,
                 "--dev: tor's data and control dirs and torgw-socks's socket go here (default: a fresh "
                 "temporary directory, removed at exit)");
  app.add_option("--tor-binary", tor_binary, "--dev: the tor to run (default: tor on PATH)");
  app.add_option("--socks-binary", socks_binary, "--dev: the torgw-socks to run (default: beside this build)");
  app.add_option("--tor-user", tor_user, "--dev: run tor as this user (default: do not switch)");
  app.add_option("--socks-user", socks_user, "--dev: run torgw-socks as this user (default: do not switch)");
  auto* mu = app.add_option("--metadata-user", metadata_user,
                            "--dev: run the metadata helper as this user (default: nobody when run as root, "
                            "else the current user)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (!is_pid1) return app.exit(e) == 0 ? 0 : 2;
    std::fprintf(stderr, "torgw-init: ignoring arguments: %s\n", e.what());
  }
  metadata_user_given = mu->count() > 0;
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
  opts.screen_path = no_screen ? std::string() : screen;
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
  std::string temp_state;
  if (dev) {
    dev_defaults(opts);
    if (!tor_binary.empty()) opts.tor_binary = tor_binary;
    if (!socks_binary.empty()) opts.socks_binary = socks_binary;
    if (!tor_user.empty()) opts.tor_user = tor_user;
    if (!socks_user.empty()) opts.socks_user = socks_user;
    // The helper refuses to run as root: as root without --metadata-user it runs as nobody.
    opts.metadata_user = metadata_user_given ? metadata_user : (::geteuid() == 0 ? "nobody" : "");
    if (state_dir.empty()) {
      std::string tmpl = "/tmp/torgw-dev-XXXXXX";
      if (::mkdtemp(tmpl.data()) == nullptr) {
        std::perror("torgw-init: mkdtemp");
        return 2;
      }
      state_dir = temp_state = tmpl;
    }
    std::error_code ec;
    std::filesystem::create_directories(state_dir, ec);
    if (ec) {
      std::fprintf(stderr, "torgw-init: --state-dir %s: %s\n", state_dir.c_str(), ec.message().c_str());
      return 2;
    }
    // A tor user must be able to reach its dirs inside the state dir.
    ::chmod(state_dir.c_str(), 0755);
    opts.tor_data_dir = state_dir + "/tor-data";
    opts.tor_run_dir = state_dir + "/tor-run";
    opts.socks_dir = state_dir + "/socks";
  }
  int rc;
  {
    init::Init init(opts);
    rc = init.run(init::default_stages(opts));
  }
  if (!temp_state.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(temp_state, ec);
  }
  return rc;
}
