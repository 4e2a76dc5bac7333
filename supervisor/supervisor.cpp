#include "supervisor/supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace torgw::supervisor {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const char* to_string(Phase p) {
  switch (p) {
    case Phase::Idle: return "idle";
    case Phase::Waiting: return "waiting";
    case Phase::Connecting: return "connecting";
    case Phase::Handshake: return "handshake";
    case Phase::Bootstrapping: return "bootstrapping";
    case Phase::Publishing: return "publishing";
    case Phase::Ready: return "ready";
    case Phase::Stopping: return "stopping";
    case Phase::Stopped: return "stopped";
    case Phase::Failed: return "failed";
  }
  return "?";
}

namespace {

constexpr std::size_t kMaxOutputLine = 4096;
constexpr int kMaxHsFailedMarkers = 16;
constexpr milliseconds kKillGrace{1000};

// "0.4.9.11" >= 0.4.8 (the first tor with onion-service PoW).
bool tor_has_pow(const std::string& version) {
  int a = 0, b = 0, c = 0;
  if (std::sscanf(version.c_str(), "%d.%d.%d", &a, &b, &c) != 3) return false;
  return a > 0 || b > 4 || (b == 4 && c >= 8);
}

Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode) {
  std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd) return make_error("supervisor.io", tmp + ": " + std::strerror(errno));
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd.get(), p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error("supervisor.io", tmp + ": " + std::strerror(errno));
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  ::fchmod(fd.get(), mode);
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return make_error("supervisor.io", path + ": " + std::strerror(errno));
  return {};
}

// mkdir -p, then the leaf's owner and mode.
Status make_dir(const std::string& path, mode_t mode, const std::optional<Credentials>& owner, gid_t group) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return make_error("supervisor.io", path + ": " + ec.message());
  if (owner && ::geteuid() == 0 && ::chown(path.c_str(), owner->uid, group) != 0)
    return make_error("supervisor.io", "chown " + path + ": " + std::strerror(errno));
  if (::chmod(path.c_str(), mode) != 0)
    return make_error("supervisor.io", "chmod " + path + ": " + std::strerror(errno));
  return {};
}

}  // namespace

Supervisor::Supervisor(event_base* base, SupervisorConfig cfg, serial::MarkerWriter& markers, Hooks hooks)
    : base_(base), cfg_(std::move(cfg)), markers_(markers), hooks_(std::move(hooks)), timer_(base) {}

Supervisor::~Supervisor() {
  control_.reset();
  if (child_.pid > 0 && child_.pidfd) {
    ::syscall(SYS_pidfd_send_signal, child_.pidfd.get(), SIGKILL, nullptr, 0);
    siginfo_t si{};
    // Prompt after SIGKILL; ECHILD at once if PID 1's reaper got it first.
    while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(child_.pidfd.get()), &si, WEXITED) < 0 &&
           errno == EINTR) {
    }
  }
  wipe_instance_key();
}

std::string Supervisor::control_socket() const { return cfg_.run_dir + "/control"; }
std::string Supervisor::cookie_file() const { return cfg_.run_dir + "/control.authcookie"; }
std::string Supervisor::torrc_path() const { return cfg_.run_dir + "/torrc"; }

void Supervisor::log(const std::string& line) {
  if (hooks_.log) {
    hooks_.log(line);
    return;
  }
  std::string l = line + "\n";
  (void)!::write(2, l.data(), l.size());
}

void Supervisor::emit(std::string_view key, std::string_view value) {
  if (!markers_.emit(key, serial::sanitize_value(value)))
    log("torgw: supervisor: cannot emit marker " + std::string(key));
}

// ---- start ---------------------------------------------------------------------------

