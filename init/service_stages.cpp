// The two services PID 1 runs (DESIGN.md boot steps 6-7): torgw-socks, then tor through
// supervisor/. torgw-socks starts first so the onion's target accepts connections
// before tor publishes the descriptor; READY=true follows each publication.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <sstream>

#include "common/fd.h"
#include "init/boot.h"
#include "socks/policy.h"
#include "socks/tls.h"
#include "supervisor/supervisor.h"

namespace torgw::init {

namespace {

using namespace std::chrono_literals;

constexpr const char* kSocksChild = "torgw-socks";
constexpr auto kSocksListenDeadline = 15s;

bool unix_accepts(const std::string& path) {
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (!s || path.size() >= sizeof a.sun_path) return false;
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return ::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

Result<std::optional<UserIds>> user_or_none(const std::string& name, const char* what) {
  if (name.empty()) return std::optional<UserIds>{};
  auto u = lookup_user_in(name);
  // reasons: socks:user_unknown, tor:user_unknown
  if (!u) return make_error(std::string(what) + ":user_unknown", name + ": " + u.error().to_string());
  return std::optional<UserIds>(*u);
}

// ---- torgw-socks ----------------------------------------------------------------------

class SocksStage : public Stage {
 public:
  const char* name() const override { return "socks"; }

  void start(BootContext& ctx, std::function<void(Status)> done) override {
    const auto& o = ctx.opts;
    if (auto s = check_rules(ctx.config); !s) return done(s.error());
    if (auto s = check_tls(ctx.config); !s) return done(s.error());
    auto user = user_or_none(o.socks_user, "socks");
    if (!user) return done(user.error());
    auto tor = user_or_none(o.tor_user, "tor");
    if (!tor) return done(tor.error());
    if (auto s = prepare_dir(o.socks_dir, *user, *tor); !s) return done(s.error());
    ctx.socks_socket = o.socks_dir + "/socks.sock";
    ::unlink(ctx.socks_socket.c_str());

    ChildSpec spec;
    spec.name = kSocksChild;
    spec.argv = {o.socks_binary, "--config", "-"};
    spec.user = *user;
    spec.stdin_secret = std::make_shared<const SecretBytes>(config_text(ctx));
    spec.die_with_parent = o.dev;
    spec.restart = ChildSpec::Restart::Always;
    spec.stop_timeout = std::chrono::seconds(ctx.config.uint("shutdown_timeout"));
    // reasons: socks:<token>
    if (auto s = ctx.children.start(std::move(spec)); !s)
      return done(make_error("socks:" + s.error().reason, s.error().detail));

    // Done once it accepts: tor is pointed at it next. torgw-socks listens some 20 ms
    // after its exec, and tor waits for this, so poll often: a probe (socket, connect to
    // a unix path, close) costs microseconds; 2 ms instead of 20 took 9 ms off the time
    // from start to tor's exec (medians of 8 interleaved starts each: 88 -> 79 ms).
    done_ = std::move(done);
    deadline_ = std::chrono::steady_clock::now() + kSocksListenDeadline;
    poll_ = std::make_unique<Timer>(ctx.loop);
    poll_->start(
        2ms,
        [this, &ctx] {
          if (!done_) return;
          if (unix_accepts(ctx.socks_socket)) {
            poll_->cancel();
            ctx.markers.emit("SOCKS", "listening");
            auto d = std::move(done_);
            d({});
          } else if (std::chrono::steady_clock::now() >= deadline_) {
            poll_->cancel();
            auto d = std::move(done_);
            d(make_error("socks:not_listening", ctx.socks_socket));
          }
        },
        true);
  }

  void stop(BootContext& ctx, std::function<void()> done) override {
    poll_.reset();
    ctx.children.stop(kSocksChild, std::move(done));
  }

 private:
  static std::vector<std::string> split_rules(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ','))
      if (!item.empty()) out.push_back(item);
    return out;
  }

