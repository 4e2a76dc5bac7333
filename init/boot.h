// torgw-init's boot sequence (../shared/DESIGN.md "The boot, end to end") as a list of
// stages run in order on one event loop, and the shutdown that undoes them.
//
//   PID 1 only:  mounts, read-only root, stdio, Ctrl-Alt-Del, power button
//   banner:      BOOT_ID, MARKER_VERSION, VERSION, INIT_MODE (after the RNG is ready)
//   machine:     RNG, CLOCK_CHECK, MODULES, NETWORK, resolv.conf (PID 1 only but RNG/CLOCK)
//   config:      cmdline + file (+ flags) -> metadata (GCE, Hetzner) -> CONFIG_* markers
//   ... then the stages from default_stages(): identity, and where the lead wires them,
//   SNP/attestation, tor supervision, torgw-socks.
//
// A stage gets the shared BootContext and calls done(Status) when it has finished
// starting (asynchronously if it needs the loop). An error is FATAL=<reason>: in PID 1
// the children are stopped in order and the machine powers off (or reboots, or halts:
// config key fatal_action) after fatal_delay; in --dev mode the process exits 1.
// On shutdown, started stages are stopped in reverse order, then any child left.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/secret.h"
#include "config/config.h"
#include "init/child.h"
#include "init/loop.h"
#include "init/machine.h"
#include "onion/onion.h"
#include "serial/serial.h"

namespace torgw::init {

struct BootOptions {
  bool dev = false;                                  // --dev: no machine duties
  std::string cmdline_path = "/proc/cmdline";        // "" in dev mode unless --cmdline
  std::string config_path = "/etc/torgw/torgw.conf";
  std::string modules_path = "/etc/torgw/modules";
  std::vector<config::Entry> flags;                  // --set key=value (highest precedence)
  bool extra_serial = true;                          // also write markers to ttyS0 (PID 1)
  std::string version;
  std::int64_t build_time = 0;                       // unix seconds; the clock must be later
};

// What the stages share. Stages keep their own state in their Stage object.
struct BootContext {
  EventLoop& loop;
  Reaper& reaper;
  ChildSupervisor& children;
  serial::MarkerWriter& markers;
  const BootOptions& opts;
  std::string boot_id;
  std::chrono::steady_clock::time_point started;
  config::Config config;           // valid once the config stage is done
  // Identity (set by the identity stage; consumed by tor supervision via ADD_ONION:
  // identity->add_onion_key_blob()). The secret lives in the Identity's SecretBytes.
  std::optional<onion::Identity> identity;
  std::string identity_binding;    // the IDENTITY_BINDING marker value
  // Human log line on stderr (the console): "torgw-init: <text>".
  void log(const std::string& text) const;
  std::int64_t ms_since_start() const;
};

class Stage {
 public:
  virtual ~Stage() = default;
  virtual const char* name() const = 0;
  virtual void start(BootContext& ctx, std::function<void(Status)> done) = 0;
  // Undo start() (stop processes, ...). Called once, in reverse order, on shutdown or
  // FATAL, only for stages whose start() began. The default does nothing.
  virtual void stop(BootContext& ctx, std::function<void()> done) {
    (void)ctx;
    done();
  }
};

// The stages after config, in order. THE SEAM: snp/, supervisor/ and socks/ are wired in
// here (see the comments in boot.cpp).
std::vector<std::unique_ptr<Stage>> default_stages(const BootOptions& opts);

// Identity without SEV-SNP: identity=ephemeral (or the dev-mode default) -> a fresh
// onion::Identity, IDENTITY_BINDING=ephemeral, a loud IDENTITY_WARNING, ONION_HOSTNAME.
// Any other identity mode needs the SNP stage: FATAL=identity:needs_snp.
std::unique_ptr<Stage> make_ephemeral_identity_stage();

class Init {
 public:
  explicit Init(BootOptions opts);
  ~Init();
  // Runs the whole boot. PID 1: never returns. Dev mode: returns the exit code
  // (0 after a requested shutdown, 1 after FATAL, 2 on a setup error).
  int run(std::vector<std::unique_ptr<Stage>> stages);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace torgw::init