Status Supervisor::prepare() {
  TORGW_TRY(validate(cfg_));
  if (::access(cfg_.tor_binary.c_str(), X_OK) != 0)
    return make_error("supervisor.no_tor", cfg_.tor_binary + ": " + std::strerror(errno));
  if (!cfg_.tor_user.empty()) {
    auto c = lookup_user(cfg_.tor_user);
    if (!c) return make_error("supervisor.no_such_user", cfg_.tor_user);
    if (::geteuid() != 0 && c->uid != ::geteuid())
      return make_error("supervisor.cannot_switch_user", "running tor as " + cfg_.tor_user + " needs root");
    if (c->uid == 0) return make_error("supervisor.tor_as_root", "tor_user must not be root");
    creds_ = *c;
  }
  sandbox_ = resolve_sandbox(cfg_.sandbox);
  const gid_t group = creds_ ? creds_->gid : ::getegid();
  // run_dir: tor creates its socket and cookie there; the tor group may read (0750).
  TORGW_TRY(make_dir(cfg_.run_dir, 0750, creds_, group));
  TORGW_TRY(make_dir(cfg_.data_dir, 0700, creds_, group));
  if (cfg_.skip_geoip) TORGW_TRY(write_file_atomic(cfg_.run_dir + "/geoip-empty", "", 0644));
  TORGW_ASSIGN_OR_RETURN(auto rc, render_torrc(cfg_, RenderContext{::getpid(), sandbox_}));
  TORGW_TRY(write_file_atomic(torrc_path(), rc, 0644));
  if (cfg_.identity) expected_id_ = cfg_.identity->hostname().substr(0, onion::kAddressChars);
  return {};
}

// Instance mode: the files tor reads from its HiddenServiceDir, written afresh before
// every tor start (wipe_instance_key() removed the secret after the last one). Owned by
// tor, 0700/0600, on the data_dir tmpfs: RAM only, never a disk.
Status Supervisor::write_instance_dir() {
  const gid_t group = creds_ ? creds_->gid : ::getegid();
  const std::string dir = instance_dir(cfg_);
  TORGW_TRY(make_dir(dir, 0700, creds_, group));
  auto put = [&](const char* name, std::string_view data) -> Status {
    const std::string path = dir + "/" + name;
    TORGW_TRY(write_file_atomic(path, data, 0600));
    if (creds_ && ::geteuid() == 0 && ::chown(path.c_str(), creds_->uid, group) != 0)
      return make_error("supervisor.io", "chown " + path + ": " + std::strerror(errno));
    return {};
  };
  Bytes secret = onion::secret_key_file(*cfg_.identity);
  Status st = put("hs_ed25519_secret_key", as_chars(secret));
  wipe(secret.data(), secret.size());
  TORGW_TRY(st);
  TORGW_TRY(put("hs_ed25519_public_key", as_chars(onion::public_key_file(cfg_.identity->public_key()))));
  TORGW_TRY(put("hostname", onion::hostname_file(cfg_.identity->public_key())));
  return put("ob_config", ob_config_file(cfg_.onionbalance_master));
}

// The key must stay in place for tor's whole life (tor re-reads it on every options
// change); once tor is gone, nothing needs it: overwrite, then unlink.
void Supervisor::wipe_instance_key() {
  if (cfg_.onionbalance_master.empty()) return;
  const std::string path = instance_dir(cfg_) + "/hs_ed25519_secret_key";
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd) {
    const std::string zeros(onion::kSecretKeyFileSize, '\0');
    (void)!::pwrite(fd.get(), zeros.data(), zeros.size(), 0);
    ::fsync(fd.get());
  }
  ::unlink(path.c_str());
}

Status Supervisor::start() {
  if (phase_ != Phase::Idle) return make_error("supervisor.already_started");
  timeline_ = Timeline{};
  timeline_.started = Clock::now();
  auto st = prepare();
  if (st) st = spawn_attempt();
  if (!st) {
    phase_ = Phase::Failed;
    markers_.fatal(st.error().reason);
    log("torgw: supervisor: FATAL " + st.error().to_string());
    return st;
  }
  return {};
}

// ---- one tor start -------------------------------------------------------------------

