// tornet: a private Tor network from a shell, for the demo and for poking at things.
//
//   tornet up --dir D [--no-netns] [--timeout S] [--voting-interval S] [--json]
//       Starts the network in the background (a keeper process owns every tor) and
//       prints, once the client is bootstrapped:
//           SocksPort 127.0.0.1:PORT
//           DirAuthority auth orport=... v3ident=... 127.0.0.1:PORT FINGERPRINT
//       (--json: everything, including the torrc block and timings). Progress goes to
//       stderr. Exit 0 when up, 1 when it failed (nothing is left running).
//   tornet down --dir D      ends the keeper, which ends every tor; 0 also if none ran
//   tornet torrc --dir D     the options a tor needs to join (for a HiddenServiceDir tor)
//   tornet run --dir D ...   the same as up, in the foreground until SIGINT/SIGTERM
//
// As root the network gets its own network namespace (printed as NETNS in --json; run
// your own processes with `ip netns exec NAME ...`); --no-netns keeps it on the host's
// loopback so a demo can reach the SocksPort directly.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "tests/support/process.h"
#include "tests/tornet/tornet.h"

using namespace torgw;
using nlohmann::json;

namespace {

std::string state_path(const std::string& dir) { return dir + "/tornet.json"; }

json describe(const tornet::Network& n) {
  json j;
  j["dir"] = n.dir();
  j["netns"] = n.netns();
  j["socks"] = n.socks_endpoint();
  j["client_control_socket"] = n.client_control_socket();
  j["dir_authorities"] = n.dir_authorities();
  j["torrc"] = n.torrc_block();
  j["pid"] = ::getpid();
  const auto& t = n.timings();
  j["timings_ms"] = {{"keys", t.keys.count()},
                     {"consensus", t.consensus.count()},
                     {"relays_ready", t.relays_ready.count()},
                     {"client_bootstrapped", t.client_bootstrapped.count()}};
  json procs = json::array();
  for (const auto& p : n.processes()) procs.push_back({{"name", p.name}, {"pid", p.pid}, {"log", p.log}});
  j["processes"] = procs;
  return j;
}

void print_info(const json& j, bool as_json) {
  if (as_json) {
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("SocksPort %s\n", j["socks"].get<std::string>().c_str());
    for (const auto& d : j["dir_authorities"]) std::printf("DirAuthority %s\n", d.get<std::string>().c_str());
  }
  std::fflush(stdout);
}

void write_line(int fd, const std::string& s) {
  std::string l = s + "\n";
  (void)!::write(fd, l.data(), l.size());
}

// Blocks until SIGINT/SIGTERM/SIGHUP (the Network's own handlers are bypassed).
void wait_for_stop_signal() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, s);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  int sig = 0;
  ::sigwait(&set, &sig);
}

bool is_our_keeper(pid_t pid) {
  std::string cmd = testing::read_file("/proc/" + std::to_string(pid) + "/cmdline");
  return cmd.find("tornet") != std::string::npos;
}

// Creates `dir`; refuses if a live network owns it; clears a dead one's state file.
bool claim_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  auto j = json::parse(testing::read_file(state_path(dir)), nullptr, false);
  if (!j.is_discarded() && j.contains("pid")) {
    pid_t pid = j["pid"].get<pid_t>();
    if (pid > 1 && ::kill(pid, 0) == 0 && is_our_keeper(pid)) {
      std::fprintf(stderr, "tornet: a network runs in %s (pid %d); tornet down --dir %s\n", dir.c_str(),
                   static_cast<int>(pid), dir.c_str());
      return false;
    }
  }
  std::filesystem::remove(state_path(dir), ec);
  return true;
}

int g_voting_interval = 10;  // --voting-interval

tornet::Options options(const std::string& dir, bool no_netns, int timeout, int progress_fd) {
  tornet::Options o;
  o.voting_interval = std::chrono::seconds(g_voting_interval);
  o.dir = dir;
  o.keep_dir = true;
  o.netns = no_netns ? tornet::Netns::Off : tornet::Netns::Auto;
  o.timeout = std::chrono::seconds(timeout);
  o.progress = [progress_fd](const std::string& s) { write_line(progress_fd, "tornet: " + s); };
  return o;
}

int cmd_run(const std::string& dir, bool no_netns, int timeout, bool as_json) {
  if (!claim_dir(dir)) return 1;
  testing::write_file(state_path(dir), json{{"pid", ::getpid()}, {"starting", true}}.dump());
  auto n = tornet::Network::start(options(dir, no_netns, timeout, 2));
  if (!n) {
    std::fprintf(stderr, "tornet: %s\n", n.error().to_string().c_str());
    std::filesystem::remove(state_path(dir));
    return 1;
  }
  json j = describe(**n);
  testing::write_file(state_path(dir), j.dump(2));
  print_info(j, as_json);
  wait_for_stop_signal();
  (*n)->stop();
  std::filesystem::remove(state_path(dir));
  return 0;
}

volatile sig_atomic_t g_interrupted = 0;

