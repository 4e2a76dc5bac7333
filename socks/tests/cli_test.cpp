// The torgw-socks executable's contract, which the supervisor and PID 1 script against:
// flags, exit codes (2 = bad config, with exactly one line saying why), --help/--check,
// signals, and the privilege drop (as root).
#include <catch2/catch.hpp>

#include "socks/privdrop.h"
#include "tests/support/skip.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "tests/support/net.h"
#include "tests/support/process.h"
#include "tests/support/tempdir.h"

using namespace torgw::testing;
using namespace std::chrono_literals;

namespace {

SpawnOptions log_to(const std::string& path) {
  SpawnOptions o;
  o.stderr_path = path;
  return o;
}

std::string bin() { return binary_dir() + "/socks/torgw-socks"; }

RunResult run_socks(std::vector<std::string> args) {
  args.insert(args.begin(), bin());
  return run(args, 20s);
}

// Exit 2 and exactly one line on stderr, which contains `needle`.
void check_config_error(const RunResult& r, const std::string& needle) {
  INFO("stderr: " << r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.out.empty());
  REQUIRE(!r.err.empty());
  CHECK(r.err.back() == '\n');
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.rfind("torgw-socks: ", 0) == 0);
  CHECK(r.err.find(needle) != std::string::npos);
}

std::string status_field(pid_t pid, const std::string& key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key + ":", 0) == 0) {
      auto v = line.substr(key.size() + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      v.erase(v.find_last_not_of(" \t") + 1);
      return v;
    }
  return {};
}

