#include "socks/config.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <functional>
#include <map>

namespace torgw::socks {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

Error bad(const Setting& s, const std::string& what) {
  return make_error("config.bad_value", s.origin + ": " + s.key + ": " + what);
}

template <class T>
std::optional<T> parse_uint(std::string_view s) {
  T v{};
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<bool> parse_bool(std::string_view s) {
  if (s == "yes" || s == "true" || s == "on" || s == "1") return true;
  if (s == "no" || s == "false" || s == "off" || s == "0") return false;
  return std::nullopt;
}

// "64k", "1m", "4096". Bytes.
std::optional<std::uint64_t> parse_size(std::string_view s) {
  std::uint64_t mult = 1;
  if (!s.empty() && (s.back() == 'k' || s.back() == 'K')) mult = 1024, s.remove_suffix(1);
  else if (!s.empty() && (s.back() == 'm' || s.back() == 'M')) mult = 1024 * 1024, s.remove_suffix(1);
  auto v = parse_uint<std::uint64_t>(s);
  if (!v || *v > (1ULL << 40)) return std::nullopt;
  return *v * mult;
}

std::string ms_text(std::uint32_t ms) {
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

// Splits "user:password" (password may contain ':'). Username must be 1..255 bytes.
std::optional<std::pair<std::string_view, std::string_view>> split_credential(std::string_view v) {
  auto colon = v.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 255 || v.size() - colon - 1 > 255) return std::nullopt;
  return std::pair{v.substr(0, colon), v.substr(colon + 1)};
}

const char* mode_name(Mode m) { return m == Mode::Socks5 ? "socks5" : "passthrough"; }

}  // namespace

std::string Endpoint::to_string() const {
  if (kind == Kind::Unix) return "unix:" + path;
  if (tls) {
    Endpoint plain = *this;
    plain.tls = false;
    return "tls://" + plain.to_string();
  }
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Result<Endpoint> parse_endpoint(std::string_view text, bool allow_unix, bool allow_tls) {
  if (text.starts_with("tls://")) {
    if (!allow_tls)
      return make_error("config.bad_endpoint", "tls:// is for backends only: '" + std::string(text) + "'");
    auto inner = text.substr(6);
    if (inner.starts_with("unix:"))
      return make_error("config.bad_endpoint",
                        "tls:// needs HOST:PORT, not a unix socket: '" + std::string(text) + "'");
    TORGW_ASSIGN_OR_RETURN(auto e, parse_endpoint(inner, false, false));
    e.tls = true;
    return e;
  }
  Endpoint e;
  if (text.starts_with("unix:")) {
    if (!allow_unix)
      return make_error("config.bad_endpoint", "a unix socket is not allowed here: '" + std::string(text) + "'");
    auto path = text.substr(5);
    if (path.empty() || path.front() != '/')
      return make_error("config.bad_endpoint", "unix socket path must be absolute: '" + std::string(text) + "'");
    if (path.size() > 107) return make_error("config.bad_endpoint", "unix socket path longer than 107 bytes");
    if (path.find('\0') != std::string_view::npos) return make_error("config.bad_endpoint", "NUL in unix socket path");
    e.kind = Endpoint::Kind::Unix;
    e.path = std::string(path);
    return e;
  }
  std::string_view host, port;
  if (text.starts_with("[")) {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return make_error("config.bad_endpoint", "expected [IPV6]:PORT, got '" + std::string(text) + "'");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (!parse_ip(host) || parse_ip(host)->v4)
      return make_error("config.bad_endpoint", "not an IPv6 address: '" + std::string(host) + "'");
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos)
      return make_error("config.bad_endpoint", "expected HOST:PORT, got '" + std::string(text) + "'");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return make_error("config.bad_endpoint", "IPv6 addresses need brackets: '[" + std::string(host) + "]:PORT'");
    if (host.empty()) return make_error("config.bad_endpoint", "empty host in '" + std::string(text) + "'");
    if (!parse_ip(host) && !socks5::valid_hostname(host))
      return make_error("config.bad_endpoint", "not an IP address or hostname: '" + std::string(host) + "'");
  }
  auto p = parse_uint<std::uint32_t>(port);
  if (!p || *p == 0 || *p > 65535)
    return make_error("config.bad_endpoint", "port must be 1..65535, got '" + std::string(port) + "'");
  e.host = std::string(host);
  e.port = static_cast<std::uint16_t>(*p);
  return e;
}

Result<std::uint32_t> parse_duration_ms(std::string_view s) {
  std::uint64_t mult = 1000;
  if (s.ends_with("ms")) mult = 1, s.remove_suffix(2);
  else if (s.ends_with("s")) mult = 1000, s.remove_suffix(1);
  else if (s.ends_with("m")) mult = 60'000, s.remove_suffix(1);
  else if (s.ends_with("h")) mult = 3'600'000, s.remove_suffix(1);
  auto v = parse_uint<std::uint64_t>(s);
  if (!v || *v * mult > 7ULL * 24 * 3'600'000)
    return make_error("config.bad_duration", "expected a duration like 10s, 500ms, 5m or 1h (at most 7 days)");
  return static_cast<std::uint32_t>(*v * mult);
}

HealthCheck Config::effective_health_check() const {
  if (health_check) return *health_check;
  return mode == Mode::Socks5 ? HealthCheck::Socks5 : HealthCheck::Connect;
}

std::string Config::describe() const {
  std::string o;
  auto kv = [&](const char* k, const std::string& v) { o += std::string(k) + " = " + v + "\n"; };
  kv("listen", listen.to_string());
  for (const auto& b : backends) kv("backend", b.to_string());
  kv("mode", mode_name(mode));
  kv("max_connections", max_connections == 0 ? "auto" : std::to_string(max_connections));
  kv("user", user.empty() ? "(none)" : user);
  kv("handshake_timeout", ms_text(handshake_timeout_ms));
  kv("connect_timeout", ms_text(connect_timeout_ms));
  kv("reply_timeout", ms_text(reply_timeout_ms));
  kv("idle_timeout", ms_text(idle_timeout_ms));
  kv("drain_timeout", ms_text(drain_timeout_ms));
  kv("linger_timeout", ms_text(linger_timeout_ms));
  kv("balance", balance == Balance::First ? "first" : "round-robin");
  auto hc = effective_health_check();
  kv("health_check", hc == HealthCheck::Socks5 ? "socks5" : hc == HealthCheck::Connect ? "connect" : "none");
  kv("health_interval", ms_text(health_interval_ms));
  kv("client_auth", client_auth == socks5::ClientAuthMode::None       ? "none"
                    : client_auth == socks5::ClientAuthMode::Password ? "password"
                                                                      : "isolate");
  for (const auto& c : client_credentials) kv("client_credential", c.user + ":(redacted)");
  kv("backend_auth", backend_auth == BackendAuth::None       ? "none"
                     : backend_auth == BackendAuth::Password ? "password"
                                                             : "forward");
  if (!backend_auth_msg.empty()) kv("backend_credential", "(redacted)");
  for (const auto& p : tls.pins) kv("backend_tls_pin", tls::pin_text(p));
  if (!tls.ca_pem.empty()) kv("backend_tls_ca", "(" + std::to_string(tls.ca_pem.size()) + " bytes of PEM)");
  if (!tls.sni.empty()) kv("backend_tls_sni", tls.sni);
  if (!tls.cert_pem.empty()) kv("backend_tls_cert", "(" + std::to_string(tls.cert_pem.size()) + " bytes of PEM)");
  if (!tls.key_pem.empty()) kv("backend_tls_key", "(redacted)");
  if (tls.any()) kv("backend_tls_ktls", tls.ktls ? "yes" : "no");
  kv("backend_pipelining", backend_pipelining == Pipelining::Auto  ? "auto"
                           : backend_pipelining == Pipelining::Yes ? "yes"
                                                                   : "no");
  for (const auto& r : rules) kv(r.allow ? "allow" : "deny", r.text);
  kv("deny_private", deny_private ? "yes" : "no");
  kv("buffer_size", std::to_string(buffer_size));
  kv("splice", splice ? "yes" : "no");
  kv("pipe_size", std::to_string(pipe_size));
  kv("splice_min_bulk", std::to_string(splice_min_bulk));
  kv("stats_interval", ms_text(stats_interval_ms));
  static const char* levels[] = {"debug", "info", "warn", "error"};
  kv("log_level", levels[static_cast<int>(log_level)]);
  char mode_buf[8];
  std::snprintf(mode_buf, sizeof mode_buf, "%04o", unix_mode);
  kv("unix_mode", mode_buf);
  kv("unix_group", unix_group.empty() ? "(user's group)" : unix_group);
  return o;
}

Result<std::vector<Setting>> parse_config_text(std::string_view text, std::string_view filename) {
  std::vector<Setting> out;
  std::size_t lineno = 0;
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++lineno;
    std::string origin = std::string(filename) + ":" + std::to_string(lineno);
    if (line.find('\0') != std::string_view::npos) return make_error("config.syntax", origin + ": NUL byte");
    // A comment starts at '#' at the start of the line or after whitespace, so values
    // (passwords) may contain '#'.
    std::size_t hash = std::string_view::npos;
    for (std::size_t i = 0; i < line.size(); ++i)
      if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
        hash = i;
        break;
      }
    line = trim(line.substr(0, hash));
    if (line.empty()) continue;
    auto eq = line.find('=');
    if (eq == std::string_view::npos) return make_error("config.syntax", origin + ": expected 'key = value'");
    auto key = trim(line.substr(0, eq));
    auto value = trim(line.substr(eq + 1));
    if (key.empty()) return make_error("config.syntax", origin + ": missing key before '='");
    if (value.empty()) return make_error("config.syntax", origin + ": " + std::string(key) + ": missing value");
    out.push_back(Setting{std::string(key), std::string(value), origin});
  }
  return out;
}

