// The tor child: renders its torrc, starts it as the tor user, talks to it over its
// ControlSocket (SAFECOOKIE), adds our onion service with ADD_ONION (the secret key goes
// only over the control socket, never to disk; Onionbalance instance mode is the one
// exception, see SupervisorConfig::onionbalance_master), follows bootstrap, waits for
// HS_DESC UPLOADED of our own address, reports each step as serial markers, and restarts
// tor with capped exponential backoff when it dies. Every stage has a deadline; a stage
// that misses it, or an error that a restart cannot fix, ends in FATAL=<reason>.
//
// Runs entirely on the caller's libevent loop (PID 1's), never blocks, never reaps other
// children: tor's exit is seen through a pidfd. If the owner reaps children itself
// (PID 1: waitpid(-1)), it should pass tor's status to notify_child_exit(); otherwise the
// exit is still noticed, with an unknown status.
//
// Markers (../shared/DESIGN.md), in this order per tor start:
//   ONION_HOSTNAME=<56>.onion        after ADD_ONION (optional, see SupervisorConfig)
//   ONION_ROLE=instance              instance mode only, once tor runs with the torrc's
//   OB_MASTER=<56>.onion             HiddenServiceDir (in place of ADD_ONION)
//   POW_DEFENSE=true|false           whether the service runs with PoW DoS defence
//   TOR_BOOTSTRAP=<pct>              each time tor's bootstrap progress grows
//   HS_DESC_FAILED=<REASON>          an HSDir refused our descriptor (bounded count)
//   DESCRIPTOR_PUBLISHED=true        first HS_DESC UPLOADED of our address
//   READY=true                       (optional, see SupervisorConfig)
//   TOR_EXIT=<how>, TOR_RESTART=<n>  tor died; restarting (then the above again)
//   FATAL=<reason>[:<detail>]        unrecoverable: tor is stopped, on_fatal runs
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/event.h"
#include "common/result.h"
#include "controlport/controlport.h"
#include "onion/onion.h"
#include "serial/serial.h"
#include "supervisor/process.h"

struct event_base;

namespace torgw::supervisor {

using std::chrono::milliseconds;

enum class Toggle { Auto, On, Off };

// A private test network (tests/tornet): its DirAuthority lines. Renders
// TestingTorNetwork 1, the DirAuthority lines, AssumeReachable 1 and
// PathsNeededToBuildCircuits 0.67.
struct TestNetwork {
  std::vector<std::string> dir_authorities;  // values without the "DirAuthority" keyword
};

struct Timeouts {
  milliseconds control_connect{30000};  // tor spawned -> control socket accepts
  milliseconds command{30000};          // any control command -> its reply
  milliseconds bootstrap{300000};       // tor spawned -> bootstrap 100 %
  milliseconds publish{300000};         // bootstrap 100 % -> HS_DESC UPLOADED of our address
  milliseconds stop{10000};             // SIGTERM -> exit, else SIGKILL
};

struct Backoff {
  milliseconds initial{1000};  // delay before the first restart...
  milliseconds max{60000};     // ...doubling per consecutive failure up to this
  // Consecutive tor starts that never reached READY before FATAL=tor.restart_limit;
  // 0: never give up.
  int max_failures = 10;
};

struct SupervisorConfig {
  std::string tor_binary = "/usr/bin/tor";
  // The unprivileged user tor runs as; empty: do not switch (tests/dev as non-root).
  std::string tor_user = "debian-tor";
  std::string data_dir = "/var/lib/tor";   // DataDirectory (PID 1 mounts it as tmpfs)
  std::string run_dir = "/run/torgw/tor";  // ControlSocket, auth cookie, torrc

  // The onion service. identity null: tor makes a key (NEW:ED25519-V3, tests only: the
  // address changes on every tor start).
  std::shared_ptr<const onion::Identity> identity;
  std::vector<controlport::OnionPort> ports;  // e.g. {80, "unix:/run/torgw/socks.sock"}
  std::optional<std::uint32_t> max_streams;
  bool max_streams_close_circuit = false;
  std::vector<std::string> client_auth_v3;  // authorized clients' x25519 keys, base32
  Toggle pow_defense = Toggle::Auto;        // Auto: on if this tor supports it
  std::optional<std::uint32_t> pow_queue_rate, pow_queue_burst;
  // Onionbalance instance mode ("<56>.onion" of the master; empty: a single service).
  // tor only makes an instance from a HiddenServiceDir holding `ob_config` (ADD_ONION
  // has no such flag, and under Sandbox 1 a later SETCONF fails), so the identity's key
  // files and ob_config are written to instance_dir() (tor-owned, 0700, on the
  // data_dir tmpfs: RAM only) before each tor start, and the torrc names it
  // (HiddenServiceDir/Port/OnionBalanceInstance). The secret key file is overwritten
  // and removed when tor exits. Needs an identity; no client auth (the master
  // descriptor has none). PoW: Auto renders it on (tor 0.4.8+ is assumed; the option
  // is in the torrc before tor's version is known).
  std::string onionbalance_master;

