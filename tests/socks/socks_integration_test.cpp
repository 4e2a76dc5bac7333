// torgw-socks against real peers: curl as the client, Debian's danted and microsocks as
// backend exit nodes, and an HTTP server (C++, in this process) as the destination.
//
// The whole suite runs in a private network namespace created at start (unshare): a
// fresh loopback with 127.0.0.5 for dante's internal/external address, nothing shared
// with other suites, and nothing to clean up (the namespace dies with the processes).
// Needs root for that; without it every test SKIPs with a message.
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "common/bytes.h"
#include "tests/socks/socks_client.h"
#include "tests/support/dante.h"
#include "tests/support/net.h"
#include "tests/support/process.h"
#include "tests/support/tempdir.h"

using namespace torgw;
using namespace torgw::testing;
using namespace torgw::testing::socks;
using namespace std::chrono_literals;

namespace {

// ---- environment -------------------------------------------------------------------

struct Netns {
  bool ok = false;
  std::string why;
};

const Netns& netns() {
  static const Netns n = [] {
    Netns r;
    if (::geteuid() != 0) {
      r.why = "needs root to create a private network namespace";
      return r;
    }
    if (::unshare(CLONE_NEWNET) != 0) {
      r.why = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
      return r;
    }
    auto up = run({"ip", "link", "set", "lo", "up"});
    auto addr = run({"ip", "addr", "add", "127.0.0.5/8", "dev", "lo"});
    if (up.exit_code != 0 || addr.exit_code != 0) {
      r.why = "ip: " + up.err + addr.err;
      return r;
    }
    r.ok = true;
    return r;
  }();
  return n;
}

#define NEED_ENV(...)                                                                                     \
  do {                                                                                                    \
    if (!netns().ok) {                                                                                    \
      TORGW_SKIP(torgw::testing::Needs::root, netns().why);                                               \
    }                                                                                                     \
    for (const char* prog : {__VA_ARGS__}) {                                                              \
      if (find_program(prog).empty()) {                                                                   \
        TORGW_SKIP(torgw::testing::Needs::package, std::string(prog) + " not installed (scripts/setup)"); \
      }                                                                                                   \
    }                                                                                                     \
  } while (0)

std::uint8_t pattern(std::size_t i) { return static_cast<std::uint8_t>(i ^ (i >> 8) ^ (i >> 16) ^ 0x5a); }

bool is_pattern(const std::string& s) {
  for (std::size_t i = 0; i < s.size(); ++i)
    if (static_cast<std::uint8_t>(s[i]) != pattern(i)) return false;
  return true;
}

// ---- the destination: a small HTTP/1.0 server ---------------------------------------
//   GET /hello              -> "hello from the destination\n"
//   GET /bytes/N            -> N bytes of pattern()
//   GET /trickle/N/MS       -> N bytes of pattern(), spread over MS milliseconds
class HttpServer {
 public:
  HttpServer() {
    lfd_ = listen_loopback(&port_);
    thread_ = std::thread([this] { loop(); });
  }
  ~HttpServer() {
    stop_ = true;
    thread_.join();
    std::lock_guard lk(m_);
    for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
    for (auto& t : workers_) t.join();
  }
  std::uint16_t port() const { return port_; }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  int requests() const { return requests_.load(); }

