#include "tests/tornet/tornet.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <set>
#include <sstream>
#include <thread>

#include "common/bytes.h"
#include "common/fd.h"
#include "common/spawn.h"
#include "controlport/controlport.h"
#include "controlport/testing.h"
#include "supervisor/process.h"
#include "tests/support/net.h"
#include "tests/support/process.h"

namespace torgw::tornet {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using testing::read_file;
using testing::write_file;

namespace {

constexpr int kMaxRelays = 6;  // keys cached for relay1..relay6; Options::relays picks how many run
constexpr const char* kAuthNick = "auth";

std::string relay_nick(int i) { return "relay" + std::to_string(i); }

milliseconds since(Clock::time_point t) { return std::chrono::duration_cast<milliseconds>(Clock::now() - t); }

// ---- ending processes on every exit path ---------------------------------------------
// A fixed-size registry the signal handler can read without locks or allocation.

constexpr int kMaxPids = 64;
std::atomic<pid_t> g_pids[kMaxPids];
char g_netns_path[kMaxPids][128];
std::atomic<bool> g_netns_used[kMaxPids];
std::atomic<int> g_networks{0};
struct sigaction g_old[3];
constexpr int kSignals[3] = {SIGINT, SIGTERM, SIGHUP};

void on_fatal_signal(int sig) {
  for (auto& p : g_pids) {
    pid_t pid = p.load();
    if (pid > 0) ::kill(pid, SIGKILL);
  }
  for (int i = 0; i < kMaxPids; ++i)
    if (g_netns_used[i].load()) {
      ::umount2(g_netns_path[i], MNT_DETACH);
      ::unlink(g_netns_path[i]);
    }
  for (int i = 0; i < 3; ++i)
    if (kSignals[i] == sig) ::sigaction(sig, &g_old[i], nullptr);
  ::raise(sig);
}

void register_pid(pid_t pid) {
  for (auto& p : g_pids) {
    pid_t expected = 0;
    if (p.compare_exchange_strong(expected, pid)) return;
  }
}

void unregister_pid(pid_t pid) {
  for (auto& p : g_pids) {
    pid_t expected = pid;
    if (p.compare_exchange_strong(expected, 0)) return;
  }
}

void register_netns(const std::string& path) {
  for (int i = 0; i < kMaxPids; ++i)
    if (!g_netns_used[i].load()) {
      std::snprintf(g_netns_path[i], sizeof g_netns_path[i], "%s", path.c_str());
      g_netns_used[i] = true;
      return;
    }
}

void unregister_netns(const std::string& path) {
  for (int i = 0; i < kMaxPids; ++i)
    if (g_netns_used[i].load() && path == g_netns_path[i]) g_netns_used[i] = false;
}

void install_handlers() {
  if (g_networks.fetch_add(1) != 0) return;
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < 3; ++i) ::sigaction(kSignals[i], &sa, &g_old[i]);
}

void remove_handlers() {
  if (g_networks.fetch_sub(1) != 1) return;
  for (int i = 0; i < 3; ++i) ::sigaction(kSignals[i], &g_old[i], nullptr);
}

// ---- keys --------------------------------------------------------------------------

struct Keys {
  std::string dir;  // <cache>/<version>: auth/keys, relay1/keys, ...
  std::string v3ident;
  std::string auth_fp;
};

std::string default_cache_root() {
  if (const char* c = std::getenv("TORGW_TORNET_CACHE"); c && *c) return c;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/torgw/tornet";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/torgw/tornet";
  return "/var/tmp/torgw-tornet-cache";
}

std::string field_after(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + " ", 0) == 0) return line.substr(key.size() + 1);
  return {};
}

// The relay fingerprint tor writes into <datadir>/fingerprint ("Unnamed <40 hex>").
std::string read_fingerprint(const std::string& data_dir) {
  std::string f = read_file(data_dir + "/fingerprint");
  auto sp = f.find(' ');
  if (sp == std::string::npos) return {};
  std::string fp = f.substr(sp + 1, 40);
  return controlport::valid_fingerprint(fp) ? fp : std::string{};
}