  // The same for the TLS hop's values torgw-socks would refuse (the registry checks the
  // types; these parsers the content).
  static Status check_tls(const config::Config& c) {
    if (c.has("backend_tls_cert") != c.has("backend_tls_key"))
      return make_error(c.has("backend_tls_cert") ? "backend_tls_key:missing" : "backend_tls_cert:missing",
                        "backend_tls_cert and backend_tls_key go together (mutual TLS)");
    if (c.has("backend_tls_pin"))
      if (auto p = socks::tls::parse_pins(c.str("backend_tls_pin")); !p)
        return make_error("backend_tls_pin:bad_pin", p.error().detail);
    if (c.has("backend_tls_sni"))
      if (auto n = socks::tls::parse_sni(c.str("backend_tls_sni")); !n)
        return make_error("backend_tls_sni:bad_sni", n.error().detail);
    // reasons: backend_tls_ca:bad_pem, backend_tls_cert:bad_pem
    for (const char* key : {"backend_tls_ca", "backend_tls_cert"})
      if (c.has(key))
        if (auto pem = socks::tls::parse_pem_base64(c.str(key), socks::tls::PemKind::Certificates); !pem)
          return make_error(std::string(key) + ":bad_pem", pem.error().detail);
    if (const SecretBytes* k = c.secret("backend_tls_key"))
      if (auto pem = socks::tls::parse_pem_base64(as_chars(k->view()), socks::tls::PemKind::PrivateKey); !pem)
        return make_error("backend_tls_key:bad_pem", pem.error().detail);
    return {};
  }

  // A bad rule would make torgw-socks exit 2 at every restart: refuse it here, named.
  static Status check_rules(const config::Config& c) {
    for (const char* key : {"socks_allow", "socks_deny"}) {
      for (const auto& r : split_rules(c.str(key))) {
        // reasons: socks_allow:needs_socks5_mode, socks_deny:needs_socks5_mode
        // reasons: socks_allow:bad_rule, socks_deny:bad_rule
        if (c.str("backend_mode") != "socks5")
          return make_error(std::string(key) + ":needs_socks5_mode", "passthrough mode never sees a destination");
        if (auto rule = socks::parse_rule(key[6] == 'a', r); !rule)
          return make_error(std::string(key) + ":bad_rule", r + ": " + rule.error().to_string());
      }
    }
    return {};
  }

  // The directory holding the socket decides who may connect: the socks user owns it,
  // tor's group may enter it (0750), nobody else can reach the socket inside.
  static Status prepare_dir(const std::string& dir, const std::optional<UserIds>& user,
                            const std::optional<UserIds>& tor) {
    if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST)
      return make_error("socks:dir", dir + ": " + std::strerror(errno));
    const uid_t uid = user ? user->uid : ::geteuid();
    const gid_t gid = tor ? tor->gid : (user ? user->gid : ::getegid());
    if ((user || tor) && ::chown(dir.c_str(), uid, gid) != 0)
      return make_error("socks:dir", dir + ": chown: " + std::strerror(errno));
    if (::chmod(dir.c_str(), 0750) != 0) return make_error("socks:dir", dir + ": chmod: " + std::strerror(errno));
    return {};
  }

