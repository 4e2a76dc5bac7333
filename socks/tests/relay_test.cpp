// The relay in-process: a Relay on its own thread, C++ SOCKS5 backends and clients on
// loopback. Every behaviour of the event loop that needs no external program: typed
// replies, failover, caps, backpressure, half-close, timeouts, drain, both modes.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "socks/relay.h"
#include "tests/socks/socks_client.h"
#include "tests/support/net.h"
#include "tests/support/result_matchers.h"
#include "tests/support/tempdir.h"

using namespace torgw;
using namespace torgw::socks;
using namespace torgw::testing;
using namespace torgw::testing::socks;
using namespace std::chrono_literals;
using torgw::testing::FailsWith;

namespace {

std::uint16_t bound_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

UniqueFd listen_any() { return listen_loopback(nullptr, 512); }

bool readable_within(int fd, std::chrono::milliseconds t) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(t.count())) > 0;
}

// What a fake backend does with each connection.
struct BackendScript {
  int reply = 0;                   // CONNECT reply code
  bool require_auth = false;       // insist on RFC 1929
  std::string user, pass;          // accepted credentials (require_auth)
  bool silent = false;             // accept, read, never answer
  bool close_on_greeting = false;  // close as soon as the greeting arrives
  std::string with_reply;          // bytes sent in the same write as the reply
  enum class After { Echo, Source, Hold } after = After::Echo;
  std::size_t source_bytes = 0;  // After::Source: send this many, then close
};

