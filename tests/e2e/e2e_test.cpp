// The whole appliance end to end on a private Tor network: torgw-init --dev
// publishes its onion; a client reaches a web server through the client tor, the onion,
// torgw-socks and a dante backend; and the faults an operator meets: tor killed,
// backend down, bad config.
//
// How a client reaches the web server in socks5 mode: the gateway's clients speak SOCKS5
// *inside* the onion stream (that is what torgw-socks validates). curl speaks SOCKS5 to
// a local socat, which carries the bytes into the onion through the client tor's
// SOCKS4A; so `curl --socks5-hostname <forwarder> http://<web>/` travels
//   curl -> socat -> client tor -> onion -> tor -> torgw-socks -> dante -> web server.
// In passthrough mode the onion stream goes to the backend untouched, so plain
// `curl --socks5-hostname <client tor> http://<onion>/` reaches the web server directly.
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include <dirent.h>
#include <pwd.h>
#include <signal.h>
#include <sodium.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "init/tests/dev_run.h"
#include "onion/onion.h"
#include "tests/socks/socks_client.h"
#include "tests/support/dante.h"
#include "tests/support/net.h"
#include "tests/tornet/tornet.h"

using namespace torgw;
using namespace torgw::testing;
using namespace std::chrono_literals;

namespace {

tornet::Network& network() {
  static std::unique_ptr<tornet::Network> net = [] {
    auto n = tornet::Network::start({});
    INFO((n ? std::string() : n.error().to_string()));
    REQUIRE(n.ok());
    return std::move(*n);
  }();
  return *net;
}

// Everything behind the gateway, shared by the cases: the web server and a dante.
struct Backends {
  TempDir dir{"e2e"};
  std::unique_ptr<tornet::StaticHttp> web;
  std::unique_ptr<Dante> dante;
  Backends() {
    network();  // first: the servers below must live in the network's namespace
    auto w = tornet::StaticHttp::start(dir.file("www"));
    REQUIRE(w.ok());
    web = std::move(*w);
    dante = std::make_unique<Dante>(dir);
  }
  std::string web_host() const { return "127.0.0.1:" + std::to_string(web->port()); }
};

Backends& backends() {
  static Backends b;
  return b;
}

// torgw-init --dev on the private network, its state in a dir we know (to find tor).
struct Appliance {
  DevRun run;
  std::string state = run.dir.file("state");

  explicit Appliance(const std::string& conf, std::vector<std::string> sets = {}, std::vector<std::string> flags = {}) {
    write_file(run.dir.file("torgw.conf"), conf);
    std::vector<std::string> args{"--config",    run.dir.file("torgw.conf"),
                                  "--state-dir", state,
                                  "--set",       "tor_test_network=" + tor_network_value(network().dir_authorities())};
    for (auto& s : sets) args.insert(args.end(), {"--set", s});
    args.insert(args.end(), flags.begin(), flags.end());
    // A tor of its own user must reach its dirs under the state dir.
    if (!flags.empty()) ::chmod(run.dir.path().c_str(), 0755);
    run.start(args);
  }
  ~Appliance() {
    if (run.proc.running()) {
      run.proc.signal(SIGTERM);
      run.proc.wait(30s);
    }
  }
  std::string onion() const { return *run.boot().get("ONION_HOSTNAME"); }
  int count(const std::string& marker) const {
    int n = 0;
    const std::string needle = "\r\nTORGW " + marker + "=";
    for (auto p = run.out().find(needle); p != std::string::npos; p = run.out().find(needle, p + 1)) ++n;
    return n;
  }
  bool wait_count(const std::string& marker, int n, std::chrono::seconds limit) const {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (count(marker) >= n) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  // tor is the process whose command line names our torrc.
  pid_t tor_pid() const {
    const std::string torrc = state + "/tor-run/torrc";
    DIR* d = ::opendir("/proc");
    pid_t found = -1;
    while (dirent* e = d ? ::readdir(d) : nullptr) {
      pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
      if (pid <= 0) continue;
      std::string cmd = read_file("/proc/" + std::to_string(pid) + "/cmdline");
      if (cmd.find(torrc) != std::string::npos && cmd.find("tor") != std::string::npos) found = pid;
    }
    if (d) ::closedir(d);
    return found;
  }
};

// socat carrying local TCP into the onion through a client tor (SOCKS4A): the network's
// own client unless another's SocksPort is given.
struct Forwarder {
  std::uint16_t port = free_tcp_port();
  Subprocess proc;
  Forwarder(const std::string& onion, int onion_port, std::uint16_t client_socks = 0) {
    if (client_socks == 0) client_socks = network().socks_port();
    proc = Subprocess::spawn({find_program("socat"),
                              "TCP-LISTEN:" + std::to_string(port) + ",bind=127.0.0.1,reuseaddr,fork",
                              "SOCKS4A:127.0.0.1:" + onion + ":" + std::to_string(onion_port) +
                                  ",socksport=" + std::to_string(client_socks)});
    REQUIRE(wait_for_tcp("127.0.0.1", port, 10s));
  }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port); }
};

