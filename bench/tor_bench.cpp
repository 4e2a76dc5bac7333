// tor_bench: what supervising tor through its control socket costs, on a private Tor
// network (tests/tornet), beside a bare tor with HiddenServiceDir in the same run, and
// what the whole appliance (torgw-init --dev) costs before its tor runs.
//
// Per round, one after the other on the same network, each with a fresh DataDirectory:
//   supervised: Supervisor::start() with a fresh identity -> tor spawned (wall time and
//               our own CPU time for it) -> bootstrap 100 % -> HS_DESC UPLOADED of our
//               address (markers and timeline of the supervisor itself);
//   bare:       tor with HiddenServiceDir/HiddenServicePort and the same options,
//               observed (not driven) through its control socket -> bootstrap 100 %
//               -> HS_DESC UPLOADED of its address;
//   appliance:  the real torgw-init --dev binary with an ephemeral identity, torgw-socks
//               and a loopback backend -> tor exec'd (wall time since our spawn of
//               torgw-init, and torgw-init's CPU time by then) -> TOR_BOOTSTRAP=100 ->
//               DESCRIPTOR_PUBLISHED=true on its stdout -> SIGTERM, clean exit.
// The order rotates between rounds, and every start begins at the same sub-second
// phase (tor's periodic work is aligned to wall-clock seconds). Targets (docs/tornet.md):
// our own work before tor runs <= 50 ms, in start() and in the whole torgw-init;
// supervision adds <= 1 s to time-to-published (median).
//
// Usage: tor_bench [--rounds N] [--json]      (as root: in its own network namespace)
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/bytes.h"
#include "controlport/controlport.h"
#include "controlport/testing.h"
#include "onion/onion.h"
#include "serial/serial.h"
#include "supervisor/supervisor.h"
#include "tests/support/process.h"
#include "tests/tornet/tornet.h"