Status Supervisor::spawn_attempt() {
  const auto started = timeline_.started;
  timeline_ = Timeline{};
  timeline_.started = started;
  bootstrap_ = -1;
  service_id_.clear();
  hs_failed_reported_ = 0;
  pow_active_ = false;
  saw_sandbox_error_ = false;
  ob_config_error_.clear();
  if (!cfg_.onionbalance_master.empty()) TORGW_TRY(write_instance_dir());
  // A socket or cookie left by a previous tor must not be mistaken for the new one's.
  ::unlink(control_socket().c_str());
  ::unlink(cookie_file().c_str());

  int pfd[2];
  if (::pipe2(pfd, O_CLOEXEC | O_NONBLOCK) != 0)
    return make_error("tor.spawn_failed", std::string("pipe: ") + std::strerror(errno));
  UniqueFd out_r(pfd[0]), out_w(pfd[1]);
  SpawnSpec spec;
  spec.argv = {cfg_.tor_binary, "-f", torrc_path(), "--defaults-torrc", "/dev/null"};
  spec.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + cfg_.data_dir};
  spec.stdout_fd = spec.stderr_fd = out_w.get();
  spec.creds = creds_;
  spec.die_with_parent = true;  // an orphaned tor would hold the DataDirectory lock against the next
  auto child = spawn_with_pidfd(spec);
  if (!child) return make_error("tor.spawn_failed", child.error().detail);
  out_w.reset();
  child_ = std::move(*child);
  timeline_.spawned = Clock::now();
  if (!child_.pidfd) {
    ::kill(child_.pid, SIGKILL);
    return make_error("tor.spawn_failed", "pidfd_open unsupported (Linux >= 5.3 needed)");
  }
  log("torgw: supervisor: started tor (pid " + std::to_string(child_.pid) + (sandbox_ ? ", sandboxed" : "") + ")");
  if (hooks_.on_spawn) hooks_.on_spawn(child_.pid);

  exit_watch_ = event::FdWatch(base_, child_.pidfd.get(), [this] { on_exit_readable(); });
  output_fd_ = std::move(out_r);
  output_buf_.clear();
  output_watch_ = event::FdWatch(base_, output_fd_.get(), [this] { drain_output(false); });

  controlport::ConnectOptions co;
  co.timeout = cfg_.timeouts.control_connect;
  co.command_timeout = cfg_.timeouts.command;
  control_ = std::make_unique<controlport::Connection>(base_, co);
  control_->on_event([this](const controlport::Reply& r) { on_event(r); });
  control_->on_close([this](const Error& e) { on_control_closed(e); });
  phase_ = Phase::Connecting;
  arm_timer(cfg_.timeouts.bootstrap);
  control_->connect(controlport::Endpoint::unix_socket(control_socket()), [this](Status s) { on_connected(s); });
  return {};
}

bool Supervisor::ending() const {
  return phase_ == Phase::Stopping || phase_ == Phase::Stopped || phase_ == Phase::Failed;
}

void Supervisor::on_connected(Status st) {
  if (ending()) return;
  if (!st) {
    attempt_failed("no control socket: " + st.error().to_string(), "");
    return;
  }
  timeline_.connected = Clock::now();
  phase_ = Phase::Handshake;
  controlport::AuthOptions auth;
  auth.expected_cookie_file = cookie_file();
  auth.allow_cookie = false;  // SAFECOOKIE only: tor proves it knows the cookie too
  auth.allow_null = false;
  control_->authenticate(auth, [this](Result<controlport::ProtocolInfo> pi) { on_authenticated(std::move(pi)); });
}

void Supervisor::on_authenticated(Result<controlport::ProtocolInfo> pi) {
  if (ending()) return;
  if (!pi) {
    const auto& r = pi.error().reason;
    const bool transient = r == "controlport.closed" || r == "controlport.io_error" || r == "controlport.timeout";
    attempt_failed("authentication: " + pi.error().to_string(), transient ? "" : "tor.auth_failed");
    return;
  }
  timeline_.authenticated = Clock::now();
  tor_version_ = pi->tor_version;
  // Pipelined: tor answers in order, and events start before the onion exists.
  auto st = control_->setevents({"HS_DESC", "STATUS_CLIENT", "WARN", "ERR"}, [this](Status s) {
    if (!s) attempt_failed("SETEVENTS: " + s.error().to_string(), "");
  });
  if (st) {
    st = control_->getinfo({"status/bootstrap-phase"}, [this](auto r) {
      if (!r) return;  // a failed command closes the connection; on_control_closed handles it
      auto b = controlport::parse_bootstrap_phase(r->front().second);
      if (b) on_bootstrap(b->progress);
    });
  }
  if (!st) {
    attempt_failed("control: " + st.error().to_string(), "");
    return;
  }
  if (!cfg_.onionbalance_master.empty()) return instance_started();
  const bool pow = cfg_.pow_defense == Toggle::On || (cfg_.pow_defense == Toggle::Auto && tor_has_pow(tor_version_));
  add_onion(pow);
}