 private:
  void loop() {
    while (!stop_) {
      pollfd p{lfd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int fd = ::accept4(lfd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::lock_guard lk(m_);
      open_.push_back(fd);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  }
  void serve(int fd) {
    UniqueFd own(fd);
    std::string head;
    char c;
    while (head.size() < 8192 && head.find("\r\n\r\n") == std::string::npos) {
      if (!read_exact(fd, &c, 1, 60s)) return;
      head += c;
    }
    ++requests_;
    std::istringstream is(head);
    std::string method, path;
    is >> method >> path;
    auto send_head = [&](std::size_t len) {
      std::string h = "HTTP/1.0 200 OK\r\nContent-Length: " + std::to_string(len) + "\r\nConnection: close\r\n\r\n";
      return write_all(fd, h.data(), h.size());
    };
    std::size_t n = 0, ms = 0;
    if (path == "/hello") {
      std::string body = "hello from the destination\n";
      if (send_head(body.size())) write_all(fd, body.data(), body.size());
    } else if (std::sscanf(path.c_str(), "/bytes/%zu", &n) == 1) {
      if (!send_head(n)) return;
      stream(fd, n, 0);
    } else if (std::sscanf(path.c_str(), "/trickle/%zu/%zu", &n, &ms) == 2) {
      if (!send_head(n)) return;
      stream(fd, n, ms);
    } else {
      std::string h = "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n";
      write_all(fd, h.data(), h.size());
    }
  }
  static void stream(int fd, std::size_t n, std::size_t ms) {
    std::vector<std::uint8_t> buf(65536);
    std::size_t sent = 0;
    std::size_t step = ms ? std::max<std::size_t>(1, n / 20) : buf.size();
    while (sent < n) {
      std::size_t k = std::min({buf.size(), n - sent, step});
      for (std::size_t i = 0; i < k; ++i) buf[i] = pattern(sent + i);
      if (!write_all(fd, buf.data(), k)) return;
      sent += k;
      if (ms) std::this_thread::sleep_for(std::chrono::milliseconds(ms / 20));
    }
  }

  UniqueFd lfd_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex m_;
  std::vector<std::thread> workers_;
  std::vector<int> open_;
  std::atomic<int> requests_{0};
};

// ---- backends -----------------------------------------------------------------------

class Microsocks {
 public:
  explicit Microsocks(const TempDir& dir, std::uint16_t port = 0, std::vector<std::string> extra = {})
      : port_(port ? port : free_tcp_port()) {
    std::vector<std::string> argv{find_program("microsocks"), "-i", "127.0.0.1", "-p", std::to_string(port_)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    SpawnOptions o;
    o.stdout_path = dir.file("microsocks-" + std::to_string(port_) + ".log");
    proc_ = Subprocess::spawn(argv, o);
    REQUIRE(wait_for_tcp("127.0.0.1", port_, 20s));
  }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
  std::uint16_t port() const { return port_; }
  Subprocess& proc() { return proc_; }

 private:
  std::uint16_t port_;
  Subprocess proc_;
};

// ---- the relay under test ------------------------------------------------------------

class Relay {
 public:
  Relay(const TempDir& dir, const std::vector<std::string>& backends, const std::string& config = "",
        std::vector<std::string> flags = {})
      : port_(free_tcp_port()) {
    std::string conf = dir.file("socks-" + std::to_string(port_) + ".conf");
    log_ = dir.file("socks-" + std::to_string(port_) + ".log");
    bool passthrough = std::find(flags.begin(), flags.end(), "passthrough") != flags.end();
    // The destination is on loopback, which the default policy rightly refuses.
    write_file(conf, std::string(passthrough ? "" : "allow = 127.0.0.1\n") + "stats_interval = 0\n" + config, 0600);
    std::vector<std::string> argv{binary_dir() + "/socks/torgw-socks", "--config", conf, "--user", "nobody"};
    if (std::find(flags.begin(), flags.end(), "--listen") == flags.end()) {
      argv.push_back("--listen");
      argv.push_back("127.0.0.1:" + std::to_string(port_));
    }
    for (const auto& b : backends) {
      argv.push_back("--backend");
      argv.push_back(b);
    }
    argv.insert(argv.end(), flags.begin(), flags.end());
    SpawnOptions o;
    o.stdout_path = log_;
    proc_ = Subprocess::spawn(argv, o);
    if (!wait_log("listening on")) FAIL("torgw-socks did not start: " << log());
  }
  std::uint16_t port() const { return port_; }
  std::string proxy() const { return "127.0.0.1:" + std::to_string(port_); }
  Subprocess& proc() { return proc_; }
  std::string log() const { return read_file(log_); }
  bool wait_log(const std::string& needle, std::chrono::milliseconds t = 20s) const {
    auto end = std::chrono::steady_clock::now() + t;
    while (std::chrono::steady_clock::now() < end) {
      if (log().find(needle) != std::string::npos) return true;
      if (!const_cast<Subprocess&>(proc_).running()) return log().find(needle) != std::string::npos;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  long rss_kb() const {
    std::ifstream f("/proc/" + std::to_string(proc_.pid()) + "/status");
    std::string line;
    while (std::getline(f, line))
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
  }

 private:
  std::uint16_t port_;
  std::string log_;
  Subprocess proc_;
};

RunResult curl(const std::string& proxy, const std::string& url, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{"curl", "-sS", "--max-time", "60", "--socks5-hostname", proxy, url};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return run(argv, 90s);
}

void check_hello(const RunResult& r) {
  INFO("curl stderr: " << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "hello from the destination\n");
}

// The usual cast: a destination and one backend of each kind.
struct Peers {
  TempDir dir{"socks-it"};
  HttpServer http;
  Dante dante{dir};
  Microsocks ms{dir};
};

}  // namespace

TEST_CASE("curl through torgw-socks to dante and to microsocks") {
  NEED_ENV("curl", "danted", "microsocks");
  Peers peers;
  auto& [dir, http, dante, ms] = peers;
  for (const auto& backend : {dante.endpoint(), ms.endpoint()}) {
    INFO("backend " << backend);
    Relay relay(dir, {backend}, "health_interval = 200ms\n");
    // The health check learns whether the backend reads a CONNECT pipelined behind the
    // greeting (dante does, microsocks does not); both must work either way.
    bool dante_backend = backend == dante.endpoint();
    CHECK(relay.wait_log(backend + (dante_backend ? " reads pipelined" : " does not read pipelined")));
    check_hello(curl(relay.proxy(), http.url("/hello")));
    // A larger body, checked byte for byte.
    auto big = curl(relay.proxy(), http.url("/bytes/20000000"));
    CHECK(big.exit_code == 0);
    CHECK(big.out.size() == 20000000);
    CHECK(is_pattern(big.out));
  }
}

TEST_CASE("curl over a unix socket listener (what tor's HiddenServicePort unix: uses)") {
  NEED_ENV("curl", "microsocks");
  TempDir dir("socks-it");
  ::chmod(dir.path().c_str(), 0755);
  HttpServer http;
  Microsocks ms(dir);
  std::string sock = dir.file("socks.sock");
  Relay relay(dir, {ms.endpoint()}, "", {"--listen", "unix:" + sock});
  auto r = run({"curl", "-sS", "--max-time", "30", "--proxy", "socks5h://localhost" + sock, http.url("/hello")});
  check_hello(r);
}

TEST_CASE("passthrough: the client's SOCKS5 goes to the backend untouched") {
  NEED_ENV("curl", "danted", "microsocks");
  Peers peers;
  auto& [dir, http, dante, ms] = peers;
  for (const auto& backend : {dante.endpoint(), ms.endpoint()}) {
    Relay relay(dir, {backend}, "", {"--mode", "passthrough"});
    check_hello(curl(relay.proxy(), http.url("/hello")));
    auto big = curl(relay.proxy(), http.url("/bytes/5000000"));
    CHECK(big.out.size() == 5000000);
    CHECK(is_pattern(big.out));
  }
  // The policy is socks5 mode's: passthrough does not see destinations (dante decides).
}

TEST_CASE("backend down: typed reply 0x05, never a bare EOF") {
  NEED_ENV("curl");
  TempDir dir("socks-it");
  HttpServer http;
  std::string dead = "127.0.0.1:" + std::to_string(free_tcp_port());
  Relay relay(dir, {dead});
  auto r = curl(relay.proxy(), http.url("/hello"));
  CHECK(r.exit_code == 97);
  CHECK(r.err.find("(5)") != std::string::npos);
  auto c = connect_via(relay.port(), ipv4_request("127.0.0.1", http.port()));
  CHECK(c.reply == 5);
  CHECK(http.requests() == 0);
  // Passthrough has no reply to give: the client is closed.
  Relay pt(dir, {dead}, "", {"--mode", "passthrough"});
  auto fd = connect_tcp("127.0.0.1", pt.port());
  CHECK(closed_silently(fd.get(), 20s));
}

TEST_CASE("BIND and UDP ASSOCIATE get 0x07; the backend never sees them") {
  NEED_ENV("danted");
  TempDir dir("socks-it");
  Dante dante(dir);
  Relay relay(dir, {dante.endpoint()});
  CHECK(connect_via(relay.port(), ipv4_request("93.184.216.34", 80, 2)).reply == 7);
  CHECK(connect_via(relay.port(), ipv4_request("0.0.0.0", 0, 3)).reply == 7);
  CHECK(connect_via(relay.port(), name_request("example.com", 80, 2)).reply == 7);
  CHECK(relay.log().find("socks5.unsupported_command") != std::string::npos);
}

TEST_CASE("policy-denied destinations get 0x02 before any backend sees them") {
  NEED_ENV("curl", "danted");
  TempDir dir("socks-it");
  HttpServer http;
  Dante dante(dir);
  Relay relay(dir, {dante.endpoint()}, "deny = *.blocked.example\n");
  for (const char* url :
       {"http://169.254.169.254/computeMetadata/v1/", "http://10.0.0.1/", "http://192.168.1.1/", "http://[::1]:80/",
        "http://[fe80::1]/", "http://100.64.0.1/", "http://localhost/", "http://a.blocked.example/"}) {
    INFO(url);
    auto r = curl(relay.proxy(), url);
    CHECK(r.exit_code == 97);
    CHECK(r.err.find("(2)") != std::string::npos);
  }
  CHECK(connect_via(relay.port(), name_request("metadata.google.internal.blocked.example", 80)).reply == 2);
  // Numeric names a resolver would read as 169.254.169.254 (curl would normalise them
  // before sending, a hostile client does not).
  for (const char* disguised : {"0xa9fea9fe", "169.254.43518", "0251.0376.0251.0376", "2852039166."})
    CHECK(connect_via(relay.port(), name_request(disguised, 80)).reply == 2);
  // The allowed loopback destination still works.
  check_hello(curl(relay.proxy(), http.url("/hello")));
}

TEST_CASE("client credentials (RFC 1929) checked against curl; backend credentials to microsocks") {
  NEED_ENV("curl", "microsocks");
  TempDir dir("socks-it");
  HttpServer http;
  Microsocks ms(dir, 0, {"-u", "exit", "-P", "exitpw"});
  Relay relay(dir, {ms.endpoint()},
              "client_auth = password\nclient_credential = alice:s3cret\n"
              "backend_auth = password\nbackend_credential = exit:exitpw\n");
  auto ok = run(
      {"curl", "-sS", "--max-time", "30", "--proxy", "socks5h://alice:s3cret@" + relay.proxy(), http.url("/hello")});
  check_hello(ok);
  auto bad = run(
      {"curl", "-sS", "--max-time", "30", "--proxy", "socks5h://alice:wrong@" + relay.proxy(), http.url("/hello")});
  CHECK(bad.exit_code == 97);
  CHECK(relay.log().find("s3cret") == std::string::npos);
  CHECK(relay.log().find("exitpw") == std::string::npos);
}

TEST_CASE("connection cap: over the cap, reply 0x01 at once") {
  NEED_ENV("curl", "danted");
  TempDir dir("socks-it");
  HttpServer http;
  Dante dante(dir);
  Relay relay(dir, {dante.endpoint()}, "", {"--max-connections", "2"});
  // Two tunnels held open (the HTTP server waits for a request that does not come).
  auto a = connect_via(relay.port(), ipv4_request("127.0.0.1", http.port()));
  auto b = connect_via(relay.port(), ipv4_request("127.0.0.1", http.port()));
  REQUIRE(a.reply == 0);
  REQUIRE(b.reply == 0);
  auto over = curl(relay.proxy(), http.url("/hello"));
  CHECK(over.exit_code == 97);
  CHECK(over.err.find("(1)") != std::string::npos);
  a.fd.reset();
  bool freed = false;
  for (int i = 0; i < 100 && !freed; ++i) {
    auto r = curl(relay.proxy(), http.url("/hello"));
    freed = r.exit_code == 0;
    if (!freed) std::this_thread::sleep_for(50ms);
  }
  CHECK(freed);
}

TEST_CASE("a slow reader with 64 MiB in flight: the relay's memory stays bounded") {
  NEED_ENV("danted");
  TempDir dir("socks-it");
  HttpServer http;
  Dante dante(dir);
  Relay relay(dir, {dante.endpoint()});
  long base = relay.rss_kb();
  const std::size_t total = 64u << 20;
  auto c = connect_via(relay.port(), ipv4_request("127.0.0.1", http.port()));
  REQUIRE(c.reply == 0);
  std::string req = "GET /bytes/" + std::to_string(total) + " HTTP/1.0\r\n\r\n";
  REQUIRE(write_all(c.fd.get(), req.data(), req.size()));
  // Read nothing for a while: the server keeps pushing, everything in between fills up.
  long peak = base;
  for (int i = 0; i < 30; ++i) {
    std::this_thread::sleep_for(100ms);
    peak = std::max(peak, relay.rss_kb());
  }
  // Then read slowly, sampling as we go, and check every byte.
  std::string body;
  std::string head;
  std::vector<char> buf(256 * 1024);
  std::size_t got = 0;
  bool intact = true;
  std::size_t header_len = 0;
  for (int i = 0;; ++i) {
    pollfd p{c.fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 30000) <= 0) break;
    ssize_t n = ::read(c.fd.get(), buf.data(), buf.size());
    if (n <= 0) break;
    std::size_t off = 0;
    if (header_len == 0) {
      head.append(buf.data(), static_cast<std::size_t>(n));
      auto e = head.find("\r\n\r\n");
      if (e == std::string::npos) continue;
      header_len = e + 4;
      off = static_cast<std::size_t>(n) - (head.size() - header_len);
    }
    for (std::size_t k = off; k < static_cast<std::size_t>(n); ++k, ++got)
      intact &= static_cast<std::uint8_t>(buf[k]) == pattern(got);
    if (i % 64 == 0) peak = std::max(peak, relay.rss_kb());
  }
  CHECK(got == total);
  CHECK(intact);
  INFO("relay RSS: " << base << " kB at start, " << peak << " kB peak with 64 MiB in flight");
  CHECK(peak - base < 8 * 1024);
  CHECK(peak < 16 * 1024);
}

TEST_CASE("failover: a backend dies between connections, clients see nothing") {
  NEED_ENV("curl", "danted", "microsocks");
  TempDir dir("socks-it");
  HttpServer http;
  auto first = std::make_unique<Microsocks>(dir);
  Dante second(dir);
  auto first_ep = first->endpoint();
  Relay relay(dir, {first_ep, second.endpoint()}, "health_interval = 60s\n");
  check_hello(curl(relay.proxy(), http.url("/hello")));
  first->proc().stop(0ms);  // SIGKILL: no goodbye
  first.reset();
  // The health check will not run for a minute: the relay finds out on this request.
  for (int i = 0; i < 3; ++i) check_hello(curl(relay.proxy(), http.url("/hello")));
  CHECK(relay.wait_log("backend " + first_ep + " down"));
  // Round-robin over two live backends: both get used.
  Microsocks a(dir), b(dir);
  Relay rr(dir, {a.endpoint(), b.endpoint()}, "balance = round-robin\n");
  for (int i = 0; i < 4; ++i) check_hello(curl(rr.proxy(), http.url("/hello")));
}

TEST_CASE("SIGTERM drains: running transfers finish, new clients are refused, exit 0") {
  NEED_ENV("curl", "danted");
  TempDir dir("socks-it");
  HttpServer http;
  Dante dante(dir);
  Relay relay(dir, {dante.endpoint()}, "drain_timeout = 30s\n");
  SpawnOptions o;
  o.stdout_path = dir.file("slow.out");
  o.stderr_path = dir.file("slow.err");
  auto slow = Subprocess::spawn({"curl", "-sS", "--max-time", "60", "--socks5-hostname", relay.proxy(),
                                 http.url("/trickle/2000000/3000"), "-o", dir.file("slow.body")},
                                o);
  for (int i = 0; i < 500 && http.requests() == 0; ++i) std::this_thread::sleep_for(20ms);
  REQUIRE(http.requests() == 1);
  std::this_thread::sleep_for(300ms);
  relay.proc().signal(SIGTERM);
  REQUIRE(relay.wait_log("SIGTERM: draining 1 connections"));
  CHECK_FALSE(connect_tcp("127.0.0.1", relay.port()).valid());  // listener closed
  auto st = slow.wait(60s);
  REQUIRE(st);
  CHECK(WEXITSTATUS(*st) == 0);
  auto body = read_file(dir.file("slow.body"));
  CHECK(body.size() == 2000000);
  CHECK(is_pattern(body));
  auto rs = relay.proc().wait(20s);
  REQUIRE(rs);
  CHECK(WIFEXITED(*rs));
  CHECK(WEXITSTATUS(*rs) == 0);
  CHECK(relay.log().find("drain_forced=0") != std::string::npos);
}

TEST_CASE("SIGTERM drain deadline: what is left is closed, still exit 0") {
  NEED_ENV("danted");
  TempDir dir("socks-it");
  HttpServer http;
  Dante dante(dir);
  Relay relay(dir, {dante.endpoint()}, "drain_timeout = 1s\n");
  auto c = connect_via(relay.port(), ipv4_request("127.0.0.1", http.port()));
  REQUIRE(c.reply == 0);
  auto t0 = std::chrono::steady_clock::now();
  relay.proc().signal(SIGTERM);
  auto rs = relay.proc().wait(20s);
  REQUIRE(rs);
  CHECK(WEXITSTATUS(*rs) == 0);
  CHECK(std::chrono::steady_clock::now() - t0 >= 900ms);
  CHECK(relay.log().find("drain_forced=1") != std::string::npos);
}

// ---- TLS to the backend: stunnel4 in front of dante / microsocks --------------------

namespace {

std::string sh(const std::string& cmd) {
  auto r = run({"bash", "-o", "pipefail", "-c", cmd}, 60s);
  INFO(cmd << "\n" << r.err);
  REQUIRE(r.exit_code == 0);
  return r.out;
}

// Test certificates made with the openssl CLI: a CA, a server certificate it signed
// for exit.torgw.test, a client certificate it signed, and a self-signed one that
// expired yesterday (python3-cryptography: openssl 3.0's CLI cannot back-date).
struct Pki {
  explicit Pki(const TempDir& d) : dir(d.path()) {
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    sh("cd " + dir + " && openssl req -x509 " + ec +
       " -keyout ca.key -out ca.pem -days 30 -subj /CN=torgw-test-ca 2>/dev/null"
       " && printf 'subjectAltName=DNS:exit.torgw.test\\n' > san.ext"
       " && openssl req " +
       ec +
       " -keyout server.key -out server.csr -subj /CN=exit.torgw.test 2>/dev/null"
       " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile san.ext -out "
       "server.pem 2>/dev/null"
       " && openssl req " +
       ec +
       " -keyout client.key -out client.csr -subj /CN=gateway 2>/dev/null"
       " && openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -out client.pem "
       "2>/dev/null");
    sh("cd " + dir +
       " && python3 -c '\n"
       "import datetime\n"
       "from cryptography import x509\n"
       "from cryptography.x509.oid import NameOID\n"
       "from cryptography.hazmat.primitives import hashes, serialization\n"
       "from cryptography.hazmat.primitives.asymmetric import ec\n"
       "k = ec.generate_private_key(ec.SECP256R1())\n"
       "n = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, \"expired.torgw.test\")])\n"
       "now = datetime.datetime.utcnow()\n"
       "c = (x509.CertificateBuilder().subject_name(n).issuer_name(n).public_key(k.public_key())\n"
       "     .serial_number(7).not_valid_before(now - datetime.timedelta(days=30))\n"
       "     .not_valid_after(now - datetime.timedelta(days=1)).sign(k, hashes.SHA256()))\n"
       "open(\"expired.pem\", \"wb\").write(c.public_bytes(serialization.Encoding.PEM))\n"
       "open(\"expired.key\", \"wb\").write(k.private_bytes(serialization.Encoding.PEM,\n"
       "    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))\n'");
  }
  std::string file(const std::string& name) const { return dir + "/" + name; }
  // curl's pin of a certificate's key, computed by the openssl CLI (not by our code).
  std::string pin(const std::string& cert) const {
    auto b64 = sh("openssl x509 -in " + file(cert + ".pem") +
                  " -pubkey -noout | openssl pkey -pubin -outform der"
                  " | openssl dgst -sha256 -binary | base64");
    return "sha256//" + b64.substr(0, b64.find('\n'));
  }
  std::string b64(const std::string& name) const { return to_base64(as_bytes(read_file(file(name)))); }
  std::string dir;
};

// stunnel4 as the exit side's TLS terminator: accepts TLS 1.3 on 127.0.0.1:port and
// forwards the plaintext to `target`.
class Stunnel {
 public:
  Stunnel(const TempDir& dir, const Pki& pki, const std::string& target, const std::string& cert = "server",
          bool require_client_cert = false)
      : port_(free_tcp_port()) {
    std::string conf = dir.file("stunnel-" + std::to_string(port_) + ".conf");
    std::string text = "foreground = yes\npid =\ndebug = notice\n[exit]\naccept = 127.0.0.1:" + std::to_string(port_) +
                       "\nconnect = " + target + "\ncert = " + pki.file(cert + ".pem") +
                       "\nkey = " + pki.file(cert + ".key") + "\nsslVersionMin = TLSv1.3\n";
    if (require_client_cert) text += "CAfile = " + pki.file("ca.pem") + "\nverifyChain = yes\nrequireCert = yes\n";
    write_file(conf, text);
    SpawnOptions o;
    o.stdout_path = dir.file("stunnel-" + std::to_string(port_) + ".log");
    proc_ = Subprocess::spawn({find_program("stunnel4"), conf}, o);
    REQUIRE(wait_for_tcp("127.0.0.1", port_, 20s));
  }
  std::string backend() const { return "tls://127.0.0.1:" + std::to_string(port_); }
  std::uint16_t port() const { return port_; }
  Subprocess& proc() { return proc_; }

 private:
  std::uint16_t port_;
  Subprocess proc_;
};

// A TCP tee on loopback: forwards one listen port to a target and keeps every byte that
// crosses it, both ways (what an observer of the network between the providers sees).
class Tee {
 public:
  explicit Tee(std::uint16_t target) : target_(target) {
    lfd_ = listen_loopback(&port_);
    thread_ = std::thread([this] { loop(); });
  }
  ~Tee() {
    stop_ = true;
    thread_.join();
    for (auto& t : pumps_) t.join();
  }
  std::uint16_t port() const { return port_; }
  std::string captured() {
    std::lock_guard lk(m_);
    return bytes_;
  }

 private:
  void loop() {
    while (!stop_) {
      pollfd p{lfd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int in = ::accept4(lfd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (in < 0) continue;
      UniqueFd out = connect_tcp("127.0.0.1", target_);
      if (!out) {
        ::close(in);
        continue;
      }
      int o = out.release();
      pumps_.emplace_back([this, in, o] { pump(in, o); });
    }
  }
  void pump(int a, int b) {
    UniqueFd fa(a), fb(b);
    char buf[16384];
    bool open[2] = {true, true};
    while (!stop_ && (open[0] || open[1])) {
      pollfd p[2] = {{a, static_cast<short>(open[0] ? POLLIN : 0), 0},
                     {b, static_cast<short>(open[1] ? POLLIN : 0), 0}};
      if (::poll(p, 2, 50) <= 0) continue;
      for (int k = 0; k < 2; ++k) {
        if (!open[k] || !(p[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        int from = k == 0 ? a : b, to = k == 0 ? b : a;
        ssize_t n = ::read(from, buf, sizeof buf);
        if (n <= 0) {
          open[k] = false;
          ::shutdown(to, SHUT_WR);
          continue;
        }
        {
          std::lock_guard lk(m_);
          bytes_.append(buf, static_cast<std::size_t>(n));
        }
        if (!write_all(to, buf, static_cast<std::size_t>(n))) open[k] = false;
      }
    }
  }
  std::uint16_t target_;
  std::uint16_t port_ = 0;
  UniqueFd lfd_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<std::thread> pumps_;
  std::mutex m_;
  std::string bytes_;
};

std::string tls_pin_conf(const std::string& pin) { return "backend_tls_pin = " + pin + "\n"; }

// A refusal the client sees as a SOCKS5 reply code (curl: "(N)"), and its log line.
void check_refused(const Relay& relay, const RunResult& r, int reply, const std::string& reason) {
  INFO("curl stderr: " << r.err << "\nrelay log:\n" << relay.log());
  CHECK(r.exit_code == 97);
  CHECK(r.err.find("(" + std::to_string(reply) + ")") != std::string::npos);
  CHECK(relay.wait_log("TLS failed: " + reason));
}

}  // namespace

TEST_CASE("tls: pinned stunnel in front of dante; wrong pin, plaintext peer and expiry are typed refusals") {
  NEED_ENV("curl", "danted", "stunnel4", "openssl", "python3");
  Peers peers;
  auto& [dir, http, dante, ms] = peers;
  Pki pki(dir);
  Stunnel tunnel(dir, pki, dante.endpoint());
  {
    Relay relay(dir, {tunnel.backend()}, tls_pin_conf(pki.pin("server")) + "health_interval = 200ms\n");
    CHECK(relay.wait_log("backend " + tunnel.backend() + " up"));
    // The pipelining probe runs over TLS too (dante behind stunnel reads it).
    CHECK(relay.wait_log(tunnel.backend() + " reads pipelined"));
    check_hello(curl(relay.proxy(), http.url("/hello")));
    auto big = curl(relay.proxy(), http.url("/bytes/20000000"));
    CHECK(big.exit_code == 0);
    CHECK(big.out.size() == 20000000);
    CHECK(is_pattern(big.out));
    // The marker says how the hop is protected and who encrypts: kTLS needs the
    // kernel's tls module (CONFIG_TLS), user space otherwise.
    CHECK(relay.wait_log("TORGW BACKEND_TLS=pinned:"));
    auto log = relay.log();
    bool ktls = log.find("BACKEND_TLS=pinned:ktls") != std::string::npos;
    WARN("TLS path on this host: " << (ktls ? "kernel TLS" : "user space (no kernel tls module)"));
    CHECK((ktls || log.find("BACKEND_TLS=pinned:userspace") != std::string::npos));
    // Later tunnels resume the TLS session the first one got a ticket for.
    check_hello(curl(relay.proxy(), http.url("/hello")));
    relay.proc().signal(SIGUSR1);
    REQUIRE(relay.wait_log("stats (SIGUSR1)"));
    auto stats = relay.log().substr(relay.log().find("stats (SIGUSR1)"));
    auto at = stats.find("backend_tls_resumed=");
    REQUIRE(at != std::string::npos);
    CHECK(std::stoi(stats.substr(at + 20)) >= 1);
  }
  {
    // A pin for some other key: reply 0x05, the key the backend showed is logged.
    Relay relay(dir, {tunnel.backend()}, tls_pin_conf(pki.pin("client")));
    check_refused(relay, curl(relay.proxy(), http.url("/hello")), 5, "tls.pin_mismatch");
    CHECK(relay.log().find(pki.pin("server") + " is not pinned") != std::string::npos);
  }
  {
    // Several pins (rotation): any one matching is enough.
    Relay relay(dir, {tunnel.backend()}, "backend_tls_pin = " + pki.pin("client") + ";" + pki.pin("server") + "\n");
    check_hello(curl(relay.proxy(), http.url("/hello")));
  }
  {
    // A plaintext SOCKS5 server configured as tls://: reply 0x01, never a hang.
    Relay relay(dir, {"tls://" + dante.endpoint()}, tls_pin_conf(pki.pin("server")));
    check_refused(relay, curl(relay.proxy(), http.url("/hello")), 1, "tls.plaintext_peer");
  }
  {
    // The right key in an expired certificate: reply 0x05.
    Stunnel expired(dir, pki, dante.endpoint(), "expired");
    Relay relay(dir, {expired.backend()}, tls_pin_conf(pki.pin("expired")));
    check_refused(relay, curl(relay.proxy(), http.url("/hello")), 5, "tls.cert_expired");
  }
  {
    // A silent peer (accepts, never answers the ClientHello): the handshake deadline.
    std::uint16_t silent_port = 0;
    UniqueFd silent = listen_loopback(&silent_port);
    Relay relay(dir, {"tls://127.0.0.1:" + std::to_string(silent_port)},
                tls_pin_conf(pki.pin("server")) + "connect_timeout = 1s\nhealth_check = none\n");
    auto r = curl(relay.proxy(), http.url("/hello"));
    INFO(r.err << relay.log());
    CHECK(r.exit_code == 97);
    CHECK(r.err.find("(4)") != std::string::npos);
    CHECK(relay.wait_log("TLS handshake timed out"));
  }
  CHECK(http.requests() == 4);  // hello, bytes, hello, the rotation's hello: no refusal reached it
}

TEST_CASE("tls: CA mode checks the name (SNI); mutual TLS needs the client certificate") {
  NEED_ENV("curl", "danted", "stunnel4", "openssl", "python3");
  Peers peers;
  auto& [dir, http, dante, ms] = peers;
  Pki pki(dir);
  Stunnel tunnel(dir, pki, dante.endpoint());
  const std::string ca = "backend_tls_ca = " + pki.b64("ca.pem") + "\n";
  {
    Relay relay(dir, {tunnel.backend()}, ca + "backend_tls_sni = exit.torgw.test\n");
    check_hello(curl(relay.proxy(), http.url("/hello")));
    CHECK(relay.wait_log("TORGW BACKEND_TLS=ca:"));
  }
  {
    Relay relay(dir, {tunnel.backend()}, ca + "backend_tls_sni = wrong.torgw.test\n");
    check_refused(relay, curl(relay.proxy(), http.url("/hello")), 5, "tls.name_mismatch");
  }
  {
    // No SNI: the name checked is the backend's address, which the certificate does not carry.
    Relay relay(dir, {tunnel.backend()}, ca);
    check_refused(relay, curl(relay.proxy(), http.url("/hello")), 5, "tls.name_mismatch");
  }
  {
    // A CA that did not sign the server's certificate.
    Relay relay(dir, {tunnel.backend()},
                "backend_tls_ca = " + pki.b64("expired.pem") + "\nbackend_tls_sni = exit.torgw.test\n");
    check_refused(relay, curl(relay.proxy(), http.url("/hello")), 5, "tls.cert_untrusted");
  }
  Stunnel mutual(dir, pki, dante.endpoint(), "server", true);
  const std::string pin = tls_pin_conf(pki.pin("server"));
  {
    Relay relay(
        dir, {mutual.backend()},
        pin + "backend_tls_cert = " + pki.b64("client.pem") + "\nbackend_tls_key = " + pki.b64("client.key") + "\n");
    check_hello(curl(relay.proxy(), http.url("/hello")));
    // The key never reaches the log, nor --check's dump.
    auto key_pem = read_file(pki.file("client.key"));
    auto body = key_pem.substr(key_pem.find('\n') + 1, 40);
    CHECK(relay.log().find(body) == std::string::npos);
    CHECK(relay.log().find(pki.b64("client.key").substr(0, 40)) == std::string::npos);
  }
  {
    Relay relay(dir, {mutual.backend()}, pin);
    check_refused(relay, curl(relay.proxy(), http.url("/hello")), 1, "tls.handshake_failed");
  }
}

TEST_CASE("tls: failover from a dead TLS backend to a live one, mixed with plain") {
  NEED_ENV("curl", "danted", "microsocks", "stunnel4", "openssl", "python3");
  Peers peers;
  auto& [dir, http, dante, ms] = peers;
  Pki pki(dir);
  auto first = std::make_unique<Stunnel>(dir, pki, dante.endpoint());
  Stunnel second(dir, pki, ms.endpoint());
  auto first_ep = first->backend();
  Relay relay(dir, {first_ep, second.backend(), ms.endpoint()},
              tls_pin_conf(pki.pin("server")) + "health_interval = 60s\n");
  check_hello(curl(relay.proxy(), http.url("/hello")));
  first->proc().stop(0ms);
  first.reset();
  for (int i = 0; i < 3; ++i) check_hello(curl(relay.proxy(), http.url("/hello")));
  CHECK(relay.wait_log("backend " + first_ep + " down"));
  // The plain backend still works beside the TLS ones.
  Relay plain_first(dir, {ms.endpoint(), second.backend()}, tls_pin_conf(pki.pin("server")));
  check_hello(curl(plain_first.proxy(), http.url("/hello")));
}

TEST_CASE("tls: the wire to the terminator shows neither the destination name nor the backend password") {
  NEED_ENV("curl", "microsocks", "stunnel4", "openssl", "python3");
  TempDir dir("socks-it");
  Pki pki(dir);
  const std::string name = "very-secret-destination.example";
  const std::string password = "backend-pw-4f9a1c";
  Microsocks ms(dir, 0, {"-u", "exit", "-P", password});
  const std::string auth = "backend_auth = password\nbackend_credential = exit:" + password + "\nhealth_check = none\n";
  auto ask = [&](const Relay& relay) {
    // The exit cannot resolve the name here; the request crosses the wire all the same.
    return connect_via(relay.port(), name_request(name, 80));
  };
  {
    // The control: the same tee in front of the plaintext backend sees both.
    Tee tee(ms.port());
    Relay relay(dir, {"127.0.0.1:" + std::to_string(tee.port())}, auth);
    (void)ask(relay);
    auto wire = tee.captured();
    CHECK(wire.find(name) != std::string::npos);
    CHECK(wire.find(password) != std::string::npos);
  }
  Stunnel tunnel(dir, pki, ms.endpoint());
  Tee tee(tunnel.port());
  Relay relay(dir, {"tls://127.0.0.1:" + std::to_string(tee.port())}, tls_pin_conf(pki.pin("server")) + auth);
  auto c = ask(relay);
  CHECK(c.reply != 0);  // microsocks could not resolve it: it did get the request
  auto wire = tee.captured();
  INFO("captured " << wire.size() << " bytes");
  CHECK(wire.size() > 500);  // a TLS handshake and records went through the tee
  CHECK(wire.find(name) == std::string::npos);
  CHECK(wire.find(password) == std::string::npos);
  CHECK(relay.log().find(password) == std::string::npos);
}