namespace {

using Apply = std::function<Status(Config&, const Setting&)>;

// One row of the key table: what `key = value` may appear in the config file (and, for
// listen/backend/mode/max_connections/user, as a flag). docs/socks.md lists them.
struct KeyDef {
  std::string_view name;
  bool repeatable = false;  // may appear more than once (--backend replaces the file's list)
  Apply apply;
};

Status set_duration(std::uint32_t& field, const Setting& s, bool allow_zero) {
  auto d = parse_duration_ms(s.value);
  if (!d) return bad(s, d.error().detail);
  if (*d == 0 && !allow_zero) return bad(s, "must be greater than 0");
  field = *d;
  return {};
}

// backend_tls_ca/cert/key: base64 of PEM into locked memory. A bad value's error names
// what is wrong, never the value (it may be a key).
Status set_pem(SecretBytes& field, const Setting& s, tls::PemKind kind) {
  auto pem = tls::parse_pem_base64(s.value, kind);
  if (!pem) return bad(s, pem.error().detail);
  field = std::move(*pem);
  return {};
}

// A duration key: `zero` says whether 0 (never / only on demand) is allowed.
Apply duration(std::uint32_t Config::*field, bool zero) {
  return [field, zero](Config& c, const Setting& s) { return set_duration(c.*field, s, zero); };
}

Apply pem(SecretBytes tls::Settings::*field, tls::PemKind kind) {
  return [field, kind](Config& c, const Setting& s) { return set_pem(c.tls.*field, s, kind); };
}

Status set_yes_no(bool& field, const Setting& s) {
  auto b = parse_bool(s.value);
  if (!b) return bad(s, "expected yes or no");
  field = *b;
  return {};
}

// buffer_size, pipe_size: 4k..1m.
Apply size(std::uint32_t Config::*field) {
  return [field](Config& c, const Setting& s) -> Status {
    auto v = parse_size(s.value);
    if (!v || *v < 4096 || *v > (1u << 20)) return bad(s, "expected a size 4k..1m");
    c.*field = static_cast<std::uint32_t>(*v);
    return {};
  };
}

// A key whose value names one of a few choices: "expected A, B or C, got 'X'" otherwise.
template <class E>
Apply choice(E Config::*field, std::vector<std::pair<std::string_view, E>> names) {
  return [field, names = std::move(names)](Config& c, const Setting& s) -> Status {
    std::string expected;
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (s.value == names[i].first) {
        c.*field = names[i].second;
        return {};
      }
      expected += i == 0 ? "" : i + 1 == names.size() ? " or " : ", ";
      expected += names[i].first;
    }
    return bad(s, "expected " + expected + ", got '" + s.value + "'");
  };
}

