// `torgw serial watch` against logs a test writes in pieces while it watches: a file that
// grows (torn lines, kernel noise, a reboot in the middle), a FIFO that ends early, a
// FATAL boot, a stalled boot hitting --timeout, binary garbage. The exit codes are a
// contract (docs/cli.md): 0 READY/--until, 1 FATAL, 2 usage, 3 timeout, 4 input ended.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <thread>

#include "onion/onion.h"
#include "serial/serial.h"
#include "snp/tests/boot_log.h"
#include "snp/tests/sim_fixture.h"
#include "tests/support/process.h"
#include "tests/support/tempdir.h"

using namespace torgw;
using namespace torgw::testing;
using namespace std::chrono_literals;

namespace {

std::string torgw_bin() { return binary_dir() + "/cli/torgw"; }
std::string m(const std::string& k, const std::string& v) { return *serial::format_marker(k, v); }

const std::string kOld = "11111111111111111111111111111111";
const std::string kNew = "22222222222222222222222222222222";

std::string boot_start(const std::string& id) {
  return m("BOOT_ID", id) + m("MARKER_VERSION", "1") + "[    0.912345] EXT4-fs (sda1): noise\n" +
         m("VERSION", "0.1.0") + m("SNP", "absent");
}

void append(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::app);
  f << text;
}

// Appends `pieces` to `path` one by one, `gap` apart, the way a console fills a file.
void write_slowly(const std::string& path, const std::vector<std::string>& pieces, std::chrono::milliseconds gap) {
  for (const auto& p : pieces) {
    append(path, p);
    std::this_thread::sleep_for(gap);
  }
}

int exit_code(std::optional<int> status) {
  REQUIRE(status);
  REQUIRE(WIFEXITED(*status));
  return WEXITSTATUS(*status);
}

}  // namespace

TEST_CASE("serial watch: a growing file with torn lines and a reboot ends READY on the new boot") {
  TempDir dir("watch");
  const std::string log = dir.file("console.log"), out = dir.file("out.json"), err = dir.file("err.txt");
  write_file(log, "SeaBIOS noise\r\n");
  auto w = Subprocess::spawn({torgw_bin(), "serial", "watch", log, "--json", "--timeout", "60"},
                             {.stdout_path = out, .stderr_path = err});
  const std::string torn = m("TOR_BOOTSTRAP", "45");
  write_slowly(log,
               {boot_start(kOld), m("TOR_BOOTSTRAP", "10"), "[   3.1] reboot: Restarting system\r\n",
                boot_start(kNew).substr(0, 20), boot_start(kNew).substr(20), torn.substr(0, 9), "", torn.substr(9),
                "[  12.0] kernel noise between markers\n", m("ONION_HOSTNAME", "x.onion"), m("TOR_BOOTSTRAP", "100"),
                m("DESCRIPTOR_PUBLISHED", "true"), m("READY", "true")},
               80ms);
  CHECK(exit_code(w.wait(30000ms)) == 0);
  auto j = nlohmann::json::parse(read_file(out));
  CHECK(j["outcome"] == "ready");
  CHECK(j["reason"] == "READY=true");
  CHECK(j["boot"]["boot_id"] == kNew);
  CHECK(j["boot"]["end"] == "ready");
  CHECK(j["boot"]["values"]["TOR_BOOTSTRAP"] == "100");
  CHECK(j["boots_seen"] == 2);
  CHECK(j["tor_bootstrap"] == 100);
  // Not a terminal: plain progress lines, one per change (how many depends on how the
  // pieces fell between reads), the last one at READY.
  const std::string progress = read_file(err);
  INFO(progress);
  CHECK(progress.find("serial watch: ") == 0);
  CHECK(progress.find("stage READY tor 100%\n") != std::string::npos);
  CHECK(progress.find("\r") == std::string::npos);
  CHECK(progress.find("\033") == std::string::npos);
}

