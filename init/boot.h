// torgw-init's boot sequence (../shared/DESIGN.md "The boot, end to end") as a list of
// stages run in order on one event loop, and the shutdown that undoes them. In order
// (docs/init.md has the markers of each step):
//
//   PID 1 only:  crash guard, mounts, read-only root, stdio, Ctrl-Alt-Del (before any
//                marker can be written; a failure is reported after the banner)
//   banner:      BOOT_ID, MARKER_VERSION, VERSION, INIT_MODE, RNG (once the RNG is ready)
//   machine:     MOUNTS, TOR_STATE_DIR, power buttons (PID 1); CLOCK_CHECK; MODULES,
//                NETWORK, resolv.conf (PID 1)
//   stages:      config (cmdline + file (+ flags) -> metadata (GCE, Hetzner) -> CONFIG_*),
//                then default_stages(): identity (SEV-SNP device, onion identity,
//                attestation), socks (torgw-socks), tor (supervisor/); then INIT_DONE
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
#include "config/metadata.h"
#include "init/child.h"
#include "init/loop.h"
#include "init/machine.h"
#include "onion/onion.h"
#include "serial/serial.h"
#include "snp/device.h"

namespace torgw::firewall {
class Installer;
}

namespace torgw::init {

struct BootOptions {
  bool dev = false;                            // --dev: no machine duties
  std::string cmdline_path = "/proc/cmdline";  // "" in dev mode unless --cmdline
  std::string config_path = "/etc/torgw/torgw.conf";
  std::string modules_path = "/etc/torgw/modules";
  std::vector<config::Entry> flags;  // --set key=value (highest precedence)
  bool extra_serial = true;          // also write markers to ttyS0 (PID 1)
  // PID 1: the screen console (init/screen.h): markers too unless it is the console's
  // own tty, and the summary block. "" : none (--no-screen).
  std::string screen_path = "/dev/tty0";
  // Where the services' programs are and whom they run as. PID 1: the image's paths and
  // users. --dev: tor from PATH, torgw-socks beside torgw-init's build, no user switch
  // (unless --tor-user/--socks-user), and state under a fresh temporary directory.
  std::string tor_binary = "/usr/bin/tor";
  std::string tor_user = "tor";
  std::string socks_binary = "/usr/bin/torgw-socks";
  std::string socks_user = "torgw-socks";
  std::string tor_data_dir = "/var/lib/tor";   // PID 1 mounts it (tmpfs, tor, 0700)
  std::string tor_run_dir = "/run/torgw/tor";  // ControlSocket, cookie, torrc
  std::string socks_dir = "/run/torgw-socks";  // torgw-socks's unix socket
  // Whom `torgw-init --metadata-helper` runs as. PID 1: the image's torgw-meta (uid 102,
  // the firewall's metadata uid). --dev: --metadata-user, else nobody when run as root,
  // else "" (the current, unprivileged user).
  std::string metadata_user = "torgw-meta";
  std::string version;
  std::int64_t build_time = 0;  // unix seconds; the clock must be later
  // snp_device=simulated opens through this (snp::open_simulated_device: torgw-init links
  // torgw_snp_simulated; the library torgw_init does not). Unset: snp.sim.unavailable.
  snp::SimulatedOpener open_simulated_psp = nullptr;
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
  config::Config config;  // valid once the config stage is done
  // Identity (set by the identity stage; consumed by tor supervision via ADD_ONION:
  // identity->add_onion_key_blob()). The secret lives in the Identity's SecretBytes.
  std::optional<onion::Identity> identity;
  std::string identity_binding;  // the IDENTITY_BINDING marker value
  std::string socks_socket;      // where torgw-socks listens (set by its stage)
  // The netlink socket that owns the firewall's table (init/firewall_stage.cpp); the
  // table lives as long as it does, so it is never closed. Null in --dev.
  std::shared_ptr<firewall::Installer> firewall;
  // FATAL from a stage after its start() finished (e.g. tor gave up). `printed`: the
  // FATAL marker is out already (the supervisor prints its own).
  std::function<void(const Error&, bool printed)> fatal;
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

// The stages after config, in order: firewall, identity, socks, tor. The one place they are listed;
// a new stage is a make_*_stage() below and a line in default_stages() (init/boot.cpp).
std::vector<std::unique_ptr<Stage>> default_stages(const BootOptions& opts);

// The egress firewall (init/firewall_stage.cpp, firewall/): phase 1, called by the config
// stage before it asks a metadata service, lets only the metadata fetcher out
// (FIREWALL=boot:<n>); the firewall stage then replaces it with the whole ruleset
// (FIREWALL=ready:<n>) and runs the self-test (EGRESS_SELFTEST). firewall=off:
// FIREWALL=off and a warning. --dev: FIREWALL=dev, nothing installed.
Status install_boot_firewall(BootContext& ctx, const config::Config& local);
std::unique_ptr<Stage> make_firewall_stage();

// SEV-SNP and identity (init/identity_stage.cpp): opens the device snp_device names,
// obtains the onion identity as `identity` says (derived, sealed, transfer, ephemeral;
// without SEV-SNP only ephemeral, and only if identity=ephemeral or
// snp_fallback=ephemeral, else FATAL=identity:needs_snp), sets ctx.identity, and prints
// SNP, IDENTITY_BINDING, ONION_HOSTNAME and the attestation markers (snp/attest.h).
std::unique_ptr<Stage> make_identity_stage();

// torgw-socks as a supervised child (init/service_stages.cpp): listens on a unix socket
// in opts.socks_dir that only tor's group can reach; its config (with the backend
// password, if any) goes to it on stdin. Done once it accepts connections.
std::unique_ptr<Stage> make_socks_stage();
// tor through supervisor/: ADD_ONION with ctx.identity, HiddenServicePort onion_port ->
// torgw-socks; READY=true each time the descriptor is published. Done once tor runs.
std::unique_ptr<Stage> make_tor_stage();

// The metadata fetch as PID 1 does it (init/metadata_client.cpp, docs/init.md "Privilege
// separation"): PID 1 never speaks HTTP. It runs `/proc/self/exe --metadata-helper` as
// opts.metadata_user (capability bounding set emptied, no_new_privs), reads the
// helper's report from a pipe (at most config::kMaxMetadataWireBytes, killed at
// metadata_helper_deadline()) and parses it with config::parse_metadata_wire. `done`
// runs once, on the loop, with the fetch's own result or error (gce:http_500, ... as
// before), or: metadata:helper_user_unknown, metadata:helper_spawn_failed,
// metadata:helper_timeout, metadata:helper_too_large, metadata:helper_exit (crash or
// non-zero exit), metadata:helper_output (a report that does not parse),
// metadata:helper_privileged (the helper found itself privileged and refused).
// Destroying it kills a helper still running.
class MetadataClient {
 public:
  using Done = std::function<void(Result<config::MetadataResult>)>;
  explicit MetadataClient(BootContext& ctx);
  void start(const config::MetadataOptions& o, Done done);

 private:
  BootContext& ctx_;
  HelperRun run_;
};

// The whole helper's deadline: every GET may take attempts x timeout plus the backoff
// between them; a GCE listing, its attributes and Hetzner are several GETs, so twice
// that plus 10 s. A host that answers every GET slowly but within its own deadline can
// exceed it: FATAL=metadata:helper_timeout, as it could stall the boot anyway.
std::chrono::milliseconds metadata_helper_deadline(const config::MetadataOptions& o);

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