Status set_splice_min_bulk(Config& c, const Setting& s) {
  auto v = parse_uint<std::uint32_t>(s.value);
  if (!v || *v < 1 || *v > 65536) return bad(s, "expected a count 1..65536");
  c.splice_min_bulk = *v;
  return {};
}

Status set_listen(Config& c, const Setting& s) {
  auto e = parse_endpoint(s.value, true);
  if (!e) return bad(s, e.error().detail);
  c.listen = *e;
  return {};
}

Status add_backend(Config& c, const Setting& s) {
  auto e = parse_endpoint(s.value, true, true);
  if (!e) return bad(s, e.error().detail);
  if (c.backends.size() >= 64) return bad(s, "at most 64 backends");
  c.backends.push_back(*e);
  return {};
}

Status set_max_connections(Config& c, const Setting& s) {
  auto v = parse_uint<std::uint32_t>(s.value);
  if (!v || *v == 0 || *v > 1'000'000) return bad(s, "expected a number 1..1000000, got '" + s.value + "'");
  c.max_connections = *v;
  return {};
}

// user, unix_group: a plausible account name (looked up later, by main).
Apply account_name(std::string Config::*field, std::string_view kind) {
  return [field, kind](Config& c, const Setting& s) -> Status {
    if (s.value.size() > 32 || s.value.find_first_of(" \t:/") != std::string::npos)
      return bad(s, "not a " + std::string(kind) + " name: '" + s.value + "'");
    c.*field = s.value;
    return {};
  };
}

