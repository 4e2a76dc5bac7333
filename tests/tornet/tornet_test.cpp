// The harness end to end: a private network, a bare onion service (HiddenServiceDir)
// and a service added over ADD_ONION with a key of ours, both reached by curl through
// the client tor. Prints the measured times; asserts only behaviour (generous deadlines).
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "common/bytes.h"
#include "controlport/controlport.h"
#include "controlport/testing.h"
#include "onion/onion.h"
#include "tests/support/net.h"
#include "tests/support/process.h"
#include "tests/tornet/tornet.h"

using namespace torgw;
using namespace torgw::testing;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

long ms_since(Clock::time_point t) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count());
}

std::optional<controlport::HsDescEvent> wait_uploaded(controlport::BlockingControl& c, const std::string& service_id,
                                                      std::chrono::seconds t) {
  auto ev = c.wait_event(
      [&](const controlport::Reply& r) {
        auto e = controlport::parse_hs_desc(r);
        return e && e->action == controlport::HsDescAction::Uploaded && e->address == service_id;
      },
      t);
  if (!ev) return std::nullopt;
  return *controlport::parse_hs_desc(*ev);
}

}  // namespace

TEST_CASE("private network: onion services published and reached through it") {
  if (find_program("tor").empty() || find_program("curl").empty() || find_program("python3").empty()) {
    TORGW_SKIP(torgw::testing::Needs::package, "needs tor, tor-gencert, curl and python3");
  }
  tornet::Options opts;
  opts.progress = [](const std::string& s) { std::fprintf(stderr, "tornet: %s\n", s.c_str()); };
  auto net_r = tornet::Network::start(opts);
  INFO((net_r.ok() ? std::string() : net_r.error().to_string()));
  REQUIRE(net_r.ok());
  auto& net = **net_r;
  const auto t0 = net.launched_at();
  if (::geteuid() == 0) CHECK_FALSE(net.netns().empty());
  std::vector<pid_t> pids;
  for (const auto& p : net.processes()) pids.push_back(p.pid);
  CHECK(pids.size() == 5);  // authority, 3 relays, client

  auto backend_r = tornet::StaticHttp::start(net.dir() + "/backend");
  REQUIRE(backend_r.ok());
  auto& backend = **backend_r;

  // A bare tor with HiddenServiceDir, as an operator would run it.
  std::string hs = net.dir() + "/hs";
  std::string ctl = net.dir() + "/bare/control";  // in its DataDirectory: tor wants a private dir
  auto bare = net.spawn_tor("bare", "SocksPort 0\nHiddenServiceDir " + hs + "\nHiddenServicePort 80 127.0.0.1:" +
                                        std::to_string(backend.port()) + "\nControlSocket " + ctl +
                                        "\nCookieAuthentication 1\nCookieAuthFile " + ctl + ".cookie\n");
  REQUIRE(bare.ok());
  const auto bare_started = Clock::now();
  auto c = controlport::BlockingControl::open(controlport::Endpoint::unix_socket(ctl),
                                              controlport::AuthOptions{ctl + ".cookie"});
  INFO((c.ok() ? std::string() : c.error().to_string()) << tornet::Network::tail(bare->log, 30));
  REQUIRE(c.ok());
  REQUIRE((*c)->setevents({"HS_DESC"}).ok());
  REQUIRE(wait_for_unix(ctl, 5s));
  std::string hostname;
  for (int i = 0; i < 100 && hostname.empty(); ++i) {
    hostname = read_file(hs + "/hostname");
    if (hostname.empty()) std::this_thread::sleep_for(100ms);
  }
  REQUIRE(hostname.size() == 63);  // "<56>.onion\n"
  hostname.pop_back();
  const std::string bare_id = hostname.substr(0, 56);
  auto up = wait_uploaded(**c, bare_id, 120s);
  INFO(tornet::Network::tail(bare->log, 30));
  REQUIRE(up);
  CHECK(controlport::valid_fingerprint(up->hs_dir_fingerprint));
  const long bare_uploaded = ms_since(bare_started);
  std::string last;
  const bool reached = tornet::curl_until(net.socks_endpoint(), hostname, backend.token(), 120s, &last);
  INFO("curl: " << last);
  REQUIRE(reached);
  const long bare_reached = ms_since(bare_started);

  // ADD_ONION with a key of ours on the same tor: published and reachable the same way.
  auto id = onion::Identity::generate();
  SecretBytes blob = id.add_onion_key_blob();
  controlport::AddOnionRequest req;
  req.key_blob = &blob;
  req.ports = {{80, "127.0.0.1:" + std::to_string(backend.port())}};
  const auto added_at = Clock::now();
  auto added = (*c)->add_onion(req);
  REQUIRE(added.ok());
  REQUIRE(added->service_id + ".onion" == id.hostname());
  REQUIRE(wait_uploaded(**c, added->service_id, 120s));
  const long added_uploaded = ms_since(added_at);
  REQUIRE(tornet::curl_until(net.socks_endpoint(), id.hostname(), backend.token(), 120s, &last));
  const long added_reached = ms_since(added_at);

  const auto& t = net.timings();
  std::fprintf(stderr,
               "tornet timings (ms): keys %ld, consensus %ld, relays ready %ld, client bootstrapped %ld | "
               "bare HiddenServiceDir tor: UPLOADED %ld after its start (%ld after launch), curl ok %ld (%ld) | "
               "ADD_ONION on a running tor: UPLOADED %ld, curl ok %ld\n",
               static_cast<long>(t.keys.count()), static_cast<long>(t.consensus.count()),
               static_cast<long>(t.relays_ready.count()), static_cast<long>(t.client_bootstrapped.count()),
               bare_uploaded, ms_since(t0) - (ms_since(bare_started) - bare_uploaded), bare_reached,
               ms_since(t0) - (ms_since(bare_started) - bare_reached), added_uploaded, added_reached);

  // Every process the harness started ends with it, and its namespace goes.
  pids.push_back(bare->pid);
  const std::string ns = net.netns();
  c->reset();
  net.stop();
  for (pid_t p : pids) CHECK(::kill(p, 0) != 0);
  if (!ns.empty()) CHECK_FALSE(std::filesystem::exists("/run/netns/" + ns));
}