// Instance mode: tor started from a torrc naming the HiddenServiceDir, and reached its
// control socket only after it accepted that config (a bad ob_config ends tor at start),
// so the service exists: no ADD_ONION (tor refuses instances there) and no SETCONF
// (refused under the sandbox; it re-reads the directory). Readiness is unchanged:
// HS_DESC UPLOADED of the instance's own address.
void Supervisor::instance_started() {
  timeline_.onion_added = Clock::now();
  service_id_ = expected_id_;
  pow_active_ = cfg_.pow_defense != Toggle::Off;
  if (cfg_.emit_onion_hostname) emit("ONION_HOSTNAME", service_id_ + ".onion");
  emit("ONION_ROLE", "instance");
  emit("OB_MASTER", cfg_.onionbalance_master);
  emit("POW_DEFENSE", pow_active_ ? "true" : "false");
  log("torgw: supervisor: Onionbalance instance " + service_id_ + ".onion for master " + cfg_.onionbalance_master);
  if (bootstrap_ == 100) {
    phase_ = Phase::Publishing;
    arm_timer(cfg_.timeouts.publish);
  } else {
    phase_ = Phase::Bootstrapping;
  }
}

void Supervisor::add_onion(bool with_pow) {
  SecretBytes blob;
  controlport::AddOnionRequest req;
  if (cfg_.identity) {
    blob = cfg_.identity->add_onion_key_blob();
    req.key_blob = &blob;
  }
  req.ports = cfg_.ports;
  req.max_streams = cfg_.max_streams;
  req.max_streams_close_circuit = cfg_.max_streams_close_circuit;
  req.client_auth_v3 = cfg_.client_auth_v3;
  if (with_pow) req.pow = controlport::PowOptions{true, cfg_.pow_queue_rate, cfg_.pow_queue_burst};
  auto st = control_->add_onion(req, [this, with_pow](Result<controlport::AddOnionReply> r) {
    if (ending()) return;
    if (!r) {
      if (r.error().reason == "controlport.reply_error" && with_pow && cfg_.pow_defense == Toggle::Auto) {
        log("torgw: supervisor: ADD_ONION with PoW refused (" + r.error().detail + "); adding without PoW");
        add_onion(false);
        return;
      }
      const bool rejected = r.error().reason == "controlport.reply_error" ||
                            r.error().reason == "controlport.bad_add_onion";
      attempt_failed("ADD_ONION: " + r.error().to_string(), rejected ? "tor.add_onion_rejected" : "");
      return;
    }
    if (!expected_id_.empty() && r->service_id != expected_id_) {
      attempt_failed("tor published " + r->service_id + ", not our " + expected_id_, "tor.wrong_onion");
      return;
    }
    timeline_.onion_added = Clock::now();
    service_id_ = r->service_id;
    pow_active_ = with_pow;
    if (cfg_.emit_onion_hostname) emit("ONION_HOSTNAME", service_id_ + ".onion");
    emit("POW_DEFENSE", with_pow ? "true" : "false");
    if (bootstrap_ == 100) {
      phase_ = Phase::Publishing;
      arm_timer(cfg_.timeouts.publish);
    } else {
      phase_ = Phase::Bootstrapping;
    }
  });
  if (!st) attempt_failed("ADD_ONION: " + st.error().to_string(), "tor.add_onion_rejected");
}

