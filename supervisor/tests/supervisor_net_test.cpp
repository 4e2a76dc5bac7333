// The supervisor on a private Tor network (tests/tornet): our key published, reached by
// curl through the network's client tor (to a unix-socket backend, as the appliance
// does), kill -9 of tor -> restarted, republished, reachable again; and the publish
// deadline.
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include <signal.h>

#include <filesystem>
#include <thread>

#include "common/bytes.h"
#include "controlport/controlport.h"
#include "controlport/testing.h"
#include "supervisor/tests/support.h"
#include "tests/support/net.h"
#include "tests/tornet/tornet.h"

using namespace torgw;
using namespace torgw::supervisor;
using namespace torgw::supervisor::testing;
using torgw::testing::find_program;
using torgw::testing::read_file;
using torgw::testing::SpawnOptions;
using torgw::testing::Subprocess;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

long ms(Clock::duration d) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

// The static HTTP server, exposed on a unix socket through socat: tor connects to it as
// the tor user, like to the appliance's torgw-socks socket.
struct UnixBackend {
  std::unique_ptr<tornet::StaticHttp> http;
  std::string socket;
  Subprocess socat;
  explicit UnixBackend(const std::string& dir) : socket(dir + "/backend.sock") {
    auto h = tornet::StaticHttp::start(dir);
    REQUIRE(h.ok());
    http = std::move(*h);
    SpawnOptions so;
    so.stdout_path = dir + "/socat.log";
    socat = Subprocess::spawn({find_program("socat"), "UNIX-LISTEN:" + socket + ",fork,mode=666",
                               "TCP:127.0.0.1:" + std::to_string(http->port())},
                              so);
    REQUIRE(torgw::testing::wait_for_unix(socket, 20s));
  }
  const std::string& token() const { return http->token(); }
};

std::size_t index_of(const std::vector<serial::Marker>& ms, const std::string& key, const std::string& value,
                     std::size_t nth = 0) {
  for (std::size_t i = 0; i < ms.size(); ++i)
    if (ms[i].key == key && ms[i].value == value && nth-- == 0) return i;
  return ms.size();
}

}  // namespace