using namespace torgw;
using Clock = std::chrono::steady_clock;
using nlohmann::json;
using std::chrono::milliseconds;

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
    supervisor::Supervisor sup(
        base, std::move(cfg), markers,
        supervisor::Hooks{[&] { ready = true; }, [&](const Error& e) { fatal = e; }, [](std::string_view) {}});
    const auto t0 = Clock::now();
    const double cpu0 = thread_cpu_ms();
    auto st = sup.start();
    s.spawn_cpu_ms = thread_cpu_ms() - cpu0;
    if (!st) {
      s.error = st.error().to_string();
    } else {
      controlport::run_until(
          base, [&] { return ready || fatal; }, milliseconds(240000));
      const auto& tl = sup.first_timeline();
      s.ok = ready;
      if (!ready) s.error = fatal ? fatal->to_string() : "timed out";
      s.spawn_wall_ms = ms_between(t0, sup.timeline().spawned);
      s.bootstrap_ms = ms_between(t0, tl.bootstrapped);
      s.published_ms = ms_between(t0, tl.published);
      bool stopped = false;
      sup.stop([&] { stopped = true; });
      controlport::run_until(
          base, [&] { return stopped; }, milliseconds(30000));
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

std::int64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// torgw-init reports tor's start only as markers, after the fact. So it is given a tor
// that is a script: each call appends "<first arg> <CLOCK_REALTIME ns> <schedstat of its
// parent>" to `log`, then execs the real tor. The parent is torgw-init itself (the
// supervisor forks and execs tor directly) and schedstat's first field is its CPU time
// in ns (it is single-threaded). The script is bash for EPOCHREALTIME and `read`: no
// fork before the exec; bash's own start counts in the wall time, not torgw-init's CPU.
std::string tor_wrapper(const std::string& tor, const std::string& log) {
  return "#!/bin/bash\n"
         "now=${EPOCHREALTIME/[.,]/}000\n"
         "read -r sched </proc/$PPID/schedstat\n"
         "echo \"$1 $now $sched\" >>" +
         log +
         "\n"
         "exec " +
         tor + " \"$@\"\n";
}

// The tor_test_network value torgw-init takes: the DirAuthority lines, base64.
std::string test_network_value(const std::vector<std::string>& dir_authorities) {
  std::string lines;
  for (const auto& d : dir_authorities) lines += d + "\n";
  return to_base64(as_bytes(lines));
}

Sample run_appliance(tornet::Network& net, int round) {
  Sample s;
  const std::string root = net.dir() + "/app" + std::to_string(round);
  // World-writable: as root, tor (and so the wrapper) runs as debian-tor.
  const std::string spawns = root + "/spawns";
  std::filesystem::create_directories(spawns);
  ::chmod(root.c_str(), 0755);
  ::chmod(spawns.c_str(), 0777);
  const std::string wrapper = root + "/tor";
  const std::string out_path = root + "/stdout";
  testing::write_file(wrapper, tor_wrapper(net.tor_binary(), spawns + "/log"), 0755);
  testing::write_file(root + "/torgw.conf", "backend=127.0.0.1:1\nonion_port=80\nidentity=ephemeral\n");
  std::vector<std::string> argv{
      TORGW_INIT_BINARY,    "--dev",       "--config",
      root + "/torgw.conf", "--state-dir", root + "/state",
      "--tor-binary",       wrapper,       "--socks-binary",
      TORGW_SOCKS_BINARY,   "--set",       "tor_test_network=" + test_network_value(net.dir_authorities())};
  // As the appliance runs them: neither tor nor torgw-socks as root.
  if (::geteuid() == 0) argv.insert(argv.end(), {"--tor-user", "debian-tor", "--socks-user", "nobody"});
  testing::SpawnOptions so;
  so.stdout_path = out_path;
  so.stderr_path = root + "/stderr";
  const std::int64_t rt0 = realtime_ns();
  const auto t0 = Clock::now();
  testing::Subprocess p;
  try {
    p = testing::Subprocess::spawn(argv, so);
  } catch (const std::exception& e) {
    s.error = e.what();
    return s;
  }
  Clock::time_point bootstrapped{}, published{};
  const auto deadline = t0 + milliseconds(240000);
  std::string out;
  while (Clock::now() < deadline && published == Clock::time_point{}) {
    out = testing::read_file(out_path);
    if (bootstrapped == Clock::time_point{} && out.find("\r\nTORGW TOR_BOOTSTRAP=100\r\n") != std::string::npos)
      bootstrapped = Clock::now();
    if (out.find("\r\nTORGW DESCRIPTOR_PUBLISHED=true\r\n") != std::string::npos) published = Clock::now();
    else if (out.find("\r\nTORGW FATAL=") != std::string::npos || !p.running()) break;
    else std::this_thread::sleep_for(milliseconds(10));
  }
  s.bootstrap_ms = ms_between(t0, bootstrapped);
  s.published_ms = ms_between(t0, published);
  if (published == Clock::time_point{}) {
    auto log = serial::parse_log(out);
    const std::string* fatal = log && !log->boots.empty() ? log->boots.back().get("FATAL") : nullptr;
    s.error = fatal ? "FATAL=" + *fatal : p.running() ? "no DESCRIPTOR_PUBLISHED" : "torgw-init exited";
  }
  p.signal(SIGTERM);
  auto st = p.wait(milliseconds(30000));
  if (!st) st = p.stop();
  if (s.error.empty() && !(WIFEXITED(*st) && WEXITSTATUS(*st) == 0))
    s.error = "SIGTERM: exit status " + std::to_string(*st);
  // The first start of the daemon (-f <torrc>), not a restart.
  std::istringstream spawned(testing::read_file(spawns + "/log"));
  std::int64_t at_ns = 0, cpu_ns = 0;
  bool found = false;
  for (std::string line; !found && std::getline(spawned, line);) {
    std::istringstream fields(line);
    std::string arg;
    found = (fields >> arg >> at_ns >> cpu_ns) && arg == "-f";
  }
  if (found) {
    s.spawn_wall_ms = static_cast<double>(at_ns - rt0) / 1e6;
    s.spawn_cpu_ms = static_cast<double>(cpu_ns) / 1e6;
  } else if (s.error.empty()) {
    s.error = "tor was never started";
  }
  s.ok = s.error.empty();
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
  std::vector<Sample> sup, bare, app;
  struct Kind {
    const char* label;
    Sample (*run)(tornet::Network&, int);
    std::vector<Sample>* samples;
    bool has_cpu;  // the bare tor does none of our work
  };
  const std::array<Kind, 3> kinds{{{"supervised:", run_supervised, &sup, true},
                                   {"bare:", run_bare, &bare, false},
                                   {"appliance:", run_appliance, &app, true}}};
  for (int r = 0; r < rounds; ++r) {
    // Rotated, so that no kind always runs first (or last) in a round.
    for (std::size_t k = 0; k < kinds.size(); ++k) {
      const Kind& kind = kinds[(static_cast<std::size_t>(r) + k) % kinds.size()];
      align_to_second();
      kind.samples->push_back(kind.run(**net, r));
      const Sample& s = kind.samples->back();
      char cpu[32] = "";
      if (kind.has_cpu) std::snprintf(cpu, sizeof cpu, " / %.2f ms cpu", s.spawn_cpu_ms);
      std::fprintf(stderr, "round %d %-11s spawn %.2f ms wall%s, bootstrap %.0f ms, published %.0f ms%s%s\n", r + 1,
                   kind.label, s.spawn_wall_ms, cpu, s.bootstrap_ms, s.published_ms,
                   s.ok ? "" : " FAILED: ", s.error.c_str());
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
  const double app_cpu = median(col(app, &Sample::spawn_cpu_ms));
  const double app_wall = median(col(app, &Sample::spawn_wall_ms));
  const double app_boot = median(col(app, &Sample::bootstrap_ms));
  const double app_pub = median(col(app, &Sample::published_ms));
  auto all_ok = [](const std::vector<Sample>& v) {
    return std::all_of(v.begin(), v.end(), [](const Sample& s) { return s.ok; });
  };
  json j;
  j["tor"] = tornet::tor_version(net.value()->tor_binary()).ok() ? *tornet::tor_version(net.value()->tor_binary()) : "";
  j["rounds"] = rounds;
  j["network_ms"] = {{"consensus", (*net)->timings().consensus.count()},
                     {"relays_ready", (*net)->timings().relays_ready.count()}};
  j["supervised"] = json::array();
  j["bare"] = json::array();
  j["appliance"] = json::array();
  for (const auto& s : sup) j["supervised"].push_back(to_json(s));
  for (const auto& s : bare) j["bare"].push_back(to_json(s));
  for (const auto& s : app) j["appliance"].push_back(to_json(s));
  j["median_ms"] = {{"spawn_cpu", spawn_cpu},
                    {"spawn_wall", spawn_wall},
                    {"supervised_bootstrap", sup_boot},
                    {"bare_bootstrap", bare_boot},
                    {"supervised_published", sup_pub},
                    {"bare_published", bare_pub},
                    {"supervision_overhead", sup_pub - bare_pub},
                    {"appliance_spawn_cpu", app_cpu},
                    {"appliance_spawn_wall", app_wall},
                    {"appliance_bootstrap", app_boot},
                    {"appliance_published", app_pub}};
  j["targets"] = {{"own_work_le_50ms", spawn_cpu <= 50.0 && app_cpu <= 50.0},
                  {"overhead_le_1s", sup_pub - bare_pub <= 1000.0}};
  std::fprintf(stderr,
               "\nmedians over %d rounds: start->spawned %.2f ms cpu (%.2f ms wall), torgw-init->tor exec'd %.2f ms "
               "cpu (%.2f ms wall) [target <= 50 ms]; bootstrap %.0f vs bare %.0f ms (appliance %.0f); "
               "published %.0f vs bare %.0f ms (appliance %.0f): supervision adds %.0f ms [target <= 1000 ms]\n",
               rounds, spawn_cpu, spawn_wall, app_cpu, app_wall, sup_boot, bare_boot, app_boot, sup_pub, bare_pub,
               app_pub, sup_pub - bare_pub);
  if (as_json) std::printf("%s\n", j.dump(2).c_str());
  return all_ok(sup) && all_ok(bare) && all_ok(app) ? 0 : 1;
}