void Supervisor::on_event(const controlport::Reply& r) {
  auto name = controlport::event_name(r);
  if (name == "STATUS_CLIENT") {
    auto s = controlport::parse_status(r);
    if (!s || s->action != "BOOTSTRAP") return;
    auto b = controlport::parse_bootstrap(*s);
    if (!b) return;
    if (b->severity != "NOTICE" && b->warning) last_warning_ = "bootstrap: " + *b->warning;
    on_bootstrap(b->progress);
  } else if (name == "HS_DESC") {
    auto e = controlport::parse_hs_desc(r);
    if (!e || service_id_.empty() || e->address != service_id_) return;
    if (e->action == controlport::HsDescAction::Uploaded) {
      on_published();
    } else if (e->action == controlport::HsDescAction::Failed) {
      std::string reason = e->reason.value_or("UNKNOWN");
      log("torgw: supervisor: HSDir " + e->hs_dir + " refused our descriptor: " + reason);
      if (hs_failed_reported_++ < kMaxHsFailedMarkers) emit("HS_DESC_FAILED", reason);
    }
  } else if (name == "WARN" || name == "ERR") {
    auto l = controlport::parse_log_event(r);
    if (l) last_warning_ = l->message.substr(0, 300);
  }
}

void Supervisor::on_bootstrap(int progress) {
  if (progress <= bootstrap_) return;
  bootstrap_ = progress;
  emit("TOR_BOOTSTRAP", std::to_string(progress));
  if (progress < 100) return;
  timeline_.bootstrapped = Clock::now();
  if (phase_ == Phase::Bootstrapping) {
    phase_ = Phase::Publishing;
    arm_timer(cfg_.timeouts.publish);
  }
}

void Supervisor::on_published() {
  if (phase_ != Phase::Bootstrapping && phase_ != Phase::Publishing) return;  // re-uploads
  timeline_.published = Clock::now();
  timer_.cancel();
  phase_ = Phase::Ready;
  consecutive_failures_ = 0;
  if (!first_done_) {
    first_timeline_ = timeline_;
    first_done_ = true;
  }
  emit("DESCRIPTOR_PUBLISHED", "true");
  if (cfg_.emit_ready) emit("READY", "true");
  log("torgw: supervisor: " + service_id_ + ".onion published");
  if (hooks_.on_ready) event::post(base_, lifetime_, [this] { hooks_.on_ready(); });
}

// ---- failures, restarts, stopping ------------------------------------------------------

void Supervisor::on_control_closed(const Error& e) {
  if (ending() || phase_ == Phase::Waiting) return;
  attempt_failed("control connection lost: " + e.to_string(), "");
}

// This tor start failed. With a fatal reason, it is the end; otherwise tor is killed
// (if it still runs) and restarted with backoff once its exit is seen.
void Supervisor::attempt_failed(const std::string& why, const std::string& fatal_reason) {
  if (ending() || phase_ == Phase::Waiting) return;
  if (!fatal_reason.empty()) {
    fatal(fatal_reason, why);
    return;
  }
  if (restart_on_exit_) return;  // already failed; waiting for tor's exit
  last_failure_ = why;
  log("torgw: supervisor: " + why);
  if (child_.pid > 0) {
    // tor may be on its way out by itself (its control connection closes first): a
    // moment's grace, so its own exit status is what gets reported; then SIGKILL
    // (not SIGTERM, which a sandboxed tor may not see, see shutdown_tor()).
    restart_on_exit_ = true;
    arm_timer(kKillGrace);
  } else {
    schedule_restart();
  }
}

void Supervisor::schedule_restart() {
  ++consecutive_failures_;
  if (cfg_.backoff.max_failures > 0 && consecutive_failures_ >= cfg_.backoff.max_failures) {
    fatal("tor.restart_limit", std::to_string(consecutive_failures_) + " tor starts failed; last: " + last_failure_);
    return;
  }
  auto delay = cfg_.backoff.initial;
  for (int i = 1; i < consecutive_failures_ && delay < cfg_.backoff.max; ++i) delay *= 2;
  delay = std::min(delay, cfg_.backoff.max);
  ++restarts_;
  emit("TOR_RESTART", std::to_string(restarts_));
  log("torgw: supervisor: restarting tor in " + std::to_string(delay.count()) + " ms (restart " +
      std::to_string(restarts_) + ")");
  phase_ = Phase::Waiting;
  arm_timer(delay);
}

