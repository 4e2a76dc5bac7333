// The firewall's real rules, built and installed by the real code, in a real kernel:
//
//   app   (10.77.0.2/24, fd77::2/64, veth va)  <-->  world (10.77.0.1/24, fd77::1/64,
//          the table goes here                         169.254.169.254/32, veth vw)
//                                                      listeners: 9001 (a relay), 1080
//                                                      (the backend), 1081, 80 (metadata)
//
// Two namespaces, because within one every local address routes over lo, which the rules
// accept. Each probe is a forked child in `app` with the uid under test that connects,
// and on success exchanges bytes with the echo server (so replies pass the input chain).
// A refusal must be a refusal (ECONNREFUSED: the table's reset), not a timeout.
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

#include "common/fd.h"
#include "firewall/firewall.h"
#include "tests/support/process.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::firewall;
using torgw::testing::FailsWith;
namespace tt = torgw::testing;

namespace {

constexpr uid_t kTor = 100, kSocks = 101, kMeta = 102, kNobody = 65534;

Endpoint ep(const std::string& s) {
  auto r = parse_endpoint(s);
  REQUIRE(r);
  return *r;
}

enum class Outcome { connected, refused, timeout, error };

const char* name(Outcome o) {
  switch (o) {
    case Outcome::connected: return "connected";
    case Outcome::refused: return "refused";
    case Outcome::timeout: return "timeout";
    case Outcome::error: return "error";
  }
  return "?";
}

UniqueFd listener(int family, std::uint16_t port) {
  UniqueFd s(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1, zero = 0;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  a.sin6_addr = in6addr_any;
  ::setsockopt(s.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);  // v4 and v6
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(s.get(), 64) != 0) return {};
  return s;
}

struct Net {
  bool ok = false;
  std::string why;
  tt::Needs needs = tt::Needs::root;
  std::string ip, app, world;
  UniqueFd self_ns, app_ns, world_ns;
  std::vector<UniqueFd> listeners;
  UniqueFd app_listener;
  int stop_pipe[2] = {-1, -1};
  std::thread echo;
  std::optional<Installer> installer;

