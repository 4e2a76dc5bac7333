// torgw-socks: see socks/socks.h and docs/socks.md. Exit status: 0 clean stop, 1 runtime
// failure, 2 bad configuration (always with exactly one line on stderr saying why).
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
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

int fail(int code, const std::string& what) {
  std::fprintf(stderr, "torgw-socks: %s\n", what.c_str());
  return code;
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
  if (!args->config_file.empty()) {
    std::string text;
    if (args->config_file == "-") {
      // From stdin: how torgw-init hands over a config holding the backend password
      // (an inherited pipe needs no open(), which a process that changed its uid could
      // not do on a pipe its parent made).
      char buf[4096];
      for (;;) {
        ssize_t n = ::read(0, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail(2, std::string("bad config: cannot read stdin: ") + std::strerror(errno));
        if (n == 0) break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > (1u << 20)) return fail(2, "bad config: stdin: larger than 1 MiB");
      }
      wipe(buf, sizeof buf);
    } else {
      std::ifstream f(args->config_file, std::ios::binary);
      if (!f) return fail(2, "bad config: cannot read " + args->config_file + ": " + std::strerror(errno));
      std::stringstream ss;
      ss << f.rdbuf();
      text = ss.str();
    }
    auto parsed = parse_config_text(text, args->config_file);
    wipe(text.data(), text.size());  // it may hold credentials
    if (!parsed) return fail(2, "bad config: " + parsed.error().detail);
    file = std::move(*parsed);
  }
  auto cfg = build_config(file, args->settings);
  for (auto& s : file) wipe(s.value.data(), s.value.size());
  if (!cfg) return fail(2, "bad config: " + cfg.error().detail);

  // Resolve the identity now so a typo is a config error, not a half-started service.
  bool root = ::geteuid() == 0;
  std::optional<Identity> target;
  if (!cfg->user.empty()) {
    auto id = lookup_user(cfg->user);
    if (!id) return fail(2, "bad config: user: " + id.error().detail);
    if (id->uid == 0) return fail(2, "bad config: user: '" + cfg->user + "' is root; name an unprivileged user");
    target = *id;
  } else if (root) {
    auto id = lookup_user("nobody");
    if (!id) return fail(2, "bad config: started as root without --user, and there is no user 'nobody'");
    target = *id;
  }
  std::optional<gid_t> sock_gid;
  if (!cfg->unix_group.empty()) {
    auto g = lookup_group(cfg->unix_group);
    if (!g) return fail(2, "bad config: unix_group: " + g.error().detail);
    sock_gid = *g;
  }
  if (!root && target && target->uid != ::geteuid())
    return fail(2, "bad config: --user " + target->name + " needs root (running as uid " +
                       std::to_string(::geteuid()) + ")");

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

  if (root) {
    if (!unix_listen.empty()) {
      gid_t g = sock_gid.value_or(target->gid);
      if (::chown(unix_listen.c_str(), target->uid, g) != 0)
        return fail(1, "chown " + unix_listen + ": " + std::strerror(errno));
    }
    if (!user_given) log::write(LogLevel::Warn, "started as root without --user: dropping to 'nobody'");
    auto st = drop_privileges(*target);
    if (!st) return fail(1, st.error().to_string());
  } else {
    if (sock_gid && !unix_listen.empty() && ::chown(unix_listen.c_str(), static_cast<uid_t>(-1), *sock_gid) != 0)
      return fail(1, "chown " + unix_listen + ": " + std::strerror(errno));
    auto st = set_no_new_privs();
    if (!st) return fail(1, st.error().to_string());
  }

  if (!args->no_seccomp) {
    auto f = install_syscall_filter();
    if (!f) return fail(1, f.error().to_string());
  } else {
    log::write(LogLevel::Warn, "--no-seccomp: running without the syscall allowlist");
  }

  auto st = (*relay)->run();
  if (!st) return fail(1, st.error().to_string());
  return 0;
}