int cmd_up(const std::string& dir, bool no_netns, int timeout, bool as_json) {
  if (!claim_dir(dir)) return 1;
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return 1;
  std::fflush(nullptr);
  pid_t keeper = ::fork();
  if (keeper < 0) return 1;
  if (keeper == 0) {
    ::close(pipefd[0]);
    ::setsid();
    int log = ::open((dir + "/tornet.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log >= 0) {
      ::dup2(log, 1);
      ::dup2(log, 2);
    }
    if (devnull >= 0) ::dup2(devnull, 0);
    // The keeper's pid is on record from the start, so `down` can stop a starting network.
    testing::write_file(state_path(dir), json{{"pid", ::getpid()}, {"starting", true}}.dump());
    auto o = options(dir, no_netns, timeout, pipefd[1]);
    auto n = tornet::Network::start(o);
    if (!n) {
      write_line(pipefd[1], "ERROR " + n.error().to_string());
      std::fprintf(stderr, "tornet: %s\n", n.error().to_string().c_str());
      std::filesystem::remove(state_path(dir));
      _exit(1);
    }
    json j = describe(**n);
    testing::write_file(state_path(dir), j.dump(2));
    write_line(pipefd[1], "READY");
    ::close(pipefd[1]);
    wait_for_stop_signal();
    (*n)->stop();
    std::filesystem::remove(state_path(dir));
    std::fflush(nullptr);
    _exit(0);
  }
  ::close(pipefd[1]);
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_interrupted = 1; };
  for (int s : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(s, &sa, nullptr);
  std::string buf;
  bool ready = false;
  for (;;) {
    char tmp[4096];
    ssize_t r = ::read(pipefd[0], tmp, sizeof tmp);
    if (r < 0 && errno == EINTR) {
      if (g_interrupted) {
        std::fprintf(stderr, "tornet: interrupted; stopping\n");
        ::kill(keeper, SIGTERM);
        int st;
        ::waitpid(keeper, &st, 0);
        return 1;
      }
      continue;
    }
    if (r <= 0) break;
    buf.append(tmp, static_cast<std::size_t>(r));
    std::size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      if (line == "READY") ready = true;
      else std::fprintf(stderr, "%s\n", line.c_str());
    }
  }
  if (!ready) {
    int st;
    ::waitpid(keeper, &st, 0);
    std::fprintf(stderr, "tornet: failed (log: %s/tornet.log)\n", dir.c_str());
    return 1;
  }
  auto j = json::parse(testing::read_file(state_path(dir)), nullptr, false);
  if (j.is_discarded()) return 1;
  print_info(j, as_json);
  return 0;
}

int cmd_down(const std::string& dir) {
  std::string s = testing::read_file(state_path(dir));
  if (s.empty()) {
    std::fprintf(stderr, "tornet: no network in %s\n", dir.c_str());
    return 0;
  }
  auto j = json::parse(s, nullptr, false);
  if (j.is_discarded() || !j.contains("pid")) {
    std::fprintf(stderr, "tornet: %s is damaged\n", state_path(dir).c_str());
    return 1;
  }
  pid_t pid = j["pid"].get<pid_t>();
  if (pid > 1 && ::kill(pid, 0) == 0 && is_our_keeper(pid)) {
    ::kill(pid, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (::kill(pid, 0) == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    // SIGKILL as a last resort: its tors die with it (PR_SET_PDEATHSIG).
    if (::kill(pid, 0) == 0) ::kill(pid, SIGKILL);
  }
  // A keeper that died hard leaves its namespace behind.
  std::string ns = j.value("netns", "");
  if (!ns.empty() && std::filesystem::exists("/run/netns/" + ns)) (void)testing::run({"ip", "netns", "del", ns});
  std::filesystem::remove(state_path(dir));
  std::fprintf(stderr, "tornet: stopped\n");
  return 0;
}

int cmd_torrc(const std::string& dir) {
  auto j = json::parse(testing::read_file(state_path(dir)), nullptr, false);
  if (j.is_discarded()) {
    std::fprintf(stderr, "tornet: no network in %s\n", dir.c_str());
    return 1;
  }
  std::printf("%s", j["torrc"].get<std::string>().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tornet: a private Tor network on loopback (1 authority, 3 relays, a client)"};
  app.require_subcommand(1);
  std::string dir;
  bool no_netns = false, as_json = false;
  int timeout = 180;
  auto* up = app.add_subcommand("up", "start in the background; print SocksPort and DirAuthority");
  auto* run = app.add_subcommand("run", "start in the foreground until SIGINT/SIGTERM");
  auto* down = app.add_subcommand("down", "stop the network started in --dir");
  auto* torrc = app.add_subcommand("torrc", "print the options a tor needs to join");
  for (auto* c : {up, run, down, torrc}) c->add_option("--dir", dir, "working directory")->required();
  for (auto* c : {up, run}) {
    c->add_flag("--no-netns", no_netns, "stay on the host's loopback even as root");
    c->add_flag("--json", as_json, "print everything as JSON");
    c->add_option("--timeout", timeout, "seconds to wait for the network")->check(CLI::Range(10, 3600));
    c->add_option("--voting-interval", g_voting_interval,
                  "the authority's voting interval in seconds (default 10; onionbalance --is-testnet needs 20)")
        ->check(CLI::Range(10, 300));
  }
  CLI11_PARSE(app, argc, argv);
  dir = std::filesystem::absolute(dir).lexically_normal().string();
  if (up->parsed()) return cmd_up(dir, no_netns, timeout, as_json);
  if (run->parsed()) return cmd_run(dir, no_netns, timeout, as_json);
  if (down->parsed()) return cmd_down(dir);
  return cmd_torrc(dir);
}