  Net() {
    if (::geteuid() != 0) {
      why = "network namespaces and uid switches need root";
      return;
    }
    ip = tt::find_program("ip");
    if (ip.empty()) {
      needs = tt::Needs::package;
      why = "iproute2's ip is not installed (scripts/setup)";
      return;
    }
    const std::string tag = std::to_string(::getpid());
    app = "torgw-fw-app-" + tag;
    world = "torgw-fw-world-" + tag;
    for (const auto& cmd : std::vector<std::vector<std::string>>{
             {ip, "netns", "add", app},
             {ip, "netns", "add", world},
             {ip, "link", "add", "va", "netns", app, "type", "veth", "peer", "name", "vw", "netns", world},
             {ip, "-n", app, "addr", "add", "10.77.0.2/24", "dev", "va"},
             {ip, "-n", app, "addr", "add", "fd77::2/64", "dev", "va", "nodad"},
             {ip, "-n", world, "addr", "add", "10.77.0.1/24", "dev", "vw"},
             {ip, "-n", world, "addr", "add", "fd77::1/64", "dev", "vw", "nodad"},
             {ip, "-n", world, "addr", "add", "169.254.169.254/32", "dev", "vw"},
             {ip, "-n", app, "link", "set", "lo", "up"},
             {ip, "-n", world, "link", "set", "lo", "up"},
             {ip, "-n", app, "link", "set", "va", "up"},
             {ip, "-n", world, "link", "set", "vw", "up"},
             {ip, "-n", app, "route", "add", "169.254.169.254/32", "via", "10.77.0.1"},
         }) {
      auto r = tt::run(cmd);
      if (r.exit_code != 0) {
        why = "setting up the namespaces failed: " + r.err;
        return;
      }
    }
    self_ns.reset(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
    app_ns.reset(::open(("/run/netns/" + app).c_str(), O_RDONLY | O_CLOEXEC));
    world_ns.reset(::open(("/run/netns/" + world).c_str(), O_RDONLY | O_CLOEXEC));
    if (!self_ns || !app_ns || !world_ns) {
      why = "cannot open the namespaces";
      return;
    }
    // Sockets keep the namespace they were made in: make them there, come back.
    REQUIRE(::setns(world_ns.get(), CLONE_NEWNET) == 0);
    for (std::uint16_t port : {9001, 1080, 1081, 80}) listeners.push_back(listener(AF_INET6, port));
    REQUIRE(::setns(app_ns.get(), CLONE_NEWNET) == 0);
    app_listener = listener(AF_INET6, 2222);
    REQUIRE(::setns(self_ns.get(), CLONE_NEWNET) == 0);
    for (auto& l : listeners) REQUIRE(l);
    REQUIRE(app_listener);
    REQUIRE(::pipe2(stop_pipe, O_CLOEXEC) == 0);
    echo = std::thread([this] { serve(); });
    ok = true;
  }

  ~Net() {
    if (echo.joinable()) {
      ::close(stop_pipe[1]);
      echo.join();
      ::close(stop_pipe[0]);
    }
    installer.reset();
    for (const auto& n : {app, world})
      if (!n.empty()) tt::run({ip, "netns", "del", n});
  }

  // Echo: read what comes within a second and send it back.
  void serve() {
    std::vector<pollfd> fds;
    for (auto& l : listeners) fds.push_back({l.get(), POLLIN, 0});
    fds.push_back({app_listener.get(), POLLIN, 0});
    fds.push_back({stop_pipe[0], POLLIN, 0});
    while (::poll(fds.data(), fds.size(), -1) >= 0) {
      if (fds.back().revents) return;
      for (std::size_t i = 0; i + 1 < fds.size(); ++i) {
        if (!(fds[i].revents & POLLIN)) continue;
        UniqueFd c(::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC));
        if (!c) continue;
        timeval tv{1, 0};
        ::setsockopt(c.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char buf[64];
        ssize_t n = ::read(c.get(), buf, sizeof buf);
        if (n > 0) (void)!::write(c.get(), buf, static_cast<std::size_t>(n));
      }
    }
  }

  Result<int> install(const Policy& p) {
    if (!installer) {
      REQUIRE(::setns(app_ns.get(), CLONE_NEWNET) == 0);
      auto i = Installer::open();
      REQUIRE(::setns(self_ns.get(), CLONE_NEWNET) == 0);
      if (!i) return i.error();
      installer.emplace(std::move(*i));
    }
    return installer->install(p);
  }

  // A child in `ns` as `uid` connects to `dst` and, once connected, must get its bytes
  // echoed back.
  Outcome probe(int ns, uid_t uid, const std::string& dst, int timeout_ms = 2000) {
    Endpoint e = ep(dst);
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      auto out = [&](Outcome o) {
        (void)!::write(fds[1], &o, sizeof o);
        ::_exit(0);
      };
      if (::setns(ns, CLONE_NEWNET) != 0 || ::setgroups(0, nullptr) != 0 || ::setresgid(uid, uid, uid) != 0 ||
          ::setresuid(uid, uid, uid) != 0)
        out(Outcome::error);
      int s = ::socket(e.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      sockaddr_storage ss;
      socklen_t sl = e.to_sockaddr(ss);
      int err = 0;
      if (::connect(s, reinterpret_cast<sockaddr*>(&ss), sl) != 0) {
        if (errno != EINPROGRESS) err = errno;
        else {
          pollfd p{s, POLLOUT, 0};
          if (::poll(&p, 1, timeout_ms) == 0) out(Outcome::timeout);
          socklen_t el = sizeof err;
          ::getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el);
        }
      }
      if (err == ECONNREFUSED) out(Outcome::refused);
      if (err != 0) out(Outcome::error);
      if (::write(s, "torgw", 5) != 5) out(Outcome::error);
      pollfd p{s, POLLIN, 0};
      char buf[8] = {};
      if (::poll(&p, 1, timeout_ms) != 1 || ::read(s, buf, sizeof buf) != 5 || std::memcmp(buf, "torgw", 5) != 0)
        out(Outcome::error);
      out(Outcome::connected);
    }
    ::close(fds[1]);
    Outcome o = Outcome::error;
    if (::read(fds[0], &o, sizeof o) != sizeof o) o = Outcome::error;
    ::close(fds[0]);
    int st;
    ::waitpid(pid, &st, 0);
    return o;
  }
  Outcome from_app(uid_t uid, const std::string& dst) { return probe(app_ns.get(), uid, dst); }
};

Net& net() {
  static Net n;
  return n;
}

#define NEED_NET()                                     \
  do {                                                 \
    if (!net().ok) TORGW_SKIP(net().needs, net().why); \
  } while (0)

Policy services(uid_t metadata_uid) {
  Policy p;
  p.phase = Phase::services;
  p.tor_uid = kTor;
  p.socks_uid = kSocks;
  p.metadata_uid = metadata_uid;
  p.backends = {ep("10.77.0.1:1080"), ep("[fd77::1]:1080")};
  p.metadata = ep("169.254.169.254:80");
  return p;
}

struct Row {
  uid_t uid;
  std::string dst;
  Outcome want;
};

void check_matrix(const std::vector<Row>& rows) {
  for (const auto& r : rows) {
    auto got = net().from_app(r.uid, r.dst);
    INFO("uid " << r.uid << " -> " << r.dst << ": " << name(got) << ", want " << name(r.want));
    CHECK(got == r.want);
  }
}

}  // namespace