void Supervisor::fatal(const std::string& reason, const std::string& detail) {
  if (phase_ == Phase::Failed || phase_ == Phase::Stopped) return;
  phase_ = Phase::Failed;
  timer_.cancel();
  markers_.fatal(reason);
  log("torgw: supervisor: FATAL " + reason + ": " + detail +
      (last_warning_.empty() ? "" : " (tor's last warning: " + last_warning_ + ")"));
  shutdown_tor();
  if (hooks_.on_fatal) {
    Error e = make_error(reason, detail);
    event::post(base_, lifetime_, [this, e] { hooks_.on_fatal(e); });
  }
}

// SIGNAL SHUTDOWN over the control connection and SIGTERM, SIGKILL at the deadline.
// The control command matters: under Sandbox 1 (Debian tor 0.4.9 with glibc 2.36) tor's
// main thread can end up with SIGTERM blocked, because the sandbox refuses the
// rt_sigprocmask that pthread_create makes and glibc then restores a garbage mask.
void Supervisor::shutdown_tor() {
  if (child_.pid <= 0) return;
  if (control_ && control_->connected()) (void)control_->signal("SHUTDOWN", [](Status) {});
  kill_tor(SIGTERM);
  arm_timer(cfg_.timeouts.stop);
}

void Supervisor::kill_tor(int sig) {
  // Through the pidfd: never a recycled pid.
  if (child_.pid > 0 && child_.pidfd) ::syscall(SYS_pidfd_send_signal, child_.pidfd.get(), sig, nullptr, 0);
}

void Supervisor::stop(std::function<void()> done) {
  if (phase_ == Phase::Stopping) {
    if (done) stop_done_ = std::move(done);
    return;
  }
  stop_done_ = std::move(done);
  timer_.cancel();
  if (child_.pid <= 0) {
    if (control_) control_->close();
    finish_stop();
    return;
  }
  phase_ = Phase::Stopping;
  log("torgw: supervisor: stopping tor");
  shutdown_tor();
}

void Supervisor::finish_stop() {
  phase_ = Phase::Stopped;
  if (stop_done_) {
    auto d = std::move(stop_done_);
    stop_done_ = nullptr;
    event::post(base_, lifetime_, std::move(d));
  }
}

bool Supervisor::notify_child_exit(pid_t pid, int wait_status) {
  if (child_.pid <= 0 || pid != child_.pid) return false;
  on_tor_exit(wait_status);
  return true;
}

void Supervisor::on_exit_readable() {
  auto st = try_reap(child_);
  if (!st) {
    exit_watch_ = event::FdWatch();  // one wakeup per start, as before: not yet (spurious)
    return;
  }
  on_tor_exit(*st);
}

void Supervisor::on_tor_exit(int wait_status) {
  exit_watch_ = event::FdWatch();
  child_ = Child{};
  drain_output(true);
  control_.reset();
  wipe_instance_key();
  const std::string how = describe_status(wait_status);
  switch (phase_) {
    case Phase::Stopping:
      timer_.cancel();
      log("torgw: supervisor: tor " + how);
      finish_stop();
      return;
    case Phase::Failed:
      timer_.cancel();
      log("torgw: supervisor: tor " + how);
      return;
    default: break;
  }
  const bool was_ready = phase_ == Phase::Ready;
  const bool never_connected = timeline_.connected == Timeline::tp{};
  emit("TOR_EXIT", how);
  // tor refused the instance's ob_config: a restart would read the same file.
  if (never_connected && !ob_config_error_.empty()) {
    fatal("tor.ob_config", ob_config_error_);
    return;
  }
  if (!restart_on_exit_) last_failure_ = "tor " + how;
  restart_on_exit_ = false;
  log("torgw: supervisor: tor " + how + (was_ready ? " after publishing" : "") + " (" + last_failure_ + ")");
  // A tor that cannot run sandboxed here dies at once, saying so: retry without it.
  if (never_connected && saw_sandbox_error_ && sandbox_ && cfg_.sandbox == Toggle::Auto) {
    sandbox_ = false;
    auto rc = render_torrc(cfg_, RenderContext{::getpid(), false});
    if (rc && write_file_atomic(torrc_path(), *rc, 0644).ok()) {
      log("torgw: supervisor: tor's sandbox is unavailable here; running without it");
      emit("TOR_SANDBOX", "false");
      phase_ = Phase::Waiting;
      arm_timer(milliseconds(0));
      return;
    }
  }
  schedule_restart();
}

