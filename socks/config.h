// torgw-socks configuration: command-line flags and a config file, merged (flags win)
// and validated into one Config. Every function here is pure (text in, value or error
// out); reading the file and resolving names happen in main/relay.
//
// Config file: one "key = value" per line, '#' starts a comment, blank lines ignored.
// Repeatable keys (backend, allow, deny, client_credential) accumulate in order; a flag
// for a repeatable key replaces the file's whole list. The keys are listed in
// kConfigKeys and documented in docs/socks.md and in --help.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/secret.h"
#include "socks/policy.h"
#include "socks/session.h"
#include "socks/tls.h"

namespace torgw::socks {

struct Endpoint {
  enum class Kind : std::uint8_t { Tcp, Unix } kind = Kind::Tcp;
  std::string host;  // Tcp: IP literal or name (brackets stripped)
  std::uint16_t port = 0;
  std::string path;               // Unix: absolute path
  bool tls = false;               // Tcp backend reached over TLS ("tls://HOST:PORT")
  std::string to_string() const;  // "127.0.0.1:9050", "[::1]:9050", "unix:/run/x.sock", "tls://..."
};

// "HOST:PORT", "[V6]:PORT", (if allow_unix) "unix:/ABS/PATH", (if allow_tls)
// "tls://HOST:PORT". Errors: config.bad_endpoint.
Result<Endpoint> parse_endpoint(std::string_view text, bool allow_unix, bool allow_tls = false);

enum class Mode : std::uint8_t { Socks5, Passthrough };
enum class Balance : std::uint8_t { First, RoundRobin };
enum class HealthCheck : std::uint8_t { Socks5, Connect, None };
enum class BackendAuth : std::uint8_t { None, Password, Forward };
enum class LogLevel : std::uint8_t { Debug, Info, Warn, Error };
enum class Pipelining : std::uint8_t { Auto, Yes, No };

struct Credential {
  std::string user;
  SecretBytes pass;
};

struct Config {
  Endpoint listen{Endpoint::Kind::Tcp, "127.0.0.1", 9050, {}};
  std::vector<Endpoint> backends;
  Mode mode = Mode::Socks5;
  std::uint32_t max_connections = 0;  // 0: automatic, min(4096, what RLIMIT_NOFILE allows)
  std::string user;                   // drop to this user when started as root

  // Timeouts in milliseconds.
  std::uint32_t handshake_timeout_ms = 10'000;  // accept -> CONNECT request complete
  std::uint32_t connect_timeout_ms = 5'000;     // per backend: TCP + SOCKS5 negotiation
  std::uint32_t reply_timeout_ms = 30'000;      // backend's answer to the CONNECT
  std::uint32_t idle_timeout_ms = 3'600'000;    // relayed tunnel without traffic; 0 = never
  std::uint32_t drain_timeout_ms = 10'000;      // SIGTERM -> force close
  std::uint32_t linger_timeout_ms = 2'000;      // refused client: wait for its close

  Balance balance = Balance::First;
  std::optional<HealthCheck> health_check;  // default: socks5 in socks5 mode, else connect
  std::uint32_t health_interval_ms = 5'000;

  socks5::ClientAuthMode client_auth = socks5::ClientAuthMode::None;
  std::vector<Credential> client_credentials;
  BackendAuth backend_auth = BackendAuth::None;
  // tls:// backends: pins / CA / SNI / client certificate (backend_tls_*).
  tls::Settings tls;
  SecretBytes backend_auth_msg;  // encoded RFC 1929 message for backend_auth = password
  // Greeting + CONNECT in one write to no-auth backends. Auto: per backend, once its
  // health check showed that it reads pipelined input.
  Pipelining backend_pipelining = Pipelining::Auto;

  std::vector<PolicyRule> rules;
  bool deny_private = true;

  // Per read; bounds each direction's backlog. 32k, not 64k: a lone bulk flow is copied
  // (splice_min_bulk) and 32 KiB chunks reach the reader cache-warm (docs/socks.md).
  std::uint32_t buffer_size = 32 * 1024;
  bool splice = true;  // zero-copy relay through pipes when possible
  std::uint32_t pipe_size = 64 * 1024;
  std::uint32_t splice_min_bulk = 4;         // splice only while this many directions are bulk
  std::uint32_t stats_interval_ms = 60'000;  // 0 = only on SIGUSR1
  LogLevel log_level = LogLevel::Info;
  std::uint32_t unix_mode = 0660;  // listen socket file mode (unix: listen)
  std::string unix_group;          // its group (name); default: the user's group

  HealthCheck effective_health_check() const;
  // Multi-line "key = value" dump of the effective settings, secrets redacted.
  std::string describe() const;
};

// One setting before interpretation, with where it came from for error messages.
struct Setting {
  std::string key;
  std::string value;
  std::string origin;  // "FILE:LINE" or "--flag"
};

// Splits config-file text into settings. Errors: config.syntax (with FILE:LINE).
Result<std::vector<Setting>> parse_config_text(std::string_view text, std::string_view filename);

// Applies file settings, then flag settings (a flag for a repeatable key replaces the
// file's list), then validates the whole. Errors: config.* with a one-line detail that
// names the origin, e.g. "config.bad_value: /etc/socks.conf:3: idle_timeout: ...".
Result<Config> build_config(const std::vector<Setting>& file, const std::vector<Setting>& flags);

// Command line. Flags map onto config keys: --listen, --backend (repeatable), --mode,
// --max-connections, --user; --config FILE names the file; --check validates and prints
// the effective config; --help, --version.
struct Args {
  std::vector<Setting> settings;
  std::string config_file;
  bool help = false;
  bool version = false;
  bool check = false;
  bool no_seccomp = false;  // --no-seccomp: debugging only (docs/socks.md "Syscall filter")
};
// Errors: config.usage.
Result<Args> parse_args(const std::vector<std::string>& argv);

std::string help_text();

// "10s", "500ms", "2m", "1h", bare number = seconds. Errors: config.bad_duration.
Result<std::uint32_t> parse_duration_ms(std::string_view text);

}  // namespace torgw::socks