  // torgw-socks's config file (docs/socks.md), read from stdin: it may hold the backend
  // password, which must appear in no argv and no file.
  static SecretBytes config_text(const BootContext& ctx) {
    const auto& c = ctx.config;
    std::ostringstream t;
    t << "listen = unix:" << ctx.socks_socket << "\n";
    for (const auto& b : c.list("backend")) t << "backend = " << b << "\n";
    t << "mode = " << c.str("backend_mode") << "\n";
    t << "max_connections = " << c.uint("max_connections") << "\n";
    t << "handshake_timeout = " << c.uint("handshake_timeout") << "s\n";
    t << "idle_timeout = " << c.uint("idle_timeout") << "s\n";
    // Drain within our own stop deadline, before init's SIGKILL.
    t << "drain_timeout = " << (c.uint("shutdown_timeout") * 1000 * 8 / 10) << "ms\n";
    t << "unix_mode = 0666\n";  // access is decided by the directory (0750, tor's group)
    // Policy rules (socks5 mode only: passthrough never sees a destination). Allow
    // rules first: the first matching rule wins.
    if (c.str("backend_mode") == "socks5") {
      for (const char* key : {"socks_allow", "socks_deny"})
        for (const auto& r : split_rules(c.str(key))) t << (key[6] == 'a' ? "allow = " : "deny = ") << r << "\n";
      t << "deny_private = " << (c.flag("socks_deny_private") ? "yes" : "no") << "\n";
    }
    // The TLS hop (tls:// backends); the values are already in torgw-socks's format.
    for (const char* key : {"backend_tls_pin", "backend_tls_ca", "backend_tls_sni", "backend_tls_cert"})
      if (c.has(key)) t << key << " = " << c.str(key) << "\n";
    std::string text = t.str();
    // Secret lines: "PREFIX<secret>\n", assembled only in locked memory.
    std::vector<std::pair<std::string, const SecretBytes*>> secrets;
    if (const SecretBytes* pw = c.secret("backend_password"))
      secrets.emplace_back("backend_auth = password\nbackend_credential = " + c.str("backend_user") + ":", pw);
    if (const SecretBytes* key = c.secret("backend_tls_key")) secrets.emplace_back("backend_tls_key = ", key);
    std::size_t size = text.size();
    for (const auto& [prefix, secret] : secrets) size += prefix.size() + secret->size() + 1;
    SecretBytes out(size);
    std::uint8_t* p = out.data();
    std::memcpy(p, text.data(), text.size());
    p += text.size();
    for (const auto& [prefix, secret] : secrets) {
      std::memcpy(p, prefix.data(), prefix.size());
      p += prefix.size();
      std::memcpy(p, secret->data(), secret->size());
      p += secret->size();
      *p++ = '\n';
    }
    return out;
  }

  std::function<void(Status)> done_;
  std::chrono::steady_clock::time_point deadline_;
  std::unique_ptr<Timer> poll_;
};

// ---- tor ------------------------------------------------------------------------------

// "Option=Value;Option=Value", '+' standing for a space inside a value.
Result<std::vector<std::pair<std::string, std::string>>> parse_tor_options(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t pos = 0;
  while (pos <= text.size() && !text.empty()) {
    auto end = text.find(';', pos);
    std::string item = text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      return make_error("tor_options:bad_format", "expected Option=Value, got '" + item + "'");
    std::string value = item.substr(eq + 1);
    for (auto& ch : value)
      if (ch == '+') ch = ' ';
    out.emplace_back(item.substr(0, eq), value);
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return out;
}

Result<std::vector<std::string>> parse_test_network(const std::string& b64) {
  auto raw = from_base64(b64);
  if (!raw) return make_error("tor_test_network:bad_base64");
  std::vector<std::string> lines;
  std::istringstream in{std::string(as_chars(*raw))};
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("DirAuthority ", 0) == 0) line = line.substr(13);
    if (!line.empty()) lines.push_back(line);
  }
  if (lines.empty()) return make_error("tor_test_network:empty");
  return lines;
}

class TorStage : public Stage {
 public:
  const char* name() const override { return "tor"; }