Status add_client_credential(Config& c, const Setting& s) {
  auto up = split_credential(s.value);
  if (!up) return bad(s, "expected USER:PASSWORD (user 1..255 bytes, password 0..255)");
  Credential cr;
  cr.user = std::string(up->first);
  cr.pass = SecretBytes::copy_of(as_bytes(up->second));
  c.client_credentials.push_back(std::move(cr));
  return {};
}

Status set_backend_credential(Config& c, const Setting& s) {
  auto up = split_credential(s.value);
  if (!up) return bad(s, "expected USER:PASSWORD (user 1..255 bytes, password 0..255)");
  auto msg = socks5::encode_userpass(as_bytes(up->first), as_bytes(up->second));
  if (!msg) return bad(s, msg.error().detail);
  c.backend_auth_msg = SecretBytes::copy_of(*msg);
  wipe(msg->data(), msg->size());
  return {};
}

Status add_backend_tls_pins(Config& c, const Setting& s) {
  auto pins = tls::parse_pins(s.value);
  if (!pins) return bad(s, pins.error().detail);
  c.tls.pins.insert(c.tls.pins.end(), pins->begin(), pins->end());
  if (c.tls.pins.size() > 16) return bad(s, "at most 16 pins");
  return {};
}

Status set_backend_tls_sni(Config& c, const Setting& s) {
  auto n = tls::parse_sni(s.value);
  if (!n) return bad(s, n.error().detail);
  c.tls.sni = *n;
  return {};
}

// allow / deny: rules keep their order across both keys (first match wins).
Apply rule(bool allow) {
  return [allow](Config& c, const Setting& s) -> Status {
    auto r = parse_rule(allow, s.value);
    if (!r) return bad(s, r.error().detail);
    c.rules.push_back(std::move(*r));
    return {};
  };
}

