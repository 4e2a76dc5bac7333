// Config validation and torrc rendering: pure functions of the config.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <string>

#include "supervisor/supervisor.h"

namespace torgw::supervisor {

namespace {

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// A torrc value on one line: printable ASCII, nothing tor would read as a comment, a
// quote, an escape or a line continuation.
bool safe_value(std::string_view v, std::size_t max = 1024) {
  if (v.empty() || v.size() > max || v.front() == ' ' || v.back() == ' ') return false;
  return std::all_of(v.begin(), v.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e && c != '#' && c != '\\' && c != '"'; });
}

bool safe_path(std::string_view p, std::size_t max = 200) {
  if (p.empty() || p.front() != '/' || p.size() > max) return false;
  return std::all_of(p.begin(), p.end(),
                     [](char c) { return c > 0x20 && c <= 0x7e && c != '#' && c != '\\' && c != '"' && c != ','; });
}

Error bad(std::string reason, std::string detail) { return make_error(std::move(reason), std::move(detail)); }

bool pow_rendered(const SupervisorConfig& c) { return c.pow_defense != Toggle::Off; }

}  // namespace

const std::vector<std::string_view>& allowed_extra_options() {
  // Options an operator may reasonably need on a censored or constrained network, or to
  // tune resources and guard/vanguard choices. Nothing that changes where tor keeps
  // state, what it listens on, how it logs, who it runs as, or its anonymity mode.
  static const std::vector<std::string_view> v = {"Bridge",
                                                  "UseBridges",
                                                  "ReachableAddresses",
                                                  "ReachableORAddresses",
                                                  "HTTPSProxy",
                                                  "Socks4Proxy",
                                                  "Socks5Proxy",
                                                  "ClientUseIPv4",
                                                  "ClientUseIPv6",
                                                  "ClientPreferIPv6ORPort",
                                                  "NumEntryGuards",
                                                  "NumPrimaryGuards",
                                                  "GuardLifetime",
                                                  "VanguardsLiteEnabled",
                                                  "HSLayer2Nodes",
                                                  "HSLayer3Nodes",
                                                  "ExcludeNodes",
                                                  "StrictNodes",
                                                  "ConnectionPadding",
                                                  "ReducedConnectionPadding",
                                                  "CircuitPadding",
                                                  "ReducedCircuitPadding",
                                                  "KeepalivePeriod",
                                                  "CircuitBuildTimeout",
                                                  "LearnCircuitBuildTimeout",
                                                  "MaxMemInQueues",
                                                  "NumCPUs",
                                                  "BandwidthRate",
                                                  "BandwidthBurst"};
  return v;
}

bool extra_option_allowed(std::string_view key) {
  const auto& v = allowed_extra_options();
  return std::any_of(v.begin(), v.end(), [&](std::string_view a) { return iequal(a, key); });
}

bool resolve_sandbox(Toggle t) {
  if (t != Toggle::Auto) return t == Toggle::On;
#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__))
  return true;
#else
  return false;
#endif
}

Status validate(const SupervisorConfig& c) {
  for (const auto& [name, p] :
       {std::pair<const char*, const std::string*>{"tor_binary", &c.tor_binary}, {"data_dir", &c.data_dir}}) {
    if (!safe_path(*p))
      return bad("supervisor.bad_path", std::string(name) + " must be an absolute path without spaces");
  }
  // The control socket path must fit sockaddr_un (108 bytes).
  if (!safe_path(c.run_dir, 90))
    return bad("supervisor.bad_path", "run_dir must be an absolute path of < 90 bytes without spaces");
  if (c.ports.empty()) return bad("supervisor.no_ports", "the onion service needs at least one port");
  {
    controlport::AddOnionRequest probe;
    probe.ports = c.ports;
    probe.max_streams = c.max_streams;
    auto r = controlport::cmd_add_onion(probe);
    if (!r) return bad("supervisor.bad_port", r.error().detail);
    probe.client_auth_v3 = c.client_auth_v3;
    if (!controlport::cmd_add_onion(probe))
      return bad("supervisor.bad_client_auth", "client_auth keys must be 52 base32 characters");
  }
  if (!c.onionbalance_master.empty()) {
    auto master = onion::public_key_from_address(c.onionbalance_master);
    if (!master) return bad("supervisor.bad_master", "onionbalance_master must be a v3 onion address");
    if (!c.identity) return bad("supervisor.bad_master", "instance mode needs the identity (its key files)");
    if (!c.client_auth_v3.empty()) return bad("supervisor.bad_master", "instance mode has no client auth");
    if (c.identity->public_key() == *master)
      return bad("supervisor.bad_master", "the master address is this instance's own");
  }
  for (const auto& [k, v] : c.extra_options) {
    if (!extra_option_allowed(k)) return bad("supervisor.option_not_allowed", k);
    if (!safe_value(v)) return bad("supervisor.bad_option_value", k);
  }
  if (c.test_network) {
    if (c.test_network->dir_authorities.empty()) return bad("supervisor.bad_dir_authority", "no DirAuthority line");
    for (const auto& d : c.test_network->dir_authorities)
      if (!safe_value(d, 512))
        return bad("supervisor.bad_dir_authority", "DirAuthority lines are single printable lines");
  }
  const auto& t = c.timeouts;
  for (auto ms : {t.control_connect, t.command, t.bootstrap, t.publish, t.stop})
    if (ms.count() <= 0) return bad("supervisor.bad_timeout", "timeouts must be positive");
  if (c.backoff.initial.count() <= 0 || c.backoff.max < c.backoff.initial || c.backoff.max_failures < 0)
    return bad("supervisor.bad_timeout", "backoff: 0 < initial <= max, max_failures >= 0");
  return {};
}