TEST_CASE("supervisor on a private network: published, reachable, survives kill -9") {
  for (const char* p : {"tor", "tor-gencert", "curl", "python3", "socat"})
    if (find_program(p).empty()) {
      TORGW_SKIP(torgw::testing::Needs::package, std::string("needs ") + p);
    }
  auto net_r = tornet::Network::start(tornet::Options{});
  INFO((net_r.ok() ? std::string() : net_r.error().to_string()));
  REQUIRE(net_r.ok());
  auto& net = **net_r;
  UnixBackend backend(net.dir() + "/backend");

  const std::string root = net.dir() + "/sup";
  std::filesystem::create_directories(root);
  MarkerLog markers(root + "/markers");
  auto id = std::make_shared<onion::Identity>(onion::Identity::generate());
  auto cfg = test_config(root);
  cfg.identity = id;
  cfg.ports = {{80, "unix:" + backend.socket}};
  cfg.test_network = TestNetwork{net.dir_authorities()};
  cfg.backoff.initial = 500ms;
  cfg.timeouts.bootstrap = 120s;
  cfg.timeouts.publish = 120s;
  Loop loop;
  int ready = 0;
  std::optional<Error> fatal;
  Hooks hooks;
  hooks.on_ready = [&] { ++ready; };
  hooks.on_fatal = [&](const Error& e) { fatal = e; };
  hooks.log = [&](std::string_view l) {
    if (l.rfind("tor: ", 0) != 0) std::fprintf(stderr, "%.*s\n", static_cast<int>(l.size()), l.data());
  };
  Supervisor sup(loop.base, std::move(cfg), markers.writer(), hooks);
  const auto t0 = Clock::now();
  REQUIRE(sup.start().ok());
  REQUIRE(controlport::run_until(
      loop.base, [&] { return ready == 1 || fatal; }, 180s));
  INFO(markers.dump() << "last tor warning: " << sup.last_tor_warning());
  REQUIRE(ready == 1);
  const auto first = sup.timeline();

  // Markers, in order: hostname, bootstrap to 100, published, ready.
  auto ms_ = markers.markers();
  const auto host_i = index_of(ms_, "ONION_HOSTNAME", id->hostname());
  const auto boot100_i = index_of(ms_, "TOR_BOOTSTRAP", "100");
  const auto pub_i = index_of(ms_, "DESCRIPTOR_PUBLISHED", "true");
  const auto ready_i = index_of(ms_, "READY", "true");
  CHECK(host_i < pub_i);
  CHECK(boot100_i < pub_i);
  CHECK(pub_i < ready_i);
  CHECK(ready_i < ms_.size());
  CHECK(sup.phase() == Phase::Ready);
  if (::geteuid() == 0) CHECK(uid_of(sup.tor_pid()) == static_cast<long>(lookup_user("debian-tor")->uid));

  std::string last;
  const bool reached = tornet::curl_until(net.socks_endpoint(), id->hostname(), backend.token(), 120s, &last);
  INFO("curl: " << last);
  REQUIRE(reached);
  const auto reached_at = Clock::now();

  // kill -9: restarted with backoff, the same onion re-added and republished.
  const pid_t old_pid = sup.tor_pid();
  const auto killed_at = Clock::now();
  REQUIRE(::kill(old_pid, SIGKILL) == 0);
  REQUIRE(controlport::run_until(
      loop.base, [&] { return ready == 2 || fatal; }, 180s));
  INFO(markers.dump());
  REQUIRE(ready == 2);
  const auto republished_at = Clock::now();
  CHECK(sup.tor_pid() != old_pid);
  CHECK(sup.restarts() == 1);
  CHECK(sup.service_id() + ".onion" == id->hostname());
  CHECK(markers.values("TOR_EXIT") == std::vector<std::string>{"killed_by_SIGKILL"});
  CHECK(markers.values("TOR_RESTART") == std::vector<std::string>{"1"});
  CHECK(markers.values("ONION_HOSTNAME") == std::vector<std::string>{id->hostname(), id->hostname()});
  ms_ = markers.markers();
  CHECK(index_of(ms_, "TOR_RESTART", "1") < index_of(ms_, "DESCRIPTOR_PUBLISHED", "true", 1));
  CHECK(markers.count("READY") == 2);
  CHECK(markers.count("FATAL") == 0);
  REQUIRE(tornet::curl_until(net.socks_endpoint(), id->hostname(), backend.token(), 120s, &last));
  const auto reached_again = Clock::now();

  std::fprintf(stderr,
               "supervisor timings (ms): start->spawned %.3f, ->connected %ld, ->onion added %ld, ->bootstrapped %ld, "
               "->published %ld, curl ok %ld | kill -9 -> republished %ld, curl ok %ld\n",
               std::chrono::duration<double, std::milli>(first.spawned - t0).count(), ms(first.connected - t0),
               ms(first.onion_added - t0), ms(first.bootstrapped - t0), ms(first.published - t0), ms(reached_at - t0),
               ms(republished_at - killed_at), ms(reached_again - killed_at));

  bool stopped = false;
  const pid_t last_pid = sup.tor_pid();
  sup.stop([&] { stopped = true; });
  REQUIRE(controlport::run_until(
      loop.base, [&] { return stopped; }, 30s));
  CHECK(::kill(last_pid, 0) != 0);

  {  // A descriptor that is not published in time is FATAL.
    const std::string root2 = net.dir() + "/sup2";
    std::filesystem::create_directories(root2);
    MarkerLog m2(root2 + "/markers");
    auto cfg2 = test_config(root2);
    cfg2.ports = {{80, "unix:" + backend.socket}};
    cfg2.test_network = TestNetwork{net.dir_authorities()};
    cfg2.timeouts.publish = 1ms;  // bootstrap completes; the upload cannot make it
    std::optional<Error> fatal2;
    Supervisor sup2(loop.base, std::move(cfg2), m2.writer(),
                    Hooks{{}, [&](const Error& e) { fatal2 = e; }, [](std::string_view) {}});
    REQUIRE(sup2.start().ok());
    REQUIRE(controlport::run_until(
        loop.base, [&] { return fatal2.has_value(); }, 120s));
    INFO(m2.dump());
    CHECK(fatal2->reason == "tor.publish_timeout");
    CHECK(m2.values("TOR_BOOTSTRAP").back() == "100");
    CHECK(m2.count("DESCRIPTOR_PUBLISHED") == 0);
    CHECK(m2.values("FATAL") == std::vector<std::string>{"tor.publish_timeout"});
    REQUIRE(controlport::run_until(
        loop.base, [&] { return sup2.tor_pid() <= 0; }, 30s));
  }
}
