// tor_bench: what supervising tor through its control socket costs, on a private Tor
// network (tests/tornet), beside a bare tor with HiddenServiceDir in the same run.
//
// Per round, one after the other on the same network, each with a fresh DataDirectory:
//   supervised: Supervisor::start() with a fresh identity -> tor spawned (wall time and
//               our own CPU time for it) -> bootstrap 100 % -> HS_DESC UPLOADED of our
//               address (markers and timeline of the supervisor itself);
//   bare:       tor with HiddenServiceDir/HiddenServicePort and the same options,
//               observed (not driven) through its control socket -> bootstrap 100 %
//               -> HS_DESC UPLOADED of its address.
// The order alternates between rounds, and every start begins at the same sub-second
// phase (tor's periodic work is aligned to wall-clock seconds). Targets (docs/tornet.md): our own work before
// tor runs <= 50 ms; supervision adds <= 1 s to time-to-published (median).
//
// Usage: tor_bench [--rounds N] [--json]      (as root: in its own network namespace)
#include <event2/event.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "controlport/controlport.h"
#include "onion/onion.h"
#include "serial/serial.h"
#include "supervisor/supervisor.h"
#include "tests/support/process.h"
#include "tests/tornet/tornet.h"

using namespace torgw;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using nlohmann::json;

namespace {

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct Sample {
  double spawn_wall_ms = 0, spawn_cpu_ms = 0, bootstrap_ms = 0, published_ms = 0;
  bool ok = false;
  std::string error;
};

Sample run_supervised(tornet::Network& net, int round) {
  Sample s;
  const std::string root = net.dir() + "/sup" + std::to_string(round);
  std::filesystem::create_directories(root);
  ::chmod(root.c_str(), 0755);
  int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  serial::MarkerWriter markers({devnull});
  supervisor::SupervisorConfig cfg;
  cfg.tor_binary = net.tor_binary();
  cfg.tor_user = ::geteuid() == 0 ? "debian-tor" : "";
  cfg.data_dir = root + "/data";
  cfg.run_dir = root + "/run";
  cfg.identity = std::make_shared<onion::Identity>(onion::Identity::generate());
  cfg.ports = {{80, "127.0.0.1:1"}};
  cfg.test_network = supervisor::TestNetwork{net.dir_authorities()};
  cfg.timeouts.bootstrap = milliseconds(180000);
  cfg.timeouts.publish = milliseconds(180000);
  event_base* base = event_base_new();
  bool ready = false;
  std::optional<Error> fatal;
  {
    supervisor::Supervisor sup(base, std::move(cfg), markers,
                               supervisor::Hooks{[&] { ready = true; }, [&](const Error& e) { fatal = e; },
                                                 [](std::string_view) {}});
    const auto t0 = Clock::now();
    const double cpu0 = thread_cpu_ms();
    auto st = sup.start();
    s.spawn_cpu_ms = thread_cpu_ms() - cpu0;
    if (!st) {
      s.error = st.error().to_string();
    } else {
      controlport::run_until(base, [&] { return ready || fatal; }, milliseconds(240000));
      const auto& tl = sup.first_timeline();
      s.ok = ready;
      if (!ready) s.error = fatal ? fatal->to_string() : "timed out";
      s.spawn_wall_ms = ms_between(t0, sup.timeline().spawned);
      s.bootstrap_ms = ms_between(t0, tl.bootstrapped);
      s.published_ms = ms_between(t0, tl.published);
      bool stopped = false;
      sup.stop([&] { stopped = true; });
      controlport::run_until(base, [&] { return stopped; }, milliseconds(30000));
    }
  }
  event_base_free(base);
  ::close(devnull);
  return s;
}

Sample run_bare(tornet::Network& net, int round) {
  Sample s;
  const std::string name = "bare" + std::to_string(round);
  const std::string dd = net.dir() + "/" + name;
  const std::string hs = dd + "/hs";
  const std::string ctl = dd + "/control";
  const auto t0 = Clock::now();
  auto p = net.spawn_tor(name, "SocksPort 0\nSandbox 1\nHiddenServiceDir " + hs +
                                   "\nHiddenServicePort 80 127.0.0.1:1\nControlSocket " + ctl +
                                   "\nCookieAuthentication 1\nCookieAuthFile " + ctl + ".cookie\n");
  if (!p) {
    s.error = p.error().to_string();
    return s;
  }
  s.spawn_wall_ms = ms_between(t0, Clock::now());
  controlport::ConnectOptions co;
  co.timeout = milliseconds(60000);
  auto c = controlport::BlockingControl::open(controlport::Endpoint::unix_socket(ctl),
                                              controlport::AuthOptions{ctl + ".cookie"}, co);
  if (!c || !(*c)->setevents({"HS_DESC", "STATUS_CLIENT"}).ok()) {
    s.error = c ? "SETEVENTS failed" : c.error().to_string();
    net.end_process(p->pid);
    return s;
  }
  std::string id;
  const auto deadline = Clock::now() + milliseconds(240000);
  Clock::time_point bootstrapped{}, published{};
  // The phase may already be past some events: read it once, then follow events.
  if (auto v = (*c)->getinfo1("status/bootstrap-phase")) {
    auto b = controlport::parse_bootstrap_phase(*v);
    if (b && b->progress == 100) bootstrapped = Clock::now();
  }
  while (Clock::now() < deadline && published == Clock::time_point{}) {
    if (id.empty()) {
      std::string h = testing::read_file(hs + "/hostname");
      if (h.size() >= 56) id = h.substr(0, 56);
    }
    auto ev = (*c)->wait_event([](const controlport::Reply&) { return true; }, milliseconds(200));
    if (!ev) continue;
    if (auto st = controlport::parse_status(*ev); st && st->action == "BOOTSTRAP") {
      auto b = controlport::parse_bootstrap(*st);
      if (b && b->progress == 100 && bootstrapped == Clock::time_point{}) bootstrapped = Clock::now();
    } else if (auto h = controlport::parse_hs_desc(*ev)) {
      if (h->action == controlport::HsDescAction::Uploaded && !id.empty() && h->address == id) published = Clock::now();
    }
  }
  s.ok = published != Clock::time_point{};
  if (!s.ok) s.error = "no HS_DESC UPLOADED";
  s.bootstrap_ms = ms_between(t0, bootstrapped);
  s.published_ms = ms_between(t0, published);
  c->reset();
  net.end_process(p->pid);
  return s;
}

// tor runs its housekeeping on wall-clock second boundaries, so a start's sub-second
// phase shifts bootstrap by up to a second. Every start begins 100 ms after a boundary.
void align_to_second() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  long wait_ns = 1'000'000'000L - now.tv_nsec + 100'000'000L;
  timespec d{wait_ns / 1'000'000'000L, wait_ns % 1'000'000'000L};
  nanosleep(&d, nullptr);
}