std::string instance_dir(const SupervisorConfig& c) { return c.data_dir + "/ob_instance"; }

std::string ob_config_file(const std::string& master) {
  auto pk = onion::public_key_from_address(master);
  return "MasterOnionAddress " + (pk ? onion::address_from_public_key(*pk) : master) + ".onion\n";
}

Result<std::string> render_torrc(const SupervisorConfig& c, const RenderContext& ctx) {
  TORGW_TRY(validate(c));
  bool geoip_needed = std::any_of(c.extra_options.begin(), c.extra_options.end(),
                                  [](const auto& kv) { return kv.second.find('{') != std::string::npos; });
  std::string s;
  auto line = [&](std::string_view k, std::string_view v) { s.append(k).append(" ").append(v).append("\n"); };
  s += "# Written by torgw's tor supervisor; regenerated at every start. The onion service\n"
       "# is added over the control socket (ADD_ONION): its key is never on disk (except in\n"
       "# Onionbalance instance mode, below: on the tmpfs).\n";
  line("DataDirectory", c.data_dir);
  line("ControlSocket", c.run_dir + "/control");
  line("ControlSocketsGroupWritable", "1");
  line("CookieAuthentication", "1");
  line("CookieAuthFile", c.run_dir + "/control.authcookie");
  line("CookieAuthFileGroupReadable", "1");
  line("SocksPort", "0");
  line("Log", "notice stdout");
  line("RunAsDaemon", "0");
  line("AvoidDiskWrites", "1");
  line("ShutdownWaitLength", "0");
  if (ctx.owner_pid > 0) line("__OwningControllerProcess", std::to_string(ctx.owner_pid));
  line("Sandbox", ctx.sandbox ? "1" : "0");
  if (c.skip_geoip && !geoip_needed) {
    line("GeoIPFile", c.run_dir + "/geoip-empty");
    line("GeoIPv6File", c.run_dir + "/geoip-empty");
  }
  if (c.test_network) {
    s += "# A private test network (tests/tornet), never the public one.\n";
    line("TestingTorNetwork", "1");
    for (const auto& d : c.test_network->dir_authorities) line("DirAuthority", d);
    line("AssumeReachable", "1");
    line("PathsNeededToBuildCircuits", "0.67");
  }
  if (!c.onionbalance_master.empty()) {
    s += "# Onionbalance instance (master " + c.onionbalance_master +
         "): tor reads the key files and\n"
         "# ob_config from this directory on the tmpfs (RAM only); ADD_ONION cannot make an instance.\n";
    line("HiddenServiceDir", instance_dir(c));
    for (const auto& p : c.ports)
      line("HiddenServicePort", std::to_string(p.virtual_port) + (p.target.empty() ? "" : " " + p.target));
    line("HiddenServiceOnionBalanceInstance", "1");
    if (c.max_streams) line("HiddenServiceMaxStreams", std::to_string(*c.max_streams));
    if (c.max_streams_close_circuit) line("HiddenServiceMaxStreamsCloseCircuit", "1");
    line("HiddenServicePoWDefensesEnabled", pow_rendered(c) ? "1" : "0");
    if (pow_rendered(c) && c.pow_queue_rate) line("HiddenServicePoWQueueRate", std::to_string(*c.pow_queue_rate));
    if (pow_rendered(c) && c.pow_queue_burst) line("HiddenServicePoWQueueBurst", std::to_string(*c.pow_queue_burst));
  }
  if (!c.extra_options.empty()) s += "# Operator options (allowlisted).\n";
  for (const auto& [k, v] : c.extra_options) line(k, v);
  return s;
}

}  // namespace torgw::supervisor