bool wait_for_log(const std::string& path, const std::string& needle, std::chrono::milliseconds t = 10s) {
  auto end = std::chrono::steady_clock::now() + t;
  while (std::chrono::steady_clock::now() < end) {
    if (read_file(path).find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

}  // namespace

TEST_CASE("torgw-socks --help and --version") {
  auto h = run_socks({"--help"});
  CHECK(h.exit_code == 0);
  CHECK(h.out.rfind("Usage: torgw-socks --listen HOST:PORT|unix:PATH --backend HOST:PORT", 0) == 0);
  CHECK(h.err.empty());
  auto v = run_socks({"--version"});
  CHECK(v.exit_code == 0);
  CHECK(v.out.rfind("torgw-socks ", 0) == 0);
}

TEST_CASE("torgw-socks: bad configuration exits 2 with one clear line") {
  TempDir dir("socks-cli");
  check_config_error(run_socks({}), "no backend");
  check_config_error(run_socks({"--backend"}), "--backend needs a value");
  check_config_error(run_socks({"--backend", "127.0.0.1"}), "expected HOST:PORT");
  check_config_error(run_socks({"--frob"}), "unknown argument '--frob'");
  check_config_error(run_socks({"--backend", "127.0.0.1:1", "--mode", "socks4"}), "expected socks5 or passthrough");
  check_config_error(run_socks({"--backend", "127.0.0.1:1", "--max-connections", "many"}), "expected a number");
  check_config_error(run_socks({"--backend", "127.0.0.1:1", "--config", dir.file("missing.conf")}), "cannot read");
  write_file(dir.file("bad.conf"), "backend = 127.0.0.1:1\n# fine\nidle_timeout = forever\n");
  check_config_error(run_socks({"--config", dir.file("bad.conf")}), "bad.conf:3: idle_timeout:");
  check_config_error(run_socks({"--backend", "127.0.0.1:1", "--user", "no-such-user-xyz"}), "does not exist");
  check_config_error(run_socks({"--backend", "127.0.0.1:1", "--user", "root"}), "is root");
  // More connections than descriptors: a configuration problem, said before binding.
  check_config_error(run_socks({"--listen", "127.0.0.1:" + std::to_string(free_tcp_port()), "--backend", "127.0.0.1:1",
                                "--max-connections", "900000"}),
                     "file descriptors");
}

TEST_CASE("torgw-socks --check prints the effective config, secrets redacted") {
  TempDir dir("socks-cli");
  write_file(dir.file("c.conf"), "backend = 127.0.0.5:1080\nmode = passthrough\nbackend_credential = x:hunter2\n",
             0600);
  // backend_auth applies to socks5 only: a clear error.
  check_config_error(run_socks({"--config", dir.file("c.conf"), "--check"}), "backend_credential is set");
  write_file(dir.file("c.conf"), "backend = 127.0.0.5:1080\nbackend_auth = password\nbackend_credential = x:hunter2\n",
             0600);
  auto r = run_socks({"--config", dir.file("c.conf"), "--check", "--backend", "10.9.9.9:1080", "--mode", "socks5"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("backend = 10.9.9.9:1080\n") != std::string::npos);
  CHECK(r.out.find("127.0.0.5") == std::string::npos);  // the flag replaced the file's list
  CHECK(r.out.find("backend_credential = (redacted)") != std::string::npos);
  CHECK(r.out.find("hunter2") == std::string::npos);
}

TEST_CASE("torgw-socks: runtime failure exits 1 with one line") {
  auto busy_port = free_tcp_port();
  TempDir dir("socks-cli");
  auto holder = Subprocess::spawn({bin(), "--listen", "127.0.0.1:" + std::to_string(busy_port), "--backend",
                                   "127.0.0.1:1", "--max-connections", "8"},
                                  log_to(dir.file("holder.log")));
  REQUIRE(wait_for_tcp("127.0.0.1", busy_port, 10s));
  auto r = run_socks({"--listen", "127.0.0.1:" + std::to_string(busy_port), "--backend", "127.0.0.1:1"});
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.find("Address already in use") != std::string::npos);
}

TEST_CASE("torgw-socks: SIGUSR1 logs counters, SIGTERM drains and exits 0") {
  TempDir dir("socks-cli");
  auto port = free_tcp_port();
  auto p = Subprocess::spawn({bin(), "--listen", "127.0.0.1:" + std::to_string(port), "--backend", "127.0.0.1:1"},
                             log_to(dir.file("log")));
  REQUIRE(wait_for_log(dir.file("log"), "listening on 127.0.0.1:" + std::to_string(port)));
  p.signal(SIGUSR1);
  CHECK(wait_for_log(dir.file("log"), "stats (SIGUSR1): accepted="));
  // The relay is running, so it runs under its syscall allowlist (filter mode 2), and
  // the drain and exit below are done within it.
  if (torgw::socks::syscall_filter_supported()) CHECK(status_field(p.pid(), "Seccomp") == "2");
  p.signal(SIGTERM);
  auto st = p.wait(10s);
  REQUIRE(st);
  CHECK(WIFEXITED(*st));
  CHECK(WEXITSTATUS(*st) == 0);
  auto log = read_file(dir.file("log"));
  CHECK(log.find("SIGTERM: draining 0 connections") != std::string::npos);
  CHECK(log.find("stats (exit):") != std::string::npos);
}

TEST_CASE("torgw-socks --no-seccomp: no filter, and a warning says so") {
  TempDir dir("socks-cli");
  auto port = free_tcp_port();
  auto p = Subprocess::spawn(
      {bin(), "--listen", "127.0.0.1:" + std::to_string(port), "--backend", "127.0.0.1:1", "--no-seccomp"},
      log_to(dir.file("log")));
  REQUIRE(wait_for_log(dir.file("log"), "--no-seccomp: running without the syscall allowlist"));
  p.signal(SIGUSR1);
  REQUIRE(wait_for_log(dir.file("log"), "stats (SIGUSR1): accepted="));
  CHECK(status_field(p.pid(), "Seccomp") == "0");
  p.signal(SIGTERM);
  auto st = p.wait(10s);
  REQUIRE(st);
  CHECK(WEXITSTATUS(*st) == 0);
}

TEST_CASE("torgw-socks: started as root, drops to --user for good") {
  if (::geteuid() != 0) {
    TORGW_SKIP(torgw::testing::Needs::root, "needs root to test the privilege drop");
  }
  TempDir dir("socks-cli");
  ::chmod(dir.path().c_str(), 0755);
  auto sock = dir.file("s.sock");
  auto p = Subprocess::spawn({bin(), "--listen", "unix:" + sock, "--backend", "127.0.0.1:1", "--user", "nobody"},
                             log_to(dir.file("log")));
  REQUIRE(wait_for_log(dir.file("log"), "listening on unix:" + sock));
  std::this_thread::sleep_for(100ms);
  CHECK(status_field(p.pid(), "Uid") == "65534\t65534\t65534\t65534");
  CHECK(status_field(p.pid(), "Gid") == "65534\t65534\t65534\t65534");
  CHECK(status_field(p.pid(), "Groups") == "65534");
  CHECK(status_field(p.pid(), "CapEff") == "0000000000000000");
  CHECK(status_field(p.pid(), "CapPrm") == "0000000000000000");
  CHECK(status_field(p.pid(), "CapInh") == "0000000000000000");
  CHECK(status_field(p.pid(), "CapBnd") == "0000000000000000");
  CHECK(status_field(p.pid(), "CapAmb") == "0000000000000000");
  CHECK(status_field(p.pid(), "NoNewPrivs") == "1");
  struct stat st {};
  REQUIRE(::stat(sock.c_str(), &st) == 0);
  CHECK(st.st_uid == 65534);
  CHECK(st.st_gid == 65534);
  CHECK((st.st_mode & 0777) == 0660);
  CHECK(connect_unix(sock).valid());
  if (torgw::socks::syscall_filter_supported()) CHECK(status_field(p.pid(), "Seccomp") == "2");
  p.signal(SIGTERM);  // the clean stop unlinks the socket under the filter
  auto ws = p.wait(10s);
  REQUIRE(ws);
  CHECK(WEXITSTATUS(*ws) == 0);
}

TEST_CASE("torgw-socks: TLS material OpenSSL refuses is a configuration error (exit 2), the key unnamed") {
  if (find_program("openssl").empty())
    TORGW_SKIP(torgw::testing::Needs::package, "openssl not installed (scripts/setup)");
  TempDir dir("socks-cli");
  // A certificate and a key that is not its key.
  auto made = run({"sh", "-c",
                   "cd " + dir.path() +
                       " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout a.key"
                       " -out a.pem -days 2 -subj /CN=a 2>/dev/null"
                       " && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out b.key 2>/dev/null"
                       " && base64 -w0 a.pem > a.b64 && base64 -w0 b.key > b.b64"});
  REQUIRE(made.exit_code == 0);
  auto key_b64 = read_file(dir.file("b.b64"));
  write_file(dir.file("s.conf"),
             "backend = tls://127.0.0.1:1443\n"
             "backend_tls_pin = sha256//hufrqJvISR5QC/CfNoCnUVS1uD34vmZvxZG9bFf0xyU=\n"
             "backend_tls_cert = " +
                 read_file(dir.file("a.b64")) + "\nbackend_tls_key = " + key_b64 + "\n",
             0600);
  auto r = run_socks({"--listen", "127.0.0.1:" + std::to_string(free_tcp_port()), "--config", dir.file("s.conf")});
  check_config_error(r, "backend_tls_key does not match backend_tls_cert");
  CHECK(r.err.find(key_b64.substr(0, 24)) == std::string::npos);
}
