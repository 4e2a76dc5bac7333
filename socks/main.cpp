// torgw-socks: see socks/socks.h and docs/socks.md. Exit status: 0 clean stop, 1 runtime
// failure, 2 bad configuration (always with exactly one line on stderr saying why).
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/secret.h"
#include "socks/log.h"
#include "socks/socks.h"

#ifndef TORGW_VERSION
#define TORGW_VERSION "0.0.0"
#endif

using namespace torgw;
using namespace torgw::socks;

namespace {

// Why startup stops: the exit status and the one line for stderr.
struct Failure {
  int code;
  std::string what;
};

int fail(int code, const std::string& what) {
  std::fprintf(stderr, "torgw-socks: %s\n", what.c_str());
  return code;
}

int fail(const Failure& f) { return fail(f.code, f.what); }

// From stdin: how torgw-init hands over a config holding the backend password (an
// inherited pipe needs no open(), which a process that changed its uid could not do on
// a pipe its parent made).
std::optional<Failure> read_stdin(std::string& text) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(0, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Failure{2, std::string("bad config: cannot read stdin: ") + std::strerror(errno)};
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > (1u << 20)) return Failure{2, "bad config: stdin: larger than 1 MiB"};
  }
  wipe(buf, sizeof buf);
  return std::nullopt;
}

// The settings of --config FILE (or "-", stdin); none without --config.
std::optional<Failure> read_config_file(const std::string& name, std::vector<Setting>& file) {
  if (name.empty()) return std::nullopt;
  std::string text;
  if (name == "-") {
    if (auto f = read_stdin(text)) return f;
  } else {
    std::ifstream in(name, std::ios::binary);
    if (!in) return Failure{2, "bad config: cannot read " + name + ": " + std::strerror(errno)};
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  auto parsed = parse_config_text(text, name);
  wipe(text.data(), text.size());  // it may hold credentials
  if (!parsed) return Failure{2, "bad config: " + parsed.error().detail};
  file = std::move(*parsed);
  return std::nullopt;
}

// Who the relay runs as after the drop, and the unix socket's group.
struct Identities {
  bool root = false;
  std::optional<Identity> target;
  std::optional<gid_t> sock_gid;
};

// Resolved now so a typo is a config error, not a half-started service.
std::optional<Failure> resolve_identities(const Config& cfg, Identities& ids) {
  ids.root = ::geteuid() == 0;
  if (!cfg.user.empty()) {
    auto id = lookup_user(cfg.user);
    if (!id) return Failure{2, "bad config: user: " + id.error().detail};
    if (id->uid == 0) return Failure{2, "bad config: user: '" + cfg.user + "' is root; name an unprivileged user"};
    ids.target = *id;
  } else if (ids.root) {
    auto id = lookup_user("nobody");
    if (!id) return Failure{2, "bad config: started as root without --user, and there is no user 'nobody'"};
    ids.target = *id;
  }
  if (!cfg.unix_group.empty()) {
    auto g = lookup_group(cfg.unix_group);
    if (!g) return Failure{2, "bad config: unix_group: " + g.error().detail};
    ids.sock_gid = *g;
  }
  if (!ids.root && ids.target && ids.target->uid != ::geteuid())
    return Failure{2, "bad config: --user " + ids.target->name + " needs root (running as uid " +
                          std::to_string(::geteuid()) + ")"};
  return std::nullopt;
}

// After bind: hand the unix socket to its owner, drop root (or just forbid gaining
// privileges), then the syscall allowlist.
std::optional<Failure> confine(const Identities& ids, const std::string& unix_listen, bool user_given,
                               bool no_seccomp) {
  if (ids.root) {
    if (!unix_listen.empty()) {
      gid_t g = ids.sock_gid.value_or(ids.target->gid);
      if (::chown(unix_listen.c_str(), ids.target->uid, g) != 0)
        return Failure{1, "chown " + unix_listen + ": " + std::strerror(errno)};
    }
    if (!user_given) log::write(LogLevel::Warn, "started as root without --user: dropping to 'nobody'");
    auto st = drop_privileges(*ids.target);
    if (!st) return Failure{1, st.error().to_string()};
  } else {
    if (ids.sock_gid && !unix_listen.empty() &&
        ::chown(unix_listen.c_str(), static_cast<uid_t>(-1), *ids.sock_gid) != 0)
      return Failure{1, "chown " + unix_listen + ": " + std::strerror(errno)};
    auto st = set_no_new_privs();
    if (!st) return Failure{1, st.error().to_string()};
  }

  if (!no_seccomp) {
    auto f = install_syscall_filter();
    if (!f) return Failure{1, f.error().to_string()};
  } else {
    log::write(LogLevel::Warn, "--no-seccomp: running without the syscall allowlist");
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> argv_s(argv, argv + argc);
  auto args = parse_args(argv_s);
  if (!args) return fail(2, "bad usage: " + args.error().detail);
  if (args->help) {
    std::fputs(help_text().c_str(), stdout);
    return 0;
  }
  if (args->version) {
    std::printf("torgw-socks %s\n", TORGW_VERSION);
    return 0;
  }

  std::vector<Setting> file;
  if (auto f = read_config_file(args->config_file, file)) return fail(*f);
  auto cfg = build_config(file, args->settings);
  for (auto& s : file) wipe(s.value.data(), s.value.size());
  if (!cfg) return fail(2, "bad config: " + cfg.error().detail);
  Identities ids;
  if (auto f = resolve_identities(*cfg, ids)) return fail(*f);

  if (args->check) {
    std::fputs(cfg->describe().c_str(), stdout);
    return 0;
  }

  log::set_level(cfg->log_level);
  std::string unix_listen = cfg->listen.kind == Endpoint::Kind::Unix ? cfg->listen.path : "";
  bool user_given = !cfg->user.empty();
  auto relay = Relay::create(std::move(*cfg), Relay::Options{.handle_signals = true});
  if (!relay) {
    const auto& e = relay.error();
    // A cap the fd limit cannot carry, or TLS material OpenSSL refuses (a key that does
    // not match its certificate): the configuration is wrong, a restart will not help.
    const bool config = e.reason == "relay.fd_limit" || e.reason == "relay.tls";
    return fail(config ? 2 : 1, (config ? "bad config: " : "") + e.detail);
  }
  if (auto f = confine(ids, unix_listen, user_given, args->no_seccomp)) return fail(*f);

  auto st = (*relay)->run();
  if (!st) return fail(1, st.error().to_string());
  return 0;
}