TEST_CASE("without a table every uid reaches everything (the topology works)") {
  NEED_NET();
  net().installer.reset();
  check_matrix({{kNobody, "10.77.0.1:9001", Outcome::connected},
                {kNobody, "[fd77::1]:1081", Outcome::connected},
                {kNobody, "169.254.169.254:80", Outcome::connected}});
}

TEST_CASE("services phase: each uid reaches only where it must, the rest is refused at once") {
  NEED_NET();
  auto n = net().install(services(kMeta));
  REQUIRE(n);
  CHECK(*n == 13);
  check_matrix({
      // tor: TCP anywhere
      {kTor, "10.77.0.1:9001", Outcome::connected},
      {kTor, "10.77.0.1:1081", Outcome::connected},
      {kTor, "[fd77::1]:9001", Outcome::connected},
      {kTor, "169.254.169.254:80", Outcome::connected},
      // torgw-socks: the backends only (IPv4 and IPv6), not another port on the same host
      {kSocks, "10.77.0.1:1080", Outcome::connected},
      {kSocks, "[fd77::1]:1080", Outcome::connected},
      {kSocks, "10.77.0.1:1081", Outcome::refused},
      {kSocks, "[fd77::1]:1081", Outcome::refused},
      {kSocks, "10.77.0.1:9001", Outcome::refused},
      {kSocks, "169.254.169.254:80", Outcome::refused},
      // the metadata fetcher: the metadata endpoint only
      {kMeta, "169.254.169.254:80", Outcome::connected},
      {kMeta, "10.77.0.1:80", Outcome::refused},
      {kMeta, "10.77.0.1:1080", Outcome::refused},
      // root and nobody: nothing
      {0, "10.77.0.1:9001", Outcome::refused},
      {0, "169.254.169.254:80", Outcome::refused},
      {kNobody, "10.77.0.1:9001", Outcome::refused},
      {kNobody, "10.77.0.1:1080", Outcome::refused},
      {kNobody, "[fd77::1]:1080", Outcome::refused},
      {kNobody, "169.254.169.254:80", Outcome::refused},
  });
  // Loopback inside the namespace stays open to everyone.
  check_matrix({{kNobody, "127.0.0.1:2222", Outcome::connected}, {kNobody, "[::1]:2222", Outcome::connected}});
}