// A SOCKS5 server that is also the destination: after its reply it echoes, sources
// data or holds the connection. Records what it was asked.
class FakeBackend {
 public:
  explicit FakeBackend(BackendScript s = {})
      : script_(std::move(s)), lfd_(listen_any()), port_(bound_port(lfd_.get())) {
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~FakeBackend() { stop(); }
  void stop() {
    if (stopping_.exchange(true)) return;
    thread_.join();
    std::lock_guard lk(m_);
    for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
    for (auto& t : workers_) t.join();
    workers_.clear();
  }
  std::uint16_t port() const { return port_; }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> dests() {
    std::lock_guard lk(m_);
    return dests_;
  }
  std::vector<std::string> creds() {
    std::lock_guard lk(m_);
    return creds_;
  }
  int connections() const { return conns_.load(); }
  int pipelined() const { return pipelined_.load(); }
  std::size_t echoed() const { return echoed_.load(); }

 private:
  void accept_loop() {
    while (!stopping_) {
      if (!readable_within(lfd_.get(), 20ms)) continue;
      int fd = ::accept4(lfd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++conns_;
      std::lock_guard lk(m_);
      open_.push_back(fd);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  }
  bool rd(int fd, void* p, std::size_t n) { return read_exact(fd, p, n, 20s); }
  void serve(int fd) {
    UniqueFd own(fd);
    std::uint8_t h[2];
    if (!rd(fd, h, 2)) return;
    std::vector<std::uint8_t> methods(h[1]);
    if (!rd(fd, methods.data(), methods.size())) return;
    if (script_.close_on_greeting) return;
    if (script_.silent) {
      char buf[256];
      while (::read(fd, buf, sizeof buf) > 0) {
      }
      return;
    }
    // A request already waiting behind the greeting means the client pipelined.
    if (readable_within(fd, 0ms)) ++pipelined_;
    std::uint8_t want = script_.require_auth ? 2 : 0;
    bool offered = std::find(methods.begin(), methods.end(), want) != methods.end();
    std::uint8_t choice[2] = {5, static_cast<std::uint8_t>(offered ? want : 0xff)};
    write_all(fd, choice, 2);
    if (!offered) return;
    if (script_.require_auth) {
      std::uint8_t v[2];
      if (!rd(fd, v, 2)) return;
      std::string user(v[1], '\0');
      if (!rd(fd, user.data(), user.size())) return;
      std::uint8_t pl;
      if (!rd(fd, &pl, 1)) return;
      std::string pass(pl, '\0');
      if (!rd(fd, pass.data(), pass.size())) return;
      {
        std::lock_guard lk(m_);
        creds_.push_back(user + ":" + pass);
      }
      bool ok = script_.user.empty() || (user == script_.user && pass == script_.pass);
      std::uint8_t st[2] = {1, static_cast<std::uint8_t>(ok ? 0 : 1)};
      write_all(fd, st, 2);
      if (!ok) return;
    }
    std::uint8_t rq[4];
    if (!rd(fd, rq, 4)) return;
    std::string dest;
    if (rq[3] == 1) {
      std::uint8_t a[6];
      if (!rd(fd, a, 6)) return;
      char t[32];
      std::snprintf(t, sizeof t, "%d.%d.%d.%d:%d", a[0], a[1], a[2], a[3], a[4] << 8 | a[5]);
      dest = t;
      if (dest == "0.0.0.0:0") {  // like a real server: nothing listens there
        std::uint8_t rep[10] = {5, 5, 0, 1, 0, 0, 0, 0, 0, 0};
        write_all(fd, rep, sizeof rep);
        return;
      }
    } else if (rq[3] == 3) {
      std::uint8_t l;
      if (!rd(fd, &l, 1)) return;
      std::string name(l, '\0');
      std::uint8_t p[2];
      if (!rd(fd, name.data(), l) || !rd(fd, p, 2)) return;
      dest = name + ":" + std::to_string(p[0] << 8 | p[1]);
    } else if (rq[3] == 4) {
      std::uint8_t a[18];
      if (!rd(fd, a, 18)) return;
      dest = "v6";
    } else {
      std::uint8_t rep[10] = {5, 8, 0, 1, 0, 0, 0, 0, 0, 0};  // address type not supported
      write_all(fd, rep, sizeof rep);
      return;
    }
    {
      std::lock_guard lk(m_);
      dests_.push_back(dest);
    }
    std::string rep = std::string("\x05", 1) + static_cast<char>(script_.reply) +
                      std::string("\x00\x01\x0a\x00\x00\x07\x12\x34", 8);
    rep += script_.with_reply;
    write_all(fd, rep.data(), rep.size());
    if (script_.reply != 0) return;
    switch (script_.after) {
      case BackendScript::After::Echo: {
        char buf[65536];
        for (;;) {
          ssize_t n = ::read(fd, buf, sizeof buf);
          if (n <= 0) break;
          echoed_ += static_cast<std::size_t>(n);
          if (!write_all(fd, buf, static_cast<std::size_t>(n))) break;
        }
        break;
      }
      case BackendScript::After::Source: {
        std::vector<std::uint8_t> buf(65536);
        std::size_t left = script_.source_bytes;
        std::uint8_t x = 0;
        while (left > 0) {
          std::size_t n = std::min(left, buf.size());
          for (std::size_t i = 0; i < n; ++i) buf[i] = x++;  // checkable pattern
          if (!write_all(fd, buf.data(), n)) return;
          left -= n;
        }
        ::shutdown(fd, SHUT_WR);
        char c;
        while (::read(fd, &c, 1) > 0) {
        }
        break;
      }
      case BackendScript::After::Hold: {
        char buf[256];
        while (::read(fd, buf, sizeof buf) > 0) {
        }
        break;
      }
    }
  }

  BackendScript script_;
  UniqueFd lfd_;
  std::uint16_t port_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex m_;
  std::vector<std::thread> workers_;
  std::vector<int> open_;
  std::vector<std::string> dests_;
  std::vector<std::string> creds_;
  std::atomic<int> conns_{0};
  std::atomic<int> pipelined_{0};
  std::atomic<std::size_t> echoed_{0};
};

Config make_config(const std::string& extra, const std::vector<std::string>& backends) {
  std::string text = "stats_interval = 0\nlog_level = warn\n" + extra;
  for (const auto& b : backends) text += "backend = " + b + "\n";
  auto file = parse_config_text(text, "test");
  REQUIRE(file.ok());
  auto c = build_config(*file, {});
  if (!c) FAIL(c.error().to_string());
  Config cfg = std::move(*c);
  if (cfg.listen.kind == Endpoint::Kind::Tcp && extra.find("listen") == std::string::npos) cfg.listen.port = 0;
  return cfg;
}

class RunningRelay {
 public:
  explicit RunningRelay(Config cfg) {
    auto r = Relay::create(std::move(cfg), {});
    if (!r) FAIL(r.error().to_string());
    relay_ = std::move(*r);
    thread_ = std::thread([this] {
      auto st = relay_->run();
      ok_ = st.ok();
      done_ = true;
    });
  }
  ~RunningRelay() {
    if (thread_.joinable()) {
      relay_->request_stop();
      relay_->request_stop();
      thread_.join();
    }
  }
  std::uint16_t port() const {
    auto a = relay_->listen_address();
    return static_cast<std::uint16_t>(std::stoi(a.substr(a.rfind(':') + 1)));
  }
  Relay& relay() { return *relay_; }
  const Counters& ctr() const { return relay_->counters(); }
  bool wait_done(std::chrono::milliseconds t) {
    auto end = std::chrono::steady_clock::now() + t;
    while (!done_ && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(10ms);
    if (done_) thread_.join();
    return done_;
  }
  bool ok() const { return ok_; }

 private:
  std::unique_ptr<Relay> relay_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::atomic<bool> ok_{false};
};

template <class F>
bool eventually(F f, std::chrono::milliseconds t = 10s) {
  auto end = std::chrono::steady_clock::now() + t;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

std::uint64_t get(const std::atomic<std::uint64_t>& a) { return a.load(); }

}  // namespace

TEST_CASE("relay: CONNECT by name through a backend, echo both ways") {
  FakeBackend be;
  RunningRelay r(make_config("", {be.endpoint()}));
  auto c = connect_via(r.port(), name_request("example.com", 443));
  REQUIRE(c.reply == 0);
  CHECK(c.method == B({5, 0}));
  CHECK(echo_roundtrip(c.fd.get(), "hello through the relay"));
  CHECK(be.dests() == std::vector<std::string>{"example.com:443"});
  c.fd.reset();
  CHECK(eventually([&] { return get(r.ctr().closed) == 1; }));
  CHECK(get(r.ctr().established) == 1);
  CHECK(get(r.ctr().bytes_up) == 23);
  CHECK(get(r.ctr().bytes_down) == 23);
  CHECK(get(r.ctr().active) == 0);
}

TEST_CASE("relay: pipelined greeting + request + early data, and server-first data after the reply") {
  BackendScript s;
  s.with_reply = "BANNER";
  FakeBackend be(s);
  RunningRelay r(make_config("", {be.endpoint()}));
  auto fd = connect_tcp("127.0.0.1", r.port());
  Bytes all = B({5, 1, 0});
  auto rq = name_request("example.org", 80);
  all.insert(all.end(), rq.begin(), rq.end());
  std::string early = "EARLY";
  all.insert(all.end(), early.begin(), early.end());
  REQUIRE(write_all(fd.get(), all.data(), all.size()));
  std::uint8_t got[2 + 10 + 6 + 5];
  REQUIRE(read_exact(fd.get(), got, sizeof got, 10s));
  CHECK(Bytes(got, got + 2) == B({5, 0}));
  CHECK(Bytes(got + 2, got + 12) == B({5, 0, 0, 1, 0, 0, 0, 0, 0, 0}));  // backend's BND not disclosed
  CHECK(std::string(reinterpret_cast<char*>(got) + 12, 6) == "BANNER");
  CHECK(std::string(reinterpret_cast<char*>(got) + 18, 5) == "EARLY");  // echoed back
}

TEST_CASE("relay: typed replies for refused requests") {
  FakeBackend be;
  RunningRelay r(make_config("deny = *.blocked.example\n", {be.endpoint()}));
  auto reply_for = [&](const Bytes& rq) { return connect_via(r.port(), rq).reply; };
  SECTION("BIND and UDP ASSOCIATE: 0x07") {
    CHECK(reply_for(B({5, 2, 0, 1, 1, 2, 3, 4, 0, 80})) == 7);
    CHECK(reply_for(B({5, 3, 0, 1, 0, 0, 0, 0, 0, 0})) == 7);
    CHECK(reply_for(B({5, 9, 0, 1, 1, 2, 3, 4, 0, 80})) == 7);
    CHECK(get(r.ctr().rejected_command) == 3);
  }
  SECTION("unknown address type: 0x08") {
    CHECK(reply_for(B({5, 1, 0, 2, 1, 2, 3, 4, 0, 80})) == 8);
    CHECK(get(r.ctr().rejected_atyp) == 1);
  }
  SECTION("policy: 0x02") {
    CHECK(reply_for(B({5, 1, 0, 1, 127, 0, 0, 1, 0, 80})) == 2);
    CHECK(reply_for(B({5, 1, 0, 1, 169, 254, 169, 254, 0, 80})) == 2);
    CHECK(reply_for(name_request("localhost", 22)) == 2);
    CHECK(reply_for(name_request("0x7f.1", 22)) == 2);
    CHECK(reply_for(name_request("a.blocked.example", 443)) == 2);
    CHECK(get(r.ctr().rejected_policy) == 5);
  }
  SECTION("invalid hostname: 0x01") {
    CHECK(reply_for(name_request("bad host", 80)) == 1);
    CHECK(get(r.ctr().rejected_hostname) == 1);
  }
  // None of these reached the backend.
  CHECK(be.connections() <= 1);  // the health check
  CHECK(be.dests().empty());
}

TEST_CASE("relay: malformed clients are closed without a reply; no acceptable method gets 0xFF") {
  FakeBackend be;
  RunningRelay r(make_config("", {be.endpoint()}));
  for (const Bytes& junk : {B({4, 1, 0, 80, 1, 2, 3, 4, 0}), B({'G', 'E', 'T', ' ', '/'}), B({0x16, 3, 1, 0, 0x40})}) {
    auto fd = connect_tcp("127.0.0.1", r.port());
    REQUIRE(write_all(fd.get(), junk.data(), junk.size()));
    CHECK(closed_silently(fd.get()));
  }
  {
    auto fd = connect_tcp("127.0.0.1", r.port());
    Bytes g = B({5, 1, 0});
    Bytes bad = B({5, 1, 7, 1, 1, 2, 3, 4, 0, 80});  // reserved byte set
    write_all(fd.get(), g.data(), g.size());
    write_all(fd.get(), bad.data(), bad.size());
    CHECK(read_until_eof(fd.get(), 10s) == std::string("\x05\x00", 2));
  }
  auto c = connect_via(r.port(), {}, B({5, 1, 2}));
  CHECK(c.method == B({5, 0xff}));
  CHECK(eventually([&] { return get(r.ctr().malformed) == 4; }));
  CHECK(get(r.ctr().rejected_auth) == 1);
}

TEST_CASE("relay: the backend's own failure code reaches the client") {
  for (int code : {1, 2, 3, 4, 5, 6}) {
    BackendScript s;
    s.reply = code;
    FakeBackend be(s);
    RunningRelay r(make_config("", {be.endpoint()}));
    CHECK(connect_via(r.port(), name_request("example.com", 80)).reply == code);
    CHECK(get(r.ctr().backend_replied_error) == 1);
  }
}

TEST_CASE("relay: backend down or mute gives a typed reply") {
  SECTION("refused: 0x05") {
    std::uint16_t dead = free_tcp_port();
    RunningRelay r(make_config("health_check = none\n", {"127.0.0.1:" + std::to_string(dead)}));
    CHECK(connect_via(r.port(), name_request("example.com", 80)).reply == 5);
    CHECK(get(r.ctr().backend_failed) == 1);
  }
  SECTION("accepts but never answers the greeting: 0x04 after connect_timeout") {
    BackendScript s;
    s.silent = true;
    FakeBackend be(s);
    RunningRelay r(make_config("health_check = none\nconnect_timeout = 500ms\n", {be.endpoint()}));
    auto t0 = std::chrono::steady_clock::now();
    CHECK(connect_via(r.port(), name_request("example.com", 80)).reply == 4);
    CHECK(std::chrono::steady_clock::now() - t0 >= 400ms);
  }
  SECTION("closes during the negotiation: 0x01") {
    BackendScript s;
    s.close_on_greeting = true;
    FakeBackend be(s);
    RunningRelay r(make_config("health_check = none\n", {be.endpoint()}));
    CHECK(connect_via(r.port(), name_request("example.com", 80)).reply == 1);
  }
}

TEST_CASE("relay: failover between backends is invisible to clients") {
  FakeBackend good;
  std::uint16_t dead = free_tcp_port();
  RunningRelay r(make_config("health_check = none\n", {"127.0.0.1:" + std::to_string(dead), good.endpoint()}));
  for (int i = 0; i < 5; ++i) {
    auto c = connect_via(r.port(), name_request("example.com", 80));
    REQUIRE(c.reply == 0);
    CHECK(echo_roundtrip(c.fd.get(), "x"));
  }
  // Only the first connection paid for the dead backend: it is marked down after that.
  CHECK(get(r.ctr().failovers) == 1);
  CHECK(good.dests().size() == 5);
}

TEST_CASE("relay: a backend that dies between connections, then comes back") {
  auto a = std::make_unique<FakeBackend>();
  FakeBackend b;
  std::uint16_t a_port = a->port();
  RunningRelay r(make_config("health_interval = 200ms\n", {a->endpoint(), b.endpoint()}));
  CHECK(connect_via(r.port(), name_request("one.example", 80)).reply == 0);
  CHECK(a->dests().size() == 1);  // first-healthy: backend a
  a.reset();                      // dies
  for (int i = 0; i < 3; ++i) CHECK(connect_via(r.port(), name_request("two.example", 80)).reply == 0);
  CHECK(b.dests().size() == 3);
  (void)a_port;
}

TEST_CASE("relay: pipelining to the backend, learnt from the health check or configured") {
  SECTION("auto: a backend that answers the pipelined probe gets greeting + CONNECT together") {
    FakeBackend be;
    RunningRelay r(make_config("health_interval = 100ms\n", {be.endpoint()}));
    CHECK(eventually([&] { return be.pipelined() >= 1; }));  // the probe itself
    std::this_thread::sleep_for(300ms);
    int before = be.pipelined();
    auto c = connect_via(r.port(), name_request("example.com", 80));
    REQUIRE(c.reply == 0);
    CHECK(echo_roundtrip(c.fd.get(), "pipelined"));
    CHECK(be.pipelined() == before + 1);
    CHECK(be.dests() == std::vector<std::string>{"example.com:80"});
  }
  SECTION("no: never") {
    FakeBackend be;
    RunningRelay r(make_config("health_interval = 100ms\nbackend_pipelining = no\n", {be.endpoint()}));
    std::this_thread::sleep_for(400ms);
    REQUIRE(connect_via(r.port(), name_request("example.com", 80)).reply == 0);
    CHECK(be.pipelined() == 0);
  }
  SECTION("yes: from the first connection, and a refusal still fails over") {
    FakeBackend be;
    std::uint16_t dead = free_tcp_port();
    RunningRelay r(make_config("health_check = none\nbackend_pipelining = yes\n",
                               {"127.0.0.1:" + std::to_string(dead), be.endpoint()}));
    REQUIRE(connect_via(r.port(), name_request("example.com", 80)).reply == 0);
    CHECK(be.pipelined() == 1);
    CHECK(get(r.ctr().failovers) == 1);
  }
}

TEST_CASE("relay: round-robin spreads connections") {
  FakeBackend a, b, c;
  RunningRelay r(make_config("balance = round-robin\n", {a.endpoint(), b.endpoint(), c.endpoint()}));
  for (int i = 0; i < 9; ++i) REQUIRE(connect_via(r.port(), name_request("x.example", 80)).reply == 0);
  CHECK(a.dests().size() == 3);
  CHECK(b.dests().size() == 3);
  CHECK(c.dests().size() == 3);
}

TEST_CASE("relay: health checks mark a backend down before any client pays for it") {
  FakeBackend good;
  BackendScript s;
  s.close_on_greeting = true;  // accepts TCP, but is no SOCKS5 server
  FakeBackend broken(s);
  RunningRelay r(make_config("health_interval = 100ms\n", {broken.endpoint(), good.endpoint()}));
  std::this_thread::sleep_for(500ms);
  for (int i = 0; i < 3; ++i) CHECK(connect_via(r.port(), name_request("x.example", 80)).reply == 0);
  CHECK(get(r.ctr().failovers) == 0);
  CHECK(good.dests().size() == 3);
}

TEST_CASE("relay: client and backend authentication") {
  SECTION("client password checked; backend credentials presented") {
    BackendScript s;
    s.require_auth = true;
    s.user = "exit";
    s.pass = "exitpw";
    FakeBackend be(s);
    RunningRelay r(make_config("client_auth = password\nclient_credential = alice:s3cret\n"
                               "backend_auth = password\nbackend_credential = exit:exitpw\n",
                               {be.endpoint()}));
    Bytes good = B({1, 5, 'a', 'l', 'i', 'c', 'e', 6, 's', '3', 'c', 'r', 'e', 't'});
    auto c = connect_via(r.port(), name_request("example.com", 80), B({5, 2, 0, 2}), good);
    CHECK(c.method == B({5, 2}));
    CHECK(c.reply == 0);
    Bytes bad = B({1, 5, 'a', 'l', 'i', 'c', 'e', 6, 's', '3', 'c', 'r', 'e', 'T'});
    auto fd = connect_tcp("127.0.0.1", r.port());
    Bytes g = B({5, 1, 2});
    write_all(fd.get(), g.data(), g.size());
    write_all(fd.get(), bad.data(), bad.size());
    CHECK(read_until_eof(fd.get(), 10s) == std::string("\x05\x02\x01\x01", 4));
    CHECK(get(r.ctr().rejected_auth) == 1);
  }
  SECTION("isolation: the client's pair is forwarded as is") {
    BackendScript s;
    s.require_auth = true;
    FakeBackend be(s);
    RunningRelay r(
        make_config("client_auth = isolate\nbackend_auth = forward\nhealth_check = connect\n", {be.endpoint()}));
    Bytes tok = B({1, 4, 't', 'a', 'b', '1', 2, 'x', 'y'});
    CHECK(connect_via(r.port(), name_request("example.com", 80), B({5, 2, 0, 2}), tok).reply == 0);
    CHECK(be.creds() == std::vector<std::string>{"tab1:xy"});
  }
}

TEST_CASE("relay: connection cap") {
  FakeBackend be;
  RunningRelay r(make_config("max_connections = 2\n", {be.endpoint()}));
  auto a = connect_via(r.port(), name_request("a.example", 80));
  auto b = connect_via(r.port(), name_request("b.example", 80));
  REQUIRE(a.reply == 0);
  REQUIRE(b.reply == 0);
  auto over = connect_via(r.port(), name_request("c.example", 80));
  CHECK(over.method == B({5, 0}));
  CHECK(over.reply == 1);
  CHECK(get(r.ctr().rejected_cap) == 1);
  a.fd.reset();
  CHECK(eventually([&] { return get(r.ctr().active) == 1; }));
  CHECK(connect_via(r.port(), name_request("d.example", 80)).reply == 0);
}

TEST_CASE("relay: half-close travels, the other direction keeps flowing") {
  FakeBackend be;
  RunningRelay r(make_config("", {be.endpoint()}));
  auto c = connect_via(r.port(), name_request("example.com", 80));
  REQUIRE(c.reply == 0);
  std::string msg(100000, 'q');
  REQUIRE(write_all(c.fd.get(), msg.data(), msg.size()));
  ::shutdown(c.fd.get(), SHUT_WR);
  // The echo server sees EOF only after everything; it echoes it all, then closes.
  CHECK(read_until_eof(c.fd.get(), 20s) == msg);
}

TEST_CASE("relay: large transfers are intact, with and without splice") {
  // splice_min_bulk = 1 splices this one flow (the default copies a lone bulk flow).
  for (const char* extra : {"splice = yes\nsplice_min_bulk = 1\n", "splice = yes\n", "splice = no\n",
                            "splice = yes\nsplice_min_bulk = 1\nbuffer_size = 4k\npipe_size = 4k\n"}) {
    INFO(extra);
    FakeBackend be;
    RunningRelay r(make_config(extra, {be.endpoint()}));
    auto c = connect_via(r.port(), name_request("example.com", 80));
    REQUIRE(c.reply == 0);
    std::vector<std::uint8_t> data(8 << 20);
    std::mt19937 rng(42);
    for (auto& x : data) x = static_cast<std::uint8_t>(rng());
    std::thread writer([&] { write_all(c.fd.get(), data.data(), data.size()); });
    std::vector<std::uint8_t> back(data.size());
    bool ok = read_exact(c.fd.get(), back.data(), back.size(), 60s);
    writer.join();
    REQUIRE(ok);
    CHECK(back == data);
  }
}

TEST_CASE("relay: a client that stops reading stops the backend, not the relay's memory") {
  BackendScript s;
  s.after = BackendScript::After::Source;
  s.source_bytes = 64u << 20;
  FakeBackend be(s);
  RunningRelay r(make_config("", {be.endpoint()}));
  auto c = connect_via(r.port(), name_request("example.com", 80));
  REQUIRE(c.reply == 0);
  // Do not read. The relay moves what fits in the socket buffers, then stops.
  std::this_thread::sleep_for(1500ms);
  std::uint64_t moved = get(r.ctr().bytes_down);
  std::this_thread::sleep_for(500ms);
  CHECK(get(r.ctr().bytes_down) == moved);  // stalled, not buffering
  CHECK(moved < (32u << 20));
  // Now read everything; the pattern proves nothing was lost or reordered.
  std::vector<std::uint8_t> buf(1 << 20);
  std::size_t total = 0;
  std::uint8_t expect = 0;
  bool intact = true;
  for (;;) {
    if (!readable_within(c.fd.get(), 20000ms)) break;
    ssize_t n = ::read(c.fd.get(), buf.data(), buf.size());
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) intact &= buf[static_cast<std::size_t>(i)] == expect++;
    total += static_cast<std::size_t>(n);
  }
  CHECK(total == (64u << 20));
  CHECK(intact);
}

TEST_CASE("relay: handshake and idle timeouts") {
  FakeBackend be;
  RunningRelay r(make_config("handshake_timeout = 500ms\nidle_timeout = 700ms\n", {be.endpoint()}));
  auto silent = connect_tcp("127.0.0.1", r.port());
  auto t0 = std::chrono::steady_clock::now();
  CHECK(closed_silently(silent.get(), 10s));
  CHECK(std::chrono::steady_clock::now() - t0 >= 450ms);
  CHECK(get(r.ctr().handshake_timeout) == 1);
  auto c = connect_via(r.port(), name_request("example.com", 80));
  REQUIRE(c.reply == 0);
  CHECK(echo_roundtrip(c.fd.get(), "still alive"));
  CHECK(closed_silently(c.fd.get(), 10s));
  CHECK(get(r.ctr().idle_timeout) == 1);
}

TEST_CASE("relay: passthrough is an opaque pipe") {
  FakeBackend be;  // the client speaks SOCKS5 to the backend itself, through us
  RunningRelay r(make_config("mode = passthrough\n", {be.endpoint()}));
  auto c = connect_via(r.port(), name_request("example.com", 80));
  REQUIRE(c.reply == 0);
  CHECK(echo_roundtrip(c.fd.get(), std::string("\x00\x01 any bytes at all \xff", 20)));
  CHECK(be.dests() == std::vector<std::string>{"example.com:80"});
}

TEST_CASE("relay: passthrough with the backend down closes the client") {
  std::uint16_t dead = free_tcp_port();
  RunningRelay r(make_config("mode = passthrough\n", {"127.0.0.1:" + std::to_string(dead)}));
  auto fd = connect_tcp("127.0.0.1", r.port());
  CHECK(closed_silently(fd.get()));
  CHECK(eventually([&] { return get(r.ctr().backend_failed) == 1; }));
}

TEST_CASE("relay: unix socket listener") {
  TempDir dir("socks");
  FakeBackend be;
  RunningRelay r(make_config("listen = unix:" + dir.file("s.sock") + "\nunix_mode = 0600\n", {be.endpoint()}));
  CHECK(r.relay().listen_address() == "unix:" + dir.file("s.sock"));
  auto fd = connect_unix(dir.file("s.sock"));
  REQUIRE(fd.valid());
  Bytes g = B({5, 1, 0});
  auto rq = name_request("example.com", 80);
  write_all(fd.get(), g.data(), g.size());
  write_all(fd.get(), rq.data(), rq.size());
  std::uint8_t rep[12];
  REQUIRE(read_exact(fd.get(), rep, 12, 10s));
  CHECK(rep[3] == 0);
  CHECK(echo_roundtrip(fd.get(), "over unix"));
}

TEST_CASE("relay: drain lets tunnels finish, refuses new clients, then returns") {
  FakeBackend be;
  RunningRelay r(make_config("drain_timeout = 20s\n", {be.endpoint()}));
  auto port = r.port();
  auto c = connect_via(port, name_request("example.com", 80));
  REQUIRE(c.reply == 0);
  r.relay().request_stop();
  CHECK(eventually([&] { return !connect_tcp("127.0.0.1", port).valid(); }));
  CHECK(echo_roundtrip(c.fd.get(), "still served while draining"));
  CHECK_FALSE(r.wait_done(300ms));
  c.fd.reset();
  CHECK(r.wait_done(10s));
  CHECK(r.ok());
  CHECK(get(r.ctr().drain_forced) == 0);
}

TEST_CASE("relay: drain deadline closes what is left") {
  FakeBackend be;
  RunningRelay r(make_config("drain_timeout = 500ms\n", {be.endpoint()}));
  auto c = connect_via(r.port(), name_request("example.com", 80));
  REQUIRE(c.reply == 0);
  r.relay().request_stop();
  CHECK(r.wait_done(10s));
  CHECK(get(r.ctr().drain_forced) == 1);
  CHECK(read_until_eof(c.fd.get(), 5s).empty());
}

TEST_CASE("relay: many concurrent tunnels") {
  FakeBackend be;
  RunningRelay r(make_config("", {be.endpoint()}));
  std::vector<Client> cs;
  for (int i = 0; i < 200; ++i) {
    cs.push_back(connect_via(r.port(), name_request("h" + std::to_string(i) + ".example", 80)));
    REQUIRE(cs.back().reply == 0);
  }
  for (std::size_t i = 0; i < cs.size(); ++i) CHECK(echo_roundtrip(cs[i].fd.get(), "m" + std::to_string(i)));
  CHECK(get(r.ctr().relaying) == 200);
  cs.clear();
  CHECK(eventually([&] { return get(r.ctr().relaying) == 0; }));
}

TEST_CASE("relay: create() fails clearly") {
  auto cfg = make_config("", {"127.0.0.1:1"});
  cfg.max_connections = 1'000'000;
  auto r = Relay::create(std::move(cfg), {});
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r, FailsWith("relay.fd_limit"));
  auto busy = listen_any();
  auto cfg2 = make_config("", {"127.0.0.1:1"});
  cfg2.listen.port = bound_port(busy.get());
  auto r2 = Relay::create(std::move(cfg2), {});
  REQUIRE_FALSE(r2.ok());
  CHECK_THAT(r2, FailsWith("relay.bind"));
}