TEST_CASE("serial watch: --until stops at an earlier marker") {
  TempDir dir("watch-until");
  const std::string log = dir.file("console.log");
  write_file(log, boot_start(kNew) + m("ONION_HOSTNAME", "x.onion") + m("DESCRIPTOR_PUBLISHED", "true"));
  auto r = run({torgw_bin(), "serial", "watch", log, "--until", "DESCRIPTOR_PUBLISHED", "--timeout", "20"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "DESCRIPTOR_PUBLISHED=true\n");
  CHECK(run({torgw_bin(), "serial", "watch", log, "--until", "not a key"}).exit_code == 2);
}

TEST_CASE("serial watch: a FATAL boot exits 1 with its reason") {
  TempDir dir("watch-fatal");
  const std::string log = dir.file("console.log");
  write_file(log, "");
  auto w = Subprocess::spawn({torgw_bin(), "serial", "watch", log, "--timeout", "60"},
                             {.stdout_path = dir.file("out"), .stderr_path = dir.file("err")});
  write_slowly(log, {boot_start(kOld), m("FATAL", "config:backend:missing")}, 100ms);
  CHECK(exit_code(w.wait(30000ms)) == 1);
  CHECK(read_file(dir.file("out")) == "FATAL=config:backend:missing\n");
}

TEST_CASE("serial watch: a stalled boot hits --timeout (3)") {
  TempDir dir("watch-stall");
  const std::string log = dir.file("console.log");
  write_file(log, boot_start(kOld) + m("TOR_BOOTSTRAP", "75"));
  auto r = run({torgw_bin(), "serial", "watch", log, "--timeout", "1", "--json"});
  CHECK(r.exit_code == 3);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["outcome"] == "timeout");
  CHECK(j["reason"] == "serial.watch.timeout: boot " + kOld + " still at TOR_BOOTSTRAP");
  CHECK(j["boot"]["end"] == "incomplete");
  CHECK(j["tor_bootstrap"] == 75);
}

TEST_CASE("serial watch -: a pipe that ends before READY (4), garbage included") {
  TempDir dir("watch-pipe");
  // A truncated log: the input ends mid-boot.
  auto cut = run({torgw_bin(), "serial", "watch", "-"}, 20000ms, {.stdin_data = boot_start(kOld) + "TORGW TOR_BOO"});
  CHECK(cut.exit_code == 4);
  CHECK(cut.out == "serial.watch.ended: input ended with boot " + kOld + " at SNP\n");
  // Binary garbage: no boot, and the reason says the input does not look like a console.
  std::string garbage(5000, '\0');
  for (std::size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>((i * 131) % 256);
  auto bin = run({torgw_bin(), "serial", "watch", "-"}, 20000ms, {.stdin_data = garbage});
  CHECK(bin.exit_code == 4);
  CHECK(bin.out.find("serial.watch.ended: input ended before any boot") == 0);
  CHECK(bin.out.find("non-text bytes: is this a serial console log?") != std::string::npos);
  // A FIFO written in pieces, READY in the last one, the writer still open.
  const std::string fifo = dir.file("fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto w = Subprocess::spawn({torgw_bin(), "serial", "watch", fifo, "--timeout", "60"},
                             {.stdout_path = dir.file("out"), .stderr_path = dir.file("err")});
  int fd = ::open(fifo.c_str(), O_WRONLY);
  REQUIRE(fd >= 0);
  const std::string text = boot_start(kNew) + m("READY", "true");
  for (std::size_t i = 0; i < text.size(); i += 7) {
    REQUIRE(::write(fd, text.data() + i, std::min<std::size_t>(7, text.size() - i)) > 0);
    std::this_thread::sleep_for(5ms);
  }
  CHECK(exit_code(w.wait(30000ms)) == 0);
  ::close(fd);
  CHECK(read_file(dir.file("out")) == "READY=true\n");
  // Unreadable input is a usage error.
  CHECK(run({torgw_bin(), "serial", "watch", dir.file("missing.log")}).exit_code == 2);
}

TEST_CASE("serial watch --verify: once READY, torgw verify decides the exit code") {
  TempDir dir("watch-verify");
  auto sim = snp::testsim::open(snp::testsim::chip_named("watch-verify"));
  const std::string ark = dir.file("sim-ark.pem"), log = dir.file("console.log");
  write_file(ark, sim->ark_pem());
  auto id = onion::Identity::generate();
  snp::testlog::BootSpec spec;
  spec.dev = sim.get();
  spec.id = &id;
  snp::testlog::append_boot(log, spec);
  // The simulated PSP's ARK passed through to verify: VALID, exit 0, verify's JSON inside.
  auto r = run({torgw_bin(), "serial", "watch", log, "--timeout", "30", "--json", "--verify",
                "--verify-arg=--allow-simulated", "--verify-arg=" + ark});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["outcome"] == "ready");
  CHECK(j["verify"]["valid"] == true);
  CHECK(j["verify"]["onion_hostname"] == id.hostname());
  // Without it verify refuses the simulated chain: watch exits with verify's 1.
  r = run({torgw_bin(), "serial", "watch", log, "--timeout", "30", "--verify"});
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("READY=true\n") == 0);
  CHECK(r.out.find("snp.chain.ark_not_pinned") != std::string::npos);
}