bool cert_fresh(const std::string& cert_path) {
  // "dir-key-expires 2027-11-22 15:45:42": keep a month of margin.
  std::string exp = field_after(read_file(cert_path), "dir-key-expires");
  std::tm tm{};
  if (exp.empty() || !::strptime(exp.c_str(), "%Y-%m-%d %H:%M:%S", &tm)) return false;
  return ::timegm(&tm) > std::time(nullptr) + 30 * 24 * 3600;
}

// A router's identity keys in <d>/keys (tor --list-fingerprint makes them); returns its
// fingerprint. Everything else tor wrote there is per-run state and removed.
Result<std::string> router_keys(const std::string& tor, const std::string& d) {
  fs::create_directories(d);
  ::chmod(d.c_str(), 0700);
  auto r = testing::run({tor, "--list-fingerprint", "--orport", "1", "--dirserver",
                         "x 127.0.0.1:1 ffffffffffffffffffffffffffffffffffffffff", "--datadirectory", d, "--quiet"},
                        milliseconds(120000));
  std::string fp = read_fingerprint(d);
  if (fp.empty()) return make_error("tornet.keys", "tor --list-fingerprint failed for " + d + ": " + r.err + r.out);
  for (const auto& e : fs::directory_iterator(d))
    if (e.path().filename() != "keys") fs::remove_all(e.path());
  return fp;
}

Status generate_keys(const std::string& tor, const std::string& gencert, const std::string& out) {
  fs::create_directories(out + "/auth/keys");
  ::chmod((out + "/auth").c_str(), 0700);
  ::chmod((out + "/auth/keys").c_str(), 0700);
  testing::SpawnOptions o;
  o.cwd = out + "/auth/keys";
  o.stdin_data = "\n";  // an empty passphrase for the identity key
  auto g = testing::run({gencert, "--create-identity-key", "-m", "12", "-i", "authority_identity_key", "-s",
                         "authority_signing_key", "-c", "authority_certificate", "--passphrase-fd", "0"},
                        milliseconds(120000), o);
  if (g.exit_code != 0) return make_error("tornet.keys", "tor-gencert failed: " + g.err + g.out);
  std::vector<std::string> names{kAuthNick};
  for (int i = 1; i <= kMaxRelays; ++i) names.push_back(relay_nick(i));
  std::string meta = "v3ident " + field_after(read_file(out + "/auth/keys/authority_certificate"), "fingerprint") +
                     "\n";
  for (const auto& n : names) {
    TORGW_ASSIGN_OR_RETURN(auto fp, router_keys(tor, out + "/" + n));
    meta += n + " " + fp + "\n";
  }
  write_file(out + "/keys.txt", meta, 0600);
  return {};
}

// A cache made when fewer relays had keys: add the missing relays' keys (the authority's
// and the others' stay, so networks started from the cache meanwhile are unaffected).
Status add_missing_relays(const std::string& tor, const std::string& dir) {
  std::string meta = read_file(dir + "/keys.txt");
  bool changed = false;
  for (int i = 1; i <= kMaxRelays; ++i) {
    if (!field_after(meta, relay_nick(i)).empty()) continue;
    std::error_code ec;
    const std::string tmp = dir + "/" + relay_nick(i) + ".tmp." + std::to_string(::getpid());
    fs::remove_all(tmp, ec);
    TORGW_ASSIGN_OR_RETURN(auto fp, router_keys(tor, tmp));
    fs::remove_all(dir + "/" + relay_nick(i), ec);
    fs::rename(tmp, dir + "/" + relay_nick(i), ec);
    if (ec) return make_error("tornet.keys", "rename into " + dir + ": " + ec.message());
    meta += relay_nick(i) + " " + fp + "\n";
    changed = true;
  }
  if (!changed) return {};
  write_file(dir + "/keys.txt.tmp", meta, 0600);
  std::error_code ec;
  fs::rename(dir + "/keys.txt.tmp", dir + "/keys.txt", ec);
  if (ec) return make_error("tornet.keys", "rename keys.txt: " + ec.message());
  return {};
}

