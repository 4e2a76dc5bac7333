// The `tornet` CLI's life cycle, and the harness's promise that every process it starts
// ends on every exit path: `down`, SIGINT while starting (foreground and background),
// and SIGKILL of the keeper (its tors die with it).
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include <signal.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <thread>

#include "tests/support/process.h"
#include "tests/support/tempdir.h"

using namespace torgw::testing;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

std::string tornet_bin() { return binary_dir() + "/tests/tornet/tornet"; }

// PIDs of processes whose command line mentions `needle` (the network's directory).
std::vector<pid_t> pids_mentioning(const std::string& needle) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmd = read_file(e.path().string() + "/cmdline");
    for (char& c : cmd)
      if (c == '\0') c = ' ';
    if (cmd.find(needle) != std::string::npos) out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

// Waits until no process mentions `needle`.
bool all_gone(const std::string& needle, std::chrono::seconds t) {
  auto deadline = std::chrono::steady_clock::now() + t;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pids_mentioning(needle).empty()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return pids_mentioning(needle).empty();
}

std::vector<std::string> netns_with(const std::string& prefix) {
  std::vector<std::string> out;
  if (!std::filesystem::exists("/run/netns")) return out;
  for (const auto& e : std::filesystem::directory_iterator("/run/netns")) {
    std::string n = e.path().filename();
    if (n.rfind(prefix, 0) == 0) out.push_back(n);
  }
  return out;
}

bool have_tor() { return !find_program("tor").empty() && !find_program("tor-gencert").empty(); }

}  // namespace

TEST_CASE("tornet up / torrc / down") {
  if (!have_tor()) {
    TORGW_SKIP(torgw::testing::Needs::package, "tor and tor-gencert are not installed");
  }
  TempDir dir("tornet-cli");
  const std::string d = dir.file("net");
  auto up = run({tornet_bin(), "up", "--dir", d, "--json"}, 300s);
  INFO(up.err << read_file(d + "/tornet.log"));
  REQUIRE(up.exit_code == 0);
  auto j = json::parse(up.out);
  REQUIRE(j["processes"].size() == 5);
  for (const auto& p : j["processes"]) CHECK(::kill(p["pid"].get<pid_t>(), 0) == 0);
  CHECK(j["socks"].get<std::string>().rfind("127.0.0.1:", 0) == 0);
  CHECK(j["dir_authorities"].size() == 1);
  if (::geteuid() == 0) CHECK(std::filesystem::exists("/run/netns/" + j["netns"].get<std::string>()));

  // A second `up` in the same directory is refused and disturbs nothing.
  auto again = run({tornet_bin(), "up", "--dir", d}, 30s);
  CHECK(again.exit_code == 1);

  auto torrc = run({tornet_bin(), "torrc", "--dir", d}, 30s);
  REQUIRE(torrc.exit_code == 0);
  CHECK(torrc.out.find("TestingTorNetwork 1\n") != std::string::npos);
  CHECK(torrc.out.find("DirAuthority " + j["dir_authorities"][0].get<std::string>()) != std::string::npos);

  auto down = run({tornet_bin(), "down", "--dir", d}, 60s);
  CHECK(down.exit_code == 0);
  for (const auto& p : j["processes"]) CHECK(::kill(p["pid"].get<pid_t>(), 0) != 0);
  CHECK(::kill(j["pid"].get<pid_t>(), 0) != 0);  // the keeper
  if (::geteuid() == 0) CHECK_FALSE(std::filesystem::exists("/run/netns/" + j["netns"].get<std::string>()));
  CHECK_FALSE(std::filesystem::exists(d + "/tornet.json"));
  CHECK(run({tornet_bin(), "down", "--dir", d}, 30s).exit_code == 0);  // idempotent
}

TEST_CASE("SIGINT while the network starts ends every tor") {
  if (!have_tor()) {
    TORGW_SKIP(torgw::testing::Needs::package, "tor and tor-gencert are not installed");
  }
  for (const char* mode : {"run", "up"}) {
    SECTION(mode) {
      TempDir dir("tornet-int");
      const std::string d = dir.file("net");
      SpawnOptions o;
      o.stdout_path = dir.file("out");
      auto p = Subprocess::spawn({tornet_bin(), mode, "--dir", d}, o);
      // Wait until its tors are running, then interrupt it mid-start.
      auto deadline = std::chrono::steady_clock::now() + 120s;
      while (pids_mentioning(d).size() < 4 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(100ms);
      REQUIRE(pids_mentioning(d).size() >= 4);
      p.signal(SIGINT);
      auto st = p.wait(30s);
      REQUIRE(st);
      CHECK(all_gone(d, 20s));
      CHECK(netns_with("torgw-tn-" + std::to_string(p.pid()) + "-").empty());
    }
  }
}

TEST_CASE("SIGKILL of the keeper takes its tors with it") {
  if (!have_tor()) {
    TORGW_SKIP(torgw::testing::Needs::package, "tor and tor-gencert are not installed");
  }
  TempDir dir("tornet-kill");
  const std::string d = dir.file("net");
  auto up = run({tornet_bin(), "up", "--dir", d, "--json"}, 300s);
  INFO(up.err << read_file(d + "/tornet.log"));
  REQUIRE(up.exit_code == 0);
  auto j = json::parse(up.out);
  ::kill(j["pid"].get<pid_t>(), SIGKILL);
  CHECK(all_gone(d, 20s));
  // `down` still cleans what a hard-killed keeper left (its namespace, the state file).
  CHECK(run({tornet_bin(), "down", "--dir", d}, 60s).exit_code == 0);
  if (::geteuid() == 0) CHECK_FALSE(std::filesystem::exists("/run/netns/" + j["netns"].get<std::string>()));
  CHECK_FALSE(std::filesystem::exists(d + "/tornet.json"));
}