  Toggle sandbox = Toggle::Auto;  // tor's seccomp sandbox; Auto: on where tor supports it
  // GeoIPFile/GeoIPv6File point at an empty file: an onion service needs no GeoIP and
  // loading it costs seconds. Ignored if an extra option names a {country}.
  bool skip_geoip = true;
  // Operator torrc options, only from extra_option_allowed(); anything else is a config
  // error. Values are single lines of printable ASCII without '#', '\' or '"'.
  std::vector<std::pair<std::string, std::string>> extra_options;
  std::optional<TestNetwork> test_network;

  Timeouts timeouts;
  Backoff backoff;
  bool emit_onion_hostname = true;  // PID 1 may print ONION_HOSTNAME itself, earlier
  bool emit_ready = true;           // PID 1 may print READY itself, after torgw-socks
};

// Whether `key` may be set through extra_options (case-insensitive, tor's option names).
bool extra_option_allowed(std::string_view key);
const std::vector<std::string_view>& allowed_extra_options();

// Pure validation of everything in the config that does not need the system.
// Errors: supervisor.bad_path, supervisor.no_ports, supervisor.bad_port,
// supervisor.option_not_allowed, supervisor.bad_option_value, supervisor.bad_timeout,
// supervisor.bad_dir_authority, supervisor.bad_client_auth, supervisor.bad_master
// (onionbalance_master not a v3 address, or no identity, or with client auth).
Status validate(const SupervisorConfig& cfg);
// The HiddenServiceDir of instance mode: <data_dir>/ob_instance.
std::string instance_dir(const SupervisorConfig& cfg);
// The file tor reads there: "MasterOnionAddress <56>.onion\n".
std::string ob_config_file(const std::string& master);

struct RenderContext {
  pid_t owner_pid = 0;   // __OwningControllerProcess: tor exits if we vanish
  bool sandbox = false;  // the decision for Sandbox (see resolve_sandbox)
};
// The torrc, deterministic for a given config and context. Calls validate() first.
Result<std::string> render_torrc(const SupervisorConfig& cfg, const RenderContext& ctx);
// Toggle::Auto -> whether tor's seccomp sandbox works here (Linux on x86_64/aarch64).
bool resolve_sandbox(Toggle t);

enum class Phase {
  Idle,           // not started
  Waiting,        // backoff before a restart
  Connecting,     // tor spawned, control socket not yet up
  Handshake,      // PROTOCOLINFO, AUTHENTICATE, SETEVENTS, ADD_ONION
  Bootstrapping,  // onion added, bootstrap < 100 %
  Publishing,     // bootstrapped, waiting for HS_DESC UPLOADED
  Ready,          // published
  Stopping,
  Stopped,
  Failed,  // FATAL was reported
};
const char* to_string(Phase p);

// When things happened in the current tor start (steady clock); unset ones are epoch.
struct Timeline {
  using tp = std::chrono::steady_clock::time_point;
  tp started;    // start() called (first attempt) or restart timer fired
  tp spawned;    // fork() returned in the parent
  tp connected;  // control socket accepted
  tp authenticated;
  tp onion_added;   // ADD_ONION answered 250
  tp bootstrapped;  // BOOTSTRAP PROGRESS=100 seen
  tp published;     // HS_DESC UPLOADED of our address
};

struct Hooks {
  std::function<void()> on_ready;              // after READY (each (re)publication)
  std::function<void(const Error&)> on_fatal;  // after FATAL; tor is being stopped
  std::function<void(std::string_view)> log;   // console lines; default: stderr
  // Synchronously after each tor spawn, with its pid: an owner that reaps children
  // itself (init's Reaper) registers it there and passes the status back through
  // notify_child_exit().
  std::function<void(pid_t)> on_spawn;
};

class Supervisor {
 public:
  Supervisor(event_base* base, SupervisorConfig cfg, serial::MarkerWriter& markers, Hooks hooks = {});
  ~Supervisor();  // kills tor (SIGKILL) if it still runs; no callbacks
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Validates the config, prepares data_dir/run_dir, writes the torrc and spawns tor.
  // A config or system error is returned (and printed as FATAL); then nothing runs.
  Status start();
  // SIGTERM to tor, SIGKILL after timeouts.stop; `done` runs once tor has exited (or at
  // once if none runs). No restarts after this.
  void stop(std::function<void()> done = {});
  // For an owner that reaps children itself: tor's wait status, if `pid` is tor. Returns
  // true if it was.
  bool notify_child_exit(pid_t pid, int wait_status);