Result<Keys> ensure_keys(const std::string& tor, const std::string& gencert, const std::string& root,
                         const std::string& version, milliseconds& spent) {
  auto t0 = Clock::now();
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return make_error("tornet.keys", root + ": " + ec.message());
  std::string dir = root + "/" + version;
  // One generator at a time; others wait, then find the cache filled.
  UniqueFd lock(::open((dir + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock || ::flock(lock.get(), LOCK_EX) != 0) return make_error("tornet.keys", "cannot lock " + dir + ".lock");
  auto valid = [&] { return fs::exists(dir + "/keys.txt") && cert_fresh(dir + "/auth/keys/authority_certificate"); };
  if (!valid()) {
    std::string tmp = dir + ".tmp." + std::to_string(::getpid());
    fs::remove_all(tmp, ec);
    auto st = generate_keys(tor, gencert, tmp);
    if (!st) {
      fs::remove_all(tmp, ec);
      return st.error();
    }
    fs::remove_all(dir, ec);
    fs::rename(tmp, dir, ec);
    if (ec) return make_error("tornet.keys", "rename into " + dir + ": " + ec.message());
    spent = since(t0);
  } else {
    TORGW_TRY(add_missing_relays(tor, dir));
    spent = since(t0);
  }
  std::string meta = read_file(dir + "/keys.txt");
  Keys k{dir, field_after(meta, "v3ident"), field_after(meta, kAuthNick)};
  if (!controlport::valid_fingerprint(k.v3ident) || !controlport::valid_fingerprint(k.auth_fp))
    return make_error("tornet.keys", dir + "/keys.txt is damaged; delete " + dir);
  return k;
}

// ---- consensus polling ---------------------------------------------------------------

struct RouterEntry {
  std::string nick;
  std::string flags;
  std::string micro_digest;
};

std::vector<RouterEntry> routers_in(const std::string& consensus) {
  std::vector<RouterEntry> out;
  std::istringstream in(consensus);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("r ", 0) == 0) {
      auto sp = line.find(' ', 2);
      out.push_back(RouterEntry{line.substr(2, sp - 2), {}, {}});
    } else if (!out.empty() && line.rfind("s ", 0) == 0) {
      out.back().flags = line.substr(2);
    } else if (!out.empty() && line.rfind("m ", 0) == 0) {
      out.back().micro_digest = line.substr(2);
    }
  }
  return out;
}

// Every relay listed with the flags onion circuits need (TORNET.md: missing Fast/Stable
// stalls HS circuits for 30-80 s).
bool lists_all(const std::string& consensus, const std::vector<std::string>& nicks) {
  auto routers = routers_in(consensus);
  for (const auto& n : nicks) {
    auto it = std::find_if(routers.begin(), routers.end(), [&](const RouterEntry& r) { return r.nick == n; });
    if (it == routers.end()) return false;
    for (const char* f : {"Fast", "Running", "Stable", "Valid", "HSDir"})
      if ((" " + it->flags + " ").find(std::string(" ") + f + " ") == std::string::npos) return false;
  }
  return true;
}

std::string env_path() { return "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"; }

}  // namespace

// ---- helpers -----------------------------------------------------------------------

Result<std::string> tor_version(const std::string& tor) {
  auto r = testing::run({tor, "--version"}, milliseconds(30000));
  // "Tor version 0.4.9.11."
  auto p = r.out.find("Tor version ");
  if (r.exit_code != 0 || p == std::string::npos) return make_error("tornet.no_tor", tor + " --version failed");
  std::string v = r.out.substr(p + 12);
  v = v.substr(0, v.find_first_of(" \n"));
  while (!v.empty() && v.back() == '.') v.pop_back();
  if (v.empty() || v.find('/') != std::string::npos) return make_error("tornet.no_tor", "unparsable tor version");
  return v;
}