Status set_backend_pipelining(Config& c, const Setting& s) {
  if (s.value == "auto") c.backend_pipelining = Pipelining::Auto;
  else if (auto b = parse_bool(s.value)) c.backend_pipelining = *b ? Pipelining::Yes : Pipelining::No;
  else return bad(s, "expected auto, yes or no");
  return {};
}

Status set_log_level(Config& c, const Setting& s) {
  if (s.value == "debug") c.log_level = LogLevel::Debug;
  else if (s.value == "info") c.log_level = LogLevel::Info;
  else if (s.value == "warn") c.log_level = LogLevel::Warn;
  else if (s.value == "error") c.log_level = LogLevel::Error;
  else return bad(s, "expected debug, info, warn or error");
  return {};
}

Status set_unix_mode(Config& c, const Setting& s) {
  std::uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.value.data(), s.value.data() + s.value.size(), v, 8);
  if (ec != std::errc() || p != s.value.data() + s.value.size() || v > 0777)
    return bad(s, "expected an octal mode like 0660");
  c.unix_mode = v;
  return {};
}

const std::map<std::string, KeyDef, std::less<>>& keys() {
  using tls::PemKind;
  static const KeyDef table[] = {
      {.name = "listen", .apply = set_listen},
      {.name = "backend", .repeatable = true, .apply = add_backend},
      {.name = "mode", .apply = choice(&Config::mode, {{"socks5", Mode::Socks5}, {"passthrough", Mode::Passthrough}})},
      {.name = "max_connections", .apply = set_max_connections},
      {.name = "user", .apply = account_name(&Config::user, "user")},
      {.name = "handshake_timeout", .apply = duration(&Config::handshake_timeout_ms, false)},
      {.name = "connect_timeout", .apply = duration(&Config::connect_timeout_ms, false)},
      {.name = "reply_timeout", .apply = duration(&Config::reply_timeout_ms, false)},
      {.name = "idle_timeout", .apply = duration(&Config::idle_timeout_ms, true)},
      {.name = "drain_timeout", .apply = duration(&Config::drain_timeout_ms, true)},
      {.name = "linger_timeout", .apply = duration(&Config::linger_timeout_ms, true)},
      {.name = "health_interval", .apply = duration(&Config::health_interval_ms, false)},
      {.name = "stats_interval", .apply = duration(&Config::stats_interval_ms, true)},
      {.name = "balance",
       .apply = choice(&Config::balance, {{"first", Balance::First}, {"round-robin", Balance::RoundRobin}})},
      {.name = "health_check",
       .apply = choice(&Config::health_check, {{"socks5", std::optional(HealthCheck::Socks5)},
                                               {"connect", std::optional(HealthCheck::Connect)},
                                               {"none", std::optional(HealthCheck::None)}})},
      {.name = "client_auth",
       .apply = choice(&Config::client_auth, {{"none", socks5::ClientAuthMode::None},
                                              {"password", socks5::ClientAuthMode::Password},
                                              {"isolate", socks5::ClientAuthMode::Isolate}})},
      {.name = "client_credential", .repeatable = true, .apply = add_client_credential},
      {.name = "backend_auth",
       .apply = choice(
           &Config::backend_auth,
           {{"none", BackendAuth::None}, {"password", BackendAuth::Password}, {"forward", BackendAuth::Forward}})},
      {.name = "backend_credential", .apply = set_backend_credential},
      {.name = "backend_tls_pin", .repeatable = true, .apply = add_backend_tls_pins},
      {.name = "backend_tls_ca", .apply = pem(&tls::Settings::ca_pem, PemKind::Certificates)},
      {.name = "backend_tls_sni", .apply = set_backend_tls_sni},
      {.name = "backend_tls_cert", .apply = pem(&tls::Settings::cert_pem, PemKind::Certificates)},
      {.name = "backend_tls_key", .apply = pem(&tls::Settings::key_pem, PemKind::PrivateKey)},
      {.name = "backend_tls_ktls", .apply = [](Config& c, const Setting& s) { return set_yes_no(c.tls.ktls, s); }},
      {.name = "allow", .repeatable = true, .apply = rule(true)},
      {.name = "deny", .repeatable = true, .apply = rule(false)},
      {.name = "deny_private", .apply = [](Config& c, const Setting& s) { return set_yes_no(c.deny_private, s); }},
      {.name = "backend_pipelining", .apply = set_backend_pipelining},
      {.name = "splice", .apply = [](Config& c, const Setting& s) { return set_yes_no(c.splice, s); }},
      {.name = "buffer_size", .apply = size(&Config::buffer_size)},
      {.name = "pipe_size", .apply = size(&Config::pipe_size)},
      {.name = "splice_min_bulk", .apply = set_splice_min_bulk},
      {.name = "log_level", .apply = set_log_level},
      {.name = "unix_mode", .apply = set_unix_mode},
      {.name = "unix_group", .apply = account_name(&Config::unix_group, "group")},
  };
  static const auto k = [] {
    std::map<std::string, KeyDef, std::less<>> m;
    for (const auto& d : table) m.emplace(std::string(d.name), d);
    return m;
  }();
  return k;
}