  void start(BootContext& ctx, std::function<void(Status)> done) override {
    auto cfg = supervisor_config(ctx);
    if (!cfg) return done(cfg.error());
    supervisor::Hooks hooks;
    hooks.on_ready = [&ctx] { ctx.markers.emit("READY", "true"); };
    hooks.on_fatal = [&ctx](const Error& e) { ctx.fatal(e, true); };
    hooks.log = [&ctx](std::string_view line) { ctx.log(std::string(line)); };
    hooks.on_spawn = [this, &ctx](pid_t pid) {
      ctx.reaper.watch(pid, [this, pid](int st) {
        if (sup_) sup_->notify_child_exit(pid, st);
      });
    };
    sup_ = std::make_unique<supervisor::Supervisor>(ctx.loop.base(), std::move(*cfg), ctx.markers, hooks);
    auto st = sup_->start();
    if (!st) {
      // The supervisor printed FATAL itself; say so, so it is not printed twice.
      // reasons: tor:<token>
      ctx.fatal(make_error("tor:" + st.error().reason, st.error().detail), true);
      return;
    }
    done({});
  }

  void stop(BootContext&, std::function<void()> done) override {
    if (!sup_) return done();
    sup_->stop(std::move(done));
  }

 private:
  static Result<supervisor::SupervisorConfig> supervisor_config(BootContext& ctx) {
    const auto& c = ctx.config;
    const auto& o = ctx.opts;
    supervisor::SupervisorConfig sc;
    sc.tor_binary = o.tor_binary;
    sc.tor_user = o.tor_user;
    sc.data_dir = o.tor_data_dir;
    sc.run_dir = o.tor_run_dir;
    if (!ctx.identity) return make_error("tor:no_identity");
    sc.identity = std::make_shared<const onion::Identity>(std::move(*ctx.identity));
    ctx.identity.reset();  // the only copy of the secret now lives with the supervisor
    sc.ports = {{static_cast<std::uint16_t>(c.uint("onion_port")), "unix:" + ctx.socks_socket}};
    for (auto key : c.list("client_auth")) {
      static constexpr std::string_view kPrefix = "descriptor:x25519:";
      if (key.rfind(kPrefix, 0) == 0) key = key.substr(kPrefix.size());
      sc.client_auth_v3.push_back(key);
    }
    sc.pow_defense = c.flag("pow_defense") ? supervisor::Toggle::Auto : supervisor::Toggle::Off;
    // Onionbalance instance mode (docs/scale-out.md): the supervisor hands tor the key in a
    // HiddenServiceDir on the tmpfs and prints ONION_ROLE=instance, OB_MASTER.
    sc.onionbalance_master = c.str("onionbalance_master");
    sc.timeouts.bootstrap = std::chrono::seconds(c.uint("tor_bootstrap_timeout"));
    sc.timeouts.publish = std::chrono::seconds(c.uint("publish_timeout"));
    sc.timeouts.stop = std::chrono::seconds(c.uint("shutdown_timeout"));
    sc.emit_onion_hostname = false;  // the identity stage printed it, before attesting
    sc.emit_ready = false;           // READY is ours: torgw-socks runs by now
    if (c.has("tor_options")) {
      TORGW_ASSIGN_OR_RETURN(auto opts, parse_tor_options(c.str("tor_options")));
      sc.extra_options = std::move(opts);
    }
    if (c.has("tor_test_network")) {
      TORGW_ASSIGN_OR_RETURN(auto lines, parse_test_network(c.str("tor_test_network")));
      sc.test_network = supervisor::TestNetwork{std::move(lines)};
      ctx.markers.emit("TOR_TEST_NETWORK", "true");
    }
    if (auto s = supervisor::validate(sc); !s) {
      const char* key = s.error().reason == "supervisor.option_not_allowed" ||
                                s.error().reason == "supervisor.bad_option_value"
                            ? "tor_options"
                            : "tor";
      // reasons: tor_options:<token>, tor:<token>
      return make_error(std::string(key) + ":" + s.error().reason, s.error().detail);
    }
    return sc;
  }

  std::unique_ptr<supervisor::Supervisor> sup_;
};

}  // namespace

std::unique_ptr<Stage> make_socks_stage() { return std::make_unique<SocksStage>(); }
std::unique_ptr<Stage> make_tor_stage() { return std::make_unique<TorStage>(); }

}  // namespace torgw::init
