// Runs the real `torgw` binary: the exit codes and JSON are a contract for scripts.
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include <nlohmann/json.hpp>

#include "serial/serial.h"
#include "tests/support/process.h"
#include "tests/support/tempdir.h"

#include <unistd.h>

using namespace torgw;
using namespace torgw::testing;

static std::string torgw_bin() { return binary_dir() + "/cli/torgw"; }

TEST_CASE("torgw serial parse: exit codes and JSON") {
  TempDir dir("cli");
  std::string good = *serial::format_marker("BOOT_ID", "0123456789abcdef0123456789abcdef") +
                     *serial::format_marker("MARKER_VERSION", "1") + "kernel noise\n" +
                     *serial::format_marker("SNP", "absent") + *serial::format_marker("READY", "true");
  write_file(dir.file("good.log"), good);
  write_file(dir.file("cut.log"), good.substr(0, good.size() - 30));

  auto r = run({torgw_bin(), "serial", "parse", dir.file("good.log"), "--json"});
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["last_complete_boot"] == 0);
  CHECK(j["boots"][0]["values"]["SNP"] == "absent");
  CHECK(j["boots"][0]["end"] == "ready");

  auto cut = run({torgw_bin(), "serial", "parse", dir.file("cut.log")});
  CHECK(cut.exit_code == 1);
  CHECK(cut.out.find("no complete boot") != std::string::npos);

  CHECK(run({torgw_bin(), "serial", "parse", dir.file("missing.log")}).exit_code == 2);
  CHECK(run({torgw_bin(), "serial", "parse"}).exit_code == 2);
  CHECK(run({torgw_bin(), "nonsense"}).exit_code == 2);
  CHECK(run({torgw_bin(), "--help"}).exit_code == 0);
}

TEST_CASE("torgw onion address prints the hostname of either key file") {
  TempDir dir("cli-onion");
  if (find_program("tor").empty()) {
    TORGW_SKIP(torgw::testing::Needs::package, "tor not installed");
  }
  std::string hs = dir.file("hs");
  auto tor = Subprocess::spawn(
      {find_program("tor"), "--DataDirectory", dir.file("data"), "--HiddenServiceDir", hs, "--HiddenServicePort",
       "80 127.0.0.1:9", "--DisableNetwork", "1", "--SocksPort", "0", "--GeoIPFile", "", "--GeoIPv6File", ""},
      {.stdout_path = dir.file("tor.log")});
  std::string host;
  for (int i = 0; i < 1500 && (host.empty() || host.back() != '\n'); ++i) {
    host = read_file(hs + "/hostname");
    ::usleep(20000);
  }
  tor.stop();
  REQUIRE(!host.empty());
  auto sk = run({torgw_bin(), "onion", "address", hs + "/hs_ed25519_secret_key"});
  CHECK(sk.exit_code == 0);
  CHECK(sk.out == host);
  auto pk = run({torgw_bin(), "onion", "address", hs + "/hs_ed25519_public_key"});
  CHECK(pk.exit_code == 0);
  CHECK(pk.out == host);
  auto bad = run({torgw_bin(), "onion", "address", hs + "/hostname"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("onion.keyfile_header") != std::string::npos);
}