Status validate(const Config& c) {
  auto err = [](const std::string& d) { return make_error("config.invalid", d); };
  if (c.backends.empty())
    return err("no backend: give --backend HOST:PORT or 'backend = HOST:PORT' in the config file");
  if (c.client_auth == socks5::ClientAuthMode::Password && c.client_credentials.empty())
    return err("client_auth = password needs at least one client_credential = USER:PASSWORD");
  if (c.client_auth != socks5::ClientAuthMode::Password && !c.client_credentials.empty())
    return err("client_credential is set but client_auth is not password");
  if (c.backend_auth == BackendAuth::Password && c.backend_auth_msg.empty())
    return err("backend_auth = password needs backend_credential = USER:PASSWORD");
  if (c.backend_pipelining == Pipelining::Yes && c.backend_auth != BackendAuth::None)
    return err("backend_pipelining = yes needs backend_auth = none (credentials are never sent unasked)");
  if (c.backend_auth != BackendAuth::Password && !c.backend_auth_msg.empty())
    return err("backend_credential is set but backend_auth is not password");
  if (c.backend_auth == BackendAuth::Forward && c.client_auth == socks5::ClientAuthMode::None)
    return err("backend_auth = forward needs client_auth = isolate or password (there is nothing to forward)");
  if (c.mode == Mode::Passthrough) {
    if (c.client_auth != socks5::ClientAuthMode::None || c.backend_auth != BackendAuth::None)
      return err("client_auth and backend_auth apply to mode socks5 only; passthrough relays bytes unread");
    if (!c.rules.empty())
      return err("allow/deny rules apply to mode socks5 only; passthrough never sees the destination");
    if (c.backend_pipelining == Pipelining::Yes) return err("backend_pipelining applies to mode socks5 only");
  }
  if (c.listen.kind == Endpoint::Kind::Tcp && c.listen.host.empty()) return err("listen: empty host");
  bool any_tls = std::any_of(c.backends.begin(), c.backends.end(), [](const Endpoint& e) { return e.tls; });
  if (any_tls && c.tls.pins.empty() && c.tls.ca_pem.empty())
    return err("a tls:// backend needs backend_tls_pin or backend_tls_ca (it is never accepted unauthenticated)");
  if (!any_tls && c.tls.any()) return err("backend_tls_* is set but no backend is tls://");
  if (c.tls.cert_pem.empty() != c.tls.key_pem.empty())
    return err("backend_tls_cert and backend_tls_key go together (mutual TLS)");
  return {};
}

}  // namespace