  Phase phase() const { return phase_; }
  pid_t tor_pid() const { return child_.pid; }
  const std::string& service_id() const { return service_id_; }  // "" until known
  int bootstrap_progress() const { return bootstrap_; }
  int restarts() const { return restarts_; }
  const Timeline& timeline() const { return timeline_; }
  const Timeline& first_timeline() const { return first_timeline_; }
  std::string control_socket() const;
  std::string cookie_file() const;
  std::string torrc_path() const;
  const std::string& last_tor_warning() const { return last_warning_; }

 private:
  void on_exit_readable();
  Status prepare();
  Status spawn_attempt();
  void schedule_restart();
  // Stopping, stopped or failed: a reply that arrives now belongs to a start being torn
  // down and must not move the state machine (it would undo stop()).
  bool ending() const;
  void on_connected(Status st);
  void on_authenticated(Result<controlport::ProtocolInfo> pi);
  void add_onion(bool with_pow);
  void instance_started();      // instance mode: in place of add_onion()
  Status write_instance_dir();  // instance mode: key files + ob_config, before a spawn
  void wipe_instance_key();     // instance mode: after tor exits
  void on_event(const controlport::Reply& r);
  void on_bootstrap(int progress);
  void on_published();
  void on_tor_exit(int wait_status);
  void on_control_closed(const Error& e);
  void attempt_failed(const std::string& why, const std::string& fatal_reason);
  void fatal(const std::string& reason, const std::string& detail);
  void kill_tor(int sig);
  void shutdown_tor();
  void arm_timer(milliseconds after);
  void on_timer();
  void drain_output(bool final);
  void output_line(std::string_view text);
  void log(const std::string& line);
  void emit(std::string_view key, std::string_view value);
  void finish_stop();

  event_base* base_;
  SupervisorConfig cfg_;
  serial::MarkerWriter& markers_;
  Hooks hooks_;
  std::optional<Credentials> creds_;
  bool sandbox_ = false;

  Phase phase_ = Phase::Idle;
  Child child_;
  event::FdWatch exit_watch_;    // tor's pidfd
  event::FdWatch output_watch_;  // tor's stdout+stderr pipe
  UniqueFd output_fd_;
  std::string output_buf_;
  event::Timer timer_;
  std::unique_ptr<controlport::Connection> control_;
  std::string tor_version_;
  std::string expected_id_;  // from the identity, if any
  std::string service_id_;
  int bootstrap_ = -1;
  bool pow_active_ = false;
  int hs_failed_reported_ = 0;
  int consecutive_failures_ = 0;
  int restarts_ = 0;
  std::string last_warning_;
  std::string last_failure_;
  bool restart_on_exit_ = false;    // tor was killed because this start failed
  bool saw_sandbox_error_ = false;  // tor's output blamed its sandbox
  std::string ob_config_error_;     // tor's output rejected ob_config (instance mode)
  Timeline timeline_, first_timeline_;
  bool first_done_ = false;
  std::function<void()> stop_done_;
  // Hooks may destroy the Supervisor, so they are posted, never called in our own stack;
  // a post does not run once we are gone.
  event::Lifetime lifetime_;
};

}  // namespace torgw::supervisor

// ---- reason tokens (docs/DEVELOPING.md "Reason tokens") -----------------------------
// Every Error.reason this module's code makes: the tokens it spells as literals and the
// FATAL reasons it composes at run time, spelled out (<...>: a part known at run time
// only). The unit test reason_tokens_test holds the code to this list.
#include <string_view>

namespace torgw::supervisor {
inline constexpr std::string_view kReasons[] = {
    "process.no_such_user",
    "process.spawn_failed",
    "supervisor.already_started",
    "supervisor.bad_client_auth",
    "supervisor.bad_dir_authority",
    "supervisor.bad_master",
    "supervisor.bad_option_value",
    "supervisor.bad_path",
    "supervisor.bad_port",
    "supervisor.bad_timeout",
    "supervisor.cannot_switch_user",
    "supervisor.io",
    "supervisor.no_ports",
    "supervisor.no_such_user",
    "supervisor.no_tor",
    "supervisor.option_not_allowed",
    "supervisor.tor_as_root",
    "tor.bootstrap_timeout",
    "tor.ob_config",
    "tor.publish_timeout",
    "tor.restart_limit",
    "tor.spawn_failed",
};
}  // namespace torgw::supervisor
// ---- end of reason tokens ----------------------------------------------------------