Result<std::string> http_get(const std::string& host, std::uint16_t port, const std::string& path,
                             milliseconds timeout) {
  UniqueFd s = testing::connect_tcp(host, port);
  if (!s)
    return make_error("tornet.http", "connect " + host + ":" + std::to_string(port) + ": " + std::strerror(errno));
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: " + host + "\r\n\r\n";
  if (!testing::write_all(s.get(), req.data(), req.size())) return make_error("tornet.http", "write failed");
  std::string resp = testing::read_until_eof(s.get(), timeout);
  auto sp = resp.find(' ');
  if (resp.rfind("HTTP/1.", 0) != 0 || sp == std::string::npos) return make_error("tornet.http", "no HTTP answer");
  std::string code = resp.substr(sp + 1, 3);
  auto body = resp.find("\r\n\r\n");
  if (code != "200" || body == std::string::npos) return make_error("tornet.http", "HTTP " + code + " for " + path);
  return resp.substr(body + 4);
}

Result<std::unique_ptr<StaticHttp>> StaticHttp::start(const std::string& dir) {
  std::unique_ptr<StaticHttp> h(new StaticHttp());
  std::string python = testing::find_program("python3");
  if (python.empty()) return make_error("tornet.spawn", "python3 is not installed");
  std::error_code ec;
  fs::create_directories(dir + "/www", ec);
  std::uint8_t rnd[12];
  std::FILE* ur = std::fopen("/dev/urandom", "rb");
  if (!ur || std::fread(rnd, 1, sizeof rnd, ur) != sizeof rnd) {
    if (ur) std::fclose(ur);
    return make_error("tornet.spawn", "no /dev/urandom");
  }
  std::fclose(ur);
  h->token_ = "torgw-" + to_hex(ByteView(rnd, sizeof rnd));
  write_file(dir + "/www/index.html", h->token_);
  h->port_ = testing::free_tcp_port();
  UniqueFd log(::open((dir + "/http.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  SpawnSpec spec;
  spec.argv = {python, "-m", "http.server", "--bind", "127.0.0.1", std::to_string(h->port_)};
  spec.env = {env_path()};
  spec.stdout_fd = spec.stderr_fd = log.get();
  spec.cwd = dir + "/www";
  spec.die_with_parent = true;
  auto pid = spawn(spec);
  if (!pid) return make_error("tornet.spawn", pid.error().to_string());
  h->pid_ = *pid;
  register_pid(h->pid_);
  if (!testing::wait_for_tcp("127.0.0.1", h->port_, milliseconds(20000)))
    return make_error("tornet.spawn", "the HTTP server did not listen: " + Network::tail(dir + "/http.log", 5));
  return h;
}

StaticHttp::~StaticHttp() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int st;
  ::waitpid(pid_, &st, 0);
  unregister_pid(pid_);
}

bool curl_until(const std::string& socks, const std::string& host, const std::string& expect,
                std::chrono::seconds budget, std::string* last) {
  const std::string curl = testing::find_program("curl");
  const auto deadline = Clock::now() + budget;
  while (!curl.empty() && Clock::now() < deadline) {
    auto r = testing::run({curl, "-sS", "--max-time", "30", "--socks5-hostname", socks, "http://" + host + "/"},
                          milliseconds(40000));
    if (last) *last = r.err + r.out;
    if (r.exit_code == 0 && r.out == expect) return true;
    std::this_thread::sleep_for(milliseconds(500));
  }
  if (curl.empty() && last) *last = "curl is not installed";
  return false;
}

std::string Network::tail(const std::string& path, std::size_t lines) {
  std::string s = read_file(path);
  std::size_t pos = s.size();
  for (std::size_t n = 0; n <= lines && pos > 0; ++n) {
    auto p = s.rfind('\n', pos - 1);
    if (p == std::string::npos) {
      pos = 0;
      break;
    }
    pos = p;
    if (n == lines) ++pos;
  }
  return s.substr(pos);
}

// ---- Network -----------------------------------------------------------------------

Result<std::unique_ptr<Network>> Network::start(Options opts) {
  std::unique_ptr<Network> n(new Network());
  auto st = n->launch(opts);
  if (!st) {
    n->stop();
    return st.error();
  }
  return n;
}

Network::~Network() { stop(); }

Status Network::enter_netns() {
  static std::atomic<int> counter{0};
  netns_ = "torgw-tn-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  auto add = testing::run({"ip", "netns", "add", netns_});
  if (add.exit_code != 0) {
    std::string err = add.err;
    netns_.clear();
    return make_error("tornet.netns", "ip netns add: " + err);
  }
  register_netns("/run/netns/" + netns_);
  auto lo = testing::run({"ip", "-n", netns_, "link", "set", "lo", "up"});
  if (lo.exit_code != 0) return make_error("tornet.netns", "lo up: " + lo.err);
  saved_netns_fd_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  UniqueFd ns(::open(("/run/netns/" + netns_).c_str(), O_RDONLY | O_CLOEXEC));
  if (saved_netns_fd_ < 0 || !ns || ::setns(ns.get(), CLONE_NEWNET) != 0)
    return make_error("tornet.netns", std::string("setns: ") + std::strerror(errno));
  return {};
}

void Network::leave_netns() {
  if (saved_netns_fd_ >= 0) {
    ::setns(saved_netns_fd_, CLONE_NEWNET);
    ::close(saved_netns_fd_);
    saved_netns_fd_ = -1;
  }
  if (!netns_.empty()) {
    (void)testing::run({"ip", "netns", "del", netns_});
    unregister_netns("/run/netns/" + netns_);
    netns_.clear();
  }
}

std::vector<std::pair<std::string, std::string>> Network::client_options() const {
  std::vector<std::pair<std::string, std::string>> o{{"TestingTorNetwork", "1"}};
  for (const auto& d : dir_authorities_) o.emplace_back("DirAuthority", d);
  o.emplace_back("AssumeReachable", "1");
  o.emplace_back("PathsNeededToBuildCircuits", "0.67");
  o.emplace_back("GeoIPFile", empty_file_);
  o.emplace_back("GeoIPv6File", empty_file_);
  o.emplace_back("ShutdownWaitLength", "0");
  return o;
}

std::string Network::torrc_block() const {
  std::string s;
  for (const auto& [k, v] : client_options()) s += k + " " + v + "\n";
  return s;
}

std::string Network::socks_endpoint() const {
  return socks_port_ ? "127.0.0.1:" + std::to_string(socks_port_) : std::string{};
}

std::string Network::client_control_socket() const { return dir_ + "/client/control"; }

Result<TorProcess> Network::spawn_tor(const std::string& name, const std::string& torrc) {
  TorProcess p;
  p.name = name;
  p.data_dir = dir_ + "/" + name;
  p.log = dir_ + "/" + name + ".log";
  std::error_code ec;
  fs::create_directories(p.data_dir, ec);
  ::chmod(p.data_dir.c_str(), 0700);
  // Every tor of ours gets the network's DirAuthority: none may ever reach the public
  // Tor network.
  if (dir_authorities_.empty()) return make_error("tornet.spawn", "no DirAuthority yet");
  std::string rc = "DataDirectory " + p.data_dir + "\nNickname " + name + "\nLog notice stdout\n" +
                   "__OwningControllerProcess " + std::to_string(::getpid()) + "\n" + torrc_block() + torrc;
  write_file(dir_ + "/" + name + ".torrc", rc);
  UniqueFd log(::open(p.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!log) return make_error("tornet.spawn", p.log + ": " + std::strerror(errno));
  SpawnSpec spec;
  spec.argv = {tor_, "-f", dir_ + "/" + name + ".torrc", "--defaults-torrc", "/dev/null"};
  spec.env = {env_path(), "HOME=" + dir_};
  spec.stdout_fd = spec.stderr_fd = log.get();
  spec.cwd = dir_;
  spec.die_with_parent = true;
  auto pid = spawn(spec);
  if (!pid) return make_error("tornet.spawn", name + ": " + pid.error().to_string());
  p.pid = *pid;
  register_pid(p.pid);
  procs_.push_back(p);
  return p;
}

void Network::end_process(pid_t pid) {
  auto it = std::find_if(procs_.begin(), procs_.end(), [&](const TorProcess& p) { return p.pid == pid; });
  if (it == procs_.end()) return;
  ::kill(pid, SIGTERM);
  auto deadline = Clock::now() + milliseconds(3000);
  int st;
  while (::waitpid(pid, &st, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      break;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  unregister_pid(pid);
  procs_.erase(it);
}

void Network::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& p : procs_) ::kill(p.pid, SIGTERM);
  auto deadline = Clock::now() + milliseconds(3000);
  for (auto& p : procs_) {
    int st;
    while (::waitpid(p.pid, &st, WNOHANG) == 0) {
      if (Clock::now() > deadline) {
        ::kill(p.pid, SIGKILL);
        ::waitpid(p.pid, &st, 0);
        break;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    unregister_pid(p.pid);
  }
  procs_.clear();
  leave_netns();
  if (remove_dir_ && std::getenv("TORGW_KEEP_TMP") == nullptr) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  remove_handlers();
}

Status Network::launch(Options& opts) {
  install_handlers();
  auto say = [&](const std::string& s) {
    if (opts.progress) opts.progress(s);
  };
  tor_ = opts.tor.empty() ? testing::find_program("tor") : opts.tor;
  std::string gencert = opts.tor_gencert.empty() ? testing::find_program("tor-gencert") : opts.tor_gencert;
  if (tor_.empty() || gencert.empty()) return make_error("tornet.no_tor", "tor and tor-gencert must be installed");
  const auto deadline = Clock::now() + opts.timeout;
  const int n_relays = opts.relays;
  if (n_relays < 3 || n_relays > kMaxRelays) return make_error("tornet.bad_option", "relays must be 3..6");

  if (opts.dir.empty()) {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/torgw-tornet-XXXXXX";
    if (!::mkdtemp(tmpl.data())) return make_error("tornet.spawn", "mkdtemp failed");
    dir_ = tmpl;
    remove_dir_ = !opts.keep_dir;
  } else {
    dir_ = fs::absolute(opts.dir).lexically_normal().string();
    if (!dir_.empty() && dir_.back() == '/') dir_.pop_back();
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) return make_error("tornet.spawn", dir_ + ": " + ec.message());
    remove_dir_ = false;
  }
  // Other users (the tor user of a supervised tor) may need to traverse it.
  ::chmod(dir_.c_str(), 0755);
  empty_file_ = dir_ + "/empty";
  write_file(empty_file_, "");

  TORGW_ASSIGN_OR_RETURN(auto version, tor_version(tor_));
  const std::string key_cache = opts.key_cache.empty() ? default_cache_root() : opts.key_cache;
  say("tor " + version + "; keys from " + key_cache);
  TORGW_ASSIGN_OR_RETURN(auto keys, ensure_keys(tor_, gencert, key_cache, version, timings_.keys));

  const bool use_netns = opts.netns == Netns::On || (opts.netns == Netns::Auto && ::geteuid() == 0);
  if (use_netns) {
    TORGW_TRY(enter_netns());
    say("network namespace " + netns_);
  }

  // Ports, distinct from each other.
  std::set<std::uint16_t> used;
  auto port = [&] {
    for (;;) {
      auto p = testing::free_tcp_port();
      if (used.insert(p).second) return p;
    }
  };
  const std::uint16_t auth_or = port(), auth_dir = port();
  std::vector<std::uint16_t> relay_or, relay_dir;
  for (int i = 0; i < n_relays; ++i) {
    relay_or.push_back(port());
    relay_dir.push_back(port());
  }
  dir_authorities_ = {std::string(kAuthNick) + " orport=" + std::to_string(auth_or) + " no-v2 v3ident=" + keys.v3ident +
                      " 127.0.0.1:" + std::to_string(auth_dir) + " " + keys.auth_fp};

  // Keys into fresh data dirs.
  std::vector<std::string> nicks{kAuthNick};
  for (int i = 1; i <= n_relays; ++i) nicks.push_back(relay_nick(i));
  for (const auto& n : nicks) {
    std::error_code ec;
    fs::remove_all(dir_ + "/" + n, ec);
    fs::create_directories(dir_ + "/" + n, ec);
    fs::copy(keys.dir + "/" + n + "/keys", dir_ + "/" + n + "/keys", fs::copy_options::recursive, ec);
    if (ec) return make_error("tornet.keys", "copy keys for " + n + ": " + ec.message());
  }

  const std::string common =
      "TestingDirAuthVoteExit *\nTestingDirAuthVoteGuard *\nTestingDirAuthVoteHSDir *\n"
      "TestingMinExitFlagThreshold 0\nV3AuthNIntervalsValid 2\nSocksPort 0\nContactInfo tornet@localhost\n";

  // The first consensus lands ~9 s after launch: valid-after is where
  // (t - offset) % interval == 0 (TORNET.md).
  const long interval = static_cast<long>(opts.voting_interval.count());
  if (interval < 10 || interval > 300) return make_error("tornet.bad_option", "voting_interval must be 10..300 s");
  const std::string ivl = std::to_string(interval), delay = std::to_string(std::max(2L, interval / 5));
  launched_ = Clock::now();
  const long offset = (static_cast<long>(std::time(nullptr)) + 9) % interval;
  std::string auth_rc = common + "Address 127.0.0.1\nORPort 127.0.0.1:" + std::to_string(auth_or) +
                        "\nDirPort 127.0.0.1:" + std::to_string(auth_dir) +
                        "\nAuthoritativeDirectory 1\nV3AuthoritativeDirectory 1\nExitPolicy reject *:*\n"
                        "TestingV3AuthInitialVotingInterval " +
                        ivl + "\nV3AuthVotingInterval " + ivl +
                        "\n"
                        "TestingV3AuthInitialVoteDelay " +
                        delay + "\nTestingV3AuthInitialDistDelay " + delay +
                        "\n"
                        "V3AuthVoteDelay " +
                        delay + "\nV3AuthDistDelay " + delay +
                        "\n"
                        "TestingV3AuthVotingStartOffset " +
                        std::to_string(offset) +
                        "\n"
                        "AuthDirFastGuarantee 1\nAuthDirVoteStableGuaranteeMinUptime 0\n"
                        "AuthDirVoteStableGuaranteeMTBF 0\nAuthDirMaxServersPerAddr 0\n";
  TORGW_TRY(spawn_tor(kAuthNick, auth_rc));
  for (int i = 0; i < n_relays; ++i) {
    std::string rc = common +
                     "Address 127.0.0.1\nORPort 127.0.0.1:" + std::to_string(relay_or[static_cast<std::size_t>(i)]) +
                     "\nDirPort 127.0.0.1:" + std::to_string(relay_dir[static_cast<std::size_t>(i)]) +
                     "\nFetchDirInfoEarly 1\nFetchDirInfoExtraEarly 1\n";
    if (i == 0)
      rc += "ExitRelay 1\nExitPolicyRejectPrivate 0\nExitPolicyRejectLocalInterfaces 0\n"
            "ExitPolicy accept 127.0.0.0/8:*\nExitPolicy reject *:*\n";
    else rc += "ExitRelay 0\nExitPolicy reject *:*\n";
    TORGW_TRY(spawn_tor(relay_nick(i + 1), rc));
  }
  say("authority and " + std::to_string(n_relays) + " relays started");

  auto logs_tail = [&] {
    std::string s;
    for (const auto& p : procs_) s += "\n--- " + p.name + " (" + p.log + ")\n" + tail(p.log, 8);
    return s;
  };
  auto alive = [&]() -> Status {
    for (const auto& p : procs_) {
      int st;
      if (::waitpid(p.pid, &st, WNOHANG) == p.pid) {
        unregister_pid(p.pid);
        std::string name = p.name;
        procs_.erase(std::find_if(procs_.begin(), procs_.end(), [&](const TorProcess& q) { return q.pid == p.pid; }));
        return make_error("tornet.spawn", name + " " + supervisor::describe_status(st) + logs_tail());
      }
    }
    return {};
  };
  auto poll = [&](const std::string& stage, const std::function<bool()>& ready) -> Status {
    while (!ready()) {
      TORGW_TRY(alive());
      if (Clock::now() > deadline) return make_error("tornet.timeout", stage + logs_tail());
      std::this_thread::sleep_for(milliseconds(250));
    }
    return {};
  };

  // 1. The authority's consensus lists every relay.
  TORGW_TRY(poll("waiting for a consensus listing every relay", [&] {
    auto c = http_get("127.0.0.1", auth_dir, "/tor/status-vote/current/consensus", milliseconds(5000));
    return c.ok() && lists_all(*c, nicks);
  }));
  timings_.consensus = since(launched_);
  say("consensus at " + std::to_string(timings_.consensus.count()) + " ms");

  // 2. Relays fetch it now rather than on their own schedule; then every relay must serve
  // the microdesc consensus and all the microdescriptors a client will ask it for.
  for (const auto& p : procs_)
    if (p.name != kAuthNick) ::kill(p.pid, SIGHUP);
  for (int i = 0; i < n_relays; ++i) {
    const std::uint16_t dp = relay_dir[static_cast<std::size_t>(i)];
    TORGW_TRY(poll("waiting for " + relay_nick(i + 1) + " to serve the consensus and microdescriptors", [&] {
      auto c = http_get("127.0.0.1", dp, "/tor/status-vote/current/consensus-microdesc", milliseconds(5000));
      if (!c || !lists_all(*c, nicks)) return false;
      std::string path = "/tor/micro/d/";
      int count = 0;
      for (const auto& r : routers_in(*c)) {
        if (r.micro_digest.empty()) return false;
        path += (count++ ? "-" : "") + r.micro_digest;
      }
      auto md = http_get("127.0.0.1", dp, path, milliseconds(5000));
      if (!md) return false;
      int keys_found = 0;
      for (std::size_t pos = 0; (pos = md->find("onion-key", pos)) != std::string::npos; pos += 9) ++keys_found;
      return keys_found >= count;
    }));
  }
  timings_.relays_ready = since(launched_);
  say("relays ready at " + std::to_string(timings_.relays_ready.count()) + " ms");

  // 3. The client.
  if (opts.client) {
    socks_port_ = port();
    std::string cdir = dir_ + "/client";
    TORGW_TRY(spawn_tor("client", "SocksPort 127.0.0.1:" + std::to_string(socks_port_) + "\nControlSocket " + cdir +
                                      "/control\nCookieAuthentication 1\nCookieAuthFile " + cdir +
                                      "/control.authcookie\n"));
    controlport::ConnectOptions co;
    co.timeout = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    auto ctl = controlport::BlockingControl::open(controlport::Endpoint::unix_socket(cdir + "/control"),
                                                  controlport::AuthOptions{cdir + "/control.authcookie"}, co);
    if (!ctl) return make_error("tornet.spawn", "client control: " + ctl.error().to_string() + logs_tail());
    TORGW_TRY(poll("waiting for the client to bootstrap", [&] {
      auto v = (*ctl)->getinfo1("status/bootstrap-phase");
      if (!v) return false;
      auto b = controlport::parse_bootstrap_phase(*v);
      return b.ok() && b->progress == 100;
    }));
    timings_.client_bootstrapped = since(launched_);
    say("client bootstrapped at " + std::to_string(timings_.client_bootstrapped.count()) + " ms; SocksPort " +
        socks_endpoint());
  }
  return {};
}

}  // namespace torgw::tornet