std::string gateway_conf(const std::string& backend, const std::string& mode = "socks5") {
  return "backend=" + backend + "\nbackend_mode=" + mode + "\nonion_port=1080\n" +
         // The web server is on loopback, which the default policy (rightly) denies.
         (mode == "socks5" ? "socks_allow=127.0.0.1\n" : "");
}

#define NEED_PROGRAMS()                                                                                               \
  do {                                                                                                                \
    for (const char* p : {"tor", "curl", "socat", "danted", "python3"})                                               \
      if (find_program(p).empty()) {                                                                                  \
        TORGW_SKIP(torgw::testing::Needs::package, std::string(p) + " is not installed (scripts/setup installs it)"); \
      }                                                                                                               \
  } while (0)

}  // namespace

TEST_CASE("socks5 mode: through the onion, torgw-socks and dante to a web server; kill -9 tor and again") {
  NEED_PROGRAMS();
  auto& b = backends();
  Appliance gw(gateway_conf(b.dante->endpoint()));
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(gw.run.wait_marker("READY", 180s));
  auto boot = gw.run.boot();
  CHECK(*boot.get("DESCRIPTOR_PUBLISHED") == "true");
  CHECK(*boot.get("SOCKS") == "listening");
  CHECK(*boot.get("TOR_TEST_NETWORK") == "true");
  const std::string onion = gw.onion();
  Forwarder fwd(onion, 1080);
  std::string last;
  CHECK(tornet::curl_until(fwd.endpoint(), b.web_host(), b.web->token(), 120s, &last));
  INFO(last);
  std::fprintf(stderr, "e2e: READY and a curl through the onion %.1f s after torgw-init started\n",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

  // tor dies hard: restarted, the same onion published again, curl works again.
  pid_t tor = gw.tor_pid();
  REQUIRE(tor > 0);
  REQUIRE(::kill(tor, SIGKILL) == 0);
  const auto t1 = std::chrono::steady_clock::now();
  REQUIRE(gw.run.wait_marker("TOR_RESTART", 60s));
  REQUIRE(gw.wait_count("DESCRIPTOR_PUBLISHED", 2, 180s));
  CHECK(gw.count("READY") >= 2);
  CHECK(gw.tor_pid() != tor);
  CHECK(tornet::curl_until(fwd.endpoint(), b.web_host(), b.web->token(), 120s, &last));
  INFO(last);
  std::fprintf(stderr, "e2e: after kill -9 of tor, republished and curl works again in %.1f s\n",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count());
  CHECK(*gw.run.boot().get("ONION_HOSTNAME") == onion);
  CHECK(gw.run.boot().get("FATAL") == nullptr);
}

TEST_CASE("tor as its own user: after PID 1 dropped its capabilities, kill -9 tor and it is back, published") {
  NEED_PROGRAMS();
  if (::geteuid() != 0) TORGW_SKIP(torgw::testing::Needs::root, "running tor as another user needs root");
  const std::string tor_user = ::getpwnam("debian-tor") ? "debian-tor" : "";
  if (tor_user.empty())
    TORGW_SKIP(torgw::testing::Needs::package, "no debian-tor user (Debian's tor package makes it)");
  auto& b = backends();
  // As in the image: tor's run and data dirs are tor's own (0750/0700), so restarting tor
  // (unlink and read its control socket and cookie) needs what PID 1 kept:
  // CAP_DAC_OVERRIDE, CAP_SETUID/SETGID/SETPCAP, CAP_KILL (docs/init.md).
  Appliance gw(gateway_conf(b.dante->endpoint()), {}, {"--tor-user", tor_user});
  REQUIRE(gw.run.wait_marker("READY", 180s));
  INFO(gw.run.err());
  CHECK(*gw.run.boot().get("PID1_CAPABILITIES") == "dac_override,kill,setgid,setuid,setpcap,sys_boot");
  pid_t tor = gw.tor_pid();
  REQUIRE(tor > 0);
  CHECK(read_file("/proc/" + std::to_string(tor) + "/status")
            .find("Uid:\t" + std::to_string(::getpwnam("debian-tor")->pw_uid)) != std::string::npos);
  REQUIRE(::kill(tor, SIGKILL) == 0);
  REQUIRE(gw.run.wait_marker("TOR_RESTART", 60s));
  REQUIRE(gw.wait_count("DESCRIPTOR_PUBLISHED", 2, 180s));
  Forwarder fwd(gw.onion(), 1080);
  std::string last;
  CHECK(tornet::curl_until(fwd.endpoint(), b.web_host(), b.web->token(), 120s, &last));
  INFO(last);
  CHECK(gw.run.boot().get("FATAL") == nullptr);
}

TEST_CASE("backend down: the onion client gets a typed SOCKS5 failure, never a bare EOF") {
  NEED_PROGRAMS();
  auto& b = backends();
  // A backend nothing listens on (as a dead exit node would be).
  const std::uint16_t dead = free_tcp_port();
  Appliance gw(gateway_conf("127.0.0.1:" + std::to_string(dead)));
  REQUIRE(gw.run.wait_marker("READY", 180s));
  Forwarder fwd(gw.onion(), 1080);
  // The onion may take a moment to be reachable: retry until a SOCKS5 reply comes back.
  int reply = -1;
  auto end = std::chrono::steady_clock::now() + 120s;
  while (reply < 0 && std::chrono::steady_clock::now() < end) {
    auto c = socks::connect_via(fwd.port, socks::ipv4_request("127.0.0.1", b.web->port()));
    reply = c.reply;
    if (reply < 0) std::this_thread::sleep_for(1s);
  }
  CHECK(reply == 0x05);  // connection refused, as the backend's refusal was
  // And a client asking for something the policy denies gets 0x02 from the gateway.
  auto denied = socks::connect_via(fwd.port, socks::ipv4_request("10.1.2.3", 80));
  CHECK(denied.reply == 0x02);
}

TEST_CASE("passthrough mode: curl --socks5-hostname <client tor> http://<onion>/ reaches the backend") {
  NEED_PROGRAMS();
  auto& b = backends();
  Appliance gw(gateway_conf(b.web_host(), "passthrough"), {"onion_port=80"});
  REQUIRE(gw.run.wait_marker("READY", 180s));
  std::string last;
  CHECK(tornet::curl_until(network().socks_endpoint(), gw.onion(), b.web->token(), 120s, &last));
  INFO(last);
}

TEST_CASE("bad config: FATAL with the reason, and no tor started") {
  NEED_PROGRAMS();
  network();
  Appliance gw("backend=127.0.0.1:1\nsocks_allow=not/a/rule\n");
  CHECK(exit_code(gw.run.proc.wait(60s)) == 1);
  auto boot = gw.run.boot();
  CHECK(*boot.get("FATAL") == "socks_allow:bad_rule");
  CHECK(boot.get("TOR_BOOTSTRAP") == nullptr);
  CHECK_FALSE(std::filesystem::exists(gw.state + "/tor-run/torrc"));

  Appliance opt("backend=127.0.0.1:1\ntor_options=ControlPort=9051\n");
  CHECK(exit_code(opt.run.proc.wait(60s)) == 1);
  CHECK(*opt.run.boot().get("FATAL") == "tor_options:supervisor.option_not_allowed");
  CHECK_FALSE(std::filesystem::exists(opt.state + "/tor-run/torrc"));
}

// ---- client authorization (tor's v3 client auth, config key client_auth) ----------------

namespace {

// An extra client tor on the network, with SOCKS5 extended errors (so a refusal says
// why: 0xF4 missing client authorization) and, when given, a ClientOnionAuthDir.
struct ClientTor {
  std::uint16_t socks = free_tcp_port();
  ClientTor(const std::string& name, const std::string& auth_dir) {
    std::string rc = "SocksPort 127.0.0.1:" + std::to_string(socks) + " ExtendedErrors\n";
    if (!auth_dir.empty()) rc += "ClientOnionAuthDir " + auth_dir + "\n";
    auto t = network().spawn_tor(name, rc);
    INFO((t ? std::string() : t.error().to_string()));
    REQUIRE(t.ok());
    REQUIRE(wait_for_tcp("127.0.0.1", socks, 30s));
  }
};

// The SOCKS5 reply a client tor gives for CONNECT <onion>:<port>, retried while tor
// itself is still getting there (no reply yet, or a transient failure) until `budget`.
int onion_reply(std::uint16_t socks, const std::string& onion, std::uint16_t port, std::chrono::seconds budget) {
  int reply = -1;
  auto end = std::chrono::steady_clock::now() + budget;
  while (std::chrono::steady_clock::now() < end) {
    reply = socks::connect_via(socks, socks::name_request(onion, port)).reply;
    if (reply == 0x00 || reply == 0xF4 || reply == 0xF5) break;  // connected, or an auth verdict
    std::this_thread::sleep_for(1s);
  }
  return reply;
}

}  // namespace

TEST_CASE("client_auth: the authorized client reaches the backend through the onion; one without the key cannot") {
  NEED_PROGRAMS();
  auto& b = backends();
  // An x25519 key pair as an operator makes one (libsodium here; tor clamps the same way).
  Bytes secret(crypto_scalarmult_curve25519_SCALARBYTES), pub(crypto_scalarmult_curve25519_BYTES);
  randombytes_buf(secret.data(), secret.size());
  REQUIRE(crypto_scalarmult_curve25519_base(pub.data(), secret.data()) == 0);
  Appliance gw(gateway_conf(b.dante->endpoint()), {"client_auth=descriptor:x25519:" + onion::base32_encode(pub)});
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(gw.run.wait_marker("READY", 180s));
  const std::string onion = gw.onion();
  const std::string id = onion.substr(0, onion.size() - 6);  // without ".onion"

  // The authorized client: tor's ClientOnionAuthDir file, <id>:descriptor:x25519:<secret>.
  const std::string auth_dir = gw.run.dir.file("client-auth");
  REQUIRE(::mkdir(auth_dir.c_str(), 0700) == 0);
  write_file(auth_dir + "/gateway.auth_private", id + ":descriptor:x25519:" + onion::base32_encode(secret) + "\n",
             0600);
  ClientTor authorized("authclient", auth_dir);
  Forwarder fwd(onion, 1080, authorized.socks);
  std::string last;
  CHECK(tornet::curl_until(fwd.endpoint(), b.web_host(), b.web->token(), 150s, &last));
  INFO(last);
  std::fprintf(stderr, "e2e client_auth: the authorized client fetched the page %.1f s after torgw-init started\n",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

  // The same network, the same published descriptor, no key: tor cannot decrypt the
  // descriptor's inner layer and says so (0xF4, "missing client authorization"); it
  // never connects. Bounded: the verdict comes within the budget or the check fails.
  ClientTor stranger("noauthclient", "");
  const auto t1 = std::chrono::steady_clock::now();
  const int reply = onion_reply(stranger.socks, onion, 1080, 90s);
  std::fprintf(stderr, "e2e client_auth: the client without the key got SOCKS5 reply 0x%02X in %.1f s\n", reply & 0xff,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count());
  CHECK(reply == 0xF4);
  // And the network's own client (no ClientOnionAuthDir at all) fails too, through socat.
  Forwarder plain(onion, 1080);
  CHECK_FALSE(tornet::curl_until(plain.endpoint(), b.web_host(), b.web->token(), 20s, &last));
  CHECK(gw.run.boot().get("FATAL") == nullptr);
}