TEST_CASE("inbound connections are dropped (no answer), outbound replies still pass") {
  NEED_NET();
  REQUIRE(net().install(services(kMeta)));
  CHECK(net().probe(net().world_ns.get(), 0, "10.77.0.2:2222", 1000) == Outcome::timeout);
  CHECK(net().probe(net().world_ns.get(), 0, "[fd77::2]:2222", 1000) == Outcome::timeout);
}

TEST_CASE("boot phase, metadata fetched by root as today: only root to the metadata endpoint") {
  NEED_NET();
  Policy boot;
  boot.metadata_uid = 0;
  boot.metadata = ep("169.254.169.254:80");
  auto n = net().install(boot);
  REQUIRE(n);
  CHECK(*n == 10);
  check_matrix({{0, "169.254.169.254:80", Outcome::connected},
                {0, "10.77.0.1:9001", Outcome::refused},
                {kTor, "10.77.0.1:9001", Outcome::refused},
                {kSocks, "10.77.0.1:1080", Outcome::refused},
                {kNobody, "169.254.169.254:80", Outcome::refused}});
  // Then the services phase replaces it in one transaction, on the same socket.
  REQUIRE(net().install(services(0)));
  check_matrix({{0, "169.254.169.254:80", Outcome::connected},
                {kTor, "10.77.0.1:9001", Outcome::connected},
                {kSocks, "10.77.0.1:1080", Outcome::connected}});
}

TEST_CASE("the self-test: nobody is refused by the table, and connects without it") {
  NEED_NET();
  REQUIRE(net().install(services(kMeta)));
  REQUIRE(::setns(net().app_ns.get(), CLONE_NEWNET) == 0);
  auto blocked = selftest(ep("169.254.169.254:80"));
  net().installer.reset();  // the table goes with its socket
  auto open = selftest(ep("169.254.169.254:80"));
  REQUIRE(::setns(net().self_ns.get(), CLONE_NEWNET) == 0);
  CHECK(blocked);
  REQUIRE_FALSE(open);
  CHECK_THAT(open, FailsWith("firewall:selftest_connected"));
}

TEST_CASE("the table belongs to its socket: nft reads the known answer, cannot delete it; it dies with the socket") {
  NEED_NET();
  auto nft = tt::find_program("nft");
  if (nft.empty()) TORGW_SKIP(tt::Needs::package, "nftables' nft is not installed (scripts/setup)");
  REQUIRE(net().install(services(kMeta)));
  auto list = tt::run({net().ip, "netns", "exec", net().app, nft, "list", "ruleset"});
  REQUIRE(list.exit_code == 0);
  // firewall/tests/golden/services.nft: written by hand from firewall.h's ruleset and
  // compared with what nft (an independent decoder of the kernel's objects) prints.
  const char* dir = std::getenv("TORGW_FIREWALL_GOLDEN");
  REQUIRE(dir != nullptr);
  CHECK(list.out == tt::read_file(std::string(dir) + "/services.nft"));
  // Another netlink socket (nft, as root) may read the table but not change it.
  auto del = tt::run({net().ip, "netns", "exec", net().app, nft, "delete", "table", "inet", "torgw"});
  CHECK(del.exit_code != 0);
  // Nor may a second installer take it over.
  REQUIRE(::setns(net().app_ns.get(), CLONE_NEWNET) == 0);
  auto other = Installer::open();
  REQUIRE(::setns(net().self_ns.get(), CLONE_NEWNET) == 0);
  REQUIRE(other);
  auto takeover = other->install(services(kMeta));
  REQUIRE_FALSE(takeover);
  CHECK_THAT(takeover, FailsWith("firewall:rejected"));
  CHECK(net().from_app(kNobody, "10.77.0.1:9001") == Outcome::refused);
  net().installer.reset();
  auto after = tt::run({net().ip, "netns", "exec", net().app, nft, "list", "ruleset"});
  CHECK(after.exit_code == 0);
  CHECK(after.out.empty());
}