void Supervisor::arm_timer(milliseconds after) {
  timer_.start(after, [this] { on_timer(); });
}

void Supervisor::on_timer() {
  if (restart_on_exit_ && child_.pid > 0) {
    kill_tor(SIGKILL);
    return;
  }
  switch (phase_) {
    case Phase::Waiting: {
      timeline_.started = Clock::now();
      auto st = spawn_attempt();
      if (!st) fatal(st.error().reason, st.error().detail);
      return;
    }
    case Phase::Connecting:
    case Phase::Handshake:
    case Phase::Bootstrapping:
      fatal("tor.bootstrap_timeout", "bootstrap at " + std::to_string(std::max(bootstrap_, 0)) + " % after " +
                                         std::to_string(cfg_.timeouts.bootstrap.count()) + " ms");
      return;
    case Phase::Publishing:
      fatal("tor.publish_timeout", "no HS_DESC UPLOADED for " + service_id_ + " within " +
                                       std::to_string(cfg_.timeouts.publish.count()) + " ms of bootstrap");
      return;
    case Phase::Stopping:
    case Phase::Failed:
      log("torgw: supervisor: tor ignored SIGTERM; SIGKILL");
      kill_tor(SIGKILL);
      return;
    default: return;
  }
}

// ---- tor's stdout -------------------------------------------------------------------------

void Supervisor::output_line(std::string_view raw) {
  std::string text(raw.substr(0, kMaxOutputLine));
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t') c = '?';
  if (text.find("andbox") != std::string::npos &&
      (text.find("[err]") != std::string::npos || text.find("[warn]") != std::string::npos))
    saw_sandbox_error_ = true;
  if (!cfg_.onionbalance_master.empty() && ob_config_error_.empty() &&
      text.find("OnionBalance:") != std::string::npos &&
      (text.find("[err]") != std::string::npos || text.find("[warn]") != std::string::npos))
    ob_config_error_ = text.substr(0, 300);
  log("tor: " + text);
}

// Reads what tor wrote (bounded per call so a chatty tor cannot starve the loop) and
// logs it line by line. `final`: tor has exited; read to the end and close the pipe.
void Supervisor::drain_output(bool final) {
  if (!output_fd_) return;
  bool eof = false;
  char buf[16384];
  for (int rounds = 0; final || rounds < 16; ++rounds) {
    ssize_t n = ::read(output_fd_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
      eof = true;
      break;
    }
    if (n < 0) break;  // EAGAIN: all read for now
    output_buf_.append(buf, static_cast<std::size_t>(n));
    std::size_t start = 0, nl;
    while ((nl = output_buf_.find('\n', start)) != std::string::npos) {
      output_line(std::string_view(output_buf_).substr(start, nl - start));
      start = nl + 1;
    }
    output_buf_.erase(0, start);
    while (output_buf_.size() >= kMaxOutputLine) {  // an endless line: cut it
      output_line(std::string_view(output_buf_).substr(0, kMaxOutputLine));
      output_buf_.erase(0, kMaxOutputLine);
    }
  }
  if (eof || final) {
    if (!output_buf_.empty()) output_line(output_buf_);
    output_buf_.clear();
    output_watch_ = event::FdWatch();
    output_fd_.reset();
  }
}

}  // namespace torgw::supervisor