Result<Config> build_config(const std::vector<Setting>& file, const std::vector<Setting>& flags) {
  Config c;
  std::map<std::string, std::string, std::less<>> seen;  // non-repeatable key -> first origin
  auto apply_all = [&](const std::vector<Setting>& list, bool from_flags) -> Status {
    std::map<std::string, bool, std::less<>> cleared;
    seen.clear();
    for (const auto& s : list) {
      auto it = keys().find(s.key);
      if (it == keys().end()) return make_error("config.unknown_key", s.origin + ": unknown key '" + s.key + "'");
      if (!it->second.repeatable) {
        auto [pos, fresh] = seen.emplace(s.key, s.origin);
        if (!fresh) return make_error("config.duplicate", s.origin + ": " + s.key + " already set at " + pos->second);
      } else if (from_flags && !cleared[s.key]) {
        // A repeatable key given as a flag replaces the file's list.
        if (s.key == "backend") c.backends.clear();
        cleared[s.key] = true;
      }
      TORGW_TRY(it->second.apply(c, s));
    }
    return {};
  };
  TORGW_TRY(apply_all(file, false));
  TORGW_TRY(apply_all(flags, true));
  TORGW_TRY(validate(c));
  return c;
}

Result<Args> parse_args(const std::vector<std::string>& argv) {
  static const std::map<std::string, std::string, std::less<>> flag_keys = {
      {"--listen", "listen"}, {"--backend", "backend"}, {"--mode", "mode"}, {"--max-connections", "max_connections"},
      {"--user", "user"},
  };
  Args a;
  for (std::size_t i = 1; i < argv.size(); ++i) {
    std::string arg = argv[i];
    std::optional<std::string> inline_value;
    if (arg.starts_with("--")) {
      auto eq = arg.find('=');
      if (eq != std::string::npos) {
        inline_value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
      }
    }
    auto take_value = [&]() -> Result<std::string> {
      if (inline_value) return *inline_value;
      if (i + 1 >= argv.size()) return make_error("config.usage", arg + " needs a value (see --help)");
      return argv[++i];
    };
    auto no_value = [&]() -> Status {
      if (inline_value) return make_error("config.usage", arg + " takes no value");
      return {};
    };
    if (arg == "--help" || arg == "-h") {
      TORGW_TRY(no_value());
      a.help = true;
    } else if (arg == "--version") {
      TORGW_TRY(no_value());
      a.version = true;
    } else if (arg == "--check") {
      TORGW_TRY(no_value());
      a.check = true;
    } else if (arg == "--no-seccomp") {
      TORGW_TRY(no_value());
      a.no_seccomp = true;
    } else if (arg == "--config") {
      TORGW_ASSIGN_OR_RETURN(auto v, take_value());
      if (!a.config_file.empty()) return make_error("config.usage", "--config given twice");
      if (v.empty()) return make_error("config.usage", "--config needs a file name");
      a.config_file = v;
    } else if (auto it = flag_keys.find(arg); it != flag_keys.end()) {
      TORGW_ASSIGN_OR_RETURN(auto v, take_value());
      a.settings.push_back(Setting{it->second, v, arg});
    } else {
      return make_error("config.usage", "unknown argument '" + argv[i] + "' (see --help)");
    }
  }
  return a;
}