json to_json(const Sample& s) {
  return {{"ok", s.ok},
          {"error", s.error},
          {"spawn_wall_ms", s.spawn_wall_ms},
          {"spawn_cpu_ms", s.spawn_cpu_ms},
          {"bootstrap_ms", s.bootstrap_ms},
          {"published_ms", s.published_ms}};
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 3;
  bool as_json = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--json")) as_json = true;
    else {
      std::fprintf(stderr, "usage: tor_bench [--rounds N] [--json]\n");
      return 2;
    }
  }
  tornet::Options o;
  o.client = false;
  o.progress = [](const std::string& s) { std::fprintf(stderr, "tornet: %s\n", s.c_str()); };
  auto net = tornet::Network::start(o);
  if (!net) {
    std::fprintf(stderr, "tor_bench: %s\n", net.error().to_string().c_str());
    return 1;
  }
  std::vector<Sample> sup, bare;
  for (int r = 0; r < rounds; ++r) {
    auto one_sup = [&] {
      align_to_second();
      sup.push_back(run_supervised(**net, r));
      const auto& s = sup.back();
      std::fprintf(stderr, "round %d supervised: spawn %.2f ms wall / %.2f ms cpu, bootstrap %.0f ms, published %.0f ms%s%s\n",
                   r + 1, s.spawn_wall_ms, s.spawn_cpu_ms, s.bootstrap_ms, s.published_ms, s.ok ? "" : " FAILED: ",
                   s.error.c_str());
    };
    auto one_bare = [&] {
      align_to_second();
      bare.push_back(run_bare(**net, r));
      const auto& s = bare.back();
      std::fprintf(stderr, "round %d bare:       spawn %.2f ms wall, bootstrap %.0f ms, published %.0f ms%s%s\n", r + 1,
                   s.spawn_wall_ms, s.bootstrap_ms, s.published_ms, s.ok ? "" : " FAILED: ", s.error.c_str());
    };
    if (r % 2 == 0) {
      one_sup();
      one_bare();
    } else {
      one_bare();
      one_sup();
    }
  }
  auto col = [](const std::vector<Sample>& v, double Sample::*f) {
    std::vector<double> out;
    for (const auto& s : v)
      if (s.ok) out.push_back(s.*f);
    return out;
  };
  const double spawn_cpu = median(col(sup, &Sample::spawn_cpu_ms));
  const double spawn_wall = median(col(sup, &Sample::spawn_wall_ms));
  const double sup_pub = median(col(sup, &Sample::published_ms));
  const double bare_pub = median(col(bare, &Sample::published_ms));
  const double sup_boot = median(col(sup, &Sample::bootstrap_ms));
  const double bare_boot = median(col(bare, &Sample::bootstrap_ms));
  const bool all_ok = std::all_of(sup.begin(), sup.end(), [](const Sample& s) { return s.ok; }) &&
                      std::all_of(bare.begin(), bare.end(), [](const Sample& s) { return s.ok; });
  json j;
  j["tor"] = tornet::tor_version(net.value()->tor_binary()).ok() ? *tornet::tor_version(net.value()->tor_binary()) : "";
  j["rounds"] = rounds;
  j["network_ms"] = {{"consensus", (*net)->timings().consensus.count()},
                     {"relays_ready", (*net)->timings().relays_ready.count()}};
  j["supervised"] = json::array();
  j["bare"] = json::array();
  for (const auto& s : sup) j["supervised"].push_back(to_json(s));
  for (const auto& s : bare) j["bare"].push_back(to_json(s));
  j["median_ms"] = {{"spawn_cpu", spawn_cpu},       {"spawn_wall", spawn_wall},     {"supervised_bootstrap", sup_boot},
                    {"bare_bootstrap", bare_boot},  {"supervised_published", sup_pub}, {"bare_published", bare_pub},
                    {"supervision_overhead", sup_pub - bare_pub}};
  j["targets"] = {{"own_work_le_50ms", spawn_cpu <= 50.0}, {"overhead_le_1s", sup_pub - bare_pub <= 1000.0}};
  std::fprintf(stderr,
               "\nmedians over %d rounds: start->spawned %.2f ms cpu (%.2f ms wall) [target <= 50 ms]; "
               "bootstrap %.0f vs bare %.0f ms; published %.0f vs bare %.0f ms: supervision adds %.0f ms "
               "[target <= 1000 ms]\n",
               rounds, spawn_cpu, spawn_wall, sup_boot, bare_boot, sup_pub, bare_pub, sup_pub - bare_pub);
  if (as_json) std::printf("%s\n", j.dump(2).c_str());
  return all_ok ? 0 : 1;
}