std::string help_text() {
  return R"(Usage: torgw-socks --listen HOST:PORT|unix:PATH --backend HOST:PORT [--backend HOST:PORT ...]
                   [--mode socks5|passthrough] [--config FILE] [--max-connections N] [--user NAME]

The SOCKS5 relay between Tor onion clients and a backend exit node. Every byte from a
client is treated as hostile: socks5 mode parses and validates the client's RFC 1928
request itself, enforces the destination policy, and only then performs the SOCKS5
handshake with a healthy backend on the client's behalf.

Options (flags override the config file; a flag for --backend replaces the file's list):
  --listen HOST:PORT|unix:PATH  where to accept clients (default 127.0.0.1:9050);
                                [V6]:PORT for IPv6, unix:/abs/path for a unix socket
  --backend HOST:PORT           a backend exit node (repeat for several; also
                                unix:PATH, or tls://HOST:PORT for TLS 1.3 to it);
                                health-checked, failover between them
  --mode socks5|passthrough     socks5 (default): validate and re-issue the client's
                                CONNECT; passthrough: opaque byte relay, for clients
                                that speak an end-to-end encrypted protocol to the exit
  --config FILE                 "key = value" lines, '#' comments (keys below);
                                "-" reads them from stdin
  --max-connections N           concurrent client connections (default 4096, or less
                                if the open-file limit is lower); over the cap socks5
                                clients get reply 0x01, passthrough clients are closed
  --user NAME                   when started as root: bind, then drop to this user
                                (setgroups/setgid/setuid, no_new_privs, no capabilities)
  --check                       validate the configuration, print it, exit
  --no-seccomp                  debugging only: do not install the syscall allowlist
                                (by default every syscall the relay does not need
                                kills the process once it runs)
  --version                     print the version
  -h, --help                    this text

Config file keys (durations: 500ms, 10s, 5m, 1h; sizes: 64k, 1m):
  listen, backend, mode, max_connections, user   as the flags above
  handshake_timeout = 10s      client must send its CONNECT request within this
  connect_timeout = 5s         per backend: TCP connect + SOCKS5 negotiation
  reply_timeout = 30s          backend's answer to the CONNECT (reply 0x04 after)
  idle_timeout = 1h            close tunnels without traffic (0 = never)
  drain_timeout = 10s          on SIGTERM: stop accepting, close what is left after this
  linger_timeout = 2s          after a refusal, wait this long for the client to close
  balance = first              first | round-robin, over healthy backends
  health_check = socks5        socks5 (connect + greeting) | connect | none;
                               default socks5 in socks5 mode, connect in passthrough
  health_interval = 5s
  client_auth = none           none | password (check client_credential) |
                               isolate (any RFC 1929 pair, used as an isolation token)
  client_credential = USER:PASSWORD   repeatable (client_auth = password)
  backend_auth = none          none | password (backend_credential) |
                               forward (pass the client's RFC 1929 pair on)
  backend_credential = USER:PASSWORD
  backend_tls_pin = sha256//BASE64   repeatable (or ';'-joined): the tls:// backends' key
                               pins (SHA-256 of the SubjectPublicKeyInfo, as curl's
                               --pinnedpubkey); backend_tls_pin or backend_tls_ca is
                               required with a tls:// backend (TLS 1.3 only)
  backend_tls_ca = BASE64      base64 of a PEM CA bundle: verify the chain and the name
  backend_tls_sni = NAME       name sent as SNI and checked with the CA (default: the
                               backend's host name; none for an IP address)
  backend_tls_cert = BASE64    base64 of a PEM client certificate (mutual TLS)
  backend_tls_key = BASE64     base64 of its PEM private key (secret: locked memory)
  backend_tls_ktls = yes       kernel TLS when OpenSSL and the kernel offer it
  backend_pipelining = auto    send greeting + CONNECT in one write to no-auth backends
                               (saves a round trip); auto: once the health check saw
                               that the backend reads pipelined input (dante and tor
                               do, microsocks does not); yes; no
  allow = CIDR|NAME|*.SUFFIX   repeatable, with deny: first matching rule wins
  deny = CIDR|NAME|*.SUFFIX
  deny_private = yes           then deny IP literals in loopback, RFC 1918, link-local
                               (169.254.169.254), CGNAT, ULA, multicast, reserved
                               ranges, and localhost names
  buffer_size = 32k            bytes read per call; bounds each direction's backlog
  splice = yes                 zero-copy relay through kernel pipes
  pipe_size = 64k
  splice_min_bulk = 4          splice only while at least this many directions are bulk
                               (fewer are copied: faster on loopback); 1 = always
  stats_interval = 60s         counters to the log (0 = only on SIGUSR1)
  log_level = info             debug | info | warn | error
  unix_mode = 0660             unix: listen socket permissions
  unix_group = NAME            unix: listen socket group (default: the user's group)

Signals: SIGTERM/SIGINT drain (a second one stops at once), SIGUSR1 logs counters.
Exit status: 0 after a clean stop, 1 on a runtime failure, 2 on a bad configuration.
)";
}

}  // namespace torgw::socks
